package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/parleyhq/parley/analytics"
	chsink "github.com/parleyhq/parley/sinks/clickhouse"
)

// The summary data set: one tenant, rows messages over days ending at
// sumNow. A conversation is 16 consecutive messages (8 in, 8 out, a few
// seconds apart) of one of 200,000 phones; it has a started event (and a
// handoff for one in 40), a code sent and, for four in five, verified;
// every reply has prompt and completion token usage.
var sumNow = time.Date(2024, 6, 30, 18, 0, 0, 0, time.UTC)

// genTable describes how to generate one table: rows, the message index
// m(n) its row n belongs to (which fixes its time), and the INSERT.
type genTable struct {
	name   string
	rows   int
	msgIdx func(n int) int
	sql    string // {n} is the row index column, {R} rows of messages, {start} and {span} seconds
}

func genTables(rows int) []genTable {
	const at = "toDateTime({start} + intDiv(m * {span}, {R}))"
	return []genTable{
		{"messages", rows, func(n int) int { return n }, `INSERT INTO messages (event_id, tenant, phone, direction, message_id, provider_id, channel, conversation_id, body, query_type, at, at_ms, provider_at, provider_at_ms)
SELECT concat('m', toString(m)), 'bench', concat('+4479', toString(10000000 + (intDiv(m, 16) * 7919) % 200000)),
  if(m % 2 = 0, 'in', 'out'), concat('msg', toString(m)), if(m % 2 = 0, concat('SM', toString(m)), ''), 'twilio',
  concat('c', toString(intDiv(m, 16))), 'Hi, can I move my Thursday cleaning to Friday morning?',
  ['booking', 'availability', 'services', 'account', 'subscription', 'help', 'sign_in', 'greeting'][1 + (intDiv(m, 2) * 31) % 8],
  ` + at + `, (m * 37) % 1000, ` + at + `, if((m * 37) % 1000 >= 200, (m * 37) % 1000 - 200, 0)
FROM (SELECT {n} AS m FROM system.numbers LIMIT {L})`},
		{"conversations", rows / 16, func(n int) int { return n * 16 }, `INSERT INTO conversations (event_id, tenant, phone, conversation_id, change, status, ai_enabled, operator, summary, by_customer, at, at_ms)
SELECT concat('cv', toString(c), '-', toString(k)), 'bench', concat('+4479', toString(10000000 + (c * 7919) % 200000)), concat('c', toString(c)),
  if(k = 1, 'started', 'handoff'), 'active', if(k = 1, 1, 0), '', '', if(k = 1, 1, 0), toDateTime({start} + intDiv(c * 16 * {span}, {R}) + (k - 1) * 2), 0
FROM (SELECT {n} AS c FROM system.numbers LIMIT {L}) ARRAY JOIN if(c % 40 = 0, [1, 2], [1]) AS k`},
		{"auth_events", rows / 16, func(n int) int { return n * 16 }, `INSERT INTO auth_events (event_id, tenant, phone, profile_id, event, attempt, at, at_ms)
SELECT concat('a', toString(c), '-', toString(k)), 'bench', concat('+4479', toString(10000000 + (c * 7919) % 200000)), concat('p', toString(c % 150000)),
  if(k = 1, 'code_sent', 'code_verified'), k - 1, toDateTime({start} + intDiv(c * 16 * {span}, {R}) + (k - 1)), 0
FROM (SELECT {n} AS c FROM system.numbers LIMIT {L}) ARRAY JOIN if(c % 5 = 0, [1], [1, 2]) AS k`},
		{"usage", rows, func(n int) int { return 2*(n/2) + 1 }, `INSERT INTO usage (event_id, tenant, phone, metric, value, model, at, at_ms)
SELECT concat('u', toString(u)), 'bench', concat('+4479', toString(10000000 + (intDiv(m, 16) * 7919) % 200000)),
  if(u % 2 = 0, 'llm_prompt_tokens', 'llm_completion_tokens'), if(u % 2 = 0, 850, 60), 'gpt-4o-mini', ` + at + `, 0
FROM (SELECT u, 2 * intDiv(u, 2) + 1 AS m FROM (SELECT {n} AS u FROM system.numbers LIMIT {L}))`},
	}
}

func benchSummary(ctx context.Context, addr string, o options) error {
	quiet := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	store, err := chsink.Open(ctx, chsink.Config{Addr: addr, Database: "bench_summary", Logger: quiet})
	if err != nil {
		return err
	}
	defer store.Close()
	if !o.keep {
		defer dropDB(store, "bench_summary")
	}
	if err := truncate(ctx, store); err != nil {
		return err
	}
	span := int64(o.days) * 86400
	start := sumNow.Unix() - span
	today := sumNow.Truncate(24 * time.Hour).Unix()
	fmt.Printf("\n## summary: %d message rows, one tenant, %d days to %s\n", o.rows, o.days, sumNow.Format(time.RFC3339))

	// Until janitorAt: the closed days in one insert, today in inserts
	// of 10,000 rows as the sink writes them. Then the janitor's run at
	// janitorAt (compaction of the closed days, rollups up to 17:00).
	// Then the sink goes on until now: small inserts, and a replay of
	// some of them, which the summary must not count twice.
	janitorAt := sumNow.Add(-55 * time.Minute)
	gens := genTables(o.rows)
	exec := func(t genTable, from, n int) error {
		if n <= 0 {
			return nil
		}
		q := strings.NewReplacer("{n}", fmt.Sprintf("number + %d", from), "{L}", fmt.Sprint(n), "{start}", fmt.Sprint(start),
			"{span}", fmt.Sprint(span), "{R}", fmt.Sprint(o.rows)).Replace(t.sql)
		if err := store.Conn().Exec(ctx, q); err != nil {
			return fmt.Errorf("%s: %w", t.name, err)
		}
		return nil
	}
	chunks := func(t genTable, from, to, size int) error {
		for i := from; i < to; i += size {
			if err := exec(t, i, min(size, to-i)); err != nil {
				return err
			}
		}
		return nil
	}
	cut := func(t genTable, at time.Time) int {
		return firstAtOrAfter(t.rows, func(n int) int64 { return start + int64(t.msgIdx(n))*span/int64(o.rows) }, at.Unix())
	}
	genStart := time.Now()
	for _, t := range gens {
		if err := exec(t, 0, cut(t, time.Unix(today, 0))); err != nil {
			return err
		}
		if err := chunks(t, cut(t, time.Unix(today, 0)), cut(t, janitorAt), 10000); err != nil {
			return err
		}
	}
	fmt.Printf("generated up to the janitor's run (%s) in %s\n", janitorAt.Format("15:04"), time.Since(genStart).Round(time.Second))
	compStart := time.Now()
	if _, err := store.CompactClosedPartitions(ctx, janitorAt); err != nil {
		return err
	}
	fmt.Printf("janitor: closed days compacted in %s\n", time.Since(compStart).Round(time.Second))
	rollStart := time.Now()
	runs, err := store.RollUp(ctx, janitorAt)
	if err != nil {
		return err
	}
	fmt.Printf("janitor: %d days rolled up (today until %s) in %s\n", len(runs), janitorAt.Truncate(time.Hour).Format("15:04"), time.Since(rollStart).Round(time.Second))
	for _, t := range gens {
		k := cut(t, janitorAt)
		if err := chunks(t, k, t.rows, 2000); err != nil {
			return err
		}
		if err := exec(t, k, min(1000, t.rows-k)); err != nil {
			return err
		}
	}
	fmt.Println("the sink's last 55 minutes written after the janitor's run, in inserts of 2,000 rows and a replay of 1,000")
	for _, t := range append(chsink.EventTables, chsink.TableConversationFirsts, chsink.TableHourly, chsink.TableFirstResponses) {
		var rows uint64
		if err := store.Conn().QueryRow(ctx, "SELECT count() FROM "+t).Scan(&rows); err != nil {
			return err
		}
		parts, err := store.Partitions(ctx, t)
		if err != nil {
			return err
		}
		dirty := 0
		for _, p := range parts {
			if !p.Clean() {
				dirty++
			}
		}
		if rows > 0 {
			fmt.Printf("  %-20s %10d rows, %2d daily partitions (%d of several parts)\n", t, rows, len(parts), dirty)
		}
	}

	qlog := quiet
	if o.verbose {
		qlog = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	q := analytics.NewQuerier(store, qlog)
	rules := analytics.RulesOf(nil)
	week := chsink.Range{From: sumNow.AddDate(0, 0, -7), To: sumNow}
	month := chsink.Range{From: sumNow.AddDate(0, 0, -o.days), To: sumNow}
	s, err := q.Summary(ctx, "bench", week, rules)
	if err != nil {
		return err
	}
	fmt.Printf("summary, last 7 days: conversations %d, in %d, out %d, active sessions %d, auth rate %.3f, p50/p95 %d/%d ms, handoffs %d, tokens %d\n",
		s.Conversations, s.MessagesIn, s.MessagesOut, s.ActiveSessions, *s.AuthSuccessRate, *s.FirstResponseP50, *s.FirstResponseP95, s.Handoffs, s.LLMTokens)

	measure := func(name string, runs int, fn func() error) error {
		for range 3 { // warm caches
			if err := fn(); err != nil {
				return err
			}
		}
		var ds []time.Duration
		for range runs {
			t0 := time.Now()
			if err := fn(); err != nil {
				return err
			}
			ds = append(ds, time.Since(t0))
		}
		slices.Sort(ds)
		pct := func(p float64) time.Duration { return ds[min(len(ds)-1, int(p*float64(len(ds))))] }
		fmt.Printf("%-46s runs %3d   p50 %7.1f ms   p95 %7.1f ms   max %7.1f ms\n", name, runs,
			ms(pct(0.5)), ms(pct(0.95)), ms(ds[len(ds)-1]))
		return nil
	}
	summary := func(q *analytics.Querier, r chsink.Range) func() error {
		return func() error { _, err := q.Summary(ctx, "bench", r, rules); return err }
	}
	if err := measure("summary, 7 days (dashboard default)", o.runs, summary(q, week)); err != nil {
		return err
	}
	if err := measure(fmt.Sprintf("summary, %d days (all %d rows)", o.days, o.rows), o.runs, summary(q, month)); err != nil {
		return err
	}
	final := analytics.NewQuerier(store, quiet)
	final.IgnoreCompaction = true
	if err := measure("summary, 7 days, ignoring compaction and rollups", max(5, o.runs/5), summary(final, week)); err != nil {
		return err
	}
	if err := measure("timeseries messages_in, 7 days hourly", max(5, o.runs/5), func() error {
		_, err := q.Timeseries(ctx, "bench", analytics.MetricMessagesIn, chsink.StepHour, week, rules)
		return err
	}); err != nil {
		return err
	}
	if err := measure("timeseries active_sessions, 7 days hourly", max(5, o.runs/5), func() error {
		_, err := q.Timeseries(ctx, "bench", analytics.MetricActiveSessions, chsink.StepHour, week, rules)
		return err
	}); err != nil {
		return err
	}
	if err := measure("power users, 7 days", max(5, o.runs/5), func() error {
		_, err := q.PowerUsers(ctx, "bench", week, 20)
		return err
	}); err != nil {
		return err
	}
	return measure("conversation log, newest 50 of 7 days", max(5, o.runs/5), func() error {
		_, err := q.Messages(ctx, "bench", chsink.MessageFilter{Range: week, Limit: 50})
		return err
	})
}

// firstAtOrAfter is the first n in [0, rows) whose time is at or after t
// (rows if none); timeOf must not decrease.
func firstAtOrAfter(rows int, timeOf func(int) int64, t int64) int {
	lo, hi := 0, rows
	for lo < hi {
		mid := (lo + hi) / 2
		if timeOf(mid) >= t {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return lo
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
