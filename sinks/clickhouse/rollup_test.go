package clickhouse

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/parleyhq/parley/wire"
)

func TestRollUpClosedDays(t *testing.T) {
	s := openStore(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	now := time.Date(2024, 4, 10, 15, 0, 0, 0, time.UTC)
	day := func(n int) time.Time { return now.AddDate(0, 0, -n).Truncate(24 * time.Hour).Add(10 * time.Hour) }
	// Every kind on four days (3, 2 and 1 days ago, and today), one
	// conversation started each day; the oldest day written twice.
	for _, n := range []int{3, 2, 1, 0} {
		evs := kindEvents(fmt.Sprintf("d%d", n), "acme", "+447700900001", day(n).UnixMilli())
		evs = append(evs, &wire.Event{Id: fmt.Sprintf("d%d-start", n), Tenant: "acme", Phone: "+447700900001", AtMs: day(n).UnixMilli() - 5,
			Kind: &wire.Event_Conversation{Conversation: &wire.ConversationChange{ConversationId: fmt.Sprintf("c-d%d", n), Change: "started"}}})
		if err := s.WriteEvents(ctx, evs); err != nil {
			t.Fatal(err)
		}
		if n == 3 {
			if err := s.WriteEvents(ctx, evs); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Every day rolls up, compacted or not (today up to 15:00, after
	// merging today's partitions); first responses are final for the days
	// whose next day has ended (3 and 2 days ago).
	runs, err := s.RollUp(ctx, now)
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(runKeys(runs)); got != "[hourly20240407 first_responses20240407 hourly20240408 first_responses20240408 hourly20240409 hourly20240410]" {
		t.Fatalf("first run: %s", got)
	}
	if runs[5].Until != now.Truncate(time.Hour) {
		t.Fatalf("today's run until %v", runs[5].Until)
	}
	// Compacting the closed days merges their parts: the data are the
	// same, and so the rollups stay valid.
	if _, err := s.CompactClosedPartitions(ctx, now); err != nil {
		t.Fatal(err)
	}
	if again, err := s.RollUp(ctx, now); err != nil || len(again) != 0 {
		t.Fatalf("after compaction: %v, %v", again, err)
	}
	// The oldest day, written twice, is rolled up once: 2 messages (in
	// and out) at 10:00, one start and one handoff, 321 prompt tokens.
	var got string
	if err = s.Conn().QueryRow(ctx, `SELECT arrayStringConcat(groupArray(concat(metric, ':', dim, '=', toString(value))), ' ') FROM (
		SELECT metric, dim, value FROM hourly_rollup WHERE day = toDate('2024-04-07') AND run_id IN (SELECT run_id FROM rollup_runs FINAL) ORDER BY metric, dim)`).Scan(&got); err != nil {
		t.Fatal(err)
	}
	if want := "auth:code_sent=1 conversations:handoff=1 conversations:started=1 messages:in/booking=1 messages:out/booking=1 usage:llm_prompt_tokens=321"; got != want {
		t.Fatalf("hourly rollup of 04-07:\n got %s\nwant %s", got, want)
	}
	var firsts, started, fi, fo uint64
	if err := s.Conn().QueryRow(ctx, `SELECT count(), any(started_ms), any(first_in_ms), any(first_out_ms) FROM first_responses
		WHERE day = toDate('2024-04-07') AND run_id IN (SELECT run_id FROM rollup_runs FINAL)`).Scan(&firsts, &started, &fi, &fo); err != nil {
		t.Fatal(err)
	}
	at := uint64(day(3).UnixMilli())
	if firsts != 1 || started != at-5 || fi != at-40 || fo != at {
		t.Fatalf("first responses of 04-07: %d rows, %d %d %d", firsts, started, fi, fo)
	}

	// Events today after 15:00 leave today's rollup valid; a late event
	// on 04-08 invalidates its hourly rollup and the first responses of
	// the days around it, which roll up again; the superseded runs' rows
	// are deleted.
	todays, err := s.RollupRuns(ctx, RollupHourly, 20240410, 20240410)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.WriteEvents(ctx, kindEvents("after", "acme", "+447700900003", now.Add(10*time.Minute).UnixMilli())); err != nil {
		t.Fatal(err)
	}
	valid := func(run RollupRun) bool {
		t.Helper()
		pm, err := s.PartitionsOf(ctx, HourlySources...)
		if err != nil {
			t.Fatal(err)
		}
		rows, err := s.RowsBefore(ctx, pm, run.Day, run.Until)
		if err != nil {
			t.Fatal(err)
		}
		return HourlyValid(run, pm, rows)
	}
	if !valid(todays[20240410]) {
		t.Fatal("today's rollup invalid after events past its end")
	}
	// Merging today's parts (the rolled-up one with the new one) changes
	// nothing.
	if err := s.Conn().Exec(ctx, "OPTIMIZE TABLE messages PARTITION 20240410 FINAL"); err != nil {
		t.Fatal(err)
	}
	if !valid(todays[20240410]) {
		t.Fatal("today's rollup invalid after a merge")
	}
	late := kindEvents("late", "acme", "+447700900002", day(2).UnixMilli()+3600_000)
	if err := s.WriteEvents(ctx, late); err != nil {
		t.Fatal(err)
	}
	runs, err = s.RollUp(ctx, now)
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(runKeys(runs)); got != "[first_responses20240407 hourly20240408 first_responses20240408]" {
		t.Fatalf("after a late event: %s", got)
	}
	// A late event today, before 15:00: today's rollup is no longer
	// exact.
	if err := s.WriteEvents(ctx, kindEvents("late-today", "acme", "+447700900004", now.Add(-2*time.Hour).UnixMilli())); err != nil {
		t.Fatal(err)
	}
	if valid(todays[20240410]) {
		t.Fatal("today's rollup still valid after a late event")
	}
	if err := s.waitMutations(ctx, []string{TableHourly, TableFirstResponses}); err != nil {
		t.Fatal(err)
	}
	var stale uint64
	if err := s.Conn().QueryRow(ctx, "SELECT count() FROM hourly_rollup WHERE run_id NOT IN (SELECT run_id FROM rollup_runs FINAL)").Scan(&stale); err != nil {
		t.Fatal(err)
	}
	if stale != 0 {
		t.Fatalf("%d rows of superseded runs left", stale)
	}
}

func runKeys(runs []RollupRun) []string {
	var out []string
	for _, r := range runs {
		out = append(out, fmt.Sprint(r.Kind, r.Day))
	}
	return out
}

func TestDataVersion(t *testing.T) {
	cases := []struct{ names, want string }{
		{"20240407_3_3_0", "3-3-0"},
		{"20240407_3_3_0,20240407_5_5_0", "3-5-0"},
		{"20240407_3_5_1", "3-5-0"},                    // the merge of the two: same data
		{"20240407_3_5_1_7,20240407_8_8_0", "3-8-7"},   // mutated, then an insert
		{"20240407_3_5_1_7,20240407_8_8_0_9", "3-8-9"}, // and a second mutation
	}
	for _, c := range cases {
		if got := (Partition{PartNames: c.names}).DataVersion(); got != c.want {
			t.Errorf("%s: %s, want %s", c.names, got, c.want)
		}
	}
}
