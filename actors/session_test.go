package actors

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/protobuf/proto"

	"github.com/parleyhq/parley/backend"
	"github.com/parleyhq/parley/backend/demo"
	"github.com/parleyhq/parley/brain"
	"github.com/parleyhq/parley/brain/rules"
	"github.com/parleyhq/parley/channels"
	"github.com/parleyhq/parley/channels/sim"
	"github.com/parleyhq/parley/channels/twilio"
	"github.com/parleyhq/parley/internal/ids"
	"github.com/parleyhq/parley/internal/kafkatest"
	"github.com/parleyhq/parley/tenants"
	"github.com/parleyhq/parley/wire"
)

// testProviders are the providers sessions split replies for.
var testProviders = channels.NewRegistry(twilio.New(nil, ""), sim.New(sim.NewHub()))

// sessions runs real session actors against a real embedded broker and
// reads what they send to customers from parley.outbound.
type sessions struct {
	placement *Placement
	reader    *kafka.Reader
	acks      chan int64
	offset    int64
	results   chan *wire.CommandResult
	brokers   []string
	now       func() time.Time
	// advance moves the sessions' clock forward.
	advance func(time.Duration)
	out     *testOutput
}

// testOutput stands for the router's transaction: it writes the sessions'
// records to the broker at once (no transaction: nothing here aborts),
// hands API results to the test and keeps the latest changelog record of
// each session (the tests of the changelog itself run a real router:
// router_test.go).
type testOutput struct {
	t           *testing.T
	cl          *kgo.Client
	results     chan *wire.CommandResult
	mu          sync.Mutex
	states      map[string][]byte
	deadLetters []*kgo.Record
}

func (o *testOutput) Produce(r *kgo.Record) {
	switch r.Topic {
	case wire.TopicReplies:
		res := &wire.CommandResult{}
		if err := proto.Unmarshal(r.Value, res); err != nil {
			o.t.Error(err)
		}
		o.results <- res
	case wire.TopicInboundDeadLetters:
		o.mu.Lock()
		o.deadLetters = append(o.deadLetters, r)
		o.mu.Unlock()
	case wire.TopicSessions:
		o.mu.Lock()
		if o.states == nil {
			o.states = map[string][]byte{}
		}
		o.states[string(r.Key)] = r.Value
		o.mu.Unlock()
	default:
		if err := o.cl.ProduceSync(context.Background(), r).FirstErr(); err != nil {
			o.t.Error(err)
		}
	}
}

func (o *testOutput) Checkpoint(string) {}

// delivery wraps an inbound record for a session; its done reports the
// record's offset on s.acks.
func (s *sessions) delivery(in *wire.Inbound) *delivery {
	off := s.offset
	return &delivery{in: in, out: s.out, done: func() { s.acks <- off }}
}

func startSessions(t *testing.T, idle time.Duration) *sessions {
	return startSessionsOf(t, idle, tenants.Tenant{ID: "demo", Name: "Demo", Sim: true}, rules.New())
}

// startSessionsOf runs sessions of tenant, which must have id "demo",
// answered by b.
func startSessionsOf(t *testing.T, idle time.Duration, tenant tenants.Tenant, b brain.Brain) *sessions {
	t.Helper()
	broker := kafkatest.Start(t, 1, wire.TopicOutbound, wire.TopicEvents)
	out, err := kgo.NewClient(kgo.SeedBrokers(broker.Addrs()...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(out.Close)
	reg, err := tenants.NewRegistry([]tenants.Tenant{tenant})
	if err != nil {
		t.Fatal(err)
	}
	s := &sessions{acks: make(chan int64, 100), results: make(chan *wire.CommandResult, 10), brokers: broker.Addrs()}
	var clockMu sync.Mutex
	offset := time.Duration(0)
	s.now = func() time.Time { clockMu.Lock(); defer clockMu.Unlock(); return time.Now().Add(offset) }
	s.advance = func(d time.Duration) { clockMu.Lock(); offset += d; clockMu.Unlock() }
	system := NewSystem()
	t.Cleanup(system.Shutdown)
	demoBackend := demo.New()
	deps := Deps{
		Tenants:   reg,
		Providers: testProviders,
		Logger:    slog.New(slog.NewTextHandler(io.Discard, nil)),
		Brains:    func(*tenants.Tenant) brain.Brain { return b },
		Backends:  func(*tenants.Tenant) backend.Profiles { return demoBackend },
		IdleAfter: idle,
		Now:       func() time.Time { return s.now() },
	}
	s.out = &testOutput{t: t, cl: out, results: s.results}
	s.placement = NewSessions(system, deps)
	t.Cleanup(s.placement.StartSweeper(idle))
	s.reader = kafka.NewReader(kafka.ReaderConfig{Brokers: broker.Addrs(), Topic: wire.TopicOutbound, Partition: 0, MaxWait: 50 * time.Millisecond})
	t.Cleanup(func() { s.reader.Close() })
	return s
}

// say delivers a customer message and returns the session's replies.
func (s *sessions) say(t *testing.T, phone, text string) []string {
	t.Helper()
	s.offset++
	in := &wire.Inbound{Id: ids.New(), Tenant: "demo", Phone: phone, Channel: "sim",
		Kind: &wire.Inbound_Message{Message: &wire.CustomerMessage{ProviderId: ids.New(), Text: text}}}
	s.placement.Send(wire.ActorID("demo", phone), s.delivery(in))
	select {
	case off := <-s.acks:
		if off != s.offset {
			t.Fatalf("acked %d, want %d", off, s.offset)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("%q never acknowledged", text)
	}
	var replies []string
	for _, out := range drain(t, s.reader, 300*time.Millisecond, func() *wire.Outbound { return &wire.Outbound{} }) {
		if out.InReplyTo == in.Id {
			replies = append(replies, out.Text)
		}
	}
	return replies
}

// result waits for the result of a command sent with a request id.
func (s *sessions) result(t *testing.T) *wire.CommandResult {
	t.Helper()
	select {
	case r := <-s.results:
		return r
	case <-time.After(5 * time.Second):
		t.Fatal("no result")
		return nil
	}
}

// drain reads r until nothing arrives for idle, decoding every record
// into a new M.
func drain[M proto.Message](t *testing.T, r *kafka.Reader, idle time.Duration, newM func() M) []M {
	t.Helper()
	var out []M
	for {
		ctx, cancel := context.WithTimeout(context.Background(), idle)
		m, err := r.ReadMessage(ctx)
		cancel()
		if err != nil {
			return out
		}
		v := newM()
		if err := proto.Unmarshal(m.Value, v); err != nil {
			t.Fatal(err)
		}
		out = append(out, v)
	}
}

func TestSessionSurvivesPassivation(t *testing.T) {
	s := startSessions(t, 100*time.Millisecond)
	const sam = "+447700900456"
	signInSam(t, s)
	// Let the actor passivate: its state moves to the dormant store.
	s.waitDormant(t)
	// Reactivated, the customer is still signed in: the brain answers by name.
	if r := s.say(t, sam, "hello"); len(r) != 1 || !strings.Contains(r[0], "Hello Sam") {
		t.Fatalf("after passivation replied %q", r)
	}
}

func TestConcurrentSessionsAreIndependent(t *testing.T) {
	s := startSessions(t, time.Minute)
	var mu sync.Mutex
	got := map[string][]string{}
	for _, phone := range []string{"+447700900456", "+447700900789", "+447700900999"} {
		r := s.say(t, phone, "hi")
		mu.Lock()
		got[phone] = r
		mu.Unlock()
	}
	if !strings.Contains(got["+447700900456"][0], "code") ||
		!strings.Contains(strings.ToLower(got["+447700900789"][0]), "access is turned off") ||
		!strings.Contains(got["+447700900999"][0], "couldn't find an account") {
		t.Fatalf("replies %q", got)
	}
}

// command delivers an operator command and waits for its acknowledgement.
func (s *sessions) command(t *testing.T, phone string, c *wire.Command) {
	t.Helper()
	s.offset++
	in := &wire.Inbound{Id: ids.New(), Tenant: "demo", Phone: phone, Channel: "api", Kind: &wire.Inbound_Command{Command: c}}
	s.placement.Send(wire.ActorID("demo", phone), s.delivery(in))
	select {
	case <-s.acks:
	case <-time.After(10 * time.Second):
		t.Fatal("command never acknowledged")
	}
}

func TestOperatorCommands(t *testing.T) {
	s := startSessions(t, time.Minute)
	const phone = "+447700900999"
	if r := s.say(t, phone, "hi"); len(r) != 1 {
		t.Fatalf("replies %q", r)
	}
	// Human only: the customer's message gets no automatic reply.
	s.command(t, phone, &wire.Command{Op: &wire.Command_SetAi{SetAi: false}, Operator: "agent@acme"})
	if r := s.say(t, phone, "hello?"); len(r) != 0 {
		t.Fatalf("AI off, yet replied %q", r)
	}
	s.command(t, phone, &wire.Command{Op: &wire.Command_SetAi{SetAi: true}})
	if r := s.say(t, phone, "hello?"); len(r) != 1 {
		t.Fatalf("AI back on, replies %q", r)
	}
	// An unknown status is refused without harm.
	s.command(t, phone, &wire.Command{Op: &wire.Command_SetStatus{SetStatus: "deleted"}})
	s.command(t, phone, &wire.Command{Op: &wire.Command_SetStatus{SetStatus: "closed"}})
	if r := s.say(t, phone, "hi again"); len(r) != 1 {
		t.Fatalf("after close, replies %q", r)
	}
}

func TestAPISendRespectsTheWindow(t *testing.T) {
	s := startSessions(t, time.Minute)
	const phone = "+447700900456"
	send := func(m *wire.SendMessage) *wire.CommandResult {
		t.Helper()
		s.command(t, phone, &wire.Command{Op: &wire.Command_Send{Send: m}, RequestId: "r1"})
		return s.result(t)
	}
	// Never wrote: free text refused, templates allowed.
	if r := send(&wire.SendMessage{Text: "hello"}); r.Ok || r.ErrorCode != "outside_window" {
		t.Fatalf("result %v", r)
	}
	if r := send(&wire.SendMessage{Template: &wire.Template{Name: "reminder", ContentSid: "HX1"}}); !r.Ok || r.OutboundId == "" {
		t.Fatalf("template result %v", r)
	}
	s.say(t, phone, "hi")
	if r := send(&wire.SendMessage{Text: "hello"}); !r.Ok || r.WindowUntilMs == 0 {
		t.Fatalf("inside window result %v", r)
	}
	s.advance(24*time.Hour + time.Second)
	if r := send(&wire.SendMessage{Text: "hello"}); r.Ok || r.ErrorCode != "outside_window" {
		t.Fatalf("after 24h result %v", r)
	}
}

// A provider's redelivered status callback is recorded once, and a status
// word no provider documents is not recorded at all.
func TestRedeliveredStatusIsRecordedOnce(t *testing.T) {
	s := startSessions(t, time.Minute)
	const phone = "+447700900456"
	for _, status := range []string{"sent", "delivered", "teleported", "delivered", "read", "delivered", "read"} {
		s.offset++
		in := &wire.Inbound{Id: ids.New(), Tenant: "demo", Phone: phone, Channel: "twilio",
			Kind: &wire.Inbound_Status{Status: &wire.DeliveryStatus{ProviderId: "SMabc", Status: status}}}
		s.placement.Send(wire.ActorID("demo", phone), s.delivery(in))
		select {
		case <-s.acks:
		case <-time.After(10 * time.Second):
			t.Fatalf("status %s never acknowledged", status)
		}
	}
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: s.brokers, Topic: wire.TopicEvents, Partition: 0, MaxWait: 50 * time.Millisecond})
	defer r.Close()
	var got []string
	for _, ev := range drain(t, r, 500*time.Millisecond, func() *wire.Event { return &wire.Event{} }) {
		if d := ev.GetDelivery(); d != nil {
			got = append(got, d.Status)
		}
	}
	if strings.Join(got, ",") != "sent,delivered,read" {
		t.Fatalf("delivery events %v, want sent, delivered, read once each", got)
	}
}

// waitDormant waits until the only session has passivated.
func (s *sessions) waitDormant(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if live, dormant := s.placement.Counts(); live == 0 && dormant == 1 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("session did not passivate")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// longBrain answers everything with the same long text.
type longBrain struct{ text string }

func (b longBrain) Answer(context.Context, brain.Request) (brain.Answer, error) {
	return brain.Answer{Text: b.text, QueryType: "help"}, nil
}

// An answer longer than the tenant's channel takes in one message goes
// out whole, as several messages in order: Twilio refuses a Body over
// 1,600 characters, WhatsApp through Meta or the simulator takes 4,096.
func TestLongAnswerIsSplitForTheChannel(t *testing.T) {
	answer := strings.Repeat("Our Standard Clean covers every room, twice a week.\n", 70) // 3,570 characters
	cases := []struct {
		name   string
		tenant tenants.Tenant
		parts  int
	}{
		{"twilio", tenants.Tenant{ID: "demo", Name: "Demo", Twilio: &tenants.Twilio{AccountSID: "AC00000000000000000000000000000001", AuthToken: "0123456789abcdef0123456789abcdef", From: "whatsapp:+14155238886"}}, 3},
		{"simulator", tenants.Tenant{ID: "demo", Name: "Demo", Sim: true}, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := startSessionsOf(t, time.Minute, tc.tenant, longBrain{answer})
			var parts []string
			for _, r := range s.say(t, "+447700900123", "help") {
				if strings.HasPrefix(r, "Our Standard Clean") {
					parts = append(parts, r)
				}
			}
			if len(parts) != tc.parts {
				t.Fatalf("answer sent as %d messages, want %d", len(parts), tc.parts)
			}
			limit, _ := testProviders.TextLimit(tc.tenant.Channel())
			for _, p := range parts {
				if n := limit.Len(p); n > limit.Max {
					t.Fatalf("a message of %d characters; the channel takes %d", n, limit.Max)
				}
			}
			if strings.Join(parts, "\n") != strings.TrimSpace(answer) {
				t.Fatal("the parts do not make up the answer, in order")
			}
		})
	}
}

func TestLogBody(t *testing.T) {
	cases := []struct {
		name string
		m    *wire.CustomerMessage
		want string
	}{
		{"text", &wire.CustomerMessage{Text: "hello"}, "hello"},
		{"photo without caption", &wire.CustomerMessage{Media: []*wire.Media{{Url: "meta-media:1", ContentType: "image/jpeg"}}}, "[image/jpeg]"},
		{"caption and two files", &wire.CustomerMessage{Text: "the stain", Media: []*wire.Media{{ContentType: "image/jpeg"}, {}}}, "the stain\n[image/jpeg]\n[attachment]"},
		{"pin", &wire.CustomerMessage{Location: &wire.Location{Latitude: 51.5072, Longitude: -0.1276}}, "[location: 51.5072, -0.1276]"},
		{"place", &wire.CustomerMessage{Location: &wire.Location{Latitude: 51.5, Longitude: -0.12, Label: "Trafalgar Square"}}, "[location: Trafalgar Square (51.5, -0.12)]"},
		{"nothing Parley can show", &wire.CustomerMessage{}, ""},
		{"a Flow's answer", &wire.CustomerMessage{Text: "Sent", FlowResponse: `{"date":"2026-11-27"}`}, "Sent\n[form: {\"date\":\"2026-11-27\"}]"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := logBody(tc.m); got != tc.want {
				t.Fatalf("logBody = %q, want %q", got, tc.want)
			}
		})
	}
	two := &wire.CustomerMessage{Media: []*wire.Media{{Url: "meta-media:1"}, {Url: "https://api.twilio.com/2010-04-01/Accounts/AC1/Messages/MM1/Media/ME1"}}}
	if got := mediaRefs(two); got != "meta-media:1\nhttps://api.twilio.com/2010-04-01/Accounts/AC1/Messages/MM1/Media/ME1" {
		t.Fatalf("mediaRefs = %q", got)
	}
	if got := mediaRefs(&wire.CustomerMessage{Text: "hi"}); got != "" {
		t.Fatalf("mediaRefs of a text = %q", got)
	}
}

// panicky is a brain that panics on "boom": a poison record.
type panicky struct{ brain.Brain }

func (p panicky) Answer(ctx context.Context, r brain.Request) (brain.Answer, error) {
	if r.Text == "boom" {
		panic("poison")
	}
	return p.Brain.Answer(ctx, r)
}

// A record that makes the session panic is skipped and acknowledged (the
// partition moves on) and the session keeps its state.
func TestPoisonRecordIsSkippedAndTheSessionKeepsItsState(t *testing.T) {
	s := startSessionsOf(t, time.Minute, tenants.Tenant{ID: "demo", Name: "Demo", Sim: true}, panicky{rules.New()})
	signInSam(t, s)
	if r := s.say(t, "+447700900456", "boom"); len(r) != 0 {
		t.Fatalf("poison record replied %q", r)
	}
	if r := s.say(t, "+447700900456", "hello"); len(r) != 1 || !strings.Contains(r[0], "Hello Sam") {
		t.Fatalf("after the poison record replied %q", r)
	}
	// The record is kept, with why, on the dead-letter topic.
	s.out.mu.Lock()
	defer s.out.mu.Unlock()
	if len(s.out.deadLetters) != 1 {
		t.Fatalf("%d dead letters, want 1", len(s.out.deadLetters))
	}
	dl := s.out.deadLetters[0]
	var in wire.Inbound
	if err := proto.Unmarshal(dl.Value, &in); err != nil || in.GetMessage().GetText() != "boom" || !bytes.Equal(dl.Key, wire.Key("demo", "+447700900456")) {
		t.Fatalf("dead letter %v %q: %v", &in, dl.Key, err)
	}
	headers := map[string]string{}
	for _, h := range dl.Headers {
		headers[h.Key] = string(h.Value)
	}
	if headers[wire.HeaderDeadLetterReason] != "panic" || headers[wire.HeaderDeadLetterError] != "poison" {
		t.Fatalf("headers %v", headers)
	}
}

// A message written in a group is logged (query type group_message) and
// never answered one to one.
func TestGroupMessageIsLoggedNotAnswered(t *testing.T) {
	s := startSessions(t, time.Minute)
	const phone = "+447700900456"
	s.offset++
	in := &wire.Inbound{Id: ids.New(), Tenant: "demo", Phone: phone, Channel: "meta",
		Kind: &wire.Inbound_Message{Message: &wire.CustomerMessage{ProviderId: "wamid.g1", Text: "hi all", GroupId: "Y2FwaV9ncm91cDox"}}}
	s.placement.Send(wire.ActorID("demo", phone), s.delivery(in))
	select {
	case <-s.acks:
	case <-time.After(10 * time.Second):
		t.Fatal("group message never acknowledged")
	}
	for _, out := range drain(t, s.reader, 300*time.Millisecond, func() *wire.Outbound { return &wire.Outbound{} }) {
		t.Fatalf("a group message was answered: %q", out.Text)
	}
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: s.brokers, Topic: wire.TopicEvents, Partition: 0, MaxWait: 50 * time.Millisecond})
	defer r.Close()
	var logged []string
	for _, ev := range drain(t, r, 500*time.Millisecond, func() *wire.Event { return &wire.Event{} }) {
		if m := ev.GetMessage(); m != nil {
			logged = append(logged, m.Direction+" "+m.QueryType+" "+m.Body)
		}
	}
	if strings.Join(logged, ",") != "in group_message hi all" {
		t.Fatalf("message log %q", logged)
	}
}

// Each code sent is a codes_sent usage event, for billing.
func TestCodesSentAreCounted(t *testing.T) {
	s := startSessions(t, time.Minute)
	signInSam(t, s)
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: s.brokers, Topic: wire.TopicEvents, Partition: 0, MaxWait: 50 * time.Millisecond})
	defer r.Close()
	codes := 0
	for _, ev := range drain(t, r, 500*time.Millisecond, func() *wire.Event { return &wire.Event{} }) {
		if u := ev.GetUsage(); u.GetMetric() == "codes_sent" {
			codes += int(u.GetValue())
		}
	}
	if codes != 1 {
		t.Fatalf("codes_sent %d, want 1 (one code sent)", codes)
	}
}
