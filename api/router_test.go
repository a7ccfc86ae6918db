package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/segmentio/kafka-go"
	"github.com/valyala/fasthttp"

	"github.com/parleyhq/parley/apikeys"
	"github.com/parleyhq/parley/tenants"
)

// stubAnalytics answers 299 with the handler's name, the tenant and the
// phone the router found.
type stubAnalytics struct{}

func stub(name string) Handler {
	return func(ctx *fasthttp.RequestCtx, c Call) {
		tenant := ""
		if c.Tenant != nil {
			tenant = c.Tenant.ID
		}
		ctx.SetStatusCode(299)
		ctx.SetBodyString(name + " " + tenant + " " + c.Phone + " " + c.Key.Label())
	}
}

func (stubAnalytics) Tenants(ctx *fasthttp.RequestCtx, c Call)    { stub("tenants")(ctx, c) }
func (stubAnalytics) Summary(ctx *fasthttp.RequestCtx, c Call)    { stub("summary")(ctx, c) }
func (stubAnalytics) Timeseries(ctx *fasthttp.RequestCtx, c Call) { stub("timeseries")(ctx, c) }
func (stubAnalytics) PowerUsers(ctx *fasthttp.RequestCtx, c Call) { stub("power-users")(ctx, c) }
func (stubAnalytics) Messages(ctx *fasthttp.RequestCtx, c Call)   { stub("messages")(ctx, c) }
func (stubAnalytics) Media(ctx *fasthttp.RequestCtx, c Call)      { stub("media")(ctx, c) }
func (stubAnalytics) Forget(ctx *fasthttp.RequestCtx, c Call)     { stub("forget")(ctx, c) }

// One router serves the automation API's routes and analytics' on the
// same paths, and answers unknown paths, other methods, keys and tenants
// in one place.
func TestRouterServesEveryRoute(t *testing.T) {
	const admin, agent, analyst = "router-admin-key-0001", "router-agent-key-0002", "router-analyst-key-003"
	keys, err := apikeys.New([]apikeys.Key{
		{Key: admin, Tenants: []string{"*"}, Role: apikeys.RoleAdmin, Name: "ops"},
		{Key: agent, Tenants: []string{"acme"}, Role: apikeys.RoleAgent, Name: "agent"},
		{Key: analyst, Tenants: []string{"acme"}, Role: apikeys.RoleAnalyst, Name: "analyst"},
	})
	if err != nil {
		t.Fatal(err)
	}
	reg, err := tenants.NewRegistry([]tenants.Tenant{{ID: "acme", Name: "Acme", Sim: true}})
	if err != nil {
		t.Fatal(err)
	}
	automation := New(Options{Tenants: reg, Keys: keys})
	r := NewRouter(keys, reg, Routes(automation, stubAnalytics{}))
	cases := []struct {
		name, method, path, key, body string
		status                        int
		code, answer, allow           string
	}{
		{"tenant list", "GET", "/api/v1/tenants", analyst, "", 299, "", "tenants   analyst", ""},
		{"tenant list, trailing slash", "GET", "/api/v1/tenants/", analyst, "", 299, "", "tenants   analyst", ""},
		{"tenant list without a key", "GET", "/api/v1/tenants", "", "", 401, "missing_key", "", ""},
		{"summary", "GET", "/api/v1/tenants/acme/analytics/summary", analyst, "", 299, "", "summary acme  analyst", ""},
		{"HEAD on a GET route", "HEAD", "/api/v1/tenants/acme/analytics/summary", analyst, "", 299, "", "", ""},
		{"log: GET on the messages path", "GET", "/api/v1/tenants/acme/messages", agent, "", 299, "", "messages acme  agent", ""},
		{"send: POST on the messages path", "POST", "/api/v1/tenants/acme/messages", agent, "{", 400, "invalid_json", "", ""},
		{"steer", "POST", "/api/v1/tenants/acme/conversations/+4915112345678/ai", agent, "{", 400, "invalid_json", "", ""},
		{"erasure", "DELETE", "/api/v1/tenants/acme/customers/+4915112345678", admin, "", 299, "", "forget acme +4915112345678 ops", ""},
		{"erasure needs admin", "DELETE", "/api/v1/tenants/acme/customers/+4915112345678", agent, "", 403, "forbidden_role", "", ""},
		{"erasure without a phone", "DELETE", "/api/v1/tenants/acme/customers/", admin, "", 404, "not_found", "", ""},
		{"other tenant", "GET", "/api/v1/tenants/globex/messages", agent, "", 403, "forbidden_tenant", "", ""},
		{"unknown tenant: the key first", "POST", "/api/v1/tenants/nobody/messages", "", "{}", 401, "missing_key", "", ""},
		{"unknown tenant", "POST", "/api/v1/tenants/nobody/messages", admin, "{}", 404, "unknown_tenant", "", ""},
		{"unknown path", "GET", "/api/v1/other", admin, "", 404, "not_found", "", ""},
		{"unknown endpoint of a tenant", "GET", "/api/v1/tenants/acme/nothing", admin, "", 404, "not_found", "", ""},
		{"wrong method", "POST", "/api/v1/tenants/acme/analytics/summary", admin, "", 405, "method_not_allowed", "", "GET"},
		{"respond takes POST only", "GET", "/api/v1/tenants/acme/ai/respond", admin, "", 405, "method_not_allowed", "", "POST"},
		{"messages: neither GET nor POST", "PUT", "/api/v1/tenants/acme/messages", admin, "", 405, "method_not_allowed", "", "POST, GET"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var ctx fasthttp.RequestCtx
			ctx.Request.Header.SetMethod(tc.method)
			ctx.Request.SetRequestURI(tc.path)
			ctx.Request.SetBodyString(tc.body)
			if tc.key != "" {
				ctx.Request.Header.Set("Authorization", "Bearer "+tc.key)
			}
			r.Handle(&ctx)
			body := ctx.Response.Body()
			if got := ctx.Response.StatusCode(); got != tc.status {
				t.Fatalf("%d %s, want %d", got, body, tc.status)
			}
			if tc.code != "" {
				var e apikeys.ErrorBody
				if err := json.Unmarshal(body, &e); err != nil || e.Error.Code != tc.code {
					t.Fatalf("body %s, want code %s", body, tc.code)
				}
			}
			if tc.answer != "" && string(body) != tc.answer {
				t.Fatalf("answer %q, want %q", body, tc.answer)
			}
			if got := string(ctx.Response.Header.Peek("Allow")); got != tc.allow {
				t.Fatalf("Allow %q, want %q", got, tc.allow)
			}
		})
	}
}

// refusingProducer is a broker that is away.
type refusingProducer struct{}

func (refusingProducer) Produce(context.Context, ...kafka.Message) error {
	return errors.New("broker away")
}

// TestSteeringIsRateLimited: switching conversations' AI or status is
// under the tenant's API rate limit, so a key cannot make sessions for any
// number of made-up phones at wire speed.
func TestSteeringIsRateLimited(t *testing.T) {
	const agent = "router-agent-key-0002"
	keys, _ := apikeys.New([]apikeys.Key{{Key: agent, Tenants: []string{"acme"}, Role: apikeys.RoleAgent, Name: "agent"}})
	reg, _ := tenants.NewRegistry([]tenants.Tenant{{ID: "acme", Sim: true, APIRateLimit: 1}})
	r := NewRouter(keys, reg, Routes(New(Options{Tenants: reg, Keys: keys, Producer: refusingProducer{}, Pending: NewPending()}), stubAnalytics{}))
	statuses := []int{}
	for i := range 3 {
		var ctx fasthttp.RequestCtx
		ctx.Request.Header.SetMethod("POST")
		ctx.Request.SetRequestURI(fmt.Sprintf("/api/v1/tenants/acme/conversations/+49151123456%02d/ai", i))
		ctx.Request.SetBodyString(`{"enabled":false}`)
		ctx.Request.Header.Set("Authorization", "Bearer "+agent)
		r.Handle(&ctx)
		statuses = append(statuses, ctx.Response.StatusCode())
	}
	// The first is let through (and finds the broker away); the others,
	// within the same second, are refused before anything is queued.
	if statuses[0] != 503 || statuses[1] != 429 || statuses[2] != 429 {
		t.Fatalf("statuses %v, want [503 429 429]", statuses)
	}
}

// TestRespondBoundsVariables: ai/respond's variables are context, bounded
// (400 invalid_variables) before anything is queued.
func TestRespondBoundsVariables(t *testing.T) {
	const agent = "router-agent-key-0002"
	keys, _ := apikeys.New([]apikeys.Key{{Key: agent, Tenants: []string{"acme"}, Role: apikeys.RoleAgent, Name: "agent"}})
	reg, _ := tenants.NewRegistry([]tenants.Tenant{{ID: "acme", Sim: true}})
	r := NewRouter(keys, reg, Routes(New(Options{Tenants: reg, Keys: keys, Producer: refusingProducer{}, Pending: NewPending()}), stubAnalytics{}))
	many := map[string]string{}
	for i := range 51 {
		many[fmt.Sprint("k", i)] = "v"
	}
	for _, tc := range []struct {
		name   string
		vars   map[string]string
		status int
	}{
		{"a few", map[string]string{"order": "A-1001"}, 503}, // queued: the broker is away
		{"too many", many, 400},
		{"a value too long", map[string]string{"note": strings.Repeat("x", 1001)}, 400},
		{"an empty name", map[string]string{"": "x"}, 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body, _ := json.Marshal(map[string]any{"customer": "+4915112345678", "message": "hi", "variables": tc.vars})
			var ctx fasthttp.RequestCtx
			ctx.Request.Header.SetMethod("POST")
			ctx.Request.SetRequestURI("/api/v1/tenants/acme/ai/respond")
			ctx.Request.SetBody(body)
			ctx.Request.Header.Set("Authorization", "Bearer "+agent)
			r.Handle(&ctx)
			if got := ctx.Response.StatusCode(); got != tc.status {
				t.Fatalf("%d %s, want %d", got, ctx.Response.Body(), tc.status)
			}
		})
	}
}

// Segments named other than {tenant} and {phone} reach the handler by
// name; a route without them sees "".
func TestRouterPassesNamedSegments(t *testing.T) {
	const admin = "router-admin-key-0001"
	keys, err := apikeys.New([]apikeys.Key{{Key: admin, Tenants: []string{"*"}, Role: apikeys.RoleAdmin}})
	if err != nil {
		t.Fatal(err)
	}
	reg, err := tenants.NewRegistry([]tenants.Tenant{{ID: "acme", Name: "Acme", Sim: true}})
	if err != nil {
		t.Fatal(err)
	}
	echo := func(ctx *fasthttp.RequestCtx, c Call) {
		ctx.SetBodyString(c.Tenant.ID + "|" + c.Param("id") + "|" + c.Param("sub") + "|" + c.Param("none") + "|" + c.Phone)
	}
	r := NewRouter(keys, reg, []Route{
		{fasthttp.MethodGet, "tenants/{tenant}/things/{id}", "", echo},
		{fasthttp.MethodGet, "tenants/{tenant}/things/{id}/parts/{sub}", "", echo},
		{fasthttp.MethodGet, "tenants/{tenant}/people/{phone}", "", echo},
	})
	for _, tc := range []struct{ path, want string }{
		{"/api/v1/tenants/acme/things/n-1", "acme|n-1|||"},
		{"/api/v1/tenants/acme/things/n-1/parts/p2", "acme|n-1|p2||"},
		{"/api/v1/tenants/acme/people/+447700900456", "acme||||+447700900456"},
	} {
		var ctx fasthttp.RequestCtx
		ctx.Request.SetRequestURI(tc.path)
		ctx.Request.Header.Set("Authorization", "Bearer "+admin)
		r.Handle(&ctx)
		if got := string(ctx.Response.Body()); ctx.Response.StatusCode() != 200 || got != tc.want {
			t.Errorf("%s: %d %q, want %q", tc.path, ctx.Response.StatusCode(), got, tc.want)
		}
	}
	var ctx fasthttp.RequestCtx
	ctx.Request.SetRequestURI("/api/v1/tenants/acme/things/")
	ctx.Request.Header.Set("Authorization", "Bearer "+admin)
	r.Handle(&ctx)
	if ctx.Response.StatusCode() != fasthttp.StatusNotFound {
		t.Errorf("empty {id}: %d, want 404", ctx.Response.StatusCode())
	}
}
