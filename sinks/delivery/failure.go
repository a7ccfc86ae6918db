package delivery

import (
	"time"

	"github.com/parleyhq/parley/channels"
)

// failure is a provider's refusal, as the sender acts on it.
type failure struct {
	kind channels.Kind
	// code is the provider's error code ("21610", "131047"), else
	// "http_<status>", else "network" or "invalid".
	code string
	// rateLimited: the provider throttled the sender number, so every
	// message from that number waits, not only this one.
	rateLimited bool
	// retryAfter is the wait the provider asked for; 0: our backoff.
	retryAfter time.Duration
	msg        string
}

// Error makes a failure the error of a retried attempt.
func (f failure) Error() string { return f.msg }

// classify reads a failed send. An error that is not a provider's
// *channels.SendError is taken for a network failure: retried.
func classify(err error) failure {
	se, ok := channels.AsSendError(err)
	if !ok {
		return failure{kind: channels.Retry, code: "network", msg: err.Error()}
	}
	return failure{kind: se.Kind, code: se.ReportCode(), rateLimited: se.Retryable() && se.RateLimited, retryAfter: se.RetryAfter, msg: se.Error()}
}
