package providertest

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"testing"
	"time"

	"github.com/parleyhq/parley/channels"
)

// SendError returns err's *channels.SendError, failing t when it has none.
func SendError(t testing.TB, err error) *channels.SendError {
	t.Helper()
	se, ok := channels.AsSendError(err)
	if !ok {
		t.Fatalf("error %v (%T) is not a *SendError", err, err)
	}
	return se
}

// RawAnswer is an answer a provider's API (or what stands in front of it)
// may give to a send, and what the SendError must say of it.
type RawAnswer struct {
	Name       string
	Handler    http.HandlerFunc
	Status     int
	Code       int
	Retryable  bool
	RetryAfter time.Duration
}

// CommonRawAnswers are answers that mean the same from any provider: a
// proxy's error page, a Retry-After to cap, a redirect not to follow.
func CommonRawAnswers() []RawAnswer {
	return []RawAnswer{
		{"502 html from a proxy", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(502)
			fmt.Fprint(w, "<html>Bad Gateway</html>")
		}, 502, 0, true, 0},
		{"503 with an absurd Retry-After is capped", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Retry-After", "86400")
			w.WriteHeader(503)
		}, 503, 0, true, 5 * time.Minute},
		{"redirect is not followed", func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "https://elsewhere.example/", http.StatusTemporaryRedirect)
		}, 307, 0, false, 0},
	}
}

// CheckRawAnswers sends, with send, to a server at baseURL that answers
// as each case says, and checks the SendError against the case.
func CheckRawAnswers(t *testing.T, cases []RawAnswer, send func(baseURL string) error) {
	for _, tc := range cases {
		t.Run(tc.Name, func(t *testing.T) {
			srv := httptest.NewServer(tc.Handler)
			defer srv.Close()
			se := SendError(t, send(srv.URL))
			if se.Status != tc.Status || se.Code != tc.Code || se.Retryable() != tc.Retryable || se.RetryAfter != tc.RetryAfter {
				t.Fatalf("got %+v", se)
			}
		})
	}
}

// CheckNetworkAndContext sends, with send, where no answer comes: to a
// server that has gone away (connection refused), with ctx already
// cancelled, with a deadline that passes during the request, and through
// an http.Client whose Timeout passes. Each must end within seconds in a
// retryable SendError with no status, wrapping the context's error; check,
// when not nil, looks at each error too. send's client is nil but for the
// client timeout.
func CheckNetworkAndContext(t *testing.T, send func(ctx context.Context, client *http.Client, baseURL string) error, check func(t *testing.T, err error)) {
	// A server that has gone away: connection refused.
	gone := httptest.NewServer(http.NotFoundHandler())
	gone.Close()

	// A server that answers only after the client has given up.
	release := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(slow.Close)
	t.Cleanup(func() { close(release) })

	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	background := func() (context.Context, context.CancelFunc) { return context.Background(), func() {} }

	cases := []struct {
		name   string
		client *http.Client
		ctx    func() (context.Context, context.CancelFunc)
		url    string
		is     error // errors.Is target, if any
	}{
		{"connection refused", nil, background, gone.URL, nil},
		{"ctx already cancelled", nil, func() (context.Context, context.CancelFunc) { return canceled, func() {} }, slow.URL, context.Canceled},
		{"ctx deadline during the request", nil, func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), 100*time.Millisecond)
		}, slow.URL, context.DeadlineExceeded},
		{"client timeout", &http.Client{Timeout: 100 * time.Millisecond}, background, slow.URL, context.DeadlineExceeded},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := tc.ctx()
			defer cancel()
			start := time.Now()
			err := send(ctx, tc.client, tc.url)
			if took := time.Since(start); took > 5*time.Second {
				t.Fatalf("took %v: the deadline was not applied", took)
			}
			se := SendError(t, err)
			if !se.Retryable() || se.Status != 0 {
				t.Fatalf("got %+v", se)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Fatalf("%v is not %v", err, tc.is)
			}
			if check != nil {
				check(t, err)
			}
		})
	}
}

// Answer is a RawAnswer, in the order of its fields.
func Answer(name string, h http.HandlerFunc, status, code int, retryable bool, retryAfter time.Duration) RawAnswer {
	return RawAnswer{Name: name, Handler: h, Status: status, Code: code, Retryable: retryable, RetryAfter: retryAfter}
}

// Capture is an http.Client whose transport stands in for the network:
// it answers every request with status and no body, and last returns the
// latest request (nil before any).
func Capture(status int) (client *http.Client, last func() *http.Request) {
	var got *http.Request
	rt := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		got = r
		return &http.Response{StatusCode: status, Header: http.Header{}, Request: r, Body: http.NoBody}, nil
	})
	return &http.Client{Transport: rt}, func() *http.Request { return got }
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// UnderPrefix serves target under the path prefix ("/sandbox/twilio"),
// as a reverse proxy in front of a sandbox would, until t ends, and
// returns the URL with the prefix and a trailing slash.
func UnderPrefix(t testing.TB, target, prefix string) string {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httptest.NewServer(http.StripPrefix(prefix, httputil.NewSingleHostReverseProxy(u)))
	t.Cleanup(proxy.Close)
	return proxy.URL + prefix + "/"
}
