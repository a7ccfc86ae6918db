package webhooks

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kgo"
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

// endpoint is a tenant's webhook that answers as told: 200 and records
// the event, a status (failing), or nothing at all (hanging until the
// client gives up).
type endpoint struct {
	mu       sync.Mutex
	status   int  // 0: 200
	hang     bool // hold the request until the client gives up
	requests []time.Time
	got      []Payload
	at       map[string]time.Time // event id → when it arrived
}

func (e *endpoint) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	e.mu.Lock()
	e.requests = append(e.requests, time.Now())
	hang, status := e.hang, e.status
	if !hang && status == 0 {
		var p Payload
		_ = json.Unmarshal(body, &p)
		e.got = append(e.got, p)
		if e.at == nil {
			e.at = map[string]time.Time{}
		}
		e.at[p.ID] = time.Now()
	}
	e.mu.Unlock()
	switch {
	case hang:
		<-req.Context().Done()
	case status != 0:
		w.WriteHeader(status)
	}
}

func (e *endpoint) set(status int, hang bool) {
	e.mu.Lock()
	e.status, e.hang = status, hang
	e.mu.Unlock()
}

func (e *endpoint) snapshot() (requests []time.Time, got []Payload) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]time.Time(nil), e.requests...), append([]Payload(nil), e.got...)
}

// serve starts an endpoint on loopback for the test.
func serve(t *testing.T, e *endpoint) string {
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)
	return srv.URL
}

// setup starts the tenants' endpoints on loopback and a broker with the
// events and dead-letter topics; it returns the options every notifier
// of the test shares (brokers, tenants, producer) and the producer.
func setup(t *testing.T, partitions int, eps map[string]*endpoint) (Options, *bus.Producer) {
	var ts []tenants.Tenant
	for id, ep := range eps {
		ts = append(ts, tenants.Tenant{ID: id, Sim: true, Webhook: &tenants.Webhook{URL: serve(t, ep), Secret: "whsec_test"}})
	}
	reg, err := tenants.NewRegistry(ts)
	if err != nil {
		t.Fatal(err)
	}
	b := kafkatest.Start(t, partitions, wire.TopicEvents, wire.TopicWebhookDeadLetters)
	p := bus.NewProducer(b.Addrs(), bus.ProducerOptions{})
	t.Cleanup(func() { p.Close() })
	return Options{Consumer: bus.ConsumerOptions{Brokers: b.Addrs()}, Tenants: reg, Producer: p}, p
}

// received is a message.received event of a customer.
func received(id, tenant, phone string) *wire.Event {
	return &wire.Event{Id: id, Tenant: tenant, Phone: phone, AtMs: time.Now().UnixMilli(),
		Kind: &wire.Event_Message{Message: &wire.MessageLog{Direction: "in", Body: "hi " + id}}}
}

func produce(t *testing.T, p *bus.Producer, evs ...*wire.Event) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var msgs []kafka.Message
	for _, ev := range evs {
		v, _ := proto.Marshal(ev)
		msgs = append(msgs, kafka.Message{Topic: wire.TopicEvents, Key: wire.Key(ev.Tenant, ev.Phone), Value: v})
	}
	if err := p.Produce(ctx, msgs...); err != nil {
		t.Fatal(err)
	}
}

// start runs a notifier until the test ends or stop is called.
func start(t *testing.T, o Options) (stop func()) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	d := New(o)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = d.Run(ctx); close(done) }()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	return stop
}

func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, timeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestDeadEndpointDoesNotDelayOtherTenants: one tenant's endpoint hangs
// (every post times out) while its events are retried; another tenant's
// events, written after them to the same partitions over 1.6 s (while
// the dead posts time out, are retried, and the breaker opens), are
// delivered at once. Before per-tenant queues, 16 shared workers retried each dead
// event inline (6 posts, seconds each) and the healthy tenant's customers
// that shared a worker waited behind them.
func TestDeadEndpointDoesNotDelayOtherTenants(t *testing.T) {
	dead, live := &endpoint{hang: true}, &endpoint{}
	o, p := setup(t, 2, map[string]*endpoint{"dead": dead, "live": live})
	o.HTTP = &http.Client{Timeout: 300 * time.Millisecond}
	o.Backoff, o.BreakerThreshold, o.BreakerCoolDown, o.MaxAge = 50*time.Millisecond, 3, time.Second, time.Minute
	start(t, o)
	var deadEvents []*wire.Event
	for i := range 40 {
		deadEvents = append(deadEvents, received(fmt.Sprintf("d%d", i), "dead", fmt.Sprintf("+4477009%05d", i%20)))
	}
	produce(t, p, deadEvents...)
	eventually(t, 10*time.Second, "the dead endpoint is being tried", func() bool {
		r, _ := dead.snapshot()
		return len(r) >= 3
	})

	const n = 40
	sent := map[string]time.Time{}
	for i := range n {
		ev := received(fmt.Sprintf("l%d", i), "live", fmt.Sprintf("+4477008%05d", i))
		sent[ev.Id] = time.Now()
		produce(t, p, ev)
		time.Sleep(40 * time.Millisecond) // over the dead posts, their retries and the open breaker
	}
	eventually(t, 10*time.Second, "the live tenant's events delivered", func() bool {
		_, got := live.snapshot()
		return len(got) == n
	})
	live.mu.Lock()
	var lat []time.Duration
	for id, at := range live.at {
		lat = append(lat, at.Sub(sent[id]))
	}
	live.mu.Unlock()
	slices.Sort(lat)
	deadRequests, _ := dead.snapshot()
	t.Logf("live tenant: %d events, latency p50 %s, p95 %s, max %s, while the dead tenant's endpoint took %d requests (all timed out)",
		n, lat[n/2].Round(time.Millisecond), lat[n*95/100].Round(time.Millisecond), lat[n-1].Round(time.Millisecond), len(deadRequests))
	if lat[n-1] > 2*time.Second {
		t.Errorf("a live tenant's event took %s to arrive while another tenant's endpoint hung", lat[n-1])
	}
	// The breaker spared the dead endpoint: a few posts, then probes, not
	// 6 posts for each of 40 events.
	if len(deadRequests) > 20 {
		t.Errorf("the dead endpoint got %d requests; the breaker should have held them back", len(deadRequests))
	}
}

// TestBreakerOpensAndRecovers: three failures in a row open the breaker;
// nothing is posted for the cool-down; a probe that fails opens it again;
// once the endpoint answers, the next probe closes it and every queued
// event is delivered, in order per customer, none lost or dead-lettered.
func TestBreakerOpensAndRecovers(t *testing.T) {
	ep := &endpoint{status: http.StatusServiceUnavailable}
	o, p := setup(t, 2, map[string]*endpoint{"acme": ep})
	before := value(deliveries.WithLabelValues("failed"))
	o.Attempts, o.Backoff, o.Lanes, o.MaxAge = 100, 20*time.Millisecond, 1, time.Minute
	o.BreakerThreshold, o.BreakerCoolDown, o.BreakerMaxCoolDown = 3, time.Second, time.Second
	start(t, o)
	var evs []*wire.Event
	for i := range 10 {
		evs = append(evs, received(fmt.Sprintf("e%d", i), "acme", fmt.Sprintf("+4477009%05d", i%3)))
	}
	produce(t, p, evs...)
	eventually(t, 15*time.Second, "a failed probe", func() bool {
		r, _ := ep.snapshot()
		return len(r) >= 4
	})
	ep.set(0, false)
	eventually(t, 15*time.Second, "every event delivered after recovery", func() bool {
		_, got := ep.snapshot()
		return len(got) == len(evs)
	})
	requests, got := ep.snapshot()
	gap := func(i int) time.Duration { return requests[i].Sub(requests[i-1]) }
	t.Logf("requests: 3 failures %s apart, then probes after %s and %s",
		gap(1).Round(time.Millisecond), gap(3).Round(time.Millisecond), gap(4).Round(time.Millisecond))
	if gap(1) > 500*time.Millisecond || gap(2) > 500*time.Millisecond {
		t.Errorf("retries before the breaker opened took %s, %s", gap(1), gap(2))
	}
	if gap(3) < 900*time.Millisecond || gap(4) < 900*time.Millisecond {
		t.Errorf("the open breaker let a post go after %s and %s; want a cool-down of 1s", gap(3), gap(4))
	}
	if len(requests) != 4+len(evs) {
		t.Errorf("%d requests, want 4 failures and %d deliveries", len(requests), len(evs))
	}
	last := map[string]int{}
	for _, p := range got {
		var n int
		fmt.Sscanf(p.ID, "e%d", &n)
		if l, ok := last[p.Phone]; ok && n < l {
			t.Errorf("customer %s got %s after e%d", p.Phone, p.ID, l)
		}
		last[p.Phone] = n
	}
	if d := value(deliveries.WithLabelValues("failed")) - before; d != 0 {
		t.Errorf("%v events given up on", d)
	}
}

// deadLetters reads n records of the dead-letter topic.
func readDeadLetters(t *testing.T, brokers []string, n int) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(wire.TopicWebhookDeadLetters),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	var got []*kgo.Record
	for len(got) < n && ctx.Err() == nil {
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) { got = append(got, r) })
	}
	if len(got) != n {
		t.Fatalf("%d dead letters, want %d", len(got), n)
	}
	return got
}

func header(r *kgo.Record, key string) string {
	for _, h := range r.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

// TestBacklogAndAgeDeadLetter: a tenant whose endpoint fails holds at most
// Backlog events; the ones beyond it are dead-lettered at once
// (backlog_full), the ones it holds once they are older than MaxAge
// (expired), each as it was with the reason in headers and counted. The
// committed offset never passes an event that is neither delivered nor
// dead-lettered.
func TestBacklogAndAgeDeadLetter(t *testing.T) {
	ep := &endpoint{status: http.StatusInternalServerError}
	o, p := setup(t, 1, map[string]*endpoint{"acme": ep})
	full := value(deadLetters.WithLabelValues(ReasonBacklogFull))
	expired := value(deadLetters.WithLabelValues(ReasonExpired))
	const maxAge = 3 * time.Second
	o.Attempts, o.Lanes, o.Backlog, o.MaxAge = 100, 1, 3, maxAge
	o.BreakerThreshold, o.BreakerCoolDown = 1, time.Minute
	start(t, o)
	var evs []*wire.Event
	for i := range 8 {
		evs = append(evs, received(fmt.Sprintf("e%d", i), "acme", "+447700900456"))
	}
	written := time.Now()
	produce(t, p, evs...)
	eventually(t, 10*time.Second, "five backlog_full dead letters", func() bool {
		return value(deadLetters.WithLabelValues(ReasonBacklogFull))-full == 5
	})
	time.Sleep(300 * time.Millisecond) // a commit or two
	if time.Since(written) < maxAge {
		if c := kafkatest.Committed(t, o.Consumer.Brokers, Group, wire.TopicEvents, 0); c > 0 {
			t.Errorf("committed offset %d while the event at 0 is still queued", c)
		}
	}
	recs := readDeadLetters(t, o.Consumer.Brokers, 8)
	reasons := map[string][]string{}
	for _, r := range recs {
		id := header(r, HeaderEventID)
		reasons[header(r, HeaderReason)] = append(reasons[header(r, HeaderReason)], id)
		ev := &wire.Event{}
		if err := proto.Unmarshal(r.Value, ev); err != nil || ev.Id != id || string(r.Key) != "acme|+447700900456" ||
			header(r, HeaderTenant) != "acme" || header(r, HeaderTopic) != wire.TopicEvents || header(r, HeaderError) == "" {
			t.Errorf("dead letter %s: key %q, event %v, headers %v", id, r.Key, ev, r.Headers)
		}
	}
	slices.Sort(reasons[ReasonBacklogFull]) // written concurrently
	if !slices.Equal(reasons[ReasonBacklogFull], []string{"e3", "e4", "e5", "e6", "e7"}) ||
		!slices.Equal(reasons[ReasonExpired], []string{"e0", "e1", "e2"}) {
		t.Errorf("dead letters by reason: %v", reasons)
	}
	if d := value(deadLetters.WithLabelValues(ReasonExpired)) - expired; d != 3 {
		t.Errorf("expired dead letters counted %v, want 3", d)
	}
	eventually(t, 5*time.Second, "every offset committed once all are dead-lettered", func() bool {
		return kafkatest.Committed(t, o.Consumer.Brokers, Group, wire.TopicEvents, 0) == 8
	})
	if r, _ := ep.snapshot(); len(r) != 1 {
		t.Errorf("%d posts; want 1 (the breaker opened at the first failure)", len(r))
	}
}

// TestQueuedEventsSurviveAStop: events queued behind an open breaker are
// not committed, so a notifier stopped (or killed) meanwhile leaves them
// to the next one, which delivers them all.
func TestQueuedEventsSurviveAStop(t *testing.T) {
	ep := &endpoint{status: http.StatusBadGateway}
	o, p := setup(t, 2, map[string]*endpoint{"acme": ep})
	o.Attempts, o.BreakerThreshold, o.BreakerCoolDown = 100, 2, time.Minute
	stop := start(t, o)
	var evs []*wire.Event
	for i := range 12 {
		evs = append(evs, received(fmt.Sprintf("e%d", i), "acme", fmt.Sprintf("+4477009%05d", i%6)))
	}
	produce(t, p, evs...)
	eventually(t, 10*time.Second, "the breaker opened", func() bool {
		r, _ := ep.snapshot()
		return len(r) >= 2
	})
	time.Sleep(300 * time.Millisecond) // commits happen meanwhile
	stop()
	ep.set(0, false)
	start(t, o)
	eventually(t, 20*time.Second, "every event delivered by the next notifier", func() bool {
		_, got := ep.snapshot()
		ids := map[string]bool{}
		for _, p := range got {
			ids[p.ID] = true
		}
		return len(ids) == len(evs)
	})
}

// value is a counter's current value.
func value(c prometheus.Counter) float64 {
	var m dto.Metric
	_ = c.Write(&m)
	return m.GetCounter().GetValue()
}
