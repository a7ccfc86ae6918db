package main

import (
	"context"
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/parleyhq/parley/bus"
	"github.com/parleyhq/parley/internal/clustertest"
)

// `parley broker` is a Kafka that outlives its process: what a client
// produced is there after a graceful stop and after kill -9, on the same
// address, and it creates nothing nobody asked for.
func TestBrokerCommandKeepsRecordsAcrossStopAndKill9(t *testing.T) {
	bin := clustertest.Binary(t)
	dir := filepath.Join(t.TempDir(), "broker")
	b := clustertest.StartBroker(t, bin, dir, "127.0.0.1:0", "")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	client := &kafka.Client{Addr: kafka.TCP(b.Addr), Timeout: 10 * time.Second}

	meta, err := client.Metadata(ctx, &kafka.MetadataRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(meta.Topics) != 0 {
		t.Fatalf("a new broker has topics: %+v", meta.Topics)
	}

	const topic = "broker-test"
	if err := bus.EnsureTopics(ctx, []string{b.Addr}, 1, 1, topic); err != nil {
		t.Fatal(err)
	}
	produce := func(value string) {
		t.Helper()
		w := &kafka.Writer{Addr: kafka.TCP(b.Addr), Topic: topic, RequiredAcks: kafka.RequireAll, BatchTimeout: time.Millisecond}
		defer w.Close()
		if err := w.WriteMessages(ctx, kafka.Message{Key: []byte("k"), Value: []byte(value)}); err != nil {
			t.Fatalf("produce %s: %v", value, err)
		}
	}
	produce("before a graceful stop")

	if err := b.Stop(); err != nil {
		t.Fatalf("SIGTERM: %v\n%s", err, b.Tail(20))
	}
	if !strings.Contains(b.Tail(3), "stopped.") {
		t.Fatalf("no clean stop in the log:\n%s", b.Tail(10))
	}
	b.Restart(t)
	produce("before kill -9")
	b.Kill9()
	b.Restart(t)

	r := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{b.Addr}, Topic: topic, Partition: 0, MaxWait: 100 * time.Millisecond})
	defer r.Close()
	for _, want := range []string{"before a graceful stop", "before kill -9"} {
		m, err := r.ReadMessage(ctx)
		if err != nil {
			t.Fatalf("reading %q after the restarts: %v", want, err)
		}
		if string(m.Value) != want {
			t.Fatalf("offset %d holds %q, want %q", m.Offset, m.Value, want)
		}
	}
	meta, err = client.Metadata(ctx, &kafka.MetadataRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(meta.Topics) != 1 || meta.Topics[0].Name != topic {
		t.Fatalf("topics after the restarts: %+v", meta.Topics)
	}

	// Nodes ask for their kafka.session_timeout: Apache Kafka's minimum of
	// 6 s is accepted, less is refused as a real broker refuses it.
	kc, err := kgo.NewClient(kgo.SeedBrokers(b.Addr))
	if err != nil {
		t.Fatal(err)
	}
	defer kc.Close()
	join := func(timeout time.Duration) error {
		req := kmsg.NewPtrJoinGroupRequest()
		req.Group = "session-timeout-" + timeout.String()
		req.SessionTimeoutMillis = int32(timeout.Milliseconds())
		req.RebalanceTimeoutMillis = 10000
		req.ProtocolType = "consumer"
		p := kmsg.NewJoinGroupRequestProtocol()
		p.Name = "range"
		req.Protocols = append(req.Protocols, p)
		res, err := req.RequestWith(ctx, kc)
		if err != nil {
			return err
		}
		// A first join without a member id is asked to come back with
		// the one it was given (KIP-394): the timeout was accepted.
		if err := kerr.ErrorForCode(res.ErrorCode); err != nil && !errors.Is(err, kerr.MemberIDRequired) {
			return err
		}
		return nil
	}
	if err := join(6 * time.Second); err != nil {
		t.Fatalf("join with a 6s session timeout: %v", err)
	}
	if err := join(5 * time.Second); !errors.Is(err, kerr.InvalidSessionTimeout) {
		t.Fatalf("join with a 5s session timeout: %v, want InvalidSessionTimeout", err)
	}

	// A second broker on the same data dir would corrupt it: refused.
	out, err := exec.Command(bin, "broker", "--addr", "127.0.0.1:0", "--data-dir", dir).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "in use by another broker") {
		t.Fatalf("second broker on %s: %v\n%s", dir, err, out)
	}
}

// kfake listens on 127.0.0.1 only, so any other host is refused up front
// instead of printing an address nobody can reach.
func TestBrokerCommandRefusesOtherHosts(t *testing.T) {
	bin := clustertest.Binary(t)
	for _, addr := range []string{"0.0.0.0:9092", "10.1.2.3:9092", "[::1]:9092", "example.com:9092", "9092", "127.0.0.1:99999"} {
		out, err := exec.Command(bin, "broker", "--addr", addr, "--data-dir", t.TempDir()).CombinedOutput()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.Contains(string(out), "127.0.0.1:PORT") {
			t.Errorf("--addr %s: %v\n%s", addr, err, out)
		}
	}
}
