package httpapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parleyhq/parley/backend"
	"github.com/parleyhq/parley/backend/demo"
	"github.com/parleyhq/parley/backend/httpapi"
)

const token = "tok_s3cr3t-9f8e7d6c5b4a"

var ctx = context.Background()

// wednesday 10:00 London: Jane's booking is at 14:00 today, Sam's on the
// following Mondays (see package demo).
var wednesday = time.Date(2025, 6, 11, 10, 0, 0, 0, demo.Location)

func day(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, demo.Location) }

// serve starts a real HTTP server for h and returns its URL.
func serve(t *testing.T, h http.Handler) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

func client(t *testing.T, baseURL string, opts ...httpapi.Option) *httpapi.Client {
	t.Helper()
	// A tiny backoff keeps retry tests fast; each test its own transport so
	// that connection reuse between tests cannot skew request counts.
	opts = append([]httpapi.Option{
		httpapi.WithBackoff(time.Millisecond),
		httpapi.WithHTTPClient(&http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}),
	}, opts...)
	c, err := httpapi.NewClient(baseURL, token, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestRoundTrip holds the client over Handler(demo) to the demo itself,
// call by call.
func TestRoundTrip(t *testing.T) {
	d := demo.NewAt(func() time.Time { return wednesday })
	c := client(t, serve(t, httpapi.Handler(d, token)))

	t.Run("profiles", func(t *testing.T) {
		for _, phone := range []string{demo.PhoneJane, demo.PhoneSam, demo.PhoneAlex, "+447700900000"} {
			want, _ := d.ProfilesByPhone(ctx, phone)
			got, err := c.ProfilesByPhone(ctx, phone)
			if err != nil {
				t.Fatal(err)
			}
			if len(want) == 0 && len(got) == 0 {
				continue
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("%s: got %+v, want %+v", phone, got, want)
			}
		}
		if _, err := c.ProfilesByPhone(ctx, "07700 900456"); !errors.Is(err, backend.ErrInvalid) {
			t.Errorf("a number not in E.164: %v, want ErrInvalid", err)
		}
	})

	t.Run("services", func(t *testing.T) {
		want, _ := d.Services(ctx)
		got, err := c.Services(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("got %+v\nwant %+v", got, want)
		}
	})

	t.Run("availability", func(t *testing.T) {
		for _, svc := range []string{demo.ServiceStandard, demo.ServicePremium, demo.ServiceDeep} {
			for _, dd := range []time.Time{day(2025, 6, 11), day(2025, 6, 12), day(2025, 6, 14), day(2025, 6, 16), day(2025, 6, 10)} {
				want, _ := d.Availability(ctx, svc, dd)
				got, err := c.Availability(ctx, svc, dd)
				if err != nil {
					t.Fatal(err)
				}
				if !sameSlots(got, want) {
					t.Errorf("%s on %s: got %v, want %v", svc, dd.Format(time.DateOnly), got, want)
				}
			}
		}
		if _, err := c.Availability(ctx, "svc_nope", day(2025, 6, 12)); !errors.Is(err, backend.ErrInvalid) {
			t.Errorf("unknown service: %v, want ErrInvalid", err)
		}
	})

	profiles := []string{demo.ProfileJane, demo.ProfileTest, demo.ProfileJohn, demo.ProfileSam, demo.ProfileAlex, "prof_nobody"}

	t.Run("bookings", func(t *testing.T) {
		for _, p := range profiles {
			for _, f := range []backend.BookingFilter{backend.Upcoming, backend.Past} {
				want, wantErr := d.Bookings(ctx, p, f)
				got, err := c.Bookings(ctx, p, f)
				if !sameErr(err, wantErr) {
					t.Fatalf("%s %s: err %v, want %v", p, f, err, wantErr)
				}
				if !sameBookings(got, want) {
					t.Errorf("%s %s: got %+v\nwant %+v", p, f, got, want)
				}
			}
		}
	})

	t.Run("account and subscription", func(t *testing.T) {
		for _, p := range profiles {
			wantA, wantErr := d.Account(ctx, p)
			gotA, err := c.Account(ctx, p)
			if !sameErr(err, wantErr) || !gotA.MemberSince.Equal(wantA.MemberSince) {
				t.Errorf("%s account: %+v, %v; want %+v, %v", p, gotA, err, wantA, wantErr)
			}
			gotA.MemberSince, wantA.MemberSince = time.Time{}, time.Time{}
			if err == nil && gotA != wantA {
				t.Errorf("%s account: got %+v, want %+v", p, gotA, wantA)
			}

			wantS, wantErr := d.Subscription(ctx, p)
			gotS, err := c.Subscription(ctx, p)
			if !sameErr(err, wantErr) || !gotS.NextPaymentDate.Equal(wantS.NextPaymentDate) {
				t.Errorf("%s subscription: %+v, %v; want %+v, %v", p, gotS, err, wantS, wantErr)
			}
			gotS.NextPaymentDate, wantS.NextPaymentDate = time.Time{}, time.Time{}
			if err == nil && gotS != wantS {
				t.Errorf("%s subscription: got %+v, want %+v", p, gotS, wantS)
			}
		}
	})

	t.Run("cancel", func(t *testing.T) {
		res, err := c.CancelBooking(ctx, demo.ProfileJane, demo.BookingJaneSoon)
		if err != nil {
			t.Fatalf("a refusal is a result, not an error: %v", err)
		}
		if res.Cancelled || !strings.Contains(res.Reason, "24 hours") || res.Policy != demo.Policy ||
			res.Booking.ID != demo.BookingJaneSoon || res.Booking.Status != "confirmed" {
			t.Errorf("Jane's inside the window: %+v", res)
		}

		if _, err := c.CancelBooking(ctx, demo.ProfileSam, demo.BookingJaneSoon); !errors.Is(err, backend.ErrNotFound) {
			t.Errorf("Sam cancelling Jane's booking: %v, want ErrNotFound", err)
		}
		if _, err := c.CancelBooking(ctx, demo.ProfileSam, "bk/1003"); !errors.Is(err, backend.ErrNotFound) {
			t.Errorf("an id with a slash: %v, want ErrNotFound", err)
		}

		res, err = c.CancelBooking(ctx, demo.ProfileSam, demo.BookingSamStandard)
		if err != nil || !res.Cancelled || res.AlreadyCancelled || res.Booking.Status != "cancelled" || res.Policy != demo.Policy {
			t.Fatalf("Sam's: %+v, %v", res, err)
		}
		res, err = c.CancelBooking(ctx, demo.ProfileSam, demo.BookingSamStandard)
		if err != nil || !res.Cancelled || !res.AlreadyCancelled {
			t.Errorf("Sam's again: %+v, %v", res, err)
		}
		up, _ := c.Bookings(ctx, demo.ProfileSam, backend.Upcoming)
		if len(up) != 1 || up[0].ID != demo.BookingSamPremium {
			t.Errorf("Sam's upcoming after cancelling: %+v", up)
		}

		res, err = c.CancelBooking(ctx, demo.ProfileSam, demo.BookingSamPast)
		if err != nil || res.Cancelled || res.Reason == "" {
			t.Errorf("Sam's past booking: %+v, %v", res, err)
		}
	})
}

// TestBasePath: a business may serve the contract under a path.
func TestBasePath(t *testing.T) {
	mux := http.NewServeMux()
	mux.Handle("/parley/v1/", http.StripPrefix("/parley/v1", httpapi.Handler(demo.New(), token)))
	base := serve(t, mux)
	for _, u := range []string{base + "/parley/v1", base + "/parley/v1/"} {
		svcs, err := client(t, u).Services(ctx)
		if err != nil || len(svcs) != 3 {
			t.Errorf("%s: %v, %v", u, svcs, err)
		}
	}
}

// flaky answers the first `failures` requests with status (0: drops the
// connection) and passes the rest to next, counting all.
type flaky struct {
	failures int32
	status   int
	next     http.Handler
	count    atomic.Int32
}

func (f *flaky) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if f.count.Add(1) > f.failures {
		f.next.ServeHTTP(w, r)
		return
	}
	if f.status == 0 {
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close()
		}
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(f.status)
	fmt.Fprintf(w, `{"error":{"code":"unavailable","message":"try later"}}`)
}

func TestRetries(t *testing.T) {
	getServices := func(c *httpapi.Client) error { _, err := c.Services(ctx); return err }
	getBookings := func(c *httpapi.Client) error {
		_, err := c.Bookings(ctx, demo.ProfileSam, backend.Upcoming)
		return err
	}
	cancel := func(c *httpapi.Client) error {
		_, err := c.CancelBooking(ctx, demo.ProfileSam, demo.BookingSamPremium)
		return err
	}

	tests := []struct {
		name     string
		failures int32
		status   int
		call     func(*httpapi.Client) error
		opts     []httpapi.Option
		wantErr  error
		requests int32
	}{
		{"GET: two 503s then success", 2, 503, getServices, nil, nil, 3},
		{"GET: three 503s is unavailable", 3, 503, getServices, nil, backend.ErrUnavailable, 3},
		{"GET: a 502 then success", 1, 502, getBookings, nil, nil, 2},
		{"GET: a 500 then success", 1, 500, getBookings, nil, nil, 2},
		{"GET: a dropped connection then success", 1, 0, getBookings, nil, nil, 2},
		{"GET: 501 is permanent", 1, 501, getServices, nil, backend.ErrUnavailable, 1},
		{"GET: 429 is not hammered", 1, 429, getServices, nil, backend.ErrUnavailable, 1},
		{"GET: 404 is an answer", 1, 404, getServices, nil, backend.ErrNotFound, 1},
		{"GET: retries off", 1, 503, getServices, []httpapi.Option{httpapi.WithRetries(0)}, backend.ErrUnavailable, 1},
		{"GET: five retries", 5, 503, getServices, []httpapi.Option{httpapi.WithRetries(5)}, nil, 6},
		{"POST cancel: a 503 is not retried", 1, 503, cancel, nil, backend.ErrUnavailable, 1},
		{"POST cancel: a dropped connection is not retried", 1, 0, cancel, nil, backend.ErrUnavailable, 1},
		{"POST cancel: success", 0, 503, cancel, nil, nil, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := demo.NewAt(func() time.Time { return wednesday })
			f := &flaky{failures: tt.failures, status: tt.status, next: httpapi.Handler(d, token)}
			err := tt.call(client(t, serve(t, f), tt.opts...))
			if !sameErr(err, tt.wantErr) {
				t.Errorf("err = %v, want %v", err, tt.wantErr)
			}
			if got := f.count.Load(); got != tt.requests {
				t.Errorf("%d requests, want %d", got, tt.requests)
			}
			if e := (*httpapi.Error)(nil); errors.As(err, &e) && e.Attempts != int(tt.requests) {
				t.Errorf("error says %d attempts, want %d", e.Attempts, tt.requests)
			}
		})
	}
}

// TestErrors: every failure is a typed error, and none shows the token,
// even from a server that echoes it back.
func TestErrors(t *testing.T) {
	echo := func(status int) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(status)
			json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{
				"code": "boom", "message": "you sent " + r.Header.Get("Authorization") + " " + strings.Repeat("é", 300),
			}})
		})
	}
	type call func(*httpapi.Client) error
	getAccount := func(c *httpapi.Client) error { _, err := c.Account(ctx, demo.ProfileSam); return err }

	tests := []struct {
		name    string
		handler http.Handler
		opts    []httpapi.Option
		call    call
		want    error
		also    error // a cause errors.Is must find too
		status  int
	}{
		{"400", echo(400), nil, getAccount, backend.ErrInvalid, nil, 400},
		{"401", echo(401), nil, getAccount, backend.ErrUnauthorized, nil, 401},
		{"403", echo(403), nil, getAccount, backend.ErrUnauthorized, nil, 403},
		{"404", echo(404), nil, getAccount, backend.ErrNotFound, nil, 404},
		{"409 on a GET", echo(409), nil, getAccount, backend.ErrInvalid, nil, 409},
		{"422", echo(422), nil, getAccount, backend.ErrInvalid, nil, 422},
		{"500", echo(500), nil, getAccount, backend.ErrUnavailable, nil, 500},
		{"503", echo(503), nil, getAccount, backend.ErrUnavailable, nil, 503},
		{"500 on cancel", echo(500), nil, func(c *httpapi.Client) error {
			_, err := c.CancelBooking(ctx, demo.ProfileSam, demo.BookingSamStandard)
			return err
		}, backend.ErrUnavailable, nil, 500},
		{"malformed JSON", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, "<html>") }),
			nil, getAccount, backend.ErrUnavailable, nil, 0},
		{"another profile's account", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			fmt.Fprint(w, `{"profile_id":"prof_jane","name":"Jane Smith"}`)
		}), nil, getAccount, backend.ErrUnavailable, nil, 0},
		{"another profile's bookings", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			fmt.Fprint(w, `{"bookings":[{"id":"bk_1003","profile_id":"prof_jane"}]}`)
		}), nil, func(c *httpapi.Client) error {
			_, err := c.Bookings(ctx, demo.ProfileSam, backend.Upcoming)
			return err
		},
			backend.ErrUnavailable, nil, 0},
		{"timeout", http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) { <-r.Context().Done() }),
			[]httpapi.Option{httpapi.WithTimeout(50 * time.Millisecond)}, getAccount,
			backend.ErrUnavailable, context.DeadlineExceeded, 0},
		{"wrong token at the demo", httpapi.Handler(demo.New(), "another-token"), nil, getAccount,
			backend.ErrUnauthorized, nil, 401},
		{"empty ids are refused before any request", nil, nil, func(c *httpapi.Client) error {
			_, err := c.CancelBooking(ctx, demo.ProfileSam, "")
			return err
		}, backend.ErrInvalid, nil, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := tt.handler
			if h == nil {
				h = http.NotFoundHandler()
			}
			start := time.Now()
			err := tt.call(client(t, serve(t, h), tt.opts...))
			checkErr(t, err, tt.want, tt.also)
			// Generous: it catches a retry storm, not a slow machine.
			if elapsed := time.Since(start); elapsed > 10*time.Second {
				t.Errorf("took %v", elapsed)
			}
			var e *httpapi.Error
			if errors.As(err, &e) && e.Status != tt.status {
				t.Errorf("status %d, want %d", e.Status, tt.status)
			}
		})
	}

	t.Run("connection refused", func(t *testing.T) {
		srv := httptest.NewServer(http.NotFoundHandler())
		srv.Close()
		_, err := client(t, srv.URL).Services(ctx)
		checkErr(t, err, backend.ErrUnavailable, nil)
	})

	t.Run("caller cancelled", func(t *testing.T) {
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		_, err := client(t, serve(t, httpapi.Handler(demo.New(), token))).Services(cctx)
		checkErr(t, err, backend.ErrUnavailable, context.Canceled)
	})

	t.Run("timeout bounds the retries too", func(t *testing.T) {
		var n atomic.Int32
		h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			n.Add(1)
			time.Sleep(40 * time.Millisecond)
			w.WriteHeader(503)
		})
		_, err := client(t, serve(t, h), httpapi.WithTimeout(60*time.Millisecond), httpapi.WithRetries(10)).Services(ctx)
		checkErr(t, err, backend.ErrUnavailable, nil)
		// The request count proves the bound; timing it would only test the machine.
		if n.Load() > 2 {
			t.Errorf("%d requests within a 60ms timeout of 40ms each, want at most 2", n.Load())
		}
	})
}

func checkErr(t *testing.T, err, want, also error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("err = %v, want %v", err, want)
	}
	if also != nil && !errors.Is(err, also) {
		t.Errorf("err = %v, want it to wrap %v", err, also)
	}
	var e *httpapi.Error
	if !errors.As(err, &e) {
		t.Errorf("err is %T, want *httpapi.Error", err)
	}
	if msg := err.Error(); strings.Contains(msg, token) || strings.Contains(msg, token[:12]) {
		t.Errorf("the token leaks: %s", msg)
	}
	if e != nil && len([]rune(e.Message)) > 201 {
		t.Errorf("message not truncated: %d runes", len([]rune(e.Message)))
	}
}

func TestNewClient(t *testing.T) {
	for _, tt := range []struct{ url, token string }{
		{"ftp://example.com", token},
		{"example.com", token},
		{"https://example.com/?x=1", token},
		{"https://example.com", ""},
	} {
		if _, err := httpapi.NewClient(tt.url, tt.token); err == nil {
			t.Errorf("NewClient(%q, %q) accepted", tt.url, tt.token)
		}
	}
}

// sameErr: both nil, or got is of want's typed kind (want may be a
// backend's wrapped error).
func sameErr(got, want error) bool {
	if want == nil || got == nil {
		return got == want
	}
	for _, kind := range []error{backend.ErrUnavailable, backend.ErrNotFound, backend.ErrInvalid, backend.ErrUnauthorized} {
		if errors.Is(want, kind) {
			return errors.Is(got, kind)
		}
	}
	return false
}

func sameSlots(a, b []backend.Slot) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !a[i].Start.Equal(b[i].Start) || !a[i].End.Equal(b[i].End) {
			return false
		}
	}
	return true
}

func sameBookings(a, b []backend.Booking) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := a[i], b[i]
		if !x.Start.Equal(y.Start) || !x.End.Equal(y.End) {
			return false
		}
		x.Start, x.End, y.Start, y.End = time.Time{}, time.Time{}, time.Time{}, time.Time{}
		if x != y {
			return false
		}
	}
	return true
}
