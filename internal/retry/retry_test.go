package retry

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

func TestDelay(t *testing.T) {
	ms := time.Millisecond
	for _, c := range []struct {
		name string
		b    Backoff
		want []time.Duration // after failures 1, 2, 3, …
	}{
		{"doubling by default", Backoff{Initial: 100 * ms}, []time.Duration{100 * ms, 200 * ms, 400 * ms, 800 * ms}},
		{"capped", Backoff{Initial: 100 * ms, Max: 250 * ms}, []time.Duration{100 * ms, 200 * ms, 250 * ms, 250 * ms}},
		{"constant", Backoff{Initial: 200 * ms, Multiplier: 1}, []time.Duration{200 * ms, 200 * ms, 200 * ms}},
		{"tripling", Backoff{Initial: ms, Multiplier: 3}, []time.Duration{ms, 3 * ms, 9 * ms}},
		{"cap below the first wait", Backoff{Initial: time.Second, Max: 10 * ms}, []time.Duration{10 * ms, 10 * ms}},
		{"zero waits nothing", Backoff{}, []time.Duration{0, 0, 0}},
		{"no growth past a huge attempt", Backoff{Initial: time.Second, Max: 5 * time.Minute}, []time.Duration{time.Second, 2 * time.Second}},
	} {
		t.Run(c.name, func(t *testing.T) {
			for i, want := range c.want {
				if got := c.b.Delay(i + 1); got != want {
					t.Fatalf("Delay(%d) = %v, want %v", i+1, got, want)
				}
			}
			if c.b.Max > 0 {
				if got := c.b.Delay(10_000); got != c.b.Max {
					t.Fatalf("Delay(10000) = %v, want the cap %v", got, c.b.Max)
				}
			}
		})
	}
}

func TestDelayJitter(t *testing.T) {
	for _, c := range []struct {
		name     string
		b        Backoff
		attempt  int
		low, top time.Duration
	}{
		{"±20% of the first wait", Backoff{Initial: time.Second, Jitter: 0.2}, 1, 800 * time.Millisecond, 1200 * time.Millisecond},
		{"±20% of the cap", Backoff{Initial: time.Second, Max: 2 * time.Second, Jitter: 0.2}, 5, 1600 * time.Millisecond, 2400 * time.Millisecond},
		{"half to whole (3/4 ± 1/3)", Backoff{Initial: 75 * time.Millisecond, Jitter: 1.0 / 3}, 2, 100 * time.Millisecond, 200 * time.Millisecond},
	} {
		t.Run(c.name, func(t *testing.T) {
			seen := map[time.Duration]bool{}
			for range 1000 {
				d := c.b.Delay(c.attempt)
				if d < c.low || d > c.top {
					t.Fatalf("Delay(%d) = %v, outside [%v, %v]", c.attempt, d, c.low, c.top)
				}
				seen[d] = true
			}
			if len(seen) < 100 {
				t.Fatalf("only %d distinct waits in 1000: not jittered", len(seen))
			}
		})
	}
}

var errFlaky = errors.New("flaky")

func TestDo(t *testing.T) {
	fast := Backoff{Initial: time.Millisecond, Max: 2 * time.Millisecond}
	for _, c := range []struct {
		name     string
		b        Backoff
		failures int   // op fails this many times, then succeeds
		fail     error // what it fails with (default errFlaky)
		want     error
		calls    int
		retries  []time.Duration // the waits OnRetry saw; nil: not checked
	}{
		{"first try", fast, 0, nil, nil, 1, []time.Duration{}},
		{"after failures", fast, 3, nil, nil, 4, []time.Duration{time.Millisecond, 2 * time.Millisecond, 2 * time.Millisecond}},
		{"attempts used up", Backoff{MaxAttempts: 3}, 10, nil, errFlaky, 3, []time.Duration{0, 0}},
		{"one attempt", Backoff{MaxAttempts: 1}, 10, nil, errFlaky, 1, []time.Duration{}},
		{"permanent: no retry, unwrapped", fast, 10, Permanent(errFlaky), errFlaky, 1, []time.Duration{}},
		{"wrapped permanent stays wrapped", fast, 10, fmt.Errorf("op: %w", Permanent(errFlaky)), errFlaky, 1, nil},
		{"After replaces the delay", Backoff{Initial: time.Hour}, 2, After(errFlaky, 3*time.Millisecond), nil, 3, []time.Duration{3 * time.Millisecond, 3 * time.Millisecond}},
		{"After 0 retries at once", Backoff{Initial: time.Hour}, 1, After(errFlaky, 0), nil, 2, []time.Duration{0}},
		{"After still counts as an attempt", Backoff{MaxAttempts: 2}, 10, After(errFlaky, time.Millisecond), errFlaky, 2, []time.Duration{time.Millisecond}},
		{"deadline", Backoff{Initial: 5 * time.Millisecond, Multiplier: 1, MaxElapsed: 12 * time.Millisecond}, 100, nil, errFlaky, 0, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			fail := c.fail
			if fail == nil {
				fail = errFlaky
			}
			calls := 0
			waits := []time.Duration{}
			b := c.b
			b.OnRetry = func(attempt int, err error, wait time.Duration) {
				if attempt != calls || !errors.Is(err, errFlaky) {
					t.Errorf("OnRetry(%d, %v) after call %d", attempt, err, calls)
				}
				waits = append(waits, wait)
			}
			err := b.Do(context.Background(), func(attempt int) error {
				calls++
				if attempt != calls {
					t.Fatalf("attempt %d on call %d", attempt, calls)
				}
				if calls <= c.failures {
					return fail
				}
				return nil
			})
			if !errors.Is(err, c.want) || (c.want == nil) != (err == nil) {
				t.Fatalf("Do = %v, want %v", err, c.want)
			}
			if c.want != nil && err != unmarked(fail) {
				t.Fatalf("Do = %#v, want %#v: the error op returned, its own mark taken off", err, unmarked(fail))
			}
			if c.calls > 0 && calls != c.calls {
				t.Fatalf("%d calls, want %d", calls, c.calls)
			}
			if c.name == "deadline" && (calls < 2 || calls > 4) {
				t.Fatalf("%d calls in a 12ms deadline of 5ms waits", calls)
			}
			if c.retries != nil && fmt.Sprint(waits) != fmt.Sprint(c.retries) {
				t.Fatalf("waits %v, want %v", waits, c.retries)
			}
		})
	}
}

func TestDoStopsWhenTheContextEnds(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	calls := 0
	start := time.Now()
	time.AfterFunc(20*time.Millisecond, cancel)
	err := Backoff{Initial: time.Hour}.Do(ctx, func(int) error { calls++; return errFlaky })
	if !errors.Is(err, errFlaky) || calls != 1 {
		t.Fatalf("Do = %v after %d calls, want the last error after 1", err, calls)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("Do waited %v after the context ended", d)
	}

	// An ended context still gets one call, and no wait.
	calls = 0
	err = Backoff{Initial: time.Hour}.Do(ctx, func(int) error { calls++; return errFlaky })
	if !errors.Is(err, errFlaky) || calls != 1 {
		t.Fatalf("Do on an ended context = %v after %d calls", err, calls)
	}
	if err := (Backoff{}).Do(ctx, func(int) error { return nil }); err != nil {
		t.Fatalf("success on an ended context: %v", err)
	}
}

func TestSleep(t *testing.T) {
	if err := Sleep(context.Background(), time.Millisecond); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := Sleep(ctx, time.Hour); !errors.Is(err, context.Canceled) {
		t.Fatalf("Sleep on an ended context = %v", err)
	}
	if err := Sleep(ctx, 0); !errors.Is(err, context.Canceled) {
		t.Fatalf("Sleep(0) on an ended context = %v", err)
	}
	if Permanent(nil) != nil || After(nil, time.Second) != nil {
		t.Fatal("a nil error marked is not nil")
	}
}
