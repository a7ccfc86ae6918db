package analytics

import (
	"context"
	"log/slog"
	"math"
	"slices"
	"testing"
	"time"

	chsink "github.com/parleyhq/parley/sinks/clickhouse"
)

func querier(s *chsink.Store, allFinal bool) *Querier {
	q := NewQuerier(s, slog.New(slog.DiscardHandler))
	q.AlwaysFinal = allFinal
	return q
}

var defaultRules = RulesOf(nil)

func TestDatasetHasCleanAndDirtyDays(t *testing.T) {
	s := openDataset(t)
	parts, err := s.Partitions(context.Background(), chsink.TableMessages)
	if err != nil {
		t.Fatal(err)
	}
	state := map[uint32]bool{}
	for _, p := range parts {
		state[p.ID] = p.Clean()
	}
	// 03-04 got replays after compaction, 03-10 is today; 03-06 is a
	// compacted day nobody wrote to since.
	if state[20240304] || state[20240310] || !state[20240306] {
		t.Fatalf("partition states %v: want 20240304 and 20240310 dirty, 20240306 clean", state)
	}
}

func TestSummaryMatchesHandCount(t *testing.T) {
	s := openDataset(t)
	for _, allFinal := range []bool{false, true} {
		name := "clean days without FINAL"
		if allFinal {
			name = "everything with FINAL"
		}
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			got, err := querier(s, allFinal).Summary(ctx, "acme", dsR, defaultRules)
			if err != nil {
				t.Fatal(err)
			}
			checkU := func(name string, got, want uint64) {
				t.Helper()
				if got != want {
					t.Errorf("%s = %d, want %d", name, got, want)
				}
			}
			checkU("conversations", got.Conversations, wantConversations)
			checkU("messages_in", got.MessagesIn, wantMessagesIn)
			checkU("messages_out", got.MessagesOut, wantMessagesOut)
			checkU("active_sessions", got.ActiveSessions, wantActiveSessions)
			checkU("codes_sent", got.CodesSent, wantCodesSent)
			checkU("codes_verified", got.CodesVerified, wantCodesVerified)
			checkU("handoffs", got.Handoffs, wantHandoffs)
			checkU("first_response_samples", got.FirstResponseSamples, 40)
			if got.LLMTokens != wantTokens {
				t.Errorf("llm_tokens = %d, want %d", got.LLMTokens, wantTokens)
			}
			if got.AuthSuccessRate == nil || math.Abs(*got.AuthSuccessRate-0.6) > 1e-12 {
				t.Errorf("auth_success_rate = %v, want 0.6", got.AuthSuccessRate)
			}
			if got.FirstResponseP50 == nil || *got.FirstResponseP50 != wantP50 || got.FirstResponseP95 == nil || *got.FirstResponseP95 != wantP95 {
				t.Errorf("first response p50 %v p95 %v, want %d and %d", got.FirstResponseP50, got.FirstResponseP95, wantP50, wantP95)
			}
			if !slices.Equal(got.TopQueries, wantTop) {
				t.Errorf("top queries %v, want %v", got.TopQueries, wantTop)
			}
		})
	}
}

func TestSummaryOfAnotherTenantAndEmptyRange(t *testing.T) {
	s := openDataset(t)
	ctx := context.Background()
	g, err := querier(s, false).Summary(ctx, "globex", dsR, defaultRules)
	if err != nil {
		t.Fatal(err)
	}
	if g.MessagesIn != globexIn || g.MessagesOut != globexOut || g.Conversations != 1 || g.Handoffs != 1 ||
		g.LLMTokens != globexTokens || g.CodesSent != 1 || g.CodesVerified != 0 || g.ActiveSessions != 1 ||
		g.AuthSuccessRate == nil || *g.AuthSuccessRate != 0 {
		t.Fatalf("globex %+v", g)
	}
	// No data: zeros, and null where a figure is undefined.
	empty, err := querier(s, false).Summary(ctx, "acme", Range{From: dsFrom.AddDate(-1, 0, 0), To: dsFrom.AddDate(-1, 0, 1)}, defaultRules)
	if err != nil {
		t.Fatal(err)
	}
	if empty.MessagesIn != 0 || empty.AuthSuccessRate != nil || empty.FirstResponseP50 != nil || len(empty.TopQueries) != 0 || empty.TopQueries == nil {
		t.Fatalf("empty range %+v", empty)
	}
	// A tenant name is data: quotes cannot widen the query.
	evil, err := querier(s, false).Summary(ctx, "acme' OR tenant != '", dsR, defaultRules)
	if err != nil {
		t.Fatal(err)
	}
	if evil.MessagesIn != 0 || evil.Conversations != 0 {
		t.Fatalf("injection reached data: %+v", evil)
	}
}

func TestActiveSessionsFollowTenantRules(t *testing.T) {
	s := openDataset(t)
	// With a 4-hour idle timeout s2 (last message 3h ago) is signed in
	// too; with a 150-minute TTL s1 (verified 3h ago) is not any more.
	n, err := querier(s, false).activeSessions(context.Background(), "acme", []time.Time{dsNow}, SessionRules{SessionTTL: 24 * time.Hour, IdleTimeout: 4 * time.Hour})
	if err != nil || n[0] != 4 {
		t.Fatalf("idle 4h: %v %v, want 4", n, err)
	}
	n, err = querier(s, false).activeSessions(context.Background(), "acme", []time.Time{dsNow}, SessionRules{SessionTTL: 150 * time.Minute, IdleTimeout: 2 * time.Hour})
	if err != nil || n[0] != 2 {
		t.Fatalf("ttl 150 min: %v %v, want 2 (s5, s6)", n, err)
	}
}

func TestTimeseries(t *testing.T) {
	s := openDataset(t)
	ctx := context.Background()
	q := querier(s, false)
	sum := func(ser *Series) (total float64) {
		for _, p := range ser.Points {
			if p.Value != nil {
				total += *p.Value
			}
		}
		return total
	}
	for _, c := range []struct {
		metric string
		want   float64
	}{
		{MetricMessagesIn, wantMessagesIn},
		{MetricMessagesOut, wantMessagesOut},
		{MetricConversations, wantConversations},
		{MetricLLMTokens, wantTokens},
	} {
		for _, step := range []Step{StepHour, StepDay} {
			ser, err := q.Timeseries(ctx, "acme", c.metric, step, dsR, defaultRules)
			if err != nil {
				t.Fatalf("%s/%s: %v", c.metric, step, err)
			}
			// Hourly: 03-03 12:00 … 03-10 11:00. Daily: 03-03 … 03-10,
			// the first and last partial.
			wantPoints := 168
			if step == StepDay {
				wantPoints = 8
			}
			if len(ser.Points) != wantPoints {
				t.Errorf("%s/%s: %d points, want %d", c.metric, step, len(ser.Points), wantPoints)
			}
			if got := sum(ser); got != c.want {
				t.Errorf("%s/%s: total %v, want %v", c.metric, step, got, c.want)
			}
		}
	}
	// Day by day: conversations start every 3 hours from 03-04 00:00, 8 a
	// day for five days.
	ser, err := q.Timeseries(ctx, "acme", MetricConversations, StepDay, dsR, defaultRules)
	if err != nil {
		t.Fatal(err)
	}
	var perDay []float64
	for _, p := range ser.Points {
		perDay = append(perDay, *p.Value)
	}
	if want := []float64{0, 8, 8, 8, 8, 8, 0, 0}; !slices.Equal(perDay, want) {
		t.Errorf("conversations per day %v, want %v", perDay, want)
	}
	if ser.Points[0].T != time.Date(2024, 3, 3, 0, 0, 0, 0, time.UTC) {
		t.Errorf("first bucket %v", ser.Points[0].T)
	}

	// The success rate per day: every code of the data set was sent on
	// 03-05 but p6's and p7's (03-10): 03-05 has 8 sent, 5 verified;
	// 03-10 2 sent, 1 verified; the other days none (null).
	rate, err := q.Timeseries(ctx, "acme", MetricAuthSuccessRate, StepDay, dsR, defaultRules)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range rate.Points {
		var want *float64
		switch p.T.Day() {
		case 5:
			v := 5.0 / 8
			want = &v
		case 10:
			v := 0.5
			want = &v
		}
		if (want == nil) != (p.Value == nil) || (want != nil && math.Abs(*want-*p.Value) > 1e-12) {
			t.Errorf("auth rate on %v: %v, want %v", p.T, p.Value, want)
		}
	}

	// Active sessions at the end of each bucket; the last is the
	// summary's.
	act, err := q.Timeseries(ctx, "acme", MetricActiveSessions, StepHour, dsR, defaultRules)
	if err != nil {
		t.Fatal(err)
	}
	last := act.Points[len(act.Points)-1]
	if last.Value == nil || *last.Value != wantActiveSessions {
		t.Errorf("active sessions at the end: %v, want %d", last.Value, wantActiveSessions)
	}
	// At 09:00 (the end of the 08:00 bucket): s1 and s2 verify at 09:00
	// exactly, not before; s3 (verified 03-09 11:00) has been idle for
	// 22 h; s6 (verified 07:00) expired at 08:00: none. At 10:00: s1 and
	// s2 (idle for an hour); s6 verifies again only at 10:00: 2. At
	// 11:00: s1 and s2 idle for two hours, which ends them (their next
	// message is at 11:00, not before); s6 (verified 10:00) is in; s4
	// verifies at 11:00, s3's 24 hours end at 11:00: 1.
	for _, p := range act.Points {
		end := p.T.Add(time.Hour)
		want := -1.0
		switch end {
		case time.Date(2024, 3, 10, 9, 0, 0, 0, time.UTC):
			want = 0
		case time.Date(2024, 3, 10, 10, 0, 0, 0, time.UTC):
			want = 2
		case time.Date(2024, 3, 10, 11, 0, 0, 0, time.UTC):
			want = 1
		}
		if want >= 0 && (p.Value == nil || *p.Value != want) {
			t.Errorf("active sessions at %v: %v, want %v", end, deref(p.Value), want)
		}
	}

	if _, err := q.Timeseries(ctx, "acme", "bogus", StepDay, dsR, defaultRules); err == nil {
		t.Error("unknown metric accepted")
	}
	if _, err := q.Timeseries(ctx, "acme", MetricMessagesIn, StepHour, Range{From: dsFrom.AddDate(-1, 0, 0), To: dsNow}, defaultRules); err == nil {
		t.Error("more than MaxPoints accepted")
	}
}

func TestPowerUsers(t *testing.T) {
	s := openDataset(t)
	users, err := querier(s, false).PowerUsers(context.Background(), "acme", dsR, 3)
	if err != nil {
		t.Fatal(err)
	}
	// p0: 1+3+1+3 customer messages in its four conversations and 5
	// today; p1 and p3: 2+4+2+4 (ties by phone).
	want := []PowerUser{
		{Phone: dsPhone(0), MessagesIn: 13, MessagesOut: 8, Conversations: 4},
		{Phone: dsPhone(1), MessagesIn: 12, MessagesOut: 12, Conversations: 4},
		{Phone: dsPhone(3), MessagesIn: 12, MessagesOut: 12, Conversations: 4},
	}
	if len(users) != 3 {
		t.Fatalf("users %+v", users)
	}
	for i, u := range users {
		w := want[i]
		if u.Phone != w.Phone || u.MessagesIn != w.MessagesIn || u.MessagesOut != w.MessagesOut || u.Conversations != w.Conversations {
			t.Errorf("user %d: %+v, want %+v", i, u, w)
		}
	}
	if users[0].LastSeen != dsNow.Add(-3*time.Hour+4*time.Minute) || users[0].FirstSeen != dsBase {
		t.Errorf("p0 first/last seen %v %v", users[0].FirstSeen, users[0].LastSeen)
	}
}

func TestMessagesLog(t *testing.T) {
	s := openDataset(t)
	q := querier(s, false)
	ctx := context.Background()
	// p1 in range: 12 customer messages and 12 replies (conversations 1,
	// 11, 21, 31); conversation 1's are written twice.
	all, err := q.Messages(ctx, "acme", MessageFilter{Range: dsR, Phone: dsPhone(1), Limit: 500})
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 24 {
		t.Fatalf("%d entries for p1, want 24", len(all))
	}
	seen := map[string]bool{}
	for i, e := range all {
		if seen[e.EventID] {
			t.Errorf("event %s twice", e.EventID)
		}
		seen[e.EventID] = true
		if e.Phone != dsPhone(1) || e.Body == "" || e.ConversationID == "" {
			t.Errorf("entry %+v", e)
		}
		if i > 0 && e.At.After(all[i-1].At) {
			t.Errorf("not newest first at %d", i)
		}
	}
	// A page of 5: the newest 5 of the same list, even with duplicates
	// among them (conversation 1 is the oldest; today's p0 messages are
	// the duplicated newest of the next query).
	page, err := q.Messages(ctx, "acme", MessageFilter{Range: dsR, Phone: dsPhone(1), Limit: 5})
	if err != nil || len(page) != 5 {
		t.Fatalf("page: %d, %v", len(page), err)
	}
	for i := range page {
		if page[i].EventID != all[i].EventID {
			t.Fatalf("page differs from the full list at %d", i)
		}
	}
	newest, err := q.Messages(ctx, "acme", MessageFilter{Range: dsR, Limit: 3})
	if err != nil {
		t.Fatal(err)
	}
	// The newest in range: s3's "hello again" (30 min ago), then s4's
	// code and s1's "thanks", both an hour ago (ties: higher event id
	// first).
	if len(newest) != 3 || newest[0].Body != "hello again" || newest[1].Body != "123456" || newest[2].Body != "thanks" {
		t.Fatalf("newest %+v", newest)
	}
	// The other tenant's log does not show acme's messages.
	g, err := q.Messages(ctx, "globex", MessageFilter{Range: dsR, Phone: dsPhone(1), Limit: 500})
	if err != nil || len(g) != 14 {
		t.Fatalf("globex p1: %d, %v (want its 14)", len(g), err)
	}
}

func deref(v *float64) any {
	if v == nil {
		return nil
	}
	return *v
}
