package clickhouse

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Partition is one partition of a table as system.parts shows it.
type Partition struct {
	Table string
	// ID is the partition value: YYYYMMDD for the daily tables.
	ID       uint32
	Parts    int
	MinLevel uint32
	Rows     uint64
	// PartNames are the active parts, sorted and comma-joined. Parts are
	// immutable and their names never reused, so an unchanged PartNames
	// means unchanged data.
	PartNames string
	// Infos are the parts (PartitionsOf only).
	Infos []PartInfo
}

// Clean reports whether the partition is a single merged part. A
// ReplacingMergeTree merge keeps one row per sorting key, and a replayed
// event always lands in the partition of its original, so such a
// partition holds no duplicate rows and plain count() over it is exact.
// A level-0 part is an insert that was never merged: it may hold the same
// event twice (a batch that contained a redelivered record).
func (p Partition) Clean() bool { return p.Parts == 1 && p.MinLevel > 0 }

// DataVersion identifies the partition's data regardless of how it is
// split into parts: the range of insert blocks its parts cover and the
// latest mutation applied. A merge keeps it; an insert (a new block), a
// mutation (ALTER DELETE) or a drop changes it. Part names are
// partition_minblock_maxblock_level[_mutation].
func (p Partition) DataVersion() string {
	var lo, hi, mut int64 = -1, -1, 0
	for _, name := range strings.Split(p.PartNames, ",") {
		f := strings.Split(name, "_")
		if len(f) < 4 {
			return p.PartNames
		}
		a, err1 := strconv.ParseInt(f[len(f)-3-btoi(len(f) == 5)], 10, 64)
		b, err2 := strconv.ParseInt(f[len(f)-2-btoi(len(f) == 5)], 10, 64)
		if err1 != nil || err2 != nil {
			return p.PartNames
		}
		if len(f) == 5 {
			m, err := strconv.ParseInt(f[4], 10, 64)
			if err != nil {
				return p.PartNames
			}
			mut = max(mut, m)
		}
		if lo < 0 || a < lo {
			lo = a
		}
		hi = max(hi, b)
	}
	return fmt.Sprintf("%d-%d-%d", lo, hi, mut)
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// Day is the partition's day, for the daily tables.
func (p Partition) Day() time.Time {
	return time.Date(int(p.ID/10000), time.Month(p.ID/100%100), int(p.ID%100), 0, 0, 0, 0, time.UTC)
}

// yyyymmdd is the daily partition id of t.
func yyyymmdd(t time.Time) uint32 {
	t = t.UTC()
	return uint32(t.Year()*10000 + int(t.Month())*100 + t.Day())
}

// Partitions lists the active partitions of a table of this database, by
// day (PartitionsOf for one table).
func (s *Store) Partitions(ctx context.Context, table string) ([]Partition, error) {
	pm, err := s.PartitionsOf(ctx, table)
	if err != nil {
		return nil, err
	}
	out := make([]Partition, 0, len(pm[table]))
	for _, p := range pm[table] {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// DropExpiredPartitions drops the daily partitions of every expiring table
// whose whole day is older than Config.RetentionDays at now: the day
// ended at or before now minus the retention. Data is therefore kept at
// least the retention and at most a day longer. It is the retention on
// servers without TTL (18.16), and on servers with TTL it frees whole days
// at once instead of waiting for TTL merges. A zero retention drops
// nothing.
func (s *Store) DropExpiredPartitions(ctx context.Context, now time.Time) ([]Partition, error) {
	days := s.cfg.RetentionDays
	if days <= 0 {
		return nil, nil
	}
	// A partition D is expired when D+1 (its end) <= now - retention,
	// that is D < the day of (now - retention).
	cutoff := yyyymmdd(now.UTC().AddDate(0, 0, -days))
	var dropped []Partition
	for _, table := range sortedKeys(retentionTables) {
		parts, err := s.Partitions(ctx, table)
		if err != nil {
			return dropped, err
		}
		for _, p := range parts {
			if p.ID >= cutoff {
				continue
			}
			// The id is a number we parsed: safe to splice, and DDL has
			// no bind parameters.
			if err := s.conn.Exec(ctx, fmt.Sprintf("ALTER TABLE %s DROP PARTITION %d", table, p.ID)); err != nil {
				return dropped, fmt.Errorf("clickhouse: drop partition %d of %s: %w", p.ID, table, err)
			}
			dropped = append(dropped, p)
			s.log.Info("clickhouse partition dropped by retention", "table", table, "partition", p.ID, "rows", p.Rows, "retention_days", days)
		}
	}
	return dropped, nil
}

// compactTables are the tables whose closed days the janitor merges into
// one part: the ReplacingMergeTrees, so that their old days hold no
// duplicates. (conversation_firsts needs no compaction: min() does not
// mind duplicates; merging it would only change its parts and so make the
// first responses of the days around roll up again.)
var compactTables = EventTables

// CompactClosedPartitions merges every partition of a day before now's
// (UTC) that is not yet Clean into a single part (OPTIMIZE ... FINAL),
// which removes its duplicate rows for good. Analytics then counts those
// days without FINAL, which on 18.16 is ten to thirty times faster. A
// late event (the sink catching up) makes a day dirty again; the next run
// compacts it again. Today's partition is left to background merges and
// read with FINAL.
func (s *Store) CompactClosedPartitions(ctx context.Context, now time.Time) ([]Partition, error) {
	today := yyyymmdd(now)
	var done []Partition
	for _, table := range compactTables {
		parts, err := s.Partitions(ctx, table)
		if err != nil {
			return done, err
		}
		for _, p := range parts {
			if p.ID >= today || p.Clean() {
				continue
			}
			start := time.Now()
			if err := s.conn.Exec(ctx, fmt.Sprintf("OPTIMIZE TABLE %s PARTITION %d FINAL", table, p.ID)); err != nil {
				return done, fmt.Errorf("clickhouse: optimize partition %d of %s: %w", p.ID, table, err)
			}
			done = append(done, p)
			s.log.Debug("clickhouse partition compacted", "table", table, "partition", p.ID, "parts", p.Parts, "rows", p.Rows, "took", time.Since(start))
		}
	}
	return done, nil
}

// JanitorOptions tune RunJanitor.
type JanitorOptions struct {
	// Every is the pause between runs. Default 10 minutes.
	Every time.Duration
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// RunJanitor drops expired partitions, compacts closed days and rolls
// them up, at once and then every o.Every, until ctx ends. Errors are logged and retried
// at the next run: nothing it does is urgent. Run it in one process of a
// deployment (several are harmless, only wasteful: each rollup run is
// recorded under its own id, and readers read only the recorded one).
func (s *Store) RunJanitor(ctx context.Context, o JanitorOptions) {
	if o.Every <= 0 {
		o.Every = 10 * time.Minute
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := o.Now()
		if _, err := s.DropExpiredPartitions(ctx, now); err != nil && ctx.Err() == nil {
			s.log.Warn("clickhouse janitor: retention", "err", err)
		}
		if _, err := s.CompactClosedPartitions(ctx, now); err != nil && ctx.Err() == nil {
			s.log.Warn("clickhouse janitor: compaction", "err", err)
		}
		if _, err := s.RollUp(ctx, now); err != nil && ctx.Err() == nil {
			s.log.Warn("clickhouse janitor: rollups", "err", err)
		}
		t.Reset(o.Every)
	}
}
