package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/parleyhq/parley/backend"
	"github.com/parleyhq/parley/internal/retry"
)

// Client defaults. The timeout bounds a whole call, retries and backoff
// included: the customer is waiting on WhatsApp, and a backend that has not
// answered in 5 s will not be rescued by a third attempt.
const (
	DefaultTimeout = 5 * time.Second
	DefaultRetries = 2
	DefaultBackoff = 100 * time.Millisecond
)

// maxBody caps what is read of a response; the contract's largest answer (a
// list of bookings) is a few kilobytes.
const maxBody = 1 << 20

// Client is a backend.Backend reached over HTTP under the contract. It is
// safe for concurrent use; make one per tenant, since each tenant's business
// system has its own base URL and token.
//
// Failures come back as *Error wrapping one of backend's typed errors:
// 401/403 ErrUnauthorized, 404 ErrNotFound, 400/422 (and other 4xx)
// ErrInvalid, 429/5xx/timeouts/network ErrUnavailable. GETs are retried on
// 500, 502, 503, 504 and network errors; the cancel POST never is, since a
// lost answer does not mean the cancellation did not happen.
type Client struct {
	base    string // without a trailing slash
	token   string
	hc      *http.Client
	timeout time.Duration
	retries int
	backoff time.Duration
}

var _ backend.Backend = (*Client)(nil)

// Option configures a Client.
type Option func(*Client)

// WithTimeout bounds each call, retries included (default 5 s).
func WithTimeout(d time.Duration) Option { return func(c *Client) { c.timeout = d } }

// WithRetries sets how many times an idempotent call is retried after a
// 5xx or network failure (default 2; 0 disables).
func WithRetries(n int) Option { return func(c *Client) { c.retries = max(n, 0) } }

// WithBackoff sets the wait before the first retry; it doubles for each
// further one, with jitter (default 100 ms).
func WithBackoff(d time.Duration) Option { return func(c *Client) { c.backoff = d } }

// WithHTTPClient sets the HTTP client (for its transport); its own Timeout
// should be zero, the Client's timeout being the one that applies.
func WithHTTPClient(hc *http.Client) Option { return func(c *Client) { c.hc = hc } }

// NewClient returns the client of the business system at baseURL (http or
// https, without query; operations are appended to its path), presenting
// token as a bearer token.
func NewClient(baseURL, token string, opts ...Option) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("httpapi: base URL must be http(s)://host[/path] without query")
	}
	if token == "" {
		return nil, errors.New("httpapi: a bearer token is required")
	}
	c := &Client{
		base:    strings.TrimRight(baseURL, "/"),
		token:   token,
		hc:      &http.Client{Transport: defaultTransport},
		timeout: DefaultTimeout,
		retries: DefaultRetries,
		backoff: DefaultBackoff,
	}
	for _, o := range opts {
		o(c)
	}
	if c.timeout <= 0 {
		c.timeout = DefaultTimeout
	}
	return c, nil
}

// defaultTransport is shared by the clients of all tenants: one
// connection pool, with enough idle connections per host for a busy
// tenant's concurrent sessions. A batch of the session role runs hundreds
// of sessions at once; with 32 idle connections per host, 62% of the
// business calls dialled anew (bench/engine), which over TLS to a real
// backend costs a handshake each.
var defaultTransport = func() http.RoundTripper {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = 1024
	t.MaxIdleConnsPerHost = 256
	return t
}()

// Error is a failed backend call. It wraps Kind (one of backend.ErrUnavailable,
// ErrNotFound, ErrInvalid, ErrUnauthorized) and the underlying cause, if
// any, so errors.Is works for both. Its text never contains the token.
type Error struct {
	Op      string // the operation, e.g. "GET /profiles/{profile_id}/bookings"; no ids or phone numbers
	Status  int    // HTTP status; 0 when no response arrived
	Code    string // the error code of the response body, if any
	Message string // the message of the response body, if any (token redacted)
	Kind    error  // the typed error
	Err     error  // the cause (network, timeout, bad response), if any
	// Attempts is how many requests were sent (more than one after
	// retries), for failures of the network or of the status; 0 when the
	// call failed before sending any.
	Attempts int

	token string
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "backend %s: %v", e.Op, e.Kind)
	if e.Status != 0 {
		fmt.Fprintf(&b, " (HTTP %d", e.Status)
		if e.Code != "" {
			fmt.Fprintf(&b, " %s", e.Code)
		}
		if e.Message != "" {
			fmt.Fprintf(&b, ": %s", e.Message)
		}
		b.WriteString(")")
	}
	if e.Attempts > 1 {
		fmt.Fprintf(&b, " after %d attempts", e.Attempts)
	}
	if e.Err != nil {
		fmt.Fprintf(&b, ": %v", e.Err)
	}
	return redact(b.String(), e.token)
}

// Unwrap returns the typed error and the cause.
func (e *Error) Unwrap() []error {
	if e.Err != nil {
		return []error{e.Kind, e.Err}
	}
	return []error{e.Kind}
}

// redact removes the token from text that may have come from elsewhere (a
// server echoing the request, a URL error): errors end up in logs and, via
// the brain, near customers.
func redact(s, token string) string {
	if token == "" {
		return s
	}
	return strings.ReplaceAll(s, token, "[REDACTED]")
}

// ProfilesByPhone implements backend.Backend.
func (c *Client) ProfilesByPhone(ctx context.Context, phone string) ([]backend.Profile, error) {
	var out profilesBody
	err := c.get(ctx, routeProfiles, "/profiles", url.Values{"phone": {phone}}, &out)
	if err != nil {
		return nil, err
	}
	return out.Profiles, nil
}

// Services implements backend.Backend. Duration is filled from DurationMin.
func (c *Client) Services(ctx context.Context) ([]backend.Service, error) {
	var out servicesBody
	if err := c.get(ctx, routeServices, "/services", nil, &out); err != nil {
		return nil, err
	}
	for i := range out.Services {
		out.Services[i].Duration = time.Duration(out.Services[i].DurationMin) * time.Minute
	}
	return nonNil(out.Services), nil
}

// Availability implements backend.Backend. The day asked for is date's
// calendar day in date's own location.
func (c *Client) Availability(ctx context.Context, serviceID string, date time.Time) ([]backend.Slot, error) {
	if serviceID == "" || date.IsZero() {
		return nil, c.fail(routeAvailability, backend.ErrInvalid, errors.New("service id and date are required"))
	}
	var out availabilityBody
	path := "/services/" + url.PathEscape(serviceID) + "/availability"
	if err := c.get(ctx, routeAvailability, path, url.Values{"date": {date.Format(dateLayout)}}, &out); err != nil {
		return nil, err
	}
	return nonNil(out.Slots), nil
}

// Bookings implements backend.Backend.
func (c *Client) Bookings(ctx context.Context, profileID string, filter backend.BookingFilter) ([]backend.Booking, error) {
	if profileID == "" || (filter != backend.Upcoming && filter != backend.Past) {
		return nil, c.fail(routeBookings, backend.ErrInvalid, errors.New("profile id and a filter of upcoming or past are required"))
	}
	var out bookingsBody
	path := "/profiles/" + url.PathEscape(profileID) + "/bookings"
	if err := c.get(ctx, routeBookings, path, url.Values{"filter": {string(filter)}}, &out); err != nil {
		return nil, err
	}
	// The profile id is what keeps one customer from seeing another's
	// bookings; do not trust a backend that answers with someone else's.
	for i, bk := range out.Bookings {
		switch bk.ProfileID {
		case profileID:
		case "":
			out.Bookings[i].ProfileID = profileID
		default:
			return nil, c.fail(routeBookings, backend.ErrUnavailable, errors.New("response holds a booking of another profile"))
		}
	}
	return nonNil(out.Bookings), nil
}

// CancelBooking implements backend.Backend. It is sent once, never retried.
// A 409 is the policy's refusal and comes back as a result with
// Cancelled false and the reason, not as an error.
func (c *Client) CancelBooking(ctx context.Context, profileID, bookingID string) (backend.CancelResult, error) {
	if profileID == "" || bookingID == "" {
		return backend.CancelResult{}, c.fail(routeCancel, backend.ErrInvalid, errors.New("profile id and booking id are required"))
	}
	path := "/profiles/" + url.PathEscape(profileID) + "/bookings/" + url.PathEscape(bookingID) + "/cancel"
	status, body, attempts, err := c.do(ctx, routeCancel, path, nil)
	if err != nil {
		return backend.CancelResult{}, err
	}
	var res backend.CancelResult
	switch {
	case status == http.StatusConflict:
		var refusal refusalBody
		if err := json.Unmarshal(body, &refusal); err != nil {
			return backend.CancelResult{}, c.fail(routeCancel, backend.ErrUnavailable, fmt.Errorf("malformed refusal: %w", err))
		}
		res = refusal.Result
		res.Cancelled = false
		if res.Reason == "" {
			res.Reason = redact(refusal.Error.Message, c.token)
		}
	case status >= 200 && status < 300:
		if err := json.Unmarshal(body, &res); err != nil {
			return backend.CancelResult{}, c.fail(routeCancel, backend.ErrUnavailable, fmt.Errorf("malformed response: %w", err))
		}
	default:
		e := c.statusError(routeCancel, status, body)
		e.Attempts = attempts
		return backend.CancelResult{}, e
	}
	if res.Booking.ProfileID != "" && res.Booking.ProfileID != profileID {
		return backend.CancelResult{}, c.fail(routeCancel, backend.ErrUnavailable, errors.New("response holds a booking of another profile"))
	}
	return res, nil
}

// Account implements backend.Backend.
func (c *Client) Account(ctx context.Context, profileID string) (backend.Account, error) {
	if profileID == "" {
		return backend.Account{}, c.fail(routeAccount, backend.ErrInvalid, errors.New("profile id is required"))
	}
	var out backend.Account
	if err := c.get(ctx, routeAccount, "/profiles/"+url.PathEscape(profileID)+"/account", nil, &out); err != nil {
		return backend.Account{}, err
	}
	if out.ProfileID != "" && out.ProfileID != profileID {
		return backend.Account{}, c.fail(routeAccount, backend.ErrUnavailable, errors.New("response is another profile's account"))
	}
	out.ProfileID = profileID
	return out, nil
}

// Subscription implements backend.Backend.
func (c *Client) Subscription(ctx context.Context, profileID string) (backend.Subscription, error) {
	if profileID == "" {
		return backend.Subscription{}, c.fail(routeSubscription, backend.ErrInvalid, errors.New("profile id is required"))
	}
	var out backend.Subscription
	if err := c.get(ctx, routeSubscription, "/profiles/"+url.PathEscape(profileID)+"/subscription", nil, &out); err != nil {
		return backend.Subscription{}, err
	}
	if out.ProfileID != "" && out.ProfileID != profileID {
		return backend.Subscription{}, c.fail(routeSubscription, backend.ErrUnavailable, errors.New("response is another profile's subscription"))
	}
	out.ProfileID = profileID
	return out, nil
}

// get performs an idempotent call and decodes a 2xx answer into out.
func (c *Client) get(ctx context.Context, rt Route, path string, query url.Values, out any) error {
	status, body, attempts, err := c.do(ctx, rt, path, query)
	if err != nil {
		return err
	}
	if status < 200 || status > 299 {
		e := c.statusError(rt, status, body)
		e.Attempts = attempts
		return e
	}
	if err := json.Unmarshal(body, out); err != nil {
		e := c.fail(rt, backend.ErrUnavailable, fmt.Errorf("malformed response: %w", err))
		e.Attempts = attempts
		return e
	}
	return nil
}

// do sends the request, retrying a GET on a retryable failure, and returns
// the final status and body and the number of requests sent. A non-nil
// error means no usable response (a network failure, the timeout, or
// retryable statuses to the end); other statuses are for the caller to read.
func (c *Client) do(ctx context.Context, rt Route, path string, query url.Values) (int, []byte, int, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	target := c.base + path
	if len(query) > 0 {
		target += "?" + query.Encode() // encodes '+' as %2B
	}
	attempts := 1
	if rt.Method == http.MethodGet {
		attempts += c.retries
	}
	// The wait before retry i (from 1) is backoff·2^(i-1), of which up to
	// half is jitter, so that sessions failing together do not retry
	// together: ¾ of it ±⅓ is that range, uniformly.
	policy := retry.Backoff{Initial: c.backoff * 3 / 4, Jitter: 1.0 / 3, MaxAttempts: attempts}
	var status, n int
	var body []byte
	err := policy.Do(ctx, func(attempt int) (err error) {
		n = attempt
		status, body, err = c.once(ctx, rt.Method, target)
		if err == nil && retryableStatus(status) {
			return errRetryableStatus
		}
		return err
	})
	var e *Error
	switch {
	case err == nil:
		return status, body, n, nil
	case errors.Is(err, errRetryableStatus):
		// Out of attempts on a 5xx: an error, not a status for the
		// caller, so CancelBooking and get agree.
		e = c.statusError(rt, status, body)
	default:
		e = c.transportError(ctx, rt, err)
	}
	e.Attempts = n
	return 0, nil, n, e
}

// errRetryableStatus is an answer with a retryableStatus, to retry.
var errRetryableStatus = errors.New("retryable status")

// once sends one request and reads its answer.
func (c *Client) once(ctx context.Context, method, target string) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, target, nil)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "parley-backend-client/1")
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return 0, nil, err
	}
	// Drain what is left so the connection can be reused.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxBody))
	return resp.StatusCode, body, nil
}

// retryableStatus: the server failed and may well not the next time. 501
// and other 5xx are permanent; 429 asks us to slow down, not to hammer.
func retryableStatus(status int) bool {
	switch status {
	case http.StatusInternalServerError, http.StatusBadGateway,
		http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// transportError is a call that got no response.
func (c *Client) transportError(ctx context.Context, rt Route, err error) *Error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		// Either our timeout or the caller's deadline; both are "too slow".
		err = fmt.Errorf("no answer in time (timeout %s): %w", c.timeout, context.DeadlineExceeded)
	} else if ctx.Err() != nil {
		err = ctx.Err()
	}
	return c.fail(rt, backend.ErrUnavailable, err)
}

// statusError maps a non-2xx status to a typed error, keeping the body's
// error code and message.
func (c *Client) statusError(rt Route, status int, body []byte) *Error {
	var kind error
	switch {
	case status == http.StatusUnauthorized, status == http.StatusForbidden:
		kind = backend.ErrUnauthorized
	case status == http.StatusNotFound:
		kind = backend.ErrNotFound
	case status == http.StatusTooManyRequests, status >= 500:
		kind = backend.ErrUnavailable
	case status >= 400:
		kind = backend.ErrInvalid // 400, 422 and other refusals of the request itself
	default:
		kind = backend.ErrUnavailable // 1xx/3xx: not the contract
	}
	e := &Error{Op: rt.Method + " " + rt.Path, Status: status, Kind: kind, token: c.token}
	var eb errorBody
	if json.Unmarshal(bytes.TrimSpace(body), &eb) == nil {
		e.Code = eb.Error.Code
		// Redact before truncating: a cut could leave part of the token.
		e.Message = truncate(redact(eb.Error.Message, c.token), 200)
	}
	return e
}

func (c *Client) fail(rt Route, kind, cause error) *Error {
	return &Error{Op: rt.Method + " " + rt.Path, Kind: kind, Err: cause, token: c.token}
}

// truncate shortens s to at most n runes.
func truncate(s string, n int) string {
	for i := range s {
		if n == 0 {
			return s[:i] + "…"
		}
		n--
	}
	return s
}
