package httpapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/parleyhq/parley/backend"
	"github.com/parleyhq/parley/backend/demo"
	"github.com/parleyhq/parley/backend/httpapi"
)

// TestHandler speaks raw HTTP to the Handler: what a business's developer
// sees of the demo, and what the contract promises beyond the Go client.
func TestHandler(t *testing.T) {
	base := serve(t, httpapi.Handler(demo.NewAt(func() time.Time { return wednesday }), token))
	auth := "Bearer " + token

	tests := []struct {
		name, method, path, auth string
		status                   int
		code                     string // error code, when an error
		contains                 string // in the body
		allow                    string
	}{
		{"no token", "GET", "/services", "", 401, "unauthorized", "", ""},
		{"wrong token", "GET", "/services", "Bearer nope", 401, "unauthorized", "", ""},
		{"token as a prefix", "GET", "/services", auth + "x", 401, "unauthorized", "", ""},
		{"basic auth", "GET", "/services", "Basic " + token, 401, "unauthorized", "", ""},
		{"scheme in any case", "GET", "/services", "bearer " + token, 200, "", `"duration_minutes":180`, ""},
		{"unknown path needs a token too", "GET", "/admin", "", 401, "unauthorized", "", ""},
		{"phone encoded", "GET", "/profiles?phone=%2B447700900456", auth, 200, "", `"prof_sam"`, ""},
		{"phone with a bare +", "GET", "/profiles?phone=+447700900456", auth, 200, "", `"prof_sam"`, ""},
		{"unknown phone", "GET", "/profiles?phone=%2B447700900000", auth, 200, "", `{"profiles":[]}`, ""},
		{"no phone", "GET", "/profiles", auth, 400, "invalid_request", "", ""},
		{"national phone", "GET", "/profiles?phone=07700900456", auth, 400, "invalid_request", "", ""},
		{"availability", "GET", "/services/svc_standard/availability?date=2025-06-12", auth, 200, "", `"start":"2025-06-12T09:00:00+01:00"`, ""},
		{"availability on a Sunday", "GET", "/services/svc_standard/availability?date=2025-06-15", auth, 200, "", `"slots":[]`, ""},
		{"availability without a date", "GET", "/services/svc_standard/availability", auth, 400, "invalid_request", "", ""},
		{"availability with a bad date", "GET", "/services/svc_standard/availability?date=12/06/2025", auth, 400, "invalid_request", "", ""},
		{"availability of an unknown service", "GET", "/services/svc_x/availability?date=2025-06-12", auth, 400, "invalid_request", "", ""},
		{"bookings default to upcoming", "GET", "/profiles/prof_sam/bookings", auth, 200, "", `"bk_1001"`, ""},
		{"past bookings", "GET", "/profiles/prof_sam/bookings?filter=past", auth, 200, "", `"bk_0901"`, ""},
		{"bad filter", "GET", "/profiles/prof_sam/bookings?filter=all", auth, 400, "invalid_request", "", ""},
		{"unknown profile", "GET", "/profiles/prof_x/bookings", auth, 404, "not_found", "", ""},
		{"account", "GET", "/profiles/prof_sam/account", auth, 200, "", `"phone":"+447700900456"`, ""},
		{"subscription", "GET", "/profiles/prof_sam/subscription", auth, 200, "", `"plan":"Standard Clean - Fortnightly"`, ""},
		{"no subscription", "GET", "/profiles/prof_test/subscription", auth, 404, "not_found", "", ""},
		{"cancel refused inside the window", "POST", "/profiles/prof_jane/bookings/bk_1003/cancel", auth, 409, "cancellation_refused", `"policy":"Free cancellation`, ""},
		{"cancel another's booking", "POST", "/profiles/prof_sam/bookings/bk_1003/cancel", auth, 404, "not_found", "", ""},
		{"cancel", "POST", "/profiles/prof_sam/bookings/bk_1002/cancel", auth, 200, "", `"cancelled":true`, ""},
		{"cancel again", "POST", "/profiles/prof_sam/bookings/bk_1002/cancel", auth, 200, "", `"already_cancelled":true`, ""},
		{"cancel with GET", "GET", "/profiles/prof_sam/bookings/bk_1002/cancel", auth, 405, "method_not_allowed", "", "POST"},
		{"services with POST", "POST", "/services", auth, 405, "method_not_allowed", "", "GET"},
		{"unknown path", "GET", "/bookings", auth, 404, "not_found", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, base+tt.path, nil)
			if tt.auth != "" {
				req.Header.Set("Authorization", tt.auth)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tt.status, body)
			}
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Errorf("content type %q", ct)
			}
			if tt.code != "" {
				var e struct {
					Error struct{ Code, Message string }
				}
				if err := json.Unmarshal(body, &e); err != nil || e.Error.Code != tt.code || e.Error.Message == "" {
					t.Errorf("error body %s, want code %s", body, tt.code)
				}
			}
			if !strings.Contains(string(body), tt.contains) {
				t.Errorf("body %s lacks %s", body, tt.contains)
			}
			if tt.status == 401 && resp.Header.Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
			if tt.allow != "" && resp.Header.Get("Allow") != tt.allow {
				t.Errorf("Allow %q, want %q", resp.Header.Get("Allow"), tt.allow)
			}
		})
	}
}

func TestHandlerWithoutToken(t *testing.T) {
	base := serve(t, httpapi.Handler(demo.New(), ""))
	for _, h := range []string{"", "Bearer ", "Bearer"} {
		req, _ := http.NewRequest("GET", base+"/services", nil)
		req.Header.Set("Authorization", h)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 401 {
			t.Errorf("%q: status %d, want 401", h, resp.StatusCode)
		}
	}
}

// failing is a backend whose every call fails with err.
type failing struct {
	backend.Backend
	err error
}

func (f failing) Services(context.Context) ([]backend.Service, error) { return nil, f.err }

// TestHandlerErrors: a backend's typed errors cross the wire as the same
// typed errors, and an untyped one says nothing of itself.
func TestHandlerErrors(t *testing.T) {
	tests := []struct {
		err    error
		status int
		want   error
	}{
		{fmt.Errorf("db down: %w", backend.ErrUnavailable), 503, backend.ErrUnavailable},
		{fmt.Errorf("upstream: %w", backend.ErrUnauthorized), 502, backend.ErrUnavailable},
		{fmt.Errorf("x: %w", backend.ErrNotFound), 404, backend.ErrNotFound},
		{fmt.Errorf("x: %w", backend.ErrInvalid), 400, backend.ErrInvalid},
		{errors.New("pq: password authentication failed for user admin"), 500, backend.ErrUnavailable},
	}
	for _, tt := range tests {
		_, err := client(t, serve(t, httpapi.Handler(failing{err: tt.err}, token)), httpapi.WithRetries(0)).Services(ctx)
		var e *httpapi.Error
		if !errors.Is(err, tt.want) || !errors.As(err, &e) || e.Status != tt.status {
			t.Errorf("%v: got %v, want %v with HTTP %d", tt.err, err, tt.want, tt.status)
		}
		if strings.Contains(err.Error(), "password") {
			t.Errorf("internal error leaked: %v", err)
		}
	}
}
