package outbound

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/parleyhq/parley/channels/twilio"
	"github.com/parleyhq/parley/tenants"
	"github.com/parleyhq/parley/wire"
)

// TwilioSender is the part of twilio.Sender the sender uses.
type TwilioSender interface {
	Send(ctx context.Context, cfg *tenants.Twilio, to, body, statusCallback string) (string, error)
	SendTemplate(ctx context.Context, cfg *tenants.Twilio, to, contentSID string, variables map[string]string, statusCallback string) (string, error)
}

// failureKind is what the sender does about a failed send.
type failureKind int

const (
	// failRetry: temporary (HTTP 429/5xx, provider rate limits, network);
	// send again after a backoff, a bounded number of times.
	failRetry failureKind = iota
	// failPermanent: the same request can never succeed; dead-letter.
	failPermanent
	// failOptedOut: the customer unsubscribed (Twilio 21610); never retry.
	failOptedOut
	// failOutsideWindow: free text outside the 24-hour window (Twilio
	// 63016, Meta 131047); a template may still go.
	failOutsideWindow
)

func (k failureKind) String() string {
	switch k {
	case failRetry:
		return "retryable"
	case failOptedOut:
		return "opted_out"
	case failOutsideWindow:
		return "outside_window"
	default:
		return "permanent"
	}
}

// failure is a provider's refusal, classified.
type failure struct {
	kind failureKind
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

// channel is one provider as the sender drives it.
type channel interface {
	name() string
	// number identifies the sender number t's messages leave from: the
	// rate-limit lane. Numbers are shared by tenants that share them.
	number(t *tenants.Tenant) string
	// send sends out's text, or tpl when tpl is not nil, and returns the
	// provider's message id.
	send(ctx context.Context, t *tenants.Tenant, out *wire.Outbound, tpl *wire.Template) (string, error)
	classify(err error) failure
}

// twilioChannel sends through Twilio's Messages API.
type twilioChannel struct {
	api TwilioSender
	// publicBaseURL builds the status callback URL; empty: no callback.
	publicBaseURL string
}

func (c *twilioChannel) name() string { return tenants.ChannelTwilio }

func (c *twilioChannel) number(t *tenants.Tenant) string { return "twilio:" + t.Twilio.From }

func (c *twilioChannel) send(ctx context.Context, t *tenants.Tenant, out *wire.Outbound, tpl *wire.Template) (string, error) {
	callback := ""
	if c.publicBaseURL != "" {
		callback = c.publicBaseURL + "/webhooks/twilio/" + t.ID + "/status"
	}
	if tpl == nil {
		return c.api.Send(ctx, t.Twilio, out.Phone, out.Text, callback)
	}
	sid := tpl.ContentSid
	if sid == "" && tpl.Name != "" {
		// A template named as Meta names it: the tenant's catalogue has
		// its Twilio Content SID.
		sid = t.Templates[tpl.Name].ContentSID
	}
	if sid == "" {
		return "", &twilio.SendError{Message: fmt.Sprintf("template %q has no Twilio content sid", tpl.Name)}
	}
	return c.api.SendTemplate(ctx, t.Twilio, out.Phone, sid, tpl.Variables, callback)
}

func (c *twilioChannel) classify(err error) failure {
	var se *twilio.SendError
	if !errors.As(err, &se) {
		return failure{kind: failRetry, code: "network", msg: err.Error()}
	}
	f := failure{msg: se.Error(), retryAfter: se.RetryAfter, code: errorCode(se.Code, se.Status, se.Retryable)}
	switch {
	case se.Code == twilio.CodeUnsubscribed:
		f.kind = failOptedOut
	case se.Code == twilio.CodeOutsideWindow:
		f.kind = failOutsideWindow
	case se.Retryable:
		f.kind = failRetry
		f.rateLimited = se.Status == http.StatusTooManyRequests ||
			se.Code == twilio.CodeTooManyReqs || se.Code == twilio.CodeRateLimited
	default:
		f.kind = failPermanent
	}
	return f
}

// errorCode is the code a failed DeliveryReport carries.
func errorCode(code, status int, retryable bool) string {
	switch {
	case code != 0:
		return strconv.Itoa(code)
	case status != 0:
		return "http_" + strconv.Itoa(status)
	case retryable:
		return "network" // no answer arrived
	default:
		return "invalid" // refused before any request
	}
}
