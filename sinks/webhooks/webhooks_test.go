package webhooks

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"google.golang.org/protobuf/proto"

	"github.com/parleyhq/parley/bus"
	"github.com/parleyhq/parley/internal/kafkatest"
	"github.com/parleyhq/parley/tenants"
	"github.com/parleyhq/parley/wire"
)

func TestSignVector(t *testing.T) {
	// python3 -c "import hmac,hashlib; print(hmac.new(b'whsec_test',b'{\"id\":\"e1\"}',hashlib.sha256).hexdigest())"
	want := "sha256=108b4eabe347ca30ee6539a8519288a55e541f99d80bf9888dadd204f9ead8ec"
	if got := Sign("whsec_test", []byte(`{"id":"e1"}`)); got != want {
		t.Fatalf("Sign = %s, want %s", got, want)
	}
}

// receiver is a tenant's webhook endpoint: it verifies the signature and
// fails the first request to prove retries.
type receiver struct {
	mu       sync.Mutex
	got      []Payload
	requests int
	badSigs  int
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.requests++
	if req.Header.Get(SignatureHeader) != Sign("whsec_test", body) {
		r.badSigs++
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	if r.requests == 1 {
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	var p Payload
	_ = json.Unmarshal(body, &p)
	r.got = append(r.got, p)
}

func TestDeliversSignedEventsWithRetries(t *testing.T) {
	recv := &receiver{}
	srv := httptest.NewServer(recv)
	defer srv.Close()
	b := kafkatest.Start(t, 2, wire.TopicEvents)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	reg, err := tenants.NewRegistry([]tenants.Tenant{
		{ID: "acme", Sim: true, Webhook: &tenants.Webhook{URL: srv.URL, Secret: "whsec_test"}},
		{ID: "quiet", Sim: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	p := bus.NewProducer(b.Addrs(), bus.ProducerOptions{})
	defer p.Close()
	events := []*wire.Event{
		{Id: "e1", Tenant: "acme", Phone: "+447700900456", AtMs: 1, Kind: &wire.Event_Conversation{Conversation: &wire.ConversationChange{ConversationId: "c1", Change: "started"}}},
		{Id: "e2", Tenant: "acme", Phone: "+447700900456", AtMs: 2, Kind: &wire.Event_Message{Message: &wire.MessageLog{Direction: "in", Body: "hi", ConversationId: "c1"}}},
		{Id: "e3", Tenant: "acme", Phone: "+447700900456", AtMs: 3, Kind: &wire.Event_Message{Message: &wire.MessageLog{Direction: "out", Body: "hello"}}},
		{Id: "e4", Tenant: "quiet", Phone: "+447700900456", AtMs: 4, Kind: &wire.Event_Message{Message: &wire.MessageLog{Direction: "in", Body: "hi"}}},
	}
	for _, ev := range events {
		v, _ := proto.Marshal(ev)
		if err := p.Produce(ctx, kafka.Message{Topic: wire.TopicEvents, Key: wire.Key(ev.Tenant, ev.Phone), Value: v}); err != nil {
			t.Fatal(err)
		}
	}
	d := New(Options{
		Consumer: bus.ConsumerOptions{Brokers: b.Addrs()},
		Tenants:  reg,
		Backoff:  50 * time.Millisecond,
		Logger:   slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { _ = d.Run(runCtx); close(done) }()
	defer func() { stop(); <-done }()

	deadline := time.Now().Add(20 * time.Second)
	for {
		recv.mu.Lock()
		n := len(recv.got)
		recv.mu.Unlock()
		if n >= 2 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond) // nothing else may arrive
	recv.mu.Lock()
	defer recv.mu.Unlock()
	if len(recv.got) != 2 || recv.got[0].Type != "conversation.started" || recv.got[1].Type != "message.received" ||
		recv.got[1].Text != "hi" || recv.got[1].ConversationID != "c1" {
		t.Fatalf("received %+v", recv.got)
	}
	if recv.requests != 3 || recv.badSigs != 0 {
		t.Fatalf("%d requests (want 3: one failed and retried), %d bad signatures", recv.requests, recv.badSigs)
	}
}
