package providertest

import (
	"context"
	"errors"
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
