package clickhouse

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Rollups: on 18.16 the way to answer "the last 30 days" in milliseconds
// is not to read 30 days of rows. The janitor rolls every day up, exactly,
// into hourly_rollup (counts and sums per tenant and hour: the closed
// days, and today's hours that have ended) and first_responses (one row
// per conversation, once its day is final). Readers use a rollup only
// while it is still exact for the data now in its source partitions, and
// read the rest from the events.
//
// An hourly run is computed from partitions merged into one part (no
// duplicates), and records, per source table, how many rows the day held
// before the run's `until` and the latest mutation. It is still exact
// while both are unchanged. Why that suffices: rows are only ever added
// (an insert: a new event, or a replayed duplicate) or removed (a merge
// collapsing duplicates, which drops no event; a mutation such as a GDPR
// erasure, which raises the mutation number). With no mutation, the
// distinct events can only have grown; with no duplicates at the start,
// an unchanged row count then means no event was added either. Merges,
// which ClickHouse runs at any time and which also join the rolled-up
// part with the sink's new parts, do not matter. A closed day's row count
// is in system.parts; today's, before until, takes one count() of the
// rows since midnight, which the primary key (tenant, at) keeps cheap.

// Rollup kinds, as rollup_runs records them.
const (
	RollupHourly         = "hourly"
	RollupFirstResponses = "first_responses"
)

// HourlySources are the tables hourly_rollup is computed from.
var HourlySources = []string{TableMessages, TableUsage, TableConversations, TableAuthEvents}

// FirstResponseWindow is how long after the first customer message a
// reply counts as the first response: WhatsApp's customer-service window.
// It makes a day's first responses final once the next day has ended.
const FirstResponseWindow = 24 * time.Hour

// PartInfo is one active part.
type PartInfo struct {
	Name               string
	MinBlock, MaxBlock int64
	Level              uint32
	Mutation           int64
	// MinTime is the earliest `at` in the part (0 where unknown).
	MinTime time.Time
}

// parsePart reads blocks and mutation from a part name.
func parsePart(name string) (PartInfo, bool) {
	f := strings.Split(name, "_")
	if len(f) != 4 && len(f) != 5 {
		return PartInfo{}, false
	}
	p := PartInfo{Name: name}
	var err error
	if p.MinBlock, err = strconv.ParseInt(f[1], 10, 64); err != nil {
		return p, false
	}
	if p.MaxBlock, err = strconv.ParseInt(f[2], 10, 64); err != nil {
		return p, false
	}
	if len(f) == 5 {
		if p.Mutation, err = strconv.ParseInt(f[4], 10, 64); err != nil {
			return p, false
		}
	}
	return p, true
}

// PartitionMap is table → daily partition id → partition.
type PartitionMap map[string]map[uint32]Partition

// PartitionsOf lists the active partitions of tables, with their parts,
// in one query.
func (s *Store) PartitionsOf(ctx context.Context, tables ...string) (PartitionMap, error) {
	rows, err := s.conn.Query(ctx, `SELECT table, partition, name, level, rows, toUInt32(min_time)
		FROM system.parts WHERE database = currentDatabase() AND has(?, table) AND active`, tables)
	if err != nil {
		return nil, fmt.Errorf("clickhouse: partitions: %w", err)
	}
	defer rows.Close()
	pm := PartitionMap{}
	for _, t := range tables {
		pm[t] = map[uint32]Partition{}
	}
	for rows.Next() {
		var (
			table, id, name string
			level           uint32
			n               uint64
			minTime         uint32
		)
		if err := rows.Scan(&table, &id, &name, &level, &n, &minTime); err != nil {
			return nil, fmt.Errorf("clickhouse: partitions: %w", err)
		}
		day, err := strconv.ParseUint(strings.Trim(id, "'"), 10, 32)
		if err != nil {
			continue
		}
		info, ok := parsePart(name)
		if !ok {
			continue
		}
		info.MinTime = time.Unix(int64(minTime), 0).UTC()
		info.Level = level
		p := pm[table][uint32(day)]
		p.Table, p.ID = table, uint32(day)
		if p.Parts == 0 || level < p.MinLevel {
			p.MinLevel = level
		}
		p.Parts++
		p.Rows += n
		p.Infos = append(p.Infos, info)
		pm[table][uint32(day)] = p
	}
	for _, days := range pm {
		for d, p := range days {
			sort.Slice(p.Infos, func(i, j int) bool { return p.Infos[i].MinBlock < p.Infos[j].MinBlock })
			names := make([]string, len(p.Infos))
			for i, info := range p.Infos {
				names[i] = info.Name
			}
			sort.Strings(names)
			p.PartNames = strings.Join(names, ",")
			days[d] = p
		}
	}
	return pm, rows.Err()
}

// DayID is the daily partition id (YYYYMMDD) of t's UTC day.
func DayID(t time.Time) uint32 { return yyyymmdd(t) }

// DayStart is the UTC midnight that starts day id.
func DayStart(id uint32) time.Time { return Partition{ID: id}.Day() }

// addDays is the day id n days after id.
func addDays(id uint32, n int) uint32 { return yyyymmdd(DayStart(id).AddDate(0, 0, n)) }

// RollupRun is the recorded run of a rollup for a day.
type RollupRun struct {
	Kind   string
	Day    uint32
	Source string
	Until  time.Time
	RunID  string
}

// maxMutation is the latest mutation applied to a partition's parts.
func maxMutation(p Partition) int64 {
	var m int64
	for _, info := range p.Infos {
		m = max(m, info.Mutation)
	}
	return m
}

// dayEnd is the midnight that ends day.
func dayEnd(day uint32) time.Time { return DayStart(day).AddDate(0, 0, 1) }

// RowsBefore are the rows of each source table's partition of day before
// until (all of them for a closed day: from system.parts, no query).
func (s *Store) RowsBefore(ctx context.Context, pm PartitionMap, day uint32, until time.Time) (map[string]uint64, error) {
	out := map[string]uint64{}
	if !until.Before(dayEnd(day)) {
		for _, t := range HourlySources {
			out[t] = pm[t][day].Rows
		}
		return out, nil
	}
	branches := make([]string, len(HourlySources))
	for i, t := range HourlySources {
		branches[i] = fmt.Sprintf("SELECT '%s' AS t, count() AS n FROM %s WHERE at >= toDateTime(%d) AND at < toDateTime(%d)",
			t, t, DayStart(day).Unix(), until.Unix())
	}
	rows, err := s.conn.Query(ctx, strings.Join(branches, " UNION ALL "))
	if err != nil {
		return nil, fmt.Errorf("clickhouse: rows before %v: %w", until, err)
	}
	defer rows.Close()
	for rows.Next() {
		var t string
		var n uint64
		if err := rows.Scan(&t, &n); err != nil {
			return nil, err
		}
		out[t] = n
	}
	return out, rows.Err()
}

// hourlySource records what an hourly run rests on: per source table, the
// rows before until and the latest mutation ("messages=1200@0;...").
func hourlySource(pm PartitionMap, day uint32, rows map[string]uint64) string {
	parts := make([]string, len(HourlySources))
	for i, t := range HourlySources {
		parts[i] = fmt.Sprintf("%s=%d@%d", t, rows[t], maxMutation(pm[t][day]))
	}
	return strings.Join(parts, ";")
}

// HourlyValid reports whether an hourly run is still exact, given the
// partitions now and the rows now before its until (RowsBefore).
func HourlyValid(run RollupRun, pm PartitionMap, rows map[string]uint64) bool {
	return run.Source == hourlySource(pm, run.Day, rows)
}

// FirstResponsesSource is the identity of a day's source data for
// first_responses: the data versions of conversation_firsts of the day
// before, the day and the day after.
func FirstResponsesSource(pm PartitionMap, day uint32) string {
	parts := make([]string, 3)
	for i := range parts {
		d := addDays(day, i-1)
		if p, ok := pm[TableConversationFirsts][d]; ok {
			parts[i] = fmt.Sprintf("%d=%s", d, p.DataVersion())
		} else {
			parts[i] = fmt.Sprintf("%d=-", d)
		}
	}
	return strings.Join(parts, ";")
}

// RollupRuns reads the recorded runs of kind for the days [from, to].
func (s *Store) RollupRuns(ctx context.Context, kind string, from, to uint32) (map[uint32]RollupRun, error) {
	rows, err := s.conn.Query(ctx, fmt.Sprintf(`SELECT toYYYYMMDD(day), source, toUInt32(until), run_id FROM rollup_runs FINAL
		WHERE kind = ? AND day >= toDate('%s') AND day <= toDate('%s')`, DayStart(from).Format("2006-01-02"), DayStart(to).Format("2006-01-02")), kind)
	if err != nil {
		return nil, fmt.Errorf("clickhouse: rollup runs: %w", err)
	}
	defer rows.Close()
	out := map[uint32]RollupRun{}
	for rows.Next() {
		r := RollupRun{Kind: kind}
		var until uint32
		if err := rows.Scan(&r.Day, &r.Source, &until, &r.RunID); err != nil {
			return nil, fmt.Errorf("clickhouse: rollup runs: %w", err)
		}
		r.Until = time.Unix(int64(until), 0).UTC()
		out[r.Day] = r
	}
	return out, rows.Err()
}

// hourlyInsert computes one source table's hourly_rollup rows for the rows
// of a day before until. On a compacted partition (no duplicates, which
// is all RollUp records) plain count() and sum(); otherwise over distinct
// event ids (a usage sum per value times the distinct events carrying
// it).
func hourlyInsert(table string, clean bool) string {
	n := "uniqExact(event_id)"
	if clean {
		n = "count()"
	}
	const head = "INSERT INTO hourly_rollup (tenant, day, hour, metric, dim, value, run_id) "
	switch table {
	case TableMessages:
		return head + `SELECT tenant, toDate(hour), hour, 'messages', concat(toString(direction), '/', toString(query_type)), toInt64(` + n + `), '{run}'
			FROM (SELECT tenant, toStartOfHour(at) AS hour, direction, query_type, event_id FROM messages WHERE {time})
			GROUP BY tenant, hour, direction, query_type`
	case TableUsage:
		if clean {
			return head + `SELECT tenant, toDate(hour), hour, 'usage', toString(metric), toInt64(sum(value)), '{run}'
				FROM (SELECT tenant, toStartOfHour(at) AS hour, metric, value FROM usage WHERE {time})
				GROUP BY tenant, hour, metric`
		}
		return head + `SELECT tenant, toDate(hour), hour, 'usage', dim, toInt64(sum(v)), '{run}' FROM (
				SELECT tenant, hour, toString(metric) AS dim, value * toInt64(uniqExact(event_id)) AS v
				FROM (SELECT tenant, toStartOfHour(at) AS hour, metric, value, event_id FROM usage WHERE {time})
				GROUP BY tenant, hour, metric, value)
			GROUP BY tenant, hour, dim`
	case TableConversations:
		return head + `SELECT tenant, toDate(hour), hour, 'conversations', toString(change), toInt64(` + n + `), '{run}'
			FROM (SELECT tenant, toStartOfHour(at) AS hour, change, event_id FROM conversations WHERE {time})
			GROUP BY tenant, hour, change`
	default:
		return head + `SELECT tenant, toDate(hour), hour, 'auth', toString(event), toInt64(` + n + `), '{run}'
			FROM (SELECT tenant, toStartOfHour(at) AS hour, event, event_id FROM auth_events WHERE {time})
			GROUP BY tenant, hour, event`
	}
}

// firstResponsesInsert computes a day's first_responses rows: the
// conversations started that day, with their earliest customer message
// and reply over the day before, the day and the day after.
const firstResponsesInsert = `INSERT INTO first_responses (tenant, day, conversation_id, phone, started_ms, first_in_ms, first_out_ms, run_id)
	SELECT tenant, toDate('{date}'), conversation_id, any(phone), min(started_ms) AS st, min(first_in_ms), min(first_out_ms), '{run}'
	FROM conversation_firsts
	WHERE day >= toDate('{date}') - 1 AND day <= toDate('{date}') + 1
	GROUP BY tenant, conversation_id
	HAVING st >= {from_ms} AND st < {to_ms}`

// RollUp brings the rollups up to date at now: hourly_rollup for every
// day with events (today up to the last whole hour) whose recorded run is
// no longer exact or no longer reaches as far as it could, and
// first_responses for every day whose next day has ended too. Each run
// writes rows under a new run id and is recorded only if its sources
// still hold the same data afterwards, so its rows are never read
// otherwise. Superseded runs' rows are deleted afterwards.
func (s *Store) RollUp(ctx context.Context, now time.Time) ([]RollupRun, error) {
	today := yyyymmdd(now)
	pm, err := s.PartitionsOf(ctx, append(append([]string(nil), HourlySources...), TableConversationFirsts)...)
	if err != nil {
		return nil, err
	}
	days := map[uint32]bool{}
	for _, t := range HourlySources {
		for d := range pm[t] {
			if d <= today {
				days[d] = true
			}
		}
	}
	sorted := make([]uint32, 0, len(days))
	for d := range days {
		sorted = append(sorted, d)
	}
	sort.Slice(sorted, func(i, j int) bool { return sorted[i] < sorted[j] })
	if len(sorted) == 0 {
		return nil, nil
	}
	hourly, err := s.RollupRuns(ctx, RollupHourly, sorted[0], today)
	if err != nil {
		return nil, err
	}
	firsts, err := s.RollupRuns(ctx, RollupFirstResponses, sorted[0], today)
	if err != nil {
		return nil, err
	}
	var done []RollupRun
	for _, d := range sorted {
		until := DayStart(d).AddDate(0, 0, 1)
		if d == today {
			until = now.UTC().Truncate(time.Hour)
		}
		old, ok := hourly[d]
		valid := false
		if ok {
			rows, err := s.RowsBefore(ctx, pm, d, old.Until)
			if err != nil {
				return done, err
			}
			valid = HourlyValid(old, pm, rows)
		}
		if until.After(DayStart(d)) && (!valid || old.Until.Before(until)) {
			// Today is merged into one part first, so that the rows
			// before until hold no duplicates (see the top of the
			// file). Closed days were compacted before RollUp runs; one
			// that got late events since is compacted here too.
			if pm, err = s.compactDay(ctx, pm, d); err != nil {
				return done, err
			}
			run, err := s.rollUpHourly(ctx, pm, d, until)
			if err != nil {
				return done, err
			}
			if run != nil {
				done = append(done, *run)
			}
		}
		if addDays(d, 2) <= today {
			if src := FirstResponsesSource(pm, d); firsts[d].Source != src {
				run, err := s.rollUpFirsts(ctx, d, src)
				if err != nil {
					return done, err
				}
				if run != nil {
					done = append(done, *run)
				}
			}
		}
	}
	if len(done) > 0 {
		if err := s.deleteSupersededRuns(ctx); err != nil {
			return done, err
		}
	}
	return done, nil
}

func newRunID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// cleanBefore reports whether a partition's rows before until all lie in
// one merged part (no duplicates among them); later parts only hold rows
// from until on.
func cleanBefore(p Partition, until time.Time) bool {
	n := 0
	for _, info := range p.Infos {
		if info.MinTime.Before(until) {
			if info.Level == 0 {
				return false
			}
			n++
		}
	}
	return n <= 1
}

// sourcesClean reports whether every source partition of day is
// cleanBefore until.
func sourcesClean(pm PartitionMap, day uint32, until time.Time) bool {
	for _, t := range HourlySources {
		if !cleanBefore(pm[t][day], until) {
			return false
		}
	}
	return true
}

// rollUpHourly rolls a day up to until, from partitions that hold no
// duplicates before until. nil: they do not, or their rows before until
// changed under it (a late event); the next run tries again.
func (s *Store) rollUpHourly(ctx context.Context, pm PartitionMap, day uint32, until time.Time) (*RollupRun, error) {
	if !sourcesClean(pm, day, until) {
		return nil, nil
	}
	rows, err := s.RowsBefore(ctx, pm, day, until)
	if err != nil {
		return nil, err
	}
	// The count and the cleanliness must describe the same parts.
	if pm, err = s.PartitionsOf(ctx, append(append([]string(nil), HourlySources...), TableConversationFirsts)...); err != nil {
		return nil, err
	}
	if !sourcesClean(pm, day, until) {
		return nil, nil
	}
	run := RollupRun{Kind: RollupHourly, Day: day, Source: hourlySource(pm, day, rows), Until: until, RunID: newRunID()}
	cond := fmt.Sprintf("at >= toDateTime(%d) AND at < toDateTime(%d)", DayStart(day).Unix(), until.Unix())
	for _, t := range HourlySources {
		if _, ok := pm[t][day]; !ok {
			continue
		}
		stmt := strings.NewReplacer("{run}", run.RunID, "{time}", cond).Replace(hourlyInsert(t, true))
		if err := s.conn.Exec(ctx, stmt); err != nil {
			return nil, fmt.Errorf("clickhouse: hourly rollup of %s %d: %w", t, day, err)
		}
	}
	after, err := s.PartitionsOf(ctx, HourlySources...)
	if err != nil {
		return nil, err
	}
	rowsAfter, err := s.RowsBefore(ctx, after, day, until)
	if err != nil {
		return nil, err
	}
	if !HourlyValid(run, after, rowsAfter) || !sourcesClean(after, day, until) {
		s.log.Debug("clickhouse rollup sources changed while rolling up; left for the next run", "day", day)
		return nil, nil
	}
	return &run, s.recordRun(ctx, run)
}

// compactDay merges a day's source partitions that are not clean into one
// part each, and returns the partitions as they are then.
func (s *Store) compactDay(ctx context.Context, pm PartitionMap, day uint32) (PartitionMap, error) {
	merged := false
	for _, t := range HourlySources {
		if p, ok := pm[t][day]; ok && !p.Clean() {
			if err := s.conn.Exec(ctx, fmt.Sprintf("OPTIMIZE TABLE %s PARTITION %d FINAL", t, day)); err != nil {
				return pm, fmt.Errorf("clickhouse: optimize partition %d of %s: %w", day, t, err)
			}
			merged = true
		}
	}
	if !merged {
		return pm, nil
	}
	return s.PartitionsOf(ctx, append(append([]string(nil), HourlySources...), TableConversationFirsts)...)
}

// rollUpFirsts rolls up a final day's first responses.
func (s *Store) rollUpFirsts(ctx context.Context, day uint32, source string) (*RollupRun, error) {
	run := RollupRun{Kind: RollupFirstResponses, Day: day, Source: source, Until: DayStart(day).AddDate(0, 0, 1), RunID: newRunID()}
	stmt := strings.NewReplacer("{run}", run.RunID, "{date}", DayStart(day).Format("2006-01-02"),
		"{from_ms}", fmt.Sprint(DayStart(day).UnixMilli()), "{to_ms}", fmt.Sprint(DayStart(day).AddDate(0, 0, 1).UnixMilli())).Replace(firstResponsesInsert)
	if err := s.conn.Exec(ctx, stmt); err != nil {
		return nil, fmt.Errorf("clickhouse: first responses rollup of %d: %w", day, err)
	}
	after, err := s.PartitionsOf(ctx, TableConversationFirsts)
	if err != nil {
		return nil, err
	}
	if FirstResponsesSource(after, day) != source {
		return nil, nil
	}
	return &run, s.recordRun(ctx, run)
}

func (s *Store) recordRun(ctx context.Context, run RollupRun) error {
	b, err := s.conn.PrepareBatch(ctx, "INSERT INTO rollup_runs (kind, day, source, until, run_id, rolled_at)")
	if err != nil {
		return err
	}
	if err := b.Append(run.Kind, DayStart(run.Day), run.Source, run.Until, run.RunID, time.Now().UTC()); err != nil {
		_ = b.Abort()
		return err
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("clickhouse: record %s rollup of %d: %w", run.Kind, run.Day, err)
	}
	s.log.Debug("clickhouse day rolled up", "kind", run.Kind, "day", run.Day, "until", run.Until, "run", run.RunID)
	return nil
}

// deleteSupersededRuns deletes the rollup rows of runs that were recorded
// and then superseded by a newer run of their day. Readers never read
// them; this only frees the space. Runs never recorded (their sources
// changed while they ran) are left: a janitor in another process may be
// about to record its run, and a few stray rows cost nothing.
func (s *Store) deleteSupersededRuns(ctx context.Context) error {
	for _, c := range []struct{ table, kind string }{{TableHourly, RollupHourly}, {TableFirstResponses, RollupFirstResponses}} {
		rows, err := s.conn.Query(ctx, `SELECT run_id FROM rollup_runs WHERE kind = ?
			AND run_id NOT IN (SELECT run_id FROM rollup_runs FINAL WHERE kind = ?)`, c.kind, c.kind)
		if err != nil {
			return fmt.Errorf("clickhouse: superseded %s runs: %w", c.kind, err)
		}
		var old []string
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return err
			}
			if _, err := hex.DecodeString(id); err != nil {
				rows.Close()
				return fmt.Errorf("clickhouse: unexpected run id %q", id)
			}
			old = append(old, id)
		}
		rows.Close()
		if len(old) == 0 {
			continue
		}
		// Run ids are hex made here, safe to splice; a mutation's WHERE is
		// best kept free of subqueries on old servers.
		list := "['" + strings.Join(old, "', '") + "']"
		var n uint64
		if err := s.conn.QueryRow(ctx, fmt.Sprintf("SELECT count() FROM %s WHERE has(%s, run_id)", c.table, list)).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			continue
		}
		if err := s.conn.Exec(ctx, fmt.Sprintf("ALTER TABLE %s DELETE WHERE has(%s, run_id)", c.table, list)); err != nil {
			return fmt.Errorf("clickhouse: delete superseded %s runs: %w", c.kind, err)
		}
	}
	return nil
}
