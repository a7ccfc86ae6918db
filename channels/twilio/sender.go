package twilio

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/twilio/twilio-go/client"
	openapi "github.com/twilio/twilio-go/rest/api/v2010"

	"github.com/parleyhq/parley/channels"
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

// TextLimit is Twilio's limit on a Body: 1,600 characters (errors 21617
// and 21658), though WhatsApp itself takes 4,096. Twilio does not say how
// it counts them and warns that non-GSM characters "can use more space",
// so they are counted here the larger way, as UTF-16 units: never too
// many for Twilio, at worst a message split a little early.
var TextLimit = channels.TextLimit{Max: 1600, UTF16: true}

// Send sends body to the customer's E.164 number (to, without "whatsapp:")
// from the tenant's WhatsApp sender cfg.From, and returns Twilio's message
// SID. statusCallback, when not empty, is where Twilio reports delivery.
// Every error is a *channels.SendError.
//
// ctx bounds the request: cancelling it aborts the HTTP exchange. Note that
// a send that failed with a network error or a cancelled ctx may still have
// reached Twilio; the Messages API has no idempotency key, so a retry can
// duplicate the message.
func (s *Sender) Send(ctx context.Context, cfg *tenants.Twilio, to, body, statusCallback string) (string, error) {
	if body == "" {
		return "", refused("empty message body")
	}
	if l := TextLimit; l.Len(body) > l.Max {
		// Twilio would refuse it (21617); say why without the round trip.
		return "", &channels.SendError{Provider: Channel, Code: CodeBodyTooLong, Message: fmt.Sprintf("message body has %d characters (UTF-16 units), Twilio takes at most %d", l.Len(body), l.Max)}
	}
	return s.create(ctx, cfg, to, statusCallback, func(p *openapi.CreateMessageParams) { p.SetBody(body) })
}

// SendTemplate sends an approved WhatsApp template — the only kind of
// message WhatsApp lets a business send outside the 24-hour window — by its
// Content SID ("HX" + 32 hex digits) with ContentVariables, the JSON object
// of the template's placeholders ({"1": "Sam", "2": "10:30"}). variables
// may be nil for a template without placeholders. Everything else is as for
// Send: the SID on success, a *channels.SendError otherwise.
func (s *Sender) SendTemplate(ctx context.Context, cfg *tenants.Twilio, to, contentSID string, variables map[string]string, statusCallback string) (string, error) {
	if !contentSIDPattern.MatchString(contentSID) {
		return "", refused(fmt.Sprintf("content sid %q is not HX followed by 32 hex digits", clip(contentSID)))
	}
	var vars string
	if len(variables) > 0 {
		b, err := json.Marshal(variables) // keys sorted: the same request every time
		if err != nil {
			return "", refused("content variables: " + err.Error())
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
		return "", refused("no twilio configuration")
	}
	if !e164.Valid(to) {
		return "", refused(fmt.Sprintf("recipient %q is not an E.164 number", clip(to)))
	}
	var base *url.URL
	if cfg.APIBaseURL != "" {
		u, err := url.Parse(cfg.APIBaseURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return "", refused("api_base_url is not an absolute http(s) URL")
		}
		base = u
	}
	if err := ctx.Err(); err != nil {
		return "", &channels.SendError{Provider: Channel, Message: err.Error(), Kind: channels.Retry, Cause: err}
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
		return "", &channels.SendError{Provider: Channel, Status: rec.status, Message: "response has no message sid"}
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

// refused is a send refused before any request: permanent.
func refused(msg string) *channels.SendError {
	return &channels.SendError{Provider: Channel, Message: msg}
}

// classify turns what twilio-go returned into a SendError.
//
// It is retryable for HTTP 429 and 5xx, Twilio codes 20429 and 63018,
// network errors and a cancelled or expired ctx (the message may still be
// sent later); 21610 means the customer opted out, 63016 that free text is
// outside the 24-hour window; everything else — 4xx such as 401 (bad
// credentials) — is permanent: sending the same request again cannot
// succeed.
func classify(ctx context.Context, err error, rec *recorder, token string) *channels.SendError {
	se := &channels.SendError{Provider: Channel, Status: rec.status, Cause: err}
	retryable := false
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
		retryable = true
		se.Message = err.Error()
		if ctxErr := ctx.Err(); ctxErr != nil {
			se.Message = "aborted: " + ctxErr.Error()
			se.Cause = ctxErr
		}
	}
	rateLimited := se.Status == http.StatusTooManyRequests || se.Code == CodeTooManyReqs || se.Code == CodeRateLimited
	retryable = retryable || rateLimited || se.Status >= 500
	switch {
	case se.Code == CodeUnsubscribed:
		se.Kind = channels.OptedOut
	case se.Code == CodeOutsideWindow:
		se.Kind = channels.OutsideWindow
	case retryable:
		se.Kind = channels.Retry
		se.RateLimited = rateLimited
		se.RetryAfter = channels.ParseRetryAfter(rec.retryAfter, time.Now())
	}
	// Belt and braces: nothing above should carry the token, but a
	// message is built from text other software wrote.
	return se.Redact(token)
}
