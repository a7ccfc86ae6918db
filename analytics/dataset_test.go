package analytics

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/parleyhq/parley/internal/chtest"
	chsink "github.com/parleyhq/parley/sinks/clickhouse"
	"github.com/parleyhq/parley/wire"
)

// TestMain drops the shared data set's database after the tests, then
// stops the shared ClickHouse.
func TestMain(m *testing.M) {
	code := m.Run()
	if dsStore != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		_ = dsStore.Conn().Exec(ctx, "DROP DATABASE IF EXISTS `"+dsDB+"`")
		cancel()
		_ = dsStore.Close()
	}
	chtest.Stop()
	os.Exit(code)
}

// The generated data set. Every expected figure below is counted by hand
// from the construction in writeDataset; the comments show the count.
var (
	dsNow  = time.Date(2024, 3, 10, 12, 0, 0, 0, time.UTC)
	dsFrom = dsNow.AddDate(0, 0, -7) // 2024-03-03T12:00:00Z
	dsBase = time.Date(2024, 3, 4, 0, 0, 0, 0, time.UTC)
	dsR    = chsink.Range{From: dsFrom, To: dsNow}
)

// Customer phones: p(0..9) hold the conversations, s(1..7) the sessions.
func dsPhone(j int) string   { return fmt.Sprintf("+44770090010%d", j) }
func dsSession(j int) string { return fmt.Sprintf("+44770090020%d", j) }

var queryByIndex = []string{"sign_in", "booking", "availability", "account"}

const (
	// 40 conversations c00..c39 started in range, conversation i on phone
	// p(i%10), with i%4+1 customer messages and as many replies:
	// sum over i of (i%4+1) = 10·(1+2+3+4) = 100 each way. Plus 5
	// customer messages without a query type on p0 today, and 9 customer
	// messages of the session phones (s1 2, s2 1, s3 2, s4 1, s6 3).
	wantConversations = 40
	wantMessagesIn    = 100 + 5 + 9
	wantMessagesOut   = 100
	// Customer message k of a conversation has query type
	// queryByIndex[k]: k=0 in all 40, k=1 in the 30 with i%4 >= 1, k=2
	// in 20, k=3 in 10.
	// First response of conversation i: first reply 100·(i+1) ms after
	// the session logged the first message, which the ingress accepted
	// 50 ms earlier: 100·(i+1)+50. Sorted samples 150..4050 (40);
	// quantileExact takes position floor(q·40): [20] = 2150, [38] = 3950.
	wantP50 = 2150
	wantP95 = 3950
	// Handoffs in conversations 0, 10, 20, 30.
	wantHandoffs = 4
	// 120 tokens (100 prompt + 20 completion) per reply.
	wantTokens = 100 * 120
	// Codes: p0 1 sent 1 verified; p1 1/1 after two failures; p2 1/0
	// locked; p3 2/1 (a resend); p4 1/0 expired; p5 0/0 (its code was
	// sent before the range); p6 1/1 (verified after `to`, within the
	// margin); p7 1/0 (a newer code after `to` was the one verified); p8
	// 2/2: 10 sent, 6 verified. And the session phones' sign-ins, a code a
	// minute before each verification: s1, s2, s3, s4, s5 1/1, s6 2/2.
	// 17 sent, 13 verified.
	wantCodesSent     = 17
	wantCodesVerified = 13
	// Sessions at `to` (TTL 24h, idle 2h): s1 (verified 3h ago, wrote 1h
	// ago), s5 (verified 10 min ago), s6 (expired, verified again 2h
	// ago, wrote 90 min ago). Not: s2 (idle 3h), s3 (verified 25h ago),
	// s4 (session_expired after), s7 (another tenant).
	wantActiveSessions = 3
)

var wantTop = []QueryCount{{"sign_in", 40}, {"booking", 30}, {"availability", 20}, {"account", 10}}

// dsWriter collects events, ids unique within the data set.
type dsWriter struct {
	tenant string
	evs    []*wire.Event
	seq    int
}

func (w *dsWriter) add(phone string, at time.Time, kind any) *wire.Event {
	w.seq++
	ev := &wire.Event{Id: fmt.Sprintf("%s-%05d", w.tenant, w.seq), Tenant: w.tenant, Phone: phone, AtMs: at.UnixMilli()}
	switch k := kind.(type) {
	case *wire.MessageLog:
		ev.Kind = &wire.Event_Message{Message: k}
	case *wire.AuthEvent:
		ev.Kind = &wire.Event_Auth{Auth: k}
	case *wire.Usage:
		ev.Kind = &wire.Event_Usage{Usage: k}
	case *wire.ConversationChange:
		ev.Kind = &wire.Event_Conversation{Conversation: k}
	case *wire.DeliveryReport:
		ev.Kind = &wire.Event_Delivery{Delivery: k}
	case *wire.ToolCall:
		ev.Kind = &wire.Event_ToolCall{ToolCall: k}
	default:
		panic(fmt.Sprintf("kind %T", kind))
	}
	w.evs = append(w.evs, ev)
	return ev
}

func (w *dsWriter) in(phone string, at time.Time, conv, qt, body string) *wire.Event {
	return w.add(phone, at, &wire.MessageLog{Direction: "in", MessageId: fmt.Sprint("in-", w.seq), ProviderId: fmt.Sprint("SM", w.seq),
		Channel: "twilio", Body: body, ConversationId: conv, QueryType: qt, ProviderAtMs: at.Add(-50 * time.Millisecond).UnixMilli()})
}

// out is a reply with its usage, as the brain records it.
func (w *dsWriter) out(phone string, at time.Time, conv, qt, body string) []*wire.Event {
	m := w.add(phone, at, &wire.MessageLog{Direction: "out", MessageId: fmt.Sprint("out-", w.seq), Channel: "twilio", Body: body, ConversationId: conv, QueryType: qt})
	p := w.add(phone, at, &wire.Usage{Metric: "llm_prompt_tokens", Value: 100, Model: "m"})
	c := w.add(phone, at, &wire.Usage{Metric: "llm_completion_tokens", Value: 20, Model: "m"})
	o := w.add(phone, at, &wire.Usage{Metric: "messages_out", Value: 1})
	d := w.add(phone, at.Add(time.Second), &wire.DeliveryReport{MessageId: m.GetMessage().MessageId, Status: "delivered", Channel: "twilio"})
	return []*wire.Event{m, p, c, o, d}
}

func (w *dsWriter) auth(phone string, at time.Time, event string) *wire.Event {
	return w.add(phone, at, &wire.AuthEvent{Event: event, ProfileId: "prof-" + phone})
}

func (w *dsWriter) conv(phone string, at time.Time, id, change string) *wire.Event {
	return w.add(phone, at, &wire.ConversationChange{ConversationId: id, Change: change, Status: "active", AiEnabled: change != "handoff", ByCustomer: change == "started"})
}

// conversation writes a started conversation with n customer messages
// and replies; the first reply firstReply after the first message.
func (w *dsWriter) conversation(phone, id string, start time.Time, n int, firstReply time.Duration) []*wire.Event {
	var evs []*wire.Event
	evs = append(evs, w.conv(phone, start, id, "started"))
	for k := range n {
		at := start.Add(time.Duration(k) * 10 * time.Minute)
		qt := queryByIndex[k%len(queryByIndex)]
		evs = append(evs, w.in(phone, at, id, qt, fmt.Sprintf("question %d of %s", k, id)))
		delay := firstReply
		if k > 0 {
			delay = 2 * time.Second
		}
		evs = append(evs, w.out(phone, at.Add(delay), id, qt, fmt.Sprintf("answer %d of %s", k, id))...)
	}
	return evs
}

// dataset builds the events of tenant acme (the figures above) and of
// globex (other numbers, same phones: never to be mixed in), and returns
// them with the subsets to write again as replays.
func dataset() (all, replays []*wire.Event) {
	w := &dsWriter{tenant: "acme"}
	for i := range 40 {
		start := dsBase.Add(time.Duration(i) * 3 * time.Hour)
		evs := w.conversation(dsPhone(i%10), fmt.Sprintf("c%02d", i), start, i%4+1, time.Duration(100*(i+1))*time.Millisecond)
		if i%10 == 0 {
			evs = append(evs, w.conv(dsPhone(i%10), start.Add(30*time.Minute), fmt.Sprintf("c%02d", i), "handoff"))
		}
		if i < 4 {
			// The first day's conversations are written twice.
			replays = append(replays, evs...)
		}
	}
	// Out of range: conversations before `from` and after `to`, with a
	// handoff.
	for i := range 3 {
		start := dsFrom.Add(-time.Duration(i+1) * 5 * time.Hour)
		w.conversation(dsPhone(i), fmt.Sprintf("old%d", i), start, 1, time.Second)
		if i == 0 {
			w.conv(dsPhone(i), start.Add(time.Minute), fmt.Sprintf("old%d", i), "handoff")
		}
	}
	for i := range 2 {
		w.conversation(dsPhone(i), fmt.Sprintf("new%d", i), dsNow.Add(time.Duration(i+1)*time.Hour), 1, time.Second)
	}
	// Today: five customer messages without a query type (AI off), each
	// written twice.
	for k := range 5 {
		replays = append(replays, w.in(dsPhone(0), dsNow.Add(-3*time.Hour+time.Duration(k)*time.Minute), "c00", "", "are you there?"))
	}

	// Sign-in flows on 2024-03-05; p3's written twice.
	day := time.Date(2024, 3, 5, 9, 0, 0, 0, time.UTC)
	at := func(j, min int) time.Time {
		return day.Add(time.Duration(j)*time.Hour + time.Duration(min)*time.Minute)
	}
	w.auth(dsPhone(0), at(0, 0), "profile_lookup")
	w.auth(dsPhone(0), at(0, 0), "code_sent")
	w.auth(dsPhone(0), at(0, 1), "code_verified")
	w.auth(dsPhone(1), at(1, 0), "code_sent")
	w.auth(dsPhone(1), at(1, 1), "code_failed")
	w.auth(dsPhone(1), at(1, 2), "code_failed")
	w.auth(dsPhone(1), at(1, 3), "code_verified")
	w.auth(dsPhone(2), at(2, 0), "code_sent")
	for m := 1; m <= 3; m++ {
		w.auth(dsPhone(2), at(2, m), "code_failed")
	}
	w.auth(dsPhone(2), at(2, 3), "code_locked")
	replays = append(replays,
		w.auth(dsPhone(3), at(3, 0), "code_sent"),
		w.auth(dsPhone(3), at(3, 2), "code_sent"),
		w.auth(dsPhone(3), at(3, 3), "code_verified"))
	w.auth(dsPhone(4), at(4, 0), "code_sent")
	w.auth(dsPhone(4), at(4, 11), "code_expired")
	w.auth(dsPhone(5), dsFrom.Add(-2*time.Minute), "code_sent")
	w.auth(dsPhone(5), dsFrom.Add(time.Minute), "code_verified")
	w.auth(dsPhone(6), dsNow.Add(-2*time.Minute), "code_sent")
	w.auth(dsPhone(6), dsNow.Add(time.Minute), "code_verified")
	w.auth(dsPhone(7), dsNow.Add(-5*time.Minute), "code_sent")
	w.auth(dsPhone(7), dsNow.Add(time.Minute), "code_sent")
	w.auth(dsPhone(7), dsNow.Add(2*time.Minute), "code_verified")
	w.auth(dsPhone(8), at(8, 0), "code_sent")
	w.auth(dsPhone(8), at(8, 1), "code_verified")
	w.auth(dsPhone(8), at(9, 0), "code_sent")
	w.auth(dsPhone(8), at(9, 1), "code_verified")

	// Sessions at `to`.
	ago := func(d time.Duration) time.Time { return dsNow.Add(-d) }
	verify := func(phone string, when time.Duration) {
		w.auth(phone, ago(when+time.Minute), "code_sent")
		w.auth(phone, ago(when), "code_verified")
		w.in(phone, ago(when), "", "", "123456")
	}
	verify(dsSession(1), 3*time.Hour)
	w.in(dsSession(1), ago(time.Hour), "", "", "thanks")
	verify(dsSession(2), 3*time.Hour)
	verify(dsSession(3), 25*time.Hour)
	w.in(dsSession(3), ago(30*time.Minute), "", "", "hello again")
	verify(dsSession(4), time.Hour)
	w.auth(dsSession(4), ago(30*time.Minute), "session_expired")
	w.auth(dsSession(5), ago(11*time.Minute), "code_sent")
	w.auth(dsSession(5), ago(10*time.Minute), "code_verified")
	verify(dsSession(6), 5*time.Hour)
	w.auth(dsSession(6), ago(4*time.Hour), "session_expired")
	verify(dsSession(6), 2*time.Hour)
	w.in(dsSession(6), ago(90*time.Minute), "", "", "book me in")

	// globex: the same phones, its own figures.
	g := &dsWriter{tenant: "globex"}
	g.conversation(dsPhone(1), "g1", dsBase.Add(time.Hour), 7, time.Second)
	g.auth(dsPhone(1), dsBase, "code_sent")
	g.auth(dsPhone(1), dsBase.Add(time.Minute), "code_failed")
	g.auth(dsSession(7), ago(time.Hour+time.Minute), "code_sent")
	g.auth(dsSession(7), ago(time.Hour), "code_verified")
	g.in(dsSession(7), ago(time.Hour), "", "", "123456")
	g.conv(dsPhone(1), dsBase.Add(2*time.Hour), "g1", "handoff")
	return append(w.evs, g.evs...), replays
}

// globex's figures: one conversation, 7 + 1 messages in, 7 out, 2 codes
// sent and 1 verified, 1 active session, 1 handoff, 7·120 tokens.
const (
	globexIn     = 8
	globexOut    = 7
	globexTokens = 7 * 120
)

var (
	dsOnce  sync.Once
	dsDB    string
	dsErr   error
	dsStore *chsink.Store
)

// openDataset writes the data set once per test binary into a database of
// its own and returns a store on it. Closed days are compacted and rolled
// up as the janitor does, then the replays are written: some days are read
// from the rollups, some from compacted events, some (with replays, and
// today) from events that hold duplicates, so every way of reading is
// exercised.
func openDataset(t testing.TB) *chsink.Store {
	t.Helper()
	addr := chtest.ForTest(t)
	dsOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		// A name of its own: CI may share one server between runs.
		var suffix [4]byte
		_, _ = rand.Read(suffix[:])
		dsDB = "test_analytics_dataset_" + hex.EncodeToString(suffix[:])
		s, err := chsink.Open(ctx, chsink.Config{Addr: addr, Database: dsDB, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			dsErr = err
			return
		}
		all, replays := dataset()
		if dsErr = s.WriteEvents(ctx, all); dsErr != nil {
			return
		}
		if _, dsErr = s.CompactClosedPartitions(ctx, dsNow); dsErr != nil {
			return
		}
		if _, dsErr = s.RollUp(ctx, dsNow); dsErr != nil {
			return
		}
		if dsErr = s.WriteEvents(ctx, replays); dsErr != nil {
			return
		}
		dsStore = s
	})
	if dsErr != nil {
		t.Fatalf("data set: %v", dsErr)
	}
	return dsStore
}

// freshDataset writes the data set into a database of the test's own, for
// tests that change it (erasure).
func freshDataset(t *testing.T) *chsink.Store {
	t.Helper()
	addr := chtest.ForTest(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s, err := chsink.Open(ctx, chsink.Config{Addr: addr, Database: chtest.Database(t, addr), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	all, replays := dataset()
	if err := s.WriteEvents(ctx, append(all, replays...)); err != nil {
		t.Fatal(err)
	}
	return s
}

func countRows(t *testing.T, s *chsink.Store, table, where string, args ...any) uint64 {
	t.Helper()
	var n uint64
	if err := s.Conn().QueryRow(context.Background(), "SELECT count() FROM "+table+" WHERE "+where, args...).Scan(&n); err != nil {
		t.Fatalf("count %s: %v", table, err)
	}
	return n
}
