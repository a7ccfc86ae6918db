package engine

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
)

// TestGroupStopsInReverseOrder: roles and closers stop the last started
// first, each role returning before the next step runs.
func TestGroupStopsInReverseOrder(t *testing.T) {
	g := &group{log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	var mu sync.Mutex
	var order []string
	note := func(s string) { mu.Lock(); order = append(order, s); mu.Unlock() }
	g.Defer("broker", func() { note("broker") })
	for _, name := range []string{"sink", "sessions", "http"} {
		g.Go(name, func(ctx context.Context) error {
			<-ctx.Done()
			note(name)
			return nil
		})
	}
	g.Defer("hub", func() { note("hub") })
	g.Stop()
	g.Stop() // twice is once
	if want := []string{"hub", "http", "sessions", "sink", "broker"}; !slices.Equal(order, want) {
		t.Fatalf("stopped %v, want %v", order, want)
	}
}
