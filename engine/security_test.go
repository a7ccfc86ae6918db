package engine

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parleyhq/parley/bus"
	"github.com/parleyhq/parley/channels/twilio/twiliotest"
	"github.com/parleyhq/parley/config"
	"github.com/parleyhq/parley/internal/chtest"
	"github.com/parleyhq/parley/internal/seal"
	"github.com/parleyhq/parley/internal/tlstest"
)

// The whole engine — ingress producer, session transactions and restore,
// replies tail, sender (consumer, ledger, writer), ClickHouse sink,
// readiness — runs against a broker that speaks only TLS with client
// certificates and SCRAM-SHA-512, and a ClickHouse reached only on its TLS
// port with a password, configured as an operator would: files and
// ${ENV} secrets. Neither password appears in the log.
func TestEngineOverTLSAndSASL(t *testing.T) {
	const kafkaPassword, chPassword = "kafka-secret-0123456789", "clickhouse-secret-0123456789"
	pki := tlstest.New(t)
	broker, err := bus.StartEmbeddedWith(bus.EmbeddedOptions{DataDir: t.TempDir(), TLS: pki.Server(true),
		Users: []bus.SASL{{Mechanism: "SCRAM-SHA-512", Username: "parley", Password: kafkaPassword}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(broker.Close)
	ch := chtest.StartTLS(t, pki, chPassword, false)
	tw := twiliotest.New(acmeSID, acmeToken)
	t.Cleanup(tw.Close)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("ACME_TWILIO_TOKEN", acmeToken)
	t.Setenv("KAFKA_PASSWORD", kafkaPassword)
	t.Setenv("CLICKHOUSE_PASSWORD", chPassword)
	t.Setenv(seal.EnvKey, seal.NewKey())
	cfg, err := config.Parse([]byte(fmt.Sprintf(`
http:
  public_base_url: %s
kafka:
  brokers: [%s]
  partitions: 2
  tls: { ca_file: %s, cert_file: %s, key_file: %s }
  sasl: { mechanism: SCRAM-SHA-512, username: parley, password: "${KAFKA_PASSWORD}" }
clickhouse:
  addr: %s
  database: parley_secured
  password: ${CLICKHOUSE_PASSWORD}
  tls: { ca_file: %s }
node_id: secured-1
tenants:
  - id: acme
    name: Acme Cleaning
    twilio:
      account_sid: %s
      auth_token: ${ACME_TWILIO_TOKEN}
      from: "whatsapp:+14155238886"
      api_base_url: %s
    backend: { kind: demo }
    brain: { kind: rules }
`, publicURL, broker.Addrs()[0], pki.CAFile, pki.ClientCert, pki.ClientKey, ch.TLSAddr(), pki.CAFile, acmeSID, tw.URL())))
	if err != nil {
		t.Fatal(err)
	}
	var logs lockedBuffer
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	e, err := Start(ctx, cfg, Options{Listener: ln, Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	var closeOnce sync.Once
	stop := func() { closeOnce.Do(e.Close) }
	t.Cleanup(stop)
	h := &harness{engine: e, twilio: tw, db: "parley_secured"}

	h.sendWhatsApp(t, "SM00000000000000000000000000000017", "+447700900456", "Hello")
	if got := tw.WaitFor(1, 30*time.Second); len(got) != 1 {
		t.Fatalf("local Twilio got %d replies, want 1", len(got))
	}
	eventually(t, 30*time.Second, func() error {
		var n uint64
		if err := e.Store().Conn().QueryRow(context.Background(), "SELECT count() FROM parley_secured.messages").Scan(&n); err != nil {
			return err
		}
		if n < 2 {
			return fmt.Errorf("%d messages in ClickHouse, want 2", n)
		}
		return nil
	})
	res, err := http.Get(e.URL() + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("readyz %d %q", res.StatusCode, b)
	}
	stop()
	for _, secret := range []string{kafkaPassword, chPassword} {
		if strings.Contains(logs.String(), secret) {
			t.Fatalf("a password is in the log")
		}
	}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
