package analytics

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/parleyhq/parley/api"
	"github.com/parleyhq/parley/apikeys"
	"github.com/parleyhq/parley/tenants"
)

// TestQueriesAreBounded: a range longer than MaxRange is refused before
// ClickHouse is asked anything, and past MaxQueries requests at once one
// more waits QueueWait and gets 503 busy. (No store: neither case may
// reach it.)
func TestQueriesAreBounded(t *testing.T) {
	a := NewAPI(Options{MaxQueries: 2, QueueWait: 300 * time.Millisecond, Now: func() time.Time { return time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC) }})
	call := api.Call{Tenant: &tenants.Tenant{ID: "acme"}}
	run := func(query string) (int, string) {
		var ctx fasthttp.RequestCtx
		ctx.Request.SetRequestURI("/api/v1/tenants/acme/analytics/summary?" + query)
		a.Summary(&ctx, call)
		var body apikeys.ErrorBody
		_ = json.Unmarshal(ctx.Response.Body(), &body)
		return ctx.Response.StatusCode(), body.Error.Code
	}
	for _, tc := range []struct {
		name, query string
		status      int
		code        string
	}{
		{"decades", "from=2000-01-01T00:00:00Z", 400, "range_too_long"},
		{"just over the bound", "from=2025-10-26T00:00:00Z&to=2026-12-01T00:00:00Z", 400, "range_too_long"},
		{"backwards", "from=2026-12-01T00:00:00Z&to=2026-11-01T00:00:00Z", 400, "invalid_range"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if status, code := run(tc.query); status != tc.status || code != tc.code {
				t.Fatalf("%d %q, want %d %q", status, code, tc.status, tc.code)
			}
		})
	}
	t.Run("busy", func(t *testing.T) {
		for range 2 {
			a.queries <- struct{}{} // two requests are querying
		}
		start := time.Now()
		status, code := run("")
		if status != 503 || code != "busy" {
			t.Fatalf("%d %q, want 503 busy", status, code)
		}
		if waited := time.Since(start); waited < 250*time.Millisecond {
			t.Fatalf("answered busy after %s, without waiting for a place", waited)
		}
	})
}
