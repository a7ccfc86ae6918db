package twilio

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/twilio/twilio-go/client"
	openapi "github.com/twilio/twilio-go/rest/api/v2010"

	"github.com/parleyhq/parley/internal/e164"
	"github.com/parleyhq/parley/tenants"
)

// Twilio error codes Parley acts on.
const (
	CodeAuthentication = 20003 // wrong account SID or auth token
	CodeTooManyReqs    = 20429 // REST API concurrency limit: retry
	CodeBodyTooLong    = 21617 // Body over 1,600 characters: never retry
	CodeUnsubscribed   = 21610 // recipient opted out (STOP): never retry
	CodeOutsideWindow  = 63016 // free text outside the 24-hour window: send a template
	CodeRateLimited    = 63018 // WhatsApp sender rate limit: retry
)

// DefaultTimeout bounds one send when the http.Client given to NewSender
// sets no Timeout.
const DefaultTimeout = 15 * time.Second

// maxRetryAfter caps a provider's Retry-After: the caller blocks that
// customer's queue for the duration, and a bogus "Retry-After: 86400" must
// not stall it for a day.
const maxRetryAfter = 5 * time.Minute

// SendError is a failed send, classified for the caller's retry decision.
//
// Retryable is true for HTTP 429 and 5xx, Twilio codes 20429 and 63018,
// network errors and a cancelled or expired ctx (the message may still be
// sent later); it is false for everything else — 4xx such as 21610
// (unsubscribed), 63016 (outside the 24-hour window) or 401 (bad
// credentials) — where sending the same request again cannot succeed.
//
// A SendError never contains the auth token.
type SendError struct {
	Status  int // HTTP status; 0 when no response arrived
	Code    int // Twilio error code; 0 if none
	Message string
	// Retryable says whether the same send may succeed later.
	Retryable bool
	// RetryAfter is the wait the provider asked for (Retry-After), capped
	// at five minutes; 0 means "use your own backoff".
	RetryAfter time.Duration

	cause error
}

func (e *SendError) Error() string {
	var b strings.Builder
	b.WriteString("twilio send: ")
	if e.Status != 0 {
		fmt.Fprintf(&b, "status %d ", e.Status)
	}
	if e.Code != 0 {
		fmt.Fprintf(&b, "code %d ", e.Code)
	}
	b.WriteString(e.Message)
	if e.Retryable {
		b.WriteString(" (retryable)")
	}
	return b.String()
}

// Unwrap exposes the cause — context.Canceled, a *url.Error or twilio-go's
// *client.TwilioRestError — to errors.Is and errors.As.
func (e *SendError) Unwrap() error { return e.cause }

// Sender sends WhatsApp messages through Twilio's Messages API with
// twilio-go. It is safe for concurrent use; one Sender serves every tenant.
type Sender struct {
	transport     http.RoundTripper
	checkRedirect func(*http.Request, []*http.Request) error
	jar           http.CookieJar
	timeout       time.Duration
}

// NewSender creates a sender that makes its requests with httpClient's
// Transport (connection pool), Jar and CheckRedirect; its Timeout bounds
// each send (DefaultTimeout when zero). A nil httpClient means
// http.DefaultTransport and DefaultTimeout.
func NewSender(httpClient *http.Client) *Sender {
	s := &Sender{transport: http.DefaultTransport, timeout: DefaultTimeout}
	if httpClient != nil {
		if httpClient.Transport != nil {
			s.transport = httpClient.Transport
		}
		if httpClient.Timeout > 0 {
			s.timeout = httpClient.Timeout
		}
		s.checkRedirect = httpClient.CheckRedirect
		s.jar = httpClient.Jar
	}
	if s.checkRedirect == nil {
		// As twilio-go's own client: a redirect answer is returned, not
		// followed, so a POST is never replayed somewhere else.
		s.checkRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	}
	return s
}

// Send sends body to the customer's E.164 number (to, without "whatsapp:")
// from the tenant's WhatsApp sender cfg.From, and returns Twilio's message
// SID. statusCallback, when not empty, is where Twilio reports delivery.
// Every error is a *SendError.
//
// ctx bounds the request: cancelling it aborts the HTTP exchange. Note that
// a send that failed with a network error or a cancelled ctx may still have
// reached Twilio; the Messages API has no idempotency key, so a retry can
// duplicate the message.
func (s *Sender) Send(ctx context.Context, cfg *tenants.Twilio, to, body, statusCallback string) (string, error) {
	if body == "" {
		return "", &SendError{Message: "empty message body"}
	}
	if l := tenants.TwilioTextLimit; l.Len(body) > l.Max {
		// Twilio would refuse it (21617); say why without the round trip.
		return "", &SendError{Code: CodeBodyTooLong, Message: fmt.Sprintf("message body has %d characters (UTF-16 units), Twilio takes at most %d", l.Len(body), l.Max)}
	}
	return s.create(ctx, cfg, to, statusCallback, func(p *openapi.CreateMessageParams) { p.SetBody(body) })
}

// SendTemplate sends an approved WhatsApp template — the only kind of
// message WhatsApp lets a business send outside the 24-hour window — by its
// Content SID ("HX" + 32 hex digits) with ContentVariables, the JSON object
// of the template's placeholders ({"1": "Sam", "2": "10:30"}). variables
// may be nil for a template without placeholders. Everything else is as for
// Send: the SID on success, a *SendError otherwise.
func (s *Sender) SendTemplate(ctx context.Context, cfg *tenants.Twilio, to, contentSID string, variables map[string]string, statusCallback string) (string, error) {
	if !contentSIDPattern.MatchString(contentSID) {
		return "", &SendError{Message: fmt.Sprintf("content sid %q is not HX followed by 32 hex digits", clip(contentSID))}
	}
	var vars string
	if len(variables) > 0 {
		b, err := json.Marshal(variables) // keys sorted: the same request every time
		if err != nil {
			return "", &SendError{Message: "content variables: " + err.Error()}
		}
		vars = string(b)
	}
	return s.create(ctx, cfg, to, statusCallback, func(p *openapi.CreateMessageParams) {
		p.SetContentSid(contentSID)
		if vars != "" {
			p.SetContentVariables(vars)
		}
	})
}

var contentSIDPattern = regexp.MustCompile(`^HX[0-9a-fA-F]{32}$`)

// create makes one Messages API create call with what set puts in the
// request besides To, From and StatusCallback.
func (s *Sender) create(ctx context.Context, cfg *tenants.Twilio, to, statusCallback string, set func(*openapi.CreateMessageParams)) (string, error) {
	if cfg == nil {
		return "", &SendError{Message: "no twilio configuration"}
	}
	if !e164.Valid(to) {
		return "", &SendError{Message: fmt.Sprintf("recipient %q is not an E.164 number", clip(to))}
	}
	var base *url.URL
	if cfg.APIBaseURL != "" {
		u, err := url.Parse(cfg.APIBaseURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return "", &SendError{Message: "api_base_url is not an absolute http(s) URL"}
		}
		base = u
	}
	if err := ctx.Err(); err != nil {
		return "", &SendError{Message: err.Error(), Retryable: true, cause: err}
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()

	api, rec := s.api(ctx, cfg, base)
	params := &openapi.CreateMessageParams{}
	params.SetTo("whatsapp:" + to)
	params.SetFrom(cfg.From)
	set(params)
	if statusCallback != "" {
		params.SetStatusCallback(statusCallback)
	}
	msg, err := api.CreateMessage(params)
	if err != nil {
		return "", classify(ctx, err, rec, cfg.AuthToken.Reveal())
	}
	if msg.Sid == nil || *msg.Sid == "" {
		// Twilio accepted the request, so the message is probably on its
		// way: retrying would send it twice.
		return "", &SendError{Status: rec.status, Message: "response has no message sid"}
	}
	return *msg.Sid, nil
}

// api builds the twilio-go service for one send.
//
// twilio-go (v1.31) cannot take a context: client.Client.SendRequest builds
// its request with context.Background(), and on an error answer it keeps
// the JSON body but drops the status line and headers. So rather than
// sharing one RestClient per account, each send gets a thin client.Client
// whose transport puts ctx on the request (cancellation works) and records
// the status and Retry-After of the response. Building it costs a few small
// allocations; the connection pool, the expensive part, is the shared
// transport. It also means a rotated auth token takes effect on the next
// send, with no cache to invalidate.
func (s *Sender) api(ctx context.Context, cfg *tenants.Twilio, base *url.URL) (*openapi.ApiService, *recorder) {
	rec := &recorder{ctx: ctx, base: base, next: s.transport}
	c := &client.Client{
		Credentials: client.NewCredentials(cfg.AccountSID, cfg.AuthToken.Reveal()),
		HTTPClient: &http.Client{
			Transport:     rec,
			CheckRedirect: s.checkRedirect,
			Jar:           s.jar,
			// No Timeout: the deadline is on ctx, and an http.Client
			// timeout would live on a context the recorder replaces.
		},
	}
	c.SetAccountSid(cfg.AccountSID)
	return openapi.NewApiServiceWithClient(c), rec
}

// recorder is the transport of one send. It replaces the request's context
// with the send's ctx, rewrites scheme, host and path prefix to the tenant's
// APIBaseURL when one is set (twilio-go's base URL is fixed at
// https://api.twilio.com; sandboxes and tests speak its protocol elsewhere),
// and remembers what the response said. It serves a single goroutine.
type recorder struct {
	ctx  context.Context
	base *url.URL // nil: Twilio itself
	next http.RoundTripper

	status     int
	retryAfter string
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	out := req.WithContext(r.ctx) // a shallow copy: req itself stays untouched
	if r.base != nil {
		u := *req.URL
		u.Scheme = r.base.Scheme
		u.Host = r.base.Host
		if prefix := strings.TrimSuffix(r.base.Path, "/"); prefix != "" {
			u.Path = prefix + u.Path
			u.RawPath = ""
		}
		out.URL = &u
		out.Host = "" // the Host header follows the URL
	}
	resp, err := r.next.RoundTrip(out)
	if resp != nil {
		r.status = resp.StatusCode
		r.retryAfter = resp.Header.Get("Retry-After")
	}
	return resp, err
}

// classify turns what twilio-go returned into a SendError.
func classify(ctx context.Context, err error, rec *recorder, token string) *SendError {
	se := &SendError{Status: rec.status, cause: err}
	var (
		restErr *client.TwilioRestError
		v1Err   *client.RestErrorV1
	)
	switch {
	case errors.As(err, &restErr):
		// Also what twilio-go returns without any request when the
		// credentials hold characters it refuses (codes 21222/21224).
		se.Code, se.Message = restErr.Code, restErr.Message
		if restErr.Status != 0 {
			se.Status = restErr.Status
		}
	case errors.As(err, &v1Err):
		se.Code, se.Message = v1Err.Code, v1Err.Message
		if v1Err.HttpStatusCode != 0 {
			se.Status = v1Err.HttpStatusCode
		}
	case rec.status >= 300:
		// An error answer without Twilio's JSON, e.g. a proxy's 502 page.
		se.Message = http.StatusText(rec.status) + " (no Twilio error body)"
	case rec.status != 0:
		// Twilio accepted the message but the answer did not decode:
		// retrying could send it twice.
		se.Message = "undecodable response: " + err.Error()
	default:
		// No response: the request may or may not have reached Twilio.
		se.Retryable = true
		se.Message = err.Error()
		if ctxErr := ctx.Err(); ctxErr != nil {
			se.Message = "aborted: " + ctxErr.Error()
			se.cause = ctxErr
		}
	}
	if se.Status == http.StatusTooManyRequests || se.Status >= 500 ||
		se.Code == CodeTooManyReqs || se.Code == CodeRateLimited {
		se.Retryable = true
	}
	if se.Retryable {
		se.RetryAfter = parseRetryAfter(rec.retryAfter, time.Now())
	}
	// Belt and braces: nothing above should carry the token, but a
	// message is built from text other software wrote.
	if token != "" {
		se.Message = strings.ReplaceAll(se.Message, token, "[redacted]")
	}
	return se
}

// parseRetryAfter reads a Retry-After header: delay-seconds or an HTTP
// date (RFC 9110 §10.2.3). Anything unreadable or in the past is 0.
func parseRetryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	var d time.Duration
	if secs, err := strconv.Atoi(v); err == nil {
		if secs <= 0 {
			return 0
		}
		d = time.Duration(min(secs, int(maxRetryAfter/time.Second))) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(now)
	}
	return max(0, min(d, maxRetryAfter))
}
