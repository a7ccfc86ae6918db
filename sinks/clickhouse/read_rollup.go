package clickhouse

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// Counts and sums are read from three places, whichever is cheapest and
// exact for each piece of the range:
//
//   - hourly_rollup, for whole hours of days the janitor rolled up and
//     whose source partitions are still the ones it rolled up (the
//     recorded run's source matches the parts seen now);
//   - the events, plainly, for the rest of compacted days;
//   - the events, counting distinct event ids, for the rest (today).
//
// Each piece yields rows (bucket, dim, value) that a single query sums.
// Before and after it, the parts and runs it relied on are listed; if they
// changed, it runs again, and the last attempt reads events only.

// Source is an event table as hourly_rollup rolls it up: the metric name
// there, and the same rows from the events. Counted reads one.
type Source struct {
	table  string
	metric string
	// raw is one branch over the events yielding (b UInt32, dim String,
	// v Int64) for {time}, bucketed by {bucket}, for clean or dirty days.
	raw func(dirty bool) string
}

// The sources Counted reads: messages by "direction/query_type",
// usage by metric, conversation changes, auth events.
var (
	SourceMessages = Source{TableMessages, "messages", func(dirty bool) string {
		return `SELECT {bucket} AS b, CAST(concat(toString(direction), '/', toString(query_type)) AS String) AS dim, CAST(` + eventCount(dirty) + ` AS Int64) AS v
			FROM messages WHERE tenant = ? AND {time} GROUP BY b, direction, query_type`
	}}
	// Usage on dirty days: summed over distinct events, grouped by value:
	// each value times the number of distinct events carrying it.
	SourceUsage = Source{TableUsage, "usage", func(dirty bool) string {
		if dirty {
			return `SELECT {bucket} AS b, CAST(toString(metric) AS String) AS dim, CAST(value * toInt64(uniqExact(event_id)) AS Int64) AS v
				FROM usage WHERE tenant = ? AND {time} GROUP BY b, metric, value`
		}
		return `SELECT {bucket} AS b, CAST(toString(metric) AS String) AS dim, CAST(sum(value) AS Int64) AS v
			FROM usage WHERE tenant = ? AND {time} GROUP BY b, metric`
	}}
	SourceConversations = Source{TableConversations, "conversations", func(dirty bool) string {
		return `SELECT {bucket} AS b, CAST(toString(change) AS String) AS dim, CAST(` + eventCount(dirty) + ` AS Int64) AS v
			FROM conversations WHERE tenant = ? AND {time} GROUP BY b, change`
	}}
	SourceAuth = Source{TableAuthEvents, "auth", func(dirty bool) string {
		return `SELECT {bucket} AS b, CAST(toString(event) AS String) AS dim, CAST(` + eventCount(dirty) + ` AS Int64) AS v
			FROM auth_events WHERE tenant = ? AND {time} GROUP BY b, event`
	}}
)

// bucketExprs are the bucket of an event row and of a rollup row.
func bucketExprs(step Step) (raw, rolled string) {
	switch step {
	case StepHour:
		return "toUInt32(toStartOfHour(at))", "toUInt32(hour)"
	case StepDay:
		return "toUInt32(toStartOfDay(at))", "toUInt32(toStartOfDay(hour))"
	}
	return "toUInt32(0)", "toUInt32(0)"
}

// ceilHour is the first whole hour at or after t.
func ceilHour(t time.Time) time.Time {
	h := t.UTC().Truncate(time.Hour)
	if h.Before(t) {
		h = h.Add(time.Hour)
	}
	return h
}

// Snapshot is what a query relies on besides the events themselves: the
// partitions of the event tables and of conversation_firsts, and the
// recorded rollup runs of the range's days. It is loaded before a query
// and again after it; the query was exact if what it used is unchanged
// (fingerprint).
type Snapshot struct {
	pm     PartitionMap
	hourly map[uint32]RollupRun
	firsts map[uint32]RollupRun
	// valid says which hourly runs are still exact.
	valid map[uint32]bool
	// eventsOnly: read every day from the events, counting distinct event
	// ids (the last retry, and Exact's ignoreCompaction).
	eventsOnly bool
}

var stateTables = append(append([]string(nil), HourlySources...), TableConversationFirsts)

// (A day's hourly run covers its whole hours before the run's Until: all
// of a closed day, today's hours up to the janitor's last run.)

func (s *Store) loadState(ctx context.Context, r Range, eventsOnly bool) (*Snapshot, error) {
	st := &Snapshot{eventsOnly: eventsOnly, hourly: map[uint32]RollupRun{}, firsts: map[uint32]RollupRun{}}
	if eventsOnly {
		return st, nil
	}
	var err error
	if st.pm, err = s.PartitionsOf(ctx, stateTables...); err != nil {
		return nil, err
	}
	first, last := DayID(r.From), DayID(r.To.Add(-time.Second))
	if st.hourly, err = s.RollupRuns(ctx, RollupHourly, first, last); err != nil {
		return nil, err
	}
	if st.firsts, err = s.RollupRuns(ctx, RollupFirstResponses, first, last); err != nil {
		return nil, err
	}
	st.valid = map[uint32]bool{}
	for d, run := range st.hourly {
		rows, err := s.RowsBefore(ctx, st.pm, d, run.Until)
		if err != nil {
			return nil, err
		}
		st.valid[d] = HourlyValid(run, st.pm, rows)
	}
	return st, nil
}

// hourlyRun is the valid hourly run of a day, if any.
func (st *Snapshot) hourlyRun(day uint32) (RollupRun, bool) {
	run, ok := st.hourly[day]
	return run, ok && !st.eventsOnly && st.valid[day]
}

// firstsRun is the valid first_responses run of a day, if any.
func (st *Snapshot) firstsRun(day uint32) (string, bool) {
	run, ok := st.firsts[day]
	if st.eventsOnly || !ok {
		return "", false
	}
	return run.RunID, run.Source == FirstResponsesSource(st.pm, day)
}

// clean reports whether table's partition of day is read plainly.
func (st *Snapshot) clean(table string, day uint32) (Partition, bool) {
	if st.eventsOnly {
		return Partition{}, false
	}
	p, ok := st.pm[table][day]
	return p, ok && p.Clean()
}

// fingerprint is everything the state says about r's days that a query
// may have used: valid rollup runs and clean partitions.
func (st *Snapshot) fingerprint(r Range) string {
	var b strings.Builder
	for d := dayStart(r.From); d.Before(r.To); d = d.AddDate(0, 0, 1) {
		id := DayID(d)
		if run, ok := st.hourlyRun(id); ok {
			fmt.Fprintf(&b, "h%d=%s;", id, run.RunID)
		}
		if run, ok := st.firstsRun(id); ok {
			fmt.Fprintf(&b, "f%d=%s;", id, run)
		}
		for _, t := range HourlySources {
			if p, ok := st.clean(t, id); ok {
				fmt.Fprintf(&b, "c%s%d=%s;", t, id, p.PartNames)
			}
		}
	}
	return b.String()
}

// Exact runs fn with a Snapshot of r's rollups and partitions, and checks
// them afterwards; if what fn could have relied on changed (a janitor run,
// a late event on a closed day), it runs fn again, and the last time from
// the events only. fn must start from scratch each time. ignoreCompaction
// reads every day from the events from the first attempt (slower, the
// same results: for comparisons).
func (s *Store) Exact(ctx context.Context, r Range, ignoreCompaction bool, fn func(st *Snapshot) error) error {
	for attempt := 1; ; attempt++ {
		eventsOnly := ignoreCompaction || attempt == maxAttempts
		st, err := s.loadState(ctx, r, eventsOnly)
		if err != nil {
			return err
		}
		if err := fn(st); err != nil {
			return err
		}
		if eventsOnly {
			return nil
		}
		after, err := s.loadState(ctx, r, false)
		if err != nil {
			return err
		}
		if after.fingerprint(r) == st.fingerprint(r) {
			return nil
		}
		s.log.Debug("rollups or compacted days changed during a query; running it again", "attempt", attempt)
	}
}

// view is how a counted query reads src over r.
type view struct {
	rolled     map[uint32]string // day → run id of valid hourly runs
	rolledSpan []span            // whole hours read from hourly_rollup
	clean      []span
	dirty      []span
}

// view splits r for src: rolled-up whole hours, then clean and dirty
// days of the rest.
func (st *Snapshot) view(src Source, r Range) view {
	v := view{rolled: map[uint32]string{}}
	var rest []span
	add := func(list *[]span, s span) {
		if !s.from.Before(s.to) {
			return
		}
		if n := len(*list); n > 0 && (*list)[n-1].to.Equal(s.from) {
			(*list)[n-1].to = s.to
			return
		}
		*list = append(*list, s)
	}
	for d := dayStart(r.From); d.Before(r.To); d = d.AddDate(0, 0, 1) {
		id := DayID(d)
		s := span{from: maxTime(d, r.From), to: minTime(d.AddDate(0, 0, 1), r.To)}
		if run, ok := st.hourlyRun(id); ok {
			whole := span{from: ceilHour(s.from), to: minTime(s.to, run.Until).Truncate(time.Hour)}
			if whole.from.Before(whole.to) {
				v.rolled[id] = run.RunID
				add(&v.rolledSpan, whole)
				add(&rest, span{s.from, whole.from})
				add(&rest, span{whole.to, s.to})
				continue
			}
		}
		add(&rest, s)
	}
	for _, s := range rest {
		for d := dayStart(s.from); d.Before(s.to); d = d.AddDate(0, 0, 1) {
			piece := span{from: maxTime(d, s.from), to: minTime(d.AddDate(0, 0, 1), s.to)}
			if _, ok := st.clean(src.table, DayID(d)); ok {
				add(&v.clean, piece)
			} else {
				add(&v.dirty, piece)
			}
		}
	}
	return v
}

// runsCond selects the rows of the given runs (day → run id) of a rollup
// table. Run ids are unique, so the days only serve partition pruning: on
// 18.16 a disjunction of (day AND run_id) pairs is evaluated row by row
// and costs several times this IN list (50 ms against 15 ms over 30 days).
// Run ids are hex made by the janitor, safe to splice.
func runsCond(runs map[uint32]string) string {
	var first, last uint32
	ids := make([]string, 0, len(runs))
	for d, run := range runs {
		if first == 0 || d < first {
			first = d
		}
		last = max(last, d)
		ids = append(ids, "'"+run+"'")
	}
	sort.Strings(ids)
	return fmt.Sprintf("day >= toDate('%s') AND day <= toDate('%s') AND run_id IN (%s)",
		DayStart(first).Format("2006-01-02"), DayStart(last).Format("2006-01-02"), strings.Join(ids, ", "))
}

// Counted sums src's rows (bucket, dim, value) over r, exactly given st:
// from hourly_rollup where st has a valid run, from the events elsewhere.
// It hands each (bucket, dim, total) to emit, after reset (which may run
// more than once). Without a step everything is one bucket, 0.
func (s *Store) Counted(ctx context.Context, st *Snapshot, tenant string, r Range, src Source, step Step, reset func(), emit func(b int64, dim string, v int64)) error {
	rawBucket, rolledBucket := bucketExprs(step)
	v := st.view(src, r)
	var branches []string
	var args []any
	if len(v.rolledSpan) > 0 {
		hours := make([]string, len(v.rolledSpan))
		for i, s := range v.rolledSpan {
			hours[i] = fmt.Sprintf("(hour >= toDateTime(%d) AND hour < toDateTime(%d))", s.from.Unix(), s.to.Unix())
		}
		branches = append(branches, fmt.Sprintf(`SELECT %s AS b, dim, value AS v FROM hourly_rollup
			WHERE tenant = ? AND metric = '%s' AND %s AND (%s)`, rolledBucket, src.metric, runsCond(v.rolled), strings.Join(hours, " OR ")))
		args = append(args, tenant)
	}
	for _, b := range []struct {
		dirty bool
		spans []span
	}{{false, v.clean}, {true, v.dirty}} {
		if len(b.spans) == 0 {
			continue
		}
		branches = append(branches, strings.NewReplacer("{time}", cond(b.spans), "{bucket}", rawBucket).Replace(src.raw(b.dirty)))
		args = append(args, tenant)
	}
	reset()
	if len(branches) == 0 {
		return nil
	}
	query := `SELECT b, dim, sum(v) FROM (` + strings.Join(branches, "\nUNION ALL\n") + `) GROUP BY b, dim`
	return s.query(ctx, query, args, func(rows driver.Rows) error {
		reset()
		for rows.Next() {
			var b uint32
			var dim string
			var val int64
			if err := rows.Scan(&b, &dim, &val); err != nil {
				return err
			}
			emit(int64(b), dim, val)
		}
		return nil
	})
}

// FirstResponses are the first-response figures of the conversations
// started in a range: exact quantiles (quantileExact) in milliseconds, nil
// without samples.
type FirstResponses struct {
	P50, P95 *uint64
	Samples  uint64
}

// FirstResponses reads the first-response figures for the conversations
// started in r: from first_responses for the days the janitor finalized
// (and whose sources are unchanged), from conversation_firsts for the
// others. A sample is the time from the first customer message to the
// first reply, if that came within FirstResponseWindow.
func (s *Store) FirstResponses(ctx context.Context, st *Snapshot, tenant string, r Range) (FirstResponses, error) {
	var out FirstResponses
	from, to := r.ms()
	final := map[uint32]string{}
	var finalDays []string
	var rawFrom uint32
	for d := dayStart(r.From); d.Before(r.To); d = d.AddDate(0, 0, 1) {
		id := DayID(d)
		if run, ok := st.firstsRun(id); ok {
			final[id] = run
			finalDays = append(finalDays, fmt.Sprint(id))
			continue
		}
		if rawFrom == 0 {
			rawFrom = id
		}
	}
	var branches []string
	var args []any
	if len(final) > 0 {
		branches = append(branches, `SELECT started_ms AS st, first_in_ms AS fi, first_out_ms AS fo FROM first_responses
			WHERE tenant = ? AND `+runsCond(final))
		args = append(args, tenant)
	}
	if rawFrom != 0 {
		// The days not finalized: conversations started there, from the
		// rows of the day before on; those of a finalized day are left
		// out by their start day.
		notFinal := ""
		if len(finalDays) > 0 {
			notFinal = " AND NOT has([" + strings.Join(finalDays, ", ") + "], toYYYYMMDD(toDateTime(intDiv(st, 1000), 'UTC')))"
		}
		branches = append(branches, fmt.Sprintf(`SELECT st, fi, fo FROM (
			SELECT conversation_id, min(started_ms) AS st, min(first_in_ms) AS fi, min(first_out_ms) AS fo
			FROM conversation_firsts WHERE tenant = ? AND day >= toDate('%s') - 1
			GROUP BY conversation_id) WHERE st >= %d AND st < %d%s`,
			DayStart(rawFrom).Format("2006-01-02"), max(from, DayStart(rawFrom).UnixMilli()), to, notFinal))
		args = append(args, tenant)
	}
	query := fmt.Sprintf(`SELECT quantilesExact(0.5, 0.95)(fo - fi), count() FROM (%s)
		WHERE st >= %d AND st < %d AND fi != %s AND fo != %s AND fo >= fi AND fo - fi < %d`,
		strings.Join(branches, "\nUNION ALL\n"), from, to, noTime, noTime, FirstResponseWindow.Milliseconds())
	err := s.query(ctx, query, args, func(rows driver.Rows) error {
		out = FirstResponses{}
		for rows.Next() {
			var qs []uint64
			var n uint64
			if err := rows.Scan(&qs, &n); err != nil {
				return err
			}
			out.Samples = n
			if n > 0 && len(qs) == 2 {
				p50, p95 := qs[0], qs[1]
				out.P50, out.P95 = &p50, &p95
			}
		}
		return nil
	})
	return out, err
}
