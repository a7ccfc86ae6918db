package clickhouse

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/parleyhq/parley/wire"
)

func TestDropExpiredPartitions(t *testing.T) {
	base := openStore(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// A store of the same database with a 30-day retention: on 18.16 no
	// TTL is set, so the janitor is the retention.
	s, err := Open(ctx, Config{Addr: base.cfg.Addr, Database: base.cfg.Database, RetentionDays: 30, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	now := time.Date(2024, 4, 10, 15, 0, 0, 0, time.UTC)
	// Days 45, 31, 30 and 29 ago, and today: every kind each day.
	ages := []int{45, 31, 30, 29, 0}
	for _, age := range ages {
		at := now.AddDate(0, 0, -age).Add(-time.Hour).UnixMilli()
		if err := s.WriteEvents(ctx, kindEvents(fmt.Sprintf("age%d", age), "acme", "+447700900001", at)); err != nil {
			t.Fatal(err)
		}
	}
	dropped, err := s.DropExpiredPartitions(ctx, now)
	if err != nil {
		t.Fatal(err)
	}
	// now - 30 days = 2024-03-11 15:00. The day 30 days ago
	// (2024-03-11) still holds rows younger than the retention, so it
	// stays; 31 (03-10, ended 03-11 00:00) and 45 days go.
	wantGone := map[uint32]bool{20240310: true, 20240225: true}
	got := map[string][]uint32{}
	for _, p := range dropped {
		if !wantGone[p.ID] {
			t.Errorf("dropped %s partition %d", p.Table, p.ID)
		}
		got[p.Table] = append(got[p.Table], p.ID)
	}
	// (The rollups have no rows here: nothing rolled up.)
	for _, table := range append(append([]string(nil), EventTables...), TableConversationFirsts) {
		if len(got[table]) != 2 {
			t.Errorf("%s: dropped %v, want 20240225 and 20240310", table, got[table])
		}
		parts, err := s.Partitions(ctx, table)
		if err != nil {
			t.Fatal(err)
		}
		var ids []uint32
		for _, p := range parts {
			ids = append(ids, p.ID)
		}
		if want := []uint32{20240311, 20240312, 20240410}; !slices.Equal(ids, want) {
			t.Errorf("%s keeps partitions %v, want %v", table, ids, want)
		}
	}
	// The audit table does not expire.
	if err := s.WriteAudit(ctx, AuditRecord{ID: "a1", At: now.AddDate(-1, 0, 0), Action: "forget", Tenant: "acme", Status: "done"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.DropExpiredPartitions(ctx, now); err != nil {
		t.Fatal(err)
	}
	var audits uint64
	if err := s.Conn().QueryRow(ctx, "SELECT count() FROM audit").Scan(&audits); err != nil || audits != 1 {
		t.Fatalf("audit rows %d (%v), want 1", audits, err)
	}

	// No retention: nothing is dropped.
	if dropped, err := base.DropExpiredPartitions(ctx, now.AddDate(1, 0, 0)); err != nil || len(dropped) != 0 {
		t.Fatalf("without retention: dropped %v, %v", dropped, err)
	}
}

func TestCompactClosedPartitionsRemovesDuplicates(t *testing.T) {
	s := openStore(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	now := time.Date(2024, 4, 10, 15, 0, 0, 0, time.UTC)
	yesterday := now.AddDate(0, 0, -1).UnixMilli()
	evs := makeEventsAt("c", 300, yesterday)
	// Three inserts of overlapping slices, and a batch holding the same
	// event twice: a single level-0 part with a duplicate inside.
	for _, part := range [][]*wire.Event{evs[:200], evs[100:], append([]*wire.Event{evs[0]}, evs[:50]...)} {
		if err := s.WriteEvents(ctx, part); err != nil {
			t.Fatal(err)
		}
	}
	today := makeEventsAt("t", 30, now.UnixMilli())
	for range 2 {
		if err := s.WriteEvents(ctx, today); err != nil {
			t.Fatal(err)
		}
	}
	if c := count(t, s); c.distinct != 330 || c.raw <= 330 {
		t.Fatalf("before: %+v", c)
	}
	if _, err := s.CompactClosedPartitions(ctx, now); err != nil {
		t.Fatal(err)
	}
	for _, table := range []string{TableMessages, TableAuthEvents} {
		parts, err := s.Partitions(ctx, table)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range parts {
			if p.ID < 20240410 && !p.Clean() {
				t.Errorf("%s %d not clean after compaction: %+v", table, p.ID, p)
			}
			if p.ID == 20240410 && p.Clean() {
				t.Errorf("%s: today's partition was compacted: %+v", table, p)
			}
		}
		// Yesterday is exact without FINAL.
		var raw, distinct uint64
		if err := s.Conn().QueryRow(ctx, "SELECT count(), uniqExact(event_id) FROM "+table+" WHERE toYYYYMMDD(at) < 20240410").Scan(&raw, &distinct); err != nil {
			t.Fatal(err)
		}
		if raw != distinct {
			t.Errorf("%s: %d rows for %d events after compaction", table, raw, distinct)
		}
	}
	// A partition that is already clean is left alone.
	again, err := s.CompactClosedPartitions(ctx, now)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range again {
		if p.Table == TableMessages || p.Table == TableAuthEvents {
			t.Errorf("compacted a clean partition again: %+v", p)
		}
	}
}

// makeEventsAt is makeEvents starting at atMs, 10 ms apart, all on one
// day when atMs is not close to midnight.
func makeEventsAt(prefix string, n int, atMs int64) []*wire.Event {
	evs := makeEvents(prefix, n)
	for i, ev := range evs {
		ev.AtMs = atMs + int64(i)*10
		if m := ev.GetMessage(); m != nil {
			m.ProviderAtMs = ev.AtMs - 3
		}
	}
	return evs
}
