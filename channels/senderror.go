package channels

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Kind is what a failed send means for the one who sends: the one
// vocabulary every provider classifies its refusals into.
type Kind int

const (
	// Permanent: the same request can never succeed (refused input, bad
	// credentials, an undeliverable number). The zero Kind.
	Permanent Kind = iota
	// Retry: temporary (HTTP 429/5xx, a provider's rate limit, no answer,
	// a cancelled or expired ctx); the same send may succeed later.
	Retry
	// OptedOut: the customer unsubscribed (Twilio 21610); never retry.
	OptedOut
	// OutsideWindow: free text outside the 24-hour window (Twilio 63016,
	// Meta 131047); a template may still go.
	OutsideWindow
)

func (k Kind) String() string {
	switch k {
	case Retry:
		return "retryable"
	case OptedOut:
		return "opted_out"
	case OutsideWindow:
		return "outside_window"
	default:
		return "permanent"
	}
}

// SendError is a failed send, classified by the provider for the sender's
// retry decision. A SendError never contains a credential: providers
// Redact it before returning it.
type SendError struct {
	// Provider names the provider ("twilio", "meta"); it starts the text.
	Provider string
	Kind     Kind
	Status   int // HTTP status; 0 when no response arrived
	Code     int // the provider's error code; 0 if none
	Subcode  int // the provider's error subcode (Graph's error_subcode); 0 if none
	Message  string
	// Details is the provider's longer explanation (Graph's
	// error_data.details).
	Details string
	// Trace identifies the failed request to the provider's support
	// (Graph's fbtrace_id).
	Trace string
	// RateLimited: the provider throttled the sender number (or the app
	// or account behind it), so every message from that number waits, not
	// only this one.
	RateLimited bool
	// RetryAfter is the wait the provider asked for (Retry-After), capped
	// at MaxRetryAfter; 0 means "use your own backoff".
	RetryAfter time.Duration
	// Cause is what the failure came from — context.Canceled, a
	// *url.Error, a provider library's error — for errors.Is and
	// errors.As.
	Cause error
}

// Retryable says whether the same send may succeed later.
func (e *SendError) Retryable() bool { return e.Kind == Retry }

func (e *SendError) Error() string {
	var b strings.Builder
	b.WriteString(e.Provider)
	b.WriteString(" send: ")
	if e.Status != 0 {
		fmt.Fprintf(&b, "status %d ", e.Status)
	}
	if e.Code != 0 {
		fmt.Fprintf(&b, "code %d ", e.Code)
		if e.Subcode != 0 {
			fmt.Fprintf(&b, "subcode %d ", e.Subcode)
		}
	}
	b.WriteString(e.Message)
	if e.Details != "" {
		b.WriteString(": ")
		b.WriteString(e.Details)
	}
	if e.Retryable() {
		b.WriteString(" (retryable)")
	}
	return b.String()
}

// Unwrap exposes the cause to errors.Is and errors.As.
func (e *SendError) Unwrap() error { return e.Cause }

// Redact removes token from every text of e. Nothing should carry it, but
// messages are text other software wrote, and errors end up in logs.
func (e *SendError) Redact(token string) *SendError {
	if token == "" {
		return e
	}
	for _, s := range []*string{&e.Message, &e.Details, &e.Trace} {
		*s = strings.ReplaceAll(*s, token, "[redacted]")
	}
	if e.Cause != nil && strings.Contains(e.Cause.Error(), token) {
		e.Cause = nil
	}
	return e
}

// ReportCode is the code a failed delivery report carries: the provider's
// error code ("21610", "131047"), else "http_<status>", else "network"
// (no answer arrived) or "invalid" (refused before any request).
func (e *SendError) ReportCode() string {
	switch {
	case e.Code != 0:
		return strconv.Itoa(e.Code)
	case e.Status != 0:
		return "http_" + strconv.Itoa(e.Status)
	case e.Retryable():
		return "network"
	default:
		return "invalid"
	}
}

// AsSendError finds the SendError in err's chain.
func AsSendError(err error) (*SendError, bool) {
	var se *SendError
	ok := errors.As(err, &se)
	return se, ok
}

// MaxRetryAfter caps a provider's Retry-After: the sender blocks that
// customer's queue for the duration, and a bogus "Retry-After: 86400" must
// not stall it for a day.
const MaxRetryAfter = 5 * time.Minute

// ParseRetryAfter reads a Retry-After header: delay-seconds or an HTTP
// date (RFC 9110 §10.2.3), capped at MaxRetryAfter. Anything unreadable or
// in the past is 0.
func ParseRetryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	var d time.Duration
	if secs, err := strconv.Atoi(v); err == nil {
		if secs <= 0 {
			return 0
		}
		d = time.Duration(min(secs, int(MaxRetryAfter/time.Second))) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(now)
	}
	return max(0, min(d, MaxRetryAfter))
}

// ErrMediaNotFound: the provider does not serve the media (deleted,
// expired, or not this tenant's). Providers wrap it.
var ErrMediaNotFound = errors.New("media not found")
