// Package retry is Parley's one retry loop: a Backoff policy (first wait,
// growth, cap, jitter, attempts, deadline) and Do, which runs an operation
// until it succeeds, the policy gives up, the operation says its error is
// final (Permanent) or the context ends. An error may name its own wait
// (After: a provider's Retry-After, or "again at once"), which replaces
// the policy's for that retry.
package retry

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"
)

// Backoff is a retry policy. The zero value retries at once, for ever.
type Backoff struct {
	// Initial is the wait after the first failure.
	Initial time.Duration
	// Multiplier is how the wait grows after each further failure. 0
	// means 2 (doubling); 1 keeps it constant.
	Multiplier float64
	// Max caps the wait before jitter. 0: no cap.
	Max time.Duration
	// Jitter spreads each wait uniformly over ±Jitter of it (0.2: 80% to
	// 120%), so that callers failing together do not retry together.
	Jitter float64
	// MaxAttempts bounds the calls of the operation, the first included.
	// 0: no bound.
	MaxAttempts int
	// MaxElapsed ends the retries once this much time has passed since
	// Do began (checked after a failure, before waiting). 0: no bound.
	MaxElapsed time.Duration
	// OnRetry, when set, is called after a failed attempt that will be
	// retried, with the wait that follows: for logs, metrics, and for
	// callers that hold others back for as long (a throttled sender
	// number).
	OnRetry func(attempt int, err error, wait time.Duration)
}

// Delay is the wait after the attempt-th failure (1 for the first):
// Initial grown by Multiplier per further failure, capped at Max, then
// jittered.
func (b Backoff) Delay(attempt int) time.Duration {
	m := b.Multiplier
	if m <= 0 {
		m = 2
	}
	d := float64(b.Initial)
	for i := 1; i < attempt && (b.Max <= 0 || d < float64(b.Max)); i++ {
		d *= m
	}
	if b.Max > 0 {
		d = min(d, float64(b.Max))
	}
	if b.Jitter > 0 {
		d *= 1 - b.Jitter + 2*b.Jitter*rand.Float64()
	}
	return time.Duration(d)
}

// Do calls op (with its attempt number, from 1) until it returns nil.
// After a failure it stops when the error is Permanent, when MaxAttempts
// or MaxElapsed are used up, or when ctx has ended; otherwise it waits —
// the error's own wait if it carries one (After), else Delay — and tries
// again. op is called at least once, whatever ctx.
//
// Do returns nil, or the last error op returned (unwrapped from Permanent
// and After), also when ctx ended during a wait: callers that must tell
// "given up" from "stopped" ask ctx.Err().
func (b Backoff) Do(ctx context.Context, op func(attempt int) error) error {
	start := time.Now()
	for attempt := 1; ; attempt++ {
		err := op(attempt)
		if err == nil {
			return nil
		}
		var p *permanent
		if errors.As(err, &p) {
			return unmarked(err)
		}
		var a *after
		hinted := errors.As(err, &a)
		err = unmarked(err)
		if b.MaxAttempts > 0 && attempt >= b.MaxAttempts ||
			b.MaxElapsed > 0 && time.Since(start) > b.MaxElapsed ||
			ctx.Err() != nil {
			return err
		}
		var wait time.Duration
		if hinted {
			wait = a.d
		} else {
			wait = b.Delay(attempt)
		}
		if b.OnRetry != nil {
			b.OnRetry(attempt, err, wait)
		}
		if Sleep(ctx, wait) != nil {
			return err
		}
	}
}

// Sleep waits d, or until ctx ends (then it returns ctx.Err()).
func Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Permanent marks err as final: Do returns it without retrying. A nil err
// stays nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanent{err}
}

type permanent struct{ err error }

func (p *permanent) Error() string { return p.err.Error() }
func (p *permanent) Unwrap() error { return p.err }

// After asks Do to wait d (0: not at all) before the next attempt instead
// of the policy's delay, as after a provider's Retry-After; the attempt
// still counts. A nil err stays nil.
func After(err error, d time.Duration) error {
	if err == nil {
		return nil
	}
	return &after{err: err, d: max(d, 0)}
}

type after struct {
	err error
	d   time.Duration
}

func (a *after) Error() string { return a.err.Error() }
func (a *after) Unwrap() error { return a.err }

// unmarked is err without the mark of Permanent or After, when it is
// one itself; a mark inside another error stays where it is.
func unmarked(err error) error {
	switch m := err.(type) {
	case *permanent:
		return m.err
	case *after:
		return m.err
	}
	return err
}
