package webhooks

import (
	"sync"
	"time"

	"github.com/parleyhq/parley/internal/retry"
)

// breaker is the circuit breaker of one tenant's endpoint. Closed, every
// request goes. After threshold failures in a row it opens: nothing goes
// for a cool-down, which grows with each opening in a row (coolDown's
// Delay of their count). Then it is half-open: one request goes, a probe,
// and the others wait; the probe's success closes it, its failure opens it
// again. Time is passed in, so the table test needs no clock.
type breaker struct {
	threshold int
	coolDown  retry.Backoff

	mu       sync.Mutex
	failures int       // in a row
	opens    int       // openings in a row, since the last success
	until    time.Time // open until; zero while closed
	probe    time.Time // when the half-open probe went; zero: none out
}

// probeWait is how long a request waits for the probe's result before it
// asks again; probeTimeout, how long a probe may be out before another
// one may go (its holder stopped without a result).
const (
	probeWait    = 50 * time.Millisecond
	probeTimeout = time.Minute
)

func newBreaker(threshold int, coolDown retry.Backoff) *breaker {
	return &breaker{threshold: threshold, coolDown: coolDown}
}

// allow says whether a request may go at now, and if not, how long to
// wait before asking again. A request allowed must be followed by result.
func (b *breaker) allow(now time.Time) (ok bool, wait time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case b.until.IsZero():
		return true, 0
	case now.Before(b.until):
		return false, b.until.Sub(now)
	case b.probe.IsZero() || now.Sub(b.probe) > probeTimeout:
		b.probe = now
		return true, 0
	default:
		return false, probeWait
	}
}

// result records how a request went; opened and closed report a change.
func (b *breaker) result(now time.Time, ok bool) (opened, closed bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	wasOpen := !b.until.IsZero()
	if ok {
		b.failures, b.opens, b.until, b.probe = 0, 0, time.Time{}, time.Time{}
		return false, wasOpen
	}
	b.failures++
	// A failure while open that is not the probe's (a request that went
	// before it opened) changes nothing: the cool-down runs.
	if wasOpen && b.probe.IsZero() || !wasOpen && b.failures < b.threshold {
		return false, false
	}
	b.opens++
	b.until = now.Add(b.coolDown.Delay(b.opens))
	b.probe = time.Time{}
	return !wasOpen, false
}

// open reports whether the breaker is open (or half-open) at now.
func (b *breaker) open() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return !b.until.IsZero()
}
