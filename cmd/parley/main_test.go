package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/parleyhq/parley/channels/twilio"
	"github.com/parleyhq/parley/channels/twilio/twiliotest"
	"github.com/parleyhq/parley/internal/chtest"
	"github.com/parleyhq/parley/internal/clustertest"
	"github.com/parleyhq/parley/internal/kafkatest"
	"github.com/parleyhq/parley/internal/seal"
	chsink "github.com/parleyhq/parley/sinks/clickhouse"
)

// clustertest.Main stops the shared ClickHouse (as chtest.Main) and
// removes the binary the multi-process tests built.
func TestMain(m *testing.M) { clustertest.Main(m) }

// TestServeWithTheDocumentedConfig runs the real binary as `parley serve
// --config FILE` against a Kafka-protocol broker and ClickHouse, with the
// tenant's Twilio API pointed at a local Twilio-compatible server, and sends
// it a signed webhook the way Twilio does.
func TestServeWithTheDocumentedConfig(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "parley")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	broker := kafkatest.Start(t, 0)
	tw := twiliotest.Start(t, twiliotest.TestAccountSID, twiliotest.TestAuthToken)
	chAddr := chtest.ForTest(t)
	db := chtest.Database(t, chAddr)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cfgPath := filepath.Join(t.TempDir(), "parley.yaml")
	cfg := fmt.Sprintf(`http:
  addr: %s
  public_base_url: https://parley.example.com   # the URL Twilio signs; default: http://<addr>
kafka:
  brokers: [%s]
clickhouse:
  addr: %s               # host:port, native protocol
  database: %s
tenants:
  - id: acme
    name: Acme Cleaning
    twilio:
      account_sid: %s
      auth_token: ${ACME_TWILIO_TOKEN}          # ${VAR} is read from the environment
      from: "whatsapp:+14155238886"
      api_base_url: %s       # optional: a Twilio-compatible API (tests, sandboxes)
    backend: { kind: demo }
    brain: { kind: rules }
`, addr, broker.Addrs()[0], chAddr, db, twiliotest.TestAccountSID, tw.URL())
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "serve", "--config", cfgPath)
	cmd.Env = append(os.Environ(), "ACME_TWILIO_TOKEN="+twiliotest.TestAuthToken, seal.EnvKey+"="+seal.NewKey())
	stdout, _ := cmd.StdoutPipe()
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer stopParley(t, cmd, &stderr)
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if strings.Contains(sc.Text(), "Parley is running") {
				close(ready)
				break
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
	}()
	select {
	case <-ready:
	case <-time.After(60 * time.Second):
		t.Fatal("parley serve did not start")
	}

	form := url.Values{
		"MessageSid": {"SM0123456789abcdef0123456789abcdef"}, "AccountSid": {twiliotest.TestAccountSID},
		"From": {"whatsapp:+447700900456"}, "To": {"whatsapp:+14155238886"}, "Body": {"Hello"}, "NumMedia": {"0"},
	}
	req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/webhooks/twilio/acme", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Twilio-Signature", twilio.Signature(twiliotest.TestAuthToken, "https://parley.example.com/webhooks/twilio/acme", form))
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("webhook: %d", res.StatusCode)
	}
	got := tw.WaitFor(1, 30*time.Second)
	if len(got) != 1 || got[0].To != "whatsapp:+447700900456" || got[0].From != "whatsapp:+14155238886" || got[0].Body == "" {
		t.Fatalf("local Twilio got %+v", got)
	}

	store, err := chsink.Open(context.Background(), chsink.Config{Addr: chAddr, Database: db})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var in, out uint64
		err := store.Conn().QueryRow(context.Background(),
			"SELECT countIf(direction = 'in'), countIf(direction = 'out') FROM messages FINAL WHERE tenant = 'acme'").Scan(&in, &out)
		if err == nil && in == 1 && out == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("messages in ClickHouse: in=%d out=%d err=%v", in, out, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
