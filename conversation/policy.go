package conversation

import "time"

// Policy is the set of per-tenant rules the core enforces. A zero field
// means "use the default", so a tenant's configuration only needs to name
// what it changes; Step applies the defaults itself.
type Policy struct {
	// CodeTTL is how long a verification code is valid. A code sent at T
	// is accepted while now < T+CodeTTL: at exactly T+CodeTTL it is
	// expired.
	CodeTTL time.Duration
	// MaxAttempts is the number of wrong entries that lock a code: the
	// MaxAttempts-th wrong attempt locks it.
	MaxAttempts int
	// CodesPerHour and CodesPerDay limit the codes sent to one phone
	// number in any rolling hour and rolling 24 hours. They hold across
	// sessions so that restarting the flow cannot be used to get more
	// guesses.
	CodesPerHour int
	CodesPerDay  int
	// SessionTTL is the absolute lifetime of an authenticated session,
	// counted from verification.
	SessionTTL time.Duration
	// IdleTimeout ends an authenticated session (and abandons an
	// unfinished sign-in) once the customer has been silent this long.
	IdleTimeout time.Duration
	// WindowTTL is WhatsApp's customer-service window: free text may be
	// sent while now < last inbound + WindowTTL, templates only after.
	WindowTTL time.Duration
	// DedupeTTL is how long a provider message id is remembered, and
	// DedupeMax how many ids at most (the oldest is forgotten first).
	DedupeTTL time.Duration
	DedupeMax int
	// LookupTimeout is how long an unanswered profile lookup blocks a new
	// one. If the shell loses a lookup (crash, timeout without feeding
	// LookupFailed), the next customer message after this asks again
	// instead of leaving the customer stuck.
	LookupTimeout time.Duration
	// IdempotencyTTL is how long the result of a command with an
	// idempotency key is remembered (RememberResult), and IdempotencyMax
	// how many results at most (the oldest is forgotten first).
	IdempotencyTTL time.Duration
	IdempotencyMax int
	// Texts are the replies in the tenant's language; nil means English.
	Texts *Texts
	// Quiet: the tenant's number is switched off. Customers' messages are
	// still taken and logged, and move the window, but nothing is
	// answered automatically and sign-in stands still.
	Quiet bool
}

// DefaultPolicy returns the rules used when a tenant configures nothing.
func DefaultPolicy() Policy {
	return Policy{
		CodeTTL:       10 * time.Minute,
		MaxAttempts:   3,
		CodesPerHour:  3,
		CodesPerDay:   10,
		SessionTTL:    24 * time.Hour,
		IdleTimeout:   2 * time.Hour,
		WindowTTL:     24 * time.Hour,
		DedupeTTL:     48 * time.Hour,
		DedupeMax:     128,
		LookupTimeout: time.Minute,
		// The usual window of payment APIs, well past any sane client
		// retry.
		IdempotencyTTL: 24 * time.Hour,
		IdempotencyMax: 64,
	}
}

// Upper bounds that keep a misconfigured tenant from breaking the compact
// state: attempts are counted in a uint8 and the dedupe ring and the
// remembered results must stay small enough to keep a session in a few
// kilobytes.
const (
	maxMaxAttempts    = 255
	maxDedupeMax      = 4096
	maxIdempotencyMax = 256
)

// withDefaults fills zero (or negative) fields from DefaultPolicy and
// clamps the counts that the state stores in small integers.
func (p Policy) withDefaults() Policy {
	d := DefaultPolicy()
	dur := func(v *time.Duration, def time.Duration) {
		if *v <= 0 {
			*v = def
		}
	}
	num := func(v *int, def, max int) {
		if *v <= 0 {
			*v = def
		}
		if *v > max {
			*v = max
		}
	}
	dur(&p.CodeTTL, d.CodeTTL)
	dur(&p.SessionTTL, d.SessionTTL)
	dur(&p.IdleTimeout, d.IdleTimeout)
	dur(&p.WindowTTL, d.WindowTTL)
	dur(&p.DedupeTTL, d.DedupeTTL)
	dur(&p.LookupTimeout, d.LookupTimeout)
	dur(&p.IdempotencyTTL, d.IdempotencyTTL)
	num(&p.MaxAttempts, d.MaxAttempts, maxMaxAttempts)
	num(&p.CodesPerHour, d.CodesPerHour, 1<<16)
	num(&p.CodesPerDay, d.CodesPerDay, 1<<16)
	num(&p.DedupeMax, d.DedupeMax, maxDedupeMax)
	num(&p.IdempotencyMax, d.IdempotencyMax, maxIdempotencyMax)
	if p.Texts == nil {
		p.Texts = &English
	}
	return p
}

// secs converts a duration to whole seconds, rounding up so that a
// sub-second setting never becomes "already expired".
func secs(d time.Duration) int64 {
	return int64((d + time.Second - 1) / time.Second)
}
