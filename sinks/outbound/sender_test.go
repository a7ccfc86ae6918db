package outbound

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"google.golang.org/protobuf/proto"

	"github.com/parleyhq/parley/bus"
	"github.com/parleyhq/parley/channels/sim"
	"github.com/parleyhq/parley/channels/twilio"
	"github.com/parleyhq/parley/channels/twilio/twiliotest"
	"github.com/parleyhq/parley/tenants"
	"github.com/parleyhq/parley/wire"
)

type fixture struct {
	producer *bus.Producer
	twilio   *twiliotest.Server
	hub      *sim.Hub
}

func start(t *testing.T) *fixture {
	t.Helper()
	b, err := bus.StartEmbedded(t.TempDir(), 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := bus.EnsureTopics(ctx, b.Addrs(), 4, 1, wire.TopicOutbound); err != nil {
		t.Fatal(err)
	}
	tw := twiliotest.Start(t, twiliotest.TestAccountSID, twiliotest.TestAuthToken)
	reg, err := tenants.NewRegistry([]tenants.Tenant{
		{ID: "acme", Twilio: tw.Config(twiliotest.SandboxFrom)},
		{ID: "demo", Sim: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	hub := sim.NewHub()
	s := New(Options{
		Consumer:      bus.ConsumerOptions{Brokers: b.Addrs()},
		Tenants:       reg,
		Twilio:        twilio.NewSender(nil),
		Sim:           hub,
		PublicBaseURL: "https://parley.example.com",
		Logger:        slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	runCtx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = s.Run(runCtx); close(done) }()
	t.Cleanup(func() { stop(); <-done })
	p := bus.NewProducer(b.Addrs(), bus.ProducerOptions{})
	t.Cleanup(func() { p.Close() })
	return &fixture{producer: p, twilio: tw, hub: hub}
}

func (f *fixture) send(t *testing.T, tenant, phone, text string) {
	t.Helper()
	out := &wire.Outbound{Id: text, Tenant: tenant, Phone: phone, Text: text, CreatedAtMs: time.Now().UnixMilli()}
	b, _ := proto.Marshal(out)
	if err := f.producer.Produce(context.Background(), kafka.Message{Topic: wire.TopicOutbound, Key: wire.Key(tenant, phone), Value: b}); err != nil {
		t.Fatal(err)
	}
}

func TestBurstArrivesInOrder(t *testing.T) {
	f := start(t)
	for i := range 20 {
		f.send(t, "acme", "+447700900456", fmt.Sprintf("reply %02d", i))
	}
	got := f.twilio.WaitFor(20, 20*time.Second)
	if len(got) != 20 {
		t.Fatalf("got %d messages", len(got))
	}
	for i, m := range got {
		if want := fmt.Sprintf("reply %02d", i); m.Body != want || m.To != "whatsapp:+447700900456" {
			t.Fatalf("message %d = %q to %s, want %q", i, m.Body, m.To, want)
		}
		if m.StatusCallback != "https://parley.example.com/webhooks/twilio/acme/status" {
			t.Fatalf("status callback %q", m.StatusCallback)
		}
	}
}

func TestRetryableFailureIsRetriedAndPermanentIsNot(t *testing.T) {
	f := start(t)
	f.twilio.FailNext(1, 503, 20500, "Service unavailable")
	f.send(t, "acme", "+447700900456", "after a 503")
	got := f.twilio.WaitFor(1, 20*time.Second)
	if len(got) != 1 || got[0].Body != "after a 503" {
		t.Fatalf("got %+v", got)
	}

	f.twilio.FailNext(1, 400, twilio.CodeUnsubscribed, "Attempt to send to unsubscribed recipient")
	f.send(t, "acme", "+447700900111", "to an opted-out customer")
	f.send(t, "acme", "+447700900111", "next one")
	got = f.twilio.WaitFor(2, 20*time.Second)
	if len(got) != 2 || got[1].Body != "next one" {
		t.Fatalf("got %+v", got)
	}
	if n := f.twilio.Attempts(); n != 4 {
		t.Fatalf("%d attempts, want 4 (503 retried once, 21610 never)", n)
	}
}

func TestSimulatorTenantDeliversToThePage(t *testing.T) {
	f := start(t)
	_, live, cancel := f.hub.Subscribe("demo", "+447700900456")
	defer cancel()
	f.send(t, "demo", "+447700900456", "hello page")
	select {
	case r := <-live:
		if r.Text != "hello page" {
			t.Fatalf("got %+v", r)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no reply on the simulator hub")
	}
	if len(f.twilio.Messages()) != 0 {
		t.Fatal("simulator reply went to Twilio")
	}
}
