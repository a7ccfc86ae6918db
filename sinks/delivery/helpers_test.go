package delivery

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"google.golang.org/protobuf/proto"

	"github.com/parleyhq/parley/bus"
	"github.com/parleyhq/parley/channels"
	"github.com/parleyhq/parley/channels/meta"
	"github.com/parleyhq/parley/channels/meta/metatest"
	"github.com/parleyhq/parley/channels/sim"
	"github.com/parleyhq/parley/channels/twilio"
	"github.com/parleyhq/parley/channels/twilio/twiliotest"
	"github.com/parleyhq/parley/internal/kafkatest"
	"github.com/parleyhq/parley/tenants"
	"github.com/parleyhq/parley/wire"
)

const (
	sam  = "+447700900456"
	alex = "+447700900111"
	kim  = "+447700900222"
	// fallbackSID is acme's template for customers outside the window.
	fallbackSID = "HXfa11bac0000000000000000000000001"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// fixture is a real embedded broker, the local Twilio and Meta servers,
// and tenants on each, none with a rate limit unless tune sets one:
//
//	acme     Twilio, fallback template fallbackSID
//	bare     Twilio (same server, another number), no fallback template
//	wa       Meta Cloud API, fallback template "reengage" (en_GB)
//	demo     simulator page
type fixture struct {
	brokers  []string
	producer *bus.Producer
	twilio   *twiliotest.Server
	meta     *metatest.Server
	hub      *sim.Hub
	reg      *tenants.Registry
	metaCfg  meta.Config
	// inbound is what the sender produced to tell sessions.
	inbound *recorder
}

func newFixture(t *testing.T, tune ...func(*tenants.Tenant)) *fixture {
	t.Helper()
	b := kafkatest.Start(t, 4, wire.TopicOutbound, wire.TopicEvents)
	f := &fixture{brokers: b.Addrs(), hub: sim.NewHub(), inbound: &recorder{}}
	f.twilio = twiliotest.Start(t, twiliotest.TestAccountSID, twiliotest.TestAuthToken)
	f.meta = metatest.Start(t, metatest.TestAccessToken)
	f.metaCfg = f.meta.Config()
	unlimited := 0.0
	ts := []tenants.Tenant{
		{ID: "acme", Twilio: f.twilio.Config(twiliotest.SandboxFrom),
			Templates: map[string]tenants.Template{"comeback": {ContentSID: fallbackSID}},
			Outbound:  tenants.OutboundConfig{FallbackTemplate: "comeback", FallbackVariables: map[string]string{"1": "there"}}},
		{ID: "bare", Twilio: f.twilio.Config("whatsapp:+14155230000")},
		{ID: "wa", Meta: &f.metaCfg, Templates: map[string]tenants.Template{"reengage": {Language: "en_GB"}},
			Outbound: tenants.OutboundConfig{FallbackTemplate: "reengage", FallbackVariables: map[string]string{"2": "two", "1": "one", "10": "ten"}}},
		{ID: "demo", Sim: true},
	}
	for i := range ts {
		ts[i].Outbound.RateLimit = &unlimited
		for _, fn := range tune {
			fn(&ts[i])
		}
	}
	var err error
	f.reg, err = tenants.NewRegistry(ts)
	if err != nil {
		t.Fatal(err)
	}
	f.producer = bus.NewProducer(f.brokers, bus.ProducerOptions{})
	t.Cleanup(func() { _ = f.producer.Close() })
	return f
}

// options are the fixture's sender options with fast retries.
func (f *fixture) options() Options {
	return Options{
		Consumer: bus.ConsumerOptions{Brokers: f.brokers, Logger: quiet},
		Tenants:  f.reg,
		Providers: channels.NewRegistry(
			twilio.New(nil, "https://parley.example.com"),
			meta.New(nil, 0),
			sim.New(f.hub),
		),
		Producer:    f.inbound,
		RetryBase:   20 * time.Millisecond,
		RetryMax:    100 * time.Millisecond,
		MaxAttempts: 4,
		Logger:      quiet,
	}
}

// recorder is a Producer that keeps what it is given; its first call
// fails, as a broker that is briefly away does.
type recorder struct {
	mu    sync.Mutex
	calls int
	msgs  []kafka.Message
}

func (r *recorder) Produce(_ context.Context, msgs ...kafka.Message) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.calls++; r.calls == 1 {
		return errors.New("broker away")
	}
	r.msgs = append(r.msgs, msgs...)
	return nil
}

func (r *recorder) records() []kafka.Message {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.msgs)
}

// run starts a sender until the test ends or stop is called; stop waits
// for Run to return.
func (f *fixture) run(t *testing.T, o Options) (stop func()) {
	t.Helper()
	s := New(o)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := s.Run(ctx); err != nil {
			t.Errorf("sender: %v", err)
		}
	}()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	return stop
}

func (f *fixture) start(t *testing.T) { f.run(t, f.options()) }

// send produces an outbound text record whose id is its text, on the
// tenant's channel.
func (f *fixture) send(t *testing.T, tenant, phone, text string) *wire.Outbound {
	t.Helper()
	out := &wire.Outbound{Id: text, Tenant: tenant, Phone: phone, Text: text, ConversationId: "c-" + phone, CreatedAtMs: time.Now().UnixMilli()}
	if tn := f.reg.Get(tenant); tn != nil {
		out.Channel = tn.Channel() // as the session sets it
	}
	f.produce(t, out)
	return out
}

func (f *fixture) produce(t *testing.T, out *wire.Outbound) {
	t.Helper()
	b, _ := proto.Marshal(out)
	if err := f.producer.Produce(context.Background(), kafka.Message{Topic: wire.TopicOutbound, Key: wire.Key(out.Tenant, out.Phone), Value: b}); err != nil {
		t.Fatal(err)
	}
}

// readTopic returns every record of every partition of topic.
func readTopic(t *testing.T, brokers []string, topic string) []kafka.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	client := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 10 * time.Second}
	n, err := partitionCount(ctx, client, topic)
	if err != nil {
		t.Fatal(err)
	}
	var all []kafka.Message
	for p := range n {
		next := int64(0)
		for {
			resp, err := client.Fetch(ctx, &kafka.FetchRequest{Topic: topic, Partition: p, Offset: next, MaxBytes: 8 << 20, MaxWait: 5 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			if resp.Error != nil {
				t.Fatal(resp.Error)
			}
			for {
				r, err := resp.Records.ReadRecord()
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				if r.Offset < next {
					continue
				}
				next = r.Offset + 1
				m := kafka.Message{Topic: topic, Partition: p, Offset: r.Offset, Headers: r.Headers}
				if r.Key != nil {
					m.Key, _ = kafka.ReadAll(r.Key)
				}
				if r.Value != nil {
					m.Value, _ = kafka.ReadAll(r.Value)
				}
				all = append(all, m)
			}
			if next >= resp.HighWatermark {
				break
			}
		}
	}
	return all
}

// events returns the events on parley.events.
func (f *fixture) events(t *testing.T) []*wire.Event {
	t.Helper()
	var evs []*wire.Event
	for _, m := range readTopic(t, f.brokers, wire.TopicEvents) {
		ev := &wire.Event{}
		if err := proto.Unmarshal(m.Value, ev); err != nil {
			t.Fatal(err)
		}
		evs = append(evs, ev)
	}
	return evs
}

// eventually polls cond until it holds or the time is up.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// eventsByID indexes events; duplicates (same id) collapse as in the sink.
func eventsByID(evs []*wire.Event) map[string]*wire.Event {
	m := map[string]*wire.Event{}
	for _, ev := range evs {
		m[ev.Id] = ev
	}
	return m
}

// deadLetters returns the dead letters with their headers as a map.
func (f *fixture) deadLetters(t *testing.T) []deadLetter {
	t.Helper()
	var out []deadLetter
	for _, m := range readTopic(t, f.brokers, wire.TopicOutboundDeadLetters) {
		d := deadLetter{headers: map[string]string{}, key: string(m.Key)}
		for _, h := range m.Headers {
			d.headers[h.Key] = string(h.Value)
		}
		d.out = &wire.Outbound{}
		if err := proto.Unmarshal(m.Value, d.out); err != nil {
			d.out = nil
			d.raw = m.Value
		}
		out = append(out, d)
	}
	return out
}

type deadLetter struct {
	key     string
	headers map[string]string
	out     *wire.Outbound
	raw     []byte
}

func bodies(msgs []twiliotest.Message) string {
	var b []string
	for _, m := range msgs {
		if m.ContentSID != "" {
			b = append(b, "template:"+m.ContentSID)
		} else {
			b = append(b, m.Body)
		}
	}
	return strings.Join(b, ",")
}

func kafkaMessage(topic, key string, value []byte) kafka.Message {
	return kafka.Message{Topic: topic, Key: []byte(key), Value: value}
}
