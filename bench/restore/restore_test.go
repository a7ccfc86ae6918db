package main

import (
	"io"
	"os"
	"slices"
	"testing"
	"time"
)

// TestMain lets the test binary serve as the bench's child processes
// (broker, restoring node), which run re-executes with -role.
func TestMain(m *testing.M) {
	if slices.Contains(os.Args[1:], "-role") {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestRunSmall runs every phase but the end-to-end one on a few thousand
// sessions: each restore reads every record and holds every session.
func TestRunSmall(t *testing.T) {
	if testing.Short() {
		t.Skip("starts brokers and nodes")
	}
	logTo = io.Discard
	r, err := run(options{sessions: 3000, partitions: 8, overwrite: 0.1, erase: 0.01, timeout: 2 * time.Minute, diagnose: true, kill9: true})
	if err != nil {
		t.Fatal(err)
	}
	if r.Config.Records != 3000+300+2*30 || r.Write.Records != r.Config.Records {
		t.Fatalf("records: config %d, written %d", r.Config.Records, r.Write.Records)
	}
	if len(r.Warm) != 3 || len(r.Restarts) != 2 {
		t.Fatalf("%d warm restores, %d restarts", len(r.Warm), len(r.Restarts))
	}
	for _, x := range append(r.Warm, r.Restarts[0].Restore, r.Restarts[1].Restore) {
		if x.Records != r.Config.Records || x.Tombstones != 30 {
			t.Errorf("%s: %d records, %d tombstones", x.Mode, x.Records, x.Tombstones)
		}
		if x.Mode != modeRead && (x.Sessions != 3000 || x.HeapPerSession <= 0) {
			t.Errorf("%s: %d sessions, %.0f B/session", x.Mode, x.Sessions, x.HeapPerSession)
		}
	}
	for _, x := range r.Restarts {
		if x.ReadyS <= 0 || x.ReadyS < x.Restore.Seconds {
			t.Errorf("restart %s: ready %.3fs, restore %.3fs", x.Kind, x.ReadyS, x.Restore.Seconds)
		}
	}
}
