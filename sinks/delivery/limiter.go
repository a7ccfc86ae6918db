package delivery

import (
	"context"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/parleyhq/parley/internal/retry"
)

// DefaultRateLimit is the messages/second allowed per sender number when
// the tenant sets no outbound.rate_limit: WhatsApp's default throughput
// for a business number (Twilio and Meta both document 80 MPS).
const DefaultRateLimit = 80

// lanes are the sender numbers seen so far, each with its token bucket.
// A lane is never removed: there is one per sender number configured,
// which is a small, bounded set.
type lanes struct {
	burst int
	mu    sync.Mutex
	m     map[string]*lane
}

func newLanes(burst int) *lanes {
	return &lanes{burst: burst, m: map[string]*lane{}}
}

func (ls *lanes) get(number string) *lane {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	l := ls.m[number]
	if l == nil {
		l = &lane{lim: rate.NewLimiter(rate.Inf, ls.burst)}
		ls.m[number] = l
	}
	return l
}

// lane is one sender number: a token bucket shared by every customer the
// number writes to, and a pause the provider imposes when it throttles.
type lane struct {
	lim *rate.Limiter

	mu          sync.Mutex
	pausedUntil time.Time
}

// wait blocks until the number may send one more message at perSecond
// messages a second (0 or less: no limit), or ctx ends. The limit is read
// on every call, so a changed configuration takes effect at once.
//
// Waiters are served in the order they asked: the bucket hands out
// reservations at exact intervals, so the rate holds however late the
// goroutines wake.
func (l *lane) wait(ctx context.Context, perSecond float64) error {
	limit := rate.Inf
	if perSecond > 0 {
		limit = rate.Limit(perSecond)
	}
	if l.lim.Limit() != limit {
		l.lim.SetLimit(limit)
	}
	for {
		l.mu.Lock()
		d := time.Until(l.pausedUntil)
		l.mu.Unlock()
		if d <= 0 {
			break
		}
		if err := retry.Sleep(ctx, d); err != nil {
			return err
		}
	}
	return l.lim.Wait(ctx)
}

// pause holds every message of the number for d (from now), as after a
// provider's rate-limit answer: hammering a throttled number only earns
// more refusals.
func (l *lane) pause(d time.Duration) {
	until := time.Now().Add(d)
	l.mu.Lock()
	if until.After(l.pausedUntil) {
		l.pausedUntil = until
	}
	l.mu.Unlock()
}
