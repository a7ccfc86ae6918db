package keyed

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

type item struct {
	key string
	n   int
}

// TestExecutor: by table, what runs, in which order, and what is refused.
// Every item blocks until the test lets go of all, so the bounds are seen
// while the items are held.
func TestExecutor(t *testing.T) {
	tenant := func(key string) string { t, _, _ := strings.Cut(key, "|"); return t }
	cases := []struct {
		name string
		o    Options
		// submitted in this order
		items []item
		// wantFull: the indices Submit refuses
		wantFull []int
		// wantRunning: items running at once while blocked
		wantRunning int
	}{
		{name: "unbounded, one key: one at a time",
			items:       []item{{"a", 1}, {"a", 2}, {"a", 3}},
			wantRunning: 1},
		{name: "unbounded, three keys in parallel",
			items:       []item{{"a", 1}, {"b", 1}, {"c", 1}, {"a", 2}},
			wantRunning: 3},
		{name: "concurrency 2 over three keys",
			o:           Options{Concurrency: 2},
			items:       []item{{"a", 1}, {"b", 1}, {"c", 1}},
			wantRunning: 2},
		{name: "backlog 2 per key",
			o:           Options{Backlog: 2},
			items:       []item{{"a", 1}, {"a", 2}, {"a", 3}, {"b", 1}, {"b", 2}},
			wantFull:    []int{2},
			wantRunning: 2},
		{name: "backlog 3 per group of keys",
			o:           Options{Backlog: 3, Group: tenant},
			items:       []item{{"t1|x", 1}, {"t1|y", 1}, {"t1|x", 2}, {"t1|z", 1}, {"t2|x", 1}, {"t1|y", 2}},
			wantFull:    []int{3, 5},
			wantRunning: 3},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			release := make(chan struct{})
			var mu sync.Mutex
			running, peak := 0, 0
			got := map[string][]int{}
			var wg sync.WaitGroup
			e := New(tc.o, func(_ context.Context, key string, it item) {
				mu.Lock()
				running++
				peak = max(peak, running)
				got[key] = append(got[key], it.n)
				mu.Unlock()
				<-release
				mu.Lock()
				running--
				mu.Unlock()
				wg.Done()
			})
			ctx := context.Background()
			var full []int
			want := map[string][]int{}
			for i, it := range tc.items {
				wg.Add(1)
				if err := e.Submit(ctx, it.key, it); errors.Is(err, ErrFull) {
					full = append(full, i)
					wg.Done()
					continue
				} else if err != nil {
					t.Fatal(err)
				}
				want[it.key] = append(want[it.key], it.n)
			}
			if !slices.Equal(full, tc.wantFull) {
				t.Errorf("refused %v, want %v", full, tc.wantFull)
			}
			waitFor(t, func() bool { mu.Lock(); defer mu.Unlock(); return running == tc.wantRunning })
			time.Sleep(20 * time.Millisecond) // no more start
			mu.Lock()
			if peak != tc.wantRunning {
				t.Errorf("%d running at once, want %d", peak, tc.wantRunning)
			}
			mu.Unlock()
			close(release)
			wg.Wait()
			e.Wait()
			for k, w := range want {
				if !slices.Equal(got[k], w) {
					t.Errorf("key %s ran %v, want %v (in order)", k, got[k], w)
				}
			}
			if e.Held("a") != 0 || e.Held("t1") != 0 {
				t.Errorf("items still held after all ran")
			}
		})
	}
}

// TestItemsAfterCancelAreNotRun: once ctx ends, a key's queued items are
// dropped (their caller finds them again: an uncommitted offset), the
// goroutines end and the backlog is free.
func TestItemsAfterCancelAreNotRun(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	started := make(chan struct{}, 1)
	release := make(chan struct{})
	var ran []int
	e := New(Options{Backlog: 3}, func(_ context.Context, _ string, n int) {
		ran = append(ran, n)
		started <- struct{}{}
		<-release
	})
	for i := 1; i <= 3; i++ {
		if err := e.Submit(ctx, "a", i); err != nil {
			t.Fatal(err)
		}
	}
	<-started
	cancel()
	close(release)
	e.Wait()
	if len(ran) != 1 || e.Held("a") != 0 {
		t.Fatalf("ran %v, %d held; want [1], 0", ran, e.Held("a"))
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 5s")
		}
		time.Sleep(time.Millisecond)
	}
}
