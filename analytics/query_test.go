package analytics

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"testing"
	"time"

	chsink "github.com/parleyhq/parley/sinks/clickhouse"
)

func querier(s *chsink.Store, allDirty bool) *Querier {
	q := NewQuerier(s, slog.New(slog.DiscardHandler))
	q.IgnoreCompaction = allDirty
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
	// Rolled up and still valid: 03-06; no longer valid: 03-04 (messages
	// replayed) and 03-05 (sign-ins replayed). First responses are final
	// up to 03-08; 03-03 to 03-05 saw conversation_firsts change since.
	pm, err := s.PartitionsOf(context.Background(), append(append([]string(nil), chsink.HourlySources...), chsink.TableConversationFirsts)...)
	if err != nil {
		t.Fatal(err)
	}
	hourly, err := s.RollupRuns(context.Background(), chsink.RollupHourly, 20240301, 20240310)
	if err != nil {
		t.Fatal(err)
	}
	valid := func(d uint32) bool {
		run, ok := hourly[d]
		if !ok {
			return false
		}
		rows, err := s.RowsBefore(context.Background(), pm, d, run.Until)
		return err == nil && chsink.HourlyValid(run, pm, rows)
	}
	if !valid(20240306) || valid(20240304) || valid(20240305) || valid(20240310) {
		t.Fatalf("hourly rollups valid: 03-04 %v, 03-05 %v, 03-06 %v, 03-10 %v", valid(20240304), valid(20240305), valid(20240306), valid(20240310))
	}
	firsts, err := s.RollupRuns(context.Background(), chsink.RollupFirstResponses, 20240301, 20240310)
	if err != nil {
		t.Fatal(err)
	}
	final := func(d uint32) bool {
		return firsts[d].RunID != "" && firsts[d].Source == chsink.FirstResponsesSource(pm, d)
	}
	if !final(20240307) || !final(20240308) || final(20240304) || final(20240309) {
		t.Fatalf("first responses final: 03-04 %v, 03-07 %v, 03-08 %v, 03-09 %v", final(20240304), final(20240307), final(20240308), final(20240309))
	}
}

func TestSummaryMatchesHandCount(t *testing.T) {
	s := openDataset(t)
	for _, allDirty := range []bool{false, true} {
		name := "compacted days counted plainly"
		if allDirty {
			name = "every day deduplicated by event id"
		}
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			got, err := querier(s, allDirty).Summary(ctx, "acme", dsR, defaultRules)
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
			if got.AuthSuccessRate == nil || math.Abs(*got.AuthSuccessRate-13.0/17) > 1e-12 {
				t.Errorf("auth_success_rate = %v, want 13/17", deref(got.AuthSuccessRate))
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
		g.LLMTokens != globexTokens || g.CodesSent != 2 || g.CodesVerified != 1 || g.ActiveSessions != 1 ||
		g.AuthSuccessRate == nil || *g.AuthSuccessRate != 0.5 {
		t.Fatalf("globex %+v", g)
	}
	// No data: zeros, and null where a figure is undefined.
	empty, err := querier(s, false).Summary(ctx, "acme", chsink.Range{From: dsFrom.AddDate(-1, 0, 0), To: dsFrom.AddDate(-1, 0, 1)}, defaultRules)
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
	n, err := s.ActiveSessions(context.Background(), "acme", []time.Time{dsNow}, 24*time.Hour, 4*time.Hour, "")
	if err != nil || n[0] != 4 {
		t.Fatalf("idle 4h: %v %v, want 4", n, err)
	}
	n, err = s.ActiveSessions(context.Background(), "acme", []time.Time{dsNow}, 150*time.Minute, 2*time.Hour, "")
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
		for _, step := range []chsink.Step{chsink.StepHour, chsink.StepDay} {
			ser, err := q.Timeseries(ctx, "acme", c.metric, step, dsR, defaultRules)
			if err != nil {
				t.Fatalf("%s/%s: %v", c.metric, step, err)
			}
			// Hourly: 03-03 12:00 … 03-10 11:00. Daily: 03-03 … 03-10,
			// the first and last partial.
			wantPoints := 168
			if step == chsink.StepDay {
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
	ser, err := q.Timeseries(ctx, "acme", MetricConversations, chsink.StepDay, dsR, defaultRules)
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

	// The success rate per day: p0-p4 and p8 sent theirs on 03-05 (8
	// sent, 5 verified); s3 on 03-09 (1/1); p6, p7 and the other session
	// phones on 03-10 (8 sent, 7 verified); the other days none (null).
	rate, err := q.Timeseries(ctx, "acme", MetricAuthSuccessRate, chsink.StepDay, dsR, defaultRules)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range rate.Points {
		var want *float64
		switch p.T.Day() {
		case 5:
			v := 5.0 / 8
			want = &v
		case 9:
			v := 1.0
			want = &v
		case 10:
			v := 7.0 / 8
			want = &v
		}
		if (want == nil) != (p.Value == nil) || (want != nil && math.Abs(*want-*p.Value) > 1e-12) {
			t.Errorf("auth rate on %v: %v, want %v", p.T, deref(p.Value), deref(want))
		}
	}

	// Active sessions at the end of each bucket; the last is the
	// summary's.
	act, err := q.Timeseries(ctx, "acme", MetricActiveSessions, chsink.StepHour, dsR, defaultRules)
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

	// Every series is the same read from rollups and compacted days as
	// read from the events alone.
	raw := querier(s, true)
	for _, m := range Metrics {
		for _, step := range []chsink.Step{chsink.StepHour, chsink.StepDay} {
			for _, r := range []chsink.Range{dsR, {From: dsFrom.Add(17 * time.Minute), To: dsNow.Add(-2*time.Hour - 5*time.Second)}} {
				a, err := q.Timeseries(ctx, "acme", m, step, r, defaultRules)
				if err != nil {
					t.Fatal(err)
				}
				b, err := raw.Timeseries(ctx, "acme", m, step, r, defaultRules)
				if err != nil {
					t.Fatal(err)
				}
				for i := range a.Points {
					if fmt.Sprint(deref(a.Points[i].Value)) != fmt.Sprint(deref(b.Points[i].Value)) {
						t.Errorf("%s/%s at %v: %v with rollups, %v from events", m, step, a.Points[i].T, deref(a.Points[i].Value), deref(b.Points[i].Value))
						break
					}
				}
			}
		}
	}

	if _, err := q.Timeseries(ctx, "acme", "bogus", chsink.StepDay, dsR, defaultRules); err == nil {
		t.Error("unknown metric accepted")
	}
	if _, err := q.Timeseries(ctx, "acme", MetricMessagesIn, chsink.StepHour, chsink.Range{From: dsFrom.AddDate(-1, 0, 0), To: dsNow}, defaultRules); err == nil {
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
	want := []chsink.PowerUser{
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
	all, err := q.Messages(ctx, "acme", chsink.MessageFilter{Range: dsR, Phone: dsPhone(1), Limit: 500})
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
	page, err := q.Messages(ctx, "acme", chsink.MessageFilter{Range: dsR, Phone: dsPhone(1), Limit: 5})
	if err != nil || len(page) != 5 {
		t.Fatalf("page: %d, %v", len(page), err)
	}
	for i := range page {
		if page[i].EventID != all[i].EventID {
			t.Fatalf("page differs from the full list at %d", i)
		}
	}
	newest, err := q.Messages(ctx, "acme", chsink.MessageFilter{Range: dsR, Limit: 3})
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
	g, err := q.Messages(ctx, "globex", chsink.MessageFilter{Range: dsR, Phone: dsPhone(1), Limit: 500})
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

// The summary pairs codes with their outcome only near the range's edges
// (the rest is counted); pairing every code must give the same figures,
// for ranges that cut through the sign-in flows in every way.
func TestAuthEdgesMatchFullPairing(t *testing.T) {
	s := openDataset(t)
	q := querier(s, false)
	ctx := context.Background()
	var ranges []chsink.Range
	for _, from := range []time.Time{dsFrom, dsFrom.Add(2 * time.Minute), time.Date(2024, 3, 5, 9, 0, 30, 0, time.UTC), time.Date(2024, 3, 5, 11, 1, 0, 0, time.UTC)} {
		for _, to := range []time.Time{dsNow, dsNow.Add(-90 * time.Second), dsNow.Add(-time.Hour - 30*time.Second), time.Date(2024, 3, 5, 12, 2, 0, 0, time.UTC), dsNow.Add(time.Hour)} {
			if to.Sub(from) > 2*chsink.CodeMargin {
				ranges = append(ranges, chsink.Range{From: from, To: to})
			}
		}
	}
	for _, r := range ranges {
		var sent, verified uint64
		err := s.Exact(ctx, r, false, func(st *chsink.Snapshot) (err error) {
			sent, verified, err = q.authCodes(ctx, st, "acme", r)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		ps, pv, err := s.AuthCodesPaired(ctx, "acme", r)
		if err != nil {
			t.Fatal(err)
		}
		if sent != ps || verified != pv {
			t.Errorf("%v – %v: edges %d/%d, full pairing %d/%d", r.From, r.To, verified, sent, pv, ps)
		}
	}
}

// A late event on a rolled-up day counts at once: the day's sources
// changed, so it is read from the events until the janitor rolls it up
// again; after that, the rollup has it too.
func TestLateEventOnRolledUpDay(t *testing.T) {
	s := freshDataset(t)
	ctx := context.Background()
	q := querier(s, false)
	if _, err := s.CompactClosedPartitions(ctx, dsNow); err != nil {
		t.Fatal(err)
	}
	runs, err := s.RollUp(ctx, dsNow)
	if err != nil || len(runs) == 0 {
		t.Fatalf("roll up: %v, %v", runs, err)
	}
	check := func(what string, in, convs uint64) {
		t.Helper()
		got, err := q.Summary(ctx, "acme", dsR, defaultRules)
		if err != nil {
			t.Fatal(err)
		}
		if got.MessagesIn != in || got.Conversations != convs || got.FirstResponseSamples != convs {
			t.Fatalf("%s: %d in, %d conversations, %d response samples; want %d, %d, %d", what, got.MessagesIn, got.Conversations, got.FirstResponseSamples, in, convs, convs)
		}
	}
	check("rolled up", wantMessagesIn, wantConversations)
	// A conversation on 03-06, arriving late (the sink catching up).
	w := &dsWriter{tenant: "acme", seq: 90000}
	late := w.conversation(dsPhone(4), "late", time.Date(2024, 3, 6, 14, 0, 0, 0, time.UTC), 2, 300*time.Millisecond)
	if err := s.WriteEvents(ctx, late); err != nil {
		t.Fatal(err)
	}
	check("late, before the janitor", wantMessagesIn+2, wantConversations+1)
	if _, err := s.CompactClosedPartitions(ctx, dsNow); err != nil {
		t.Fatal(err)
	}
	again, err := s.RollUp(ctx, dsNow)
	if err != nil {
		t.Fatal(err)
	}
	redone := map[string]bool{}
	for _, r := range again {
		redone[fmt.Sprint(r.Kind, r.Day)] = true
	}
	if !redone["hourly20240306"] || !redone["first_responses20240306"] || redone["hourly20240307"] {
		t.Fatalf("re-rolled %v: want 03-06 (both kinds) and not 03-07's hourly", again)
	}
	check("late, rolled up again", wantMessagesIn+2, wantConversations+1)
	// Nothing changed: nothing to do.
	if none, err := s.RollUp(ctx, dsNow); err != nil || len(none) != 0 {
		t.Fatalf("third run: %v, %v", none, err)
	}
}
