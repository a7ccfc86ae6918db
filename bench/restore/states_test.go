package main

import (
	"testing"
	"time"

	"github.com/parleyhq/parley/conversation"
)

// TestBuild checks the dataset: every final state decodes signed in, the
// overwritten sessions' early states come first, the erased keys end in a
// tombstone.
func TestBuild(t *testing.T) {
	now := time.Now()
	ds, err := build(1000, 0.1, 0.01, now)
	if err != nil {
		t.Fatal(err)
	}
	if ds.sessions != 1000 || ds.overwrites != 100 || ds.erased != 10 {
		t.Fatalf("sessions %d overwrites %d erased %d", ds.sessions, ds.overwrites, ds.erased)
	}
	if len(ds.records) != 1000+100+2*10 {
		t.Fatalf("%d records", len(ds.records))
	}
	last := map[string][]byte{}
	for _, r := range ds.records {
		last[string(r.key)] = r.value
	}
	live := 0
	for k, v := range last {
		if v == nil {
			continue
		}
		live++
		var s conversation.State
		if err := s.UnmarshalBinary(v); err != nil {
			t.Fatalf("%s: %v", k, err)
		}
		if !s.Authenticated(now) || s.ProfileID() == "" {
			t.Fatalf("%s: not signed in (phase %v)", k, s.Phase())
		}
	}
	if live != 1000 {
		t.Fatalf("%d live keys", live)
	}
	var early conversation.State
	if err := early.UnmarshalBinary(ds.records[0].value); err != nil || early.Phase() != conversation.PhaseAwaitingCode {
		t.Fatalf("first record: %v, phase %v", err, early.Phase())
	}
}

func BenchmarkSession(b *testing.B) {
	g := newGen(time.Now())
	size := 0
	for i := 0; b.Loop(); i++ {
		_, f, err := g.session(i)
		if err != nil {
			b.Fatal(err)
		}
		size += len(f)
	}
	b.ReportMetric(float64(size)/float64(b.N), "B/state")
}
