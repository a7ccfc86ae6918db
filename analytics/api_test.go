package analytics

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/parleyhq/parley/api"
	"github.com/parleyhq/parley/apikeys"
	chsink "github.com/parleyhq/parley/sinks/clickhouse"
	"github.com/parleyhq/parley/tenants"
)

const (
	keyAdmin   = "test-admin-key-000000000001"
	keyAnalyst = "test-acme-analyst-0000000002"
	keyAgent   = "test-acme-agent-00000000003"
	keyGlobex  = "test-globex-analyst-000000004"
)

func testKeys(t testing.TB) *apikeys.Set {
	t.Helper()
	keys, err := apikeys.New([]apikeys.Key{
		{Key: keyAdmin, Tenants: []string{"*"}, Role: apikeys.RoleAdmin, Name: "ops"},
		{Key: keyAnalyst, Tenants: []string{"acme"}, Role: apikeys.RoleAnalyst},
		{Key: keyAgent, Tenants: []string{"acme"}, Role: apikeys.RoleAgent},
		{Key: keyGlobex, Tenants: []string{"globex"}, Role: apikeys.RoleAnalyst},
	})
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

func testTenants(t testing.TB) *tenants.Registry {
	t.Helper()
	reg, err := tenants.NewRegistry([]tenants.Tenant{
		{ID: "acme", Name: "Acme Cleaning", Sim: true},
		{ID: "globex", Name: "Globex", Sim: true},
		{ID: "initech", Name: "Initech", Sim: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	return reg
}

// serve runs the API and the dashboard on a real fasthttp server, routed
// by prefix as the engine's ingress server routes its mounts.
func serve(t testing.TB, o Options) string {
	t.Helper()
	if o.Tenants == nil {
		o.Tenants = testTenants(t)
	}
	if o.Keys == nil {
		o.Keys = testKeys(t)
	}
	if o.Now == nil {
		o.Now = func() time.Time { return dsNow }
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	// Every /api/v1 route, as the engine mounts them: the dashboard also
	// reads the automation API's (the numbers card).
	router := api.NewRouter(o.Keys, o.Tenants, api.Routes(api.New(api.Options{Tenants: o.Tenants, Keys: o.Keys}), NewAPI(o)))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		switch p := string(ctx.Path()); {
		case strings.HasPrefix(p, api.Prefix):
			router.Handle(ctx)
		case strings.HasPrefix(p, DashboardPrefix):
			Dashboard(ctx)
		default:
			ctx.Error("not found", fasthttp.StatusNotFound)
		}
	}}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Shutdown() })
	return "http://" + ln.Addr().String()
}

// call makes a request and decodes a JSON answer into out (if not nil).
func call(t testing.TB, method, u, key string, out any) (int, apikeys.ErrorBody) {
	t.Helper()
	req, err := http.NewRequest(method, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	var e apikeys.ErrorBody
	if res.StatusCode >= 400 {
		if err := json.Unmarshal(body, &e); err != nil {
			t.Fatalf("%s %s: %d with a body that is not the JSON error: %s", method, u, res.StatusCode, body)
		}
		return res.StatusCode, e
	}
	if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("%s %s: content type %q", method, u, ct)
	}
	if out != nil {
		if err := json.Unmarshal(body, out); err != nil {
			t.Fatalf("%s %s: %v: %s", method, u, err, body)
		}
	}
	return res.StatusCode, e
}

var dsQuery = "?from=" + url.QueryEscape(dsFrom.Format(time.RFC3339)) + "&to=" + url.QueryEscape(dsNow.Format(time.RFC3339))

func TestAPISummaryFigures(t *testing.T) {
	base := serve(t, Options{Store: openDataset(t)})
	var s Summary
	if code, e := call(t, "GET", base+"/api/v1/tenants/acme/analytics/summary"+dsQuery, keyAnalyst, &s); code != 200 {
		t.Fatalf("%d %+v", code, e)
	}
	if s.MessagesIn != wantMessagesIn || s.MessagesOut != wantMessagesOut || s.Conversations != wantConversations ||
		s.ActiveSessions != wantActiveSessions || s.Handoffs != wantHandoffs || s.LLMTokens != wantTokens ||
		*s.AuthSuccessRate != 13.0/17 || *s.FirstResponseP50 != wantP50 || *s.FirstResponseP95 != wantP95 || len(s.TopQueries) != 4 {
		t.Fatalf("summary %+v", s)
	}
	// The JSON names the issue lists.
	var raw map[string]any
	call(t, "GET", base+"/api/v1/tenants/acme/analytics/summary"+dsQuery, keyAnalyst, &raw)
	for _, k := range []string{"conversations", "messages_in", "messages_out", "active_sessions", "auth_success_rate", "top_queries",
		"first_response_ms_p50", "first_response_ms_p95", "handoffs", "llm_tokens"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("summary has no %q", k)
		}
	}
	if q := raw["top_queries"].([]any)[0].(map[string]any); q["query"] != "sign_in" || q["count"] != 40.0 {
		t.Errorf("top query %v", q)
	}
	// Without from and to: the 7 days before now, which is the data set's
	// range.
	var d Summary
	call(t, "GET", base+"/api/v1/tenants/acme/analytics/summary", keyAnalyst, &d)
	if !d.From.Equal(dsFrom) || !d.To.Equal(dsNow) || d.MessagesIn != wantMessagesIn {
		t.Fatalf("default range %v–%v, %d messages", d.From, d.To, d.MessagesIn)
	}
}

func TestAPIAuth(t *testing.T) {
	base := serve(t, Options{Store: openDataset(t)})
	summary := func(tenant string) string { return base + "/api/v1/tenants/" + tenant + "/analytics/summary" + dsQuery }
	cases := []struct {
		name, method, url, key string
		status                 int
		code                   string
	}{
		{"no key", "GET", summary("acme"), "", 401, "missing_key"},
		{"unknown key", "GET", summary("acme"), "not-a-key-not-a-key", 401, "bad_key"},
		{"analyst, own tenant", "GET", summary("acme"), keyAnalyst, 200, ""},
		{"analyst, other tenant", "GET", summary("globex"), keyAnalyst, 403, "forbidden_tenant"},
		{"analyst, tenant that does not exist", "GET", summary("nope"), keyAnalyst, 403, "forbidden_tenant"},
		{"other tenant's analyst", "GET", summary("acme"), keyGlobex, 403, "forbidden_tenant"},
		{"agent, analytics", "GET", summary("acme"), keyAgent, 403, "forbidden_role"},
		{"agent, conversation log", "GET", base + "/api/v1/tenants/acme/messages" + dsQuery, keyAgent, 200, ""},
		{"agent, other tenant's log", "GET", base + "/api/v1/tenants/globex/messages" + dsQuery, keyAgent, 403, "forbidden_tenant"},
		{"admin, any tenant", "GET", summary("globex"), keyAdmin, 200, ""},
		{"admin, unknown tenant", "GET", summary("nope"), keyAdmin, 404, "unknown_tenant"},
		{"analyst may not erase", "DELETE", base + "/api/v1/tenants/acme/customers/%2B447700900101", keyAnalyst, 403, "forbidden_role"},
		{"agent may not erase", "DELETE", base + "/api/v1/tenants/acme/customers/%2B447700900101", keyAgent, 403, "forbidden_role"},
		{"power users, analyst", "GET", base + "/api/v1/tenants/acme/analytics/power-users" + dsQuery, keyAnalyst, 200, ""},
		{"timeseries, other tenant", "GET", base + "/api/v1/tenants/globex/analytics/timeseries?metric=messages_in", keyAnalyst, 403, "forbidden_tenant"},
		{"bad from", "GET", base + "/api/v1/tenants/acme/analytics/summary?from=yesterday", keyAnalyst, 400, "invalid_from"},
		{"from after to", "GET", base + "/api/v1/tenants/acme/analytics/summary?from=2024-03-10T00:00:00Z&to=2024-03-09T00:00:00Z", keyAnalyst, 400, "invalid_range"},
		{"bad metric", "GET", base + "/api/v1/tenants/acme/analytics/timeseries?metric=bogus", keyAnalyst, 400, "invalid_metric"},
		{"bad step", "GET", base + "/api/v1/tenants/acme/analytics/timeseries?metric=messages_in&step=week", keyAnalyst, 400, "invalid_step"},
		{"too many points", "GET", base + "/api/v1/tenants/acme/analytics/timeseries?metric=messages_in&step=hour&from=2026-01-01T00:00:00Z&to=2026-04-01T00:00:00Z", keyAnalyst, 400, "too_many_points"},
		{"bad phone", "GET", base + "/api/v1/tenants/acme/messages?phone=0151/12345678", keyAnalyst, 400, "invalid_phone"},
		{"bad limit", "GET", base + "/api/v1/tenants/acme/messages?limit=0", keyAnalyst, 400, "invalid_limit"},
		{"unknown endpoint", "GET", base + "/api/v1/tenants/acme/nothing", keyAdmin, 404, "not_found"},
		{"wrong method", "POST", summary("acme"), keyAdmin, 405, "method_not_allowed"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, e := call(t, c.method, c.url, c.key, nil)
			if code != c.status || e.Error.Code != c.code {
				t.Fatalf("%d %q (%s), want %d %q", code, e.Error.Code, e.Error.Message, c.status, c.code)
			}
		})
	}
}

func TestAPITenantList(t *testing.T) {
	base := serve(t, Options{Store: openDataset(t)})
	list := func(key string) []string {
		var res struct {
			Tenants []TenantInfo `json:"tenants"`
		}
		if code, e := call(t, "GET", base+"/api/v1/tenants", key, &res); code != 200 {
			t.Fatalf("%d %+v", code, e)
		}
		var ids []string
		for _, x := range res.Tenants {
			ids = append(ids, x.ID)
		}
		return ids
	}
	if got := fmt.Sprint(list(keyAdmin)); got != "[acme globex initech]" {
		t.Errorf("admin sees %s", got)
	}
	if got := fmt.Sprint(list(keyAnalyst)); got != "[acme]" {
		t.Errorf("acme analyst sees %s", got)
	}
	if got := fmt.Sprint(list(keyGlobex)); got != "[globex]" {
		t.Errorf("globex analyst sees %s", got)
	}
	if code, _ := call(t, "GET", base+"/api/v1/tenants", "", nil); code != 401 {
		t.Errorf("no key: %d", code)
	}
}

func TestAPIMasksPhonesForNonAdmins(t *testing.T) {
	base := serve(t, Options{Store: openDataset(t)})
	var users struct {
		Masked bool               `json:"masked"`
		Users  []chsink.PowerUser `json:"users"`
	}
	call(t, "GET", base+"/api/v1/tenants/acme/analytics/power-users"+dsQuery+"&limit=3", keyAnalyst, &users)
	if !users.Masked || len(users.Users) != 3 || users.Users[0].Phone != "+********0100" || users.Users[0].MessagesIn != 13 {
		t.Fatalf("analyst's power users %+v", users)
	}
	call(t, "GET", base+"/api/v1/tenants/acme/analytics/power-users"+dsQuery+"&limit=3", keyAdmin, &users)
	if users.Masked || users.Users[0].Phone != dsPhone(0) {
		t.Fatalf("admin's power users %+v", users)
	}
	var log struct {
		Masked   bool              `json:"masked"`
		Messages []chsink.LogEntry `json:"messages"`
	}
	// Filtering by the full number works for everyone; the analyst sees
	// it masked in the answer, the agent in full.
	q := dsQuery + "&phone=" + url.QueryEscape(dsPhone(1))
	call(t, "GET", base+"/api/v1/tenants/acme/messages"+q, keyAnalyst, &log)
	if !log.Masked || len(log.Messages) != 24 || log.Messages[0].Phone != "+********0101" {
		t.Fatalf("analyst's log: masked %v, %d entries, %+v", log.Masked, len(log.Messages), log.Messages[:min(1, len(log.Messages))])
	}
	call(t, "GET", base+"/api/v1/tenants/acme/messages"+q+"&limit=7", keyAgent, &log)
	if log.Masked || len(log.Messages) != 7 || log.Messages[0].Phone != dsPhone(1) {
		t.Fatalf("agent's log: %+v", log)
	}
	if MaskPhone("+4915112345678") != "+*********5678" || MaskPhone("12") != "****" {
		t.Fatal(MaskPhone("+4915112345678"))
	}
}

func TestAPITimeseries(t *testing.T) {
	base := serve(t, Options{Store: openDataset(t)})
	var s Series
	if code, e := call(t, "GET", base+"/api/v1/tenants/acme/analytics/timeseries"+dsQuery+"&metric=conversations&step=day", keyAnalyst, &s); code != 200 {
		t.Fatalf("%d %+v", code, e)
	}
	if s.Metric != "conversations" || s.Step != chsink.StepDay || len(s.Points) != 8 || *s.Points[1].Value != 8 {
		t.Fatalf("series %+v", s)
	}
	// Default step: hours up to 14 days.
	call(t, "GET", base+"/api/v1/tenants/acme/analytics/timeseries"+dsQuery+"&metric=messages_in", keyAnalyst, &s)
	if s.Step != chsink.StepHour || len(s.Points) != 168 {
		t.Fatalf("default step %s, %d points", s.Step, len(s.Points))
	}
}

func TestAPIForget(t *testing.T) {
	s := freshDataset(t)
	var (
		mu     sync.Mutex
		hooked []string
		fail   error
	)
	base := serve(t, Options{Store: s, ForgetSession: func(tenant, phone string) error {
		mu.Lock()
		defer mu.Unlock()
		hooked = append(hooked, tenant+" "+phone)
		return fail
	}})
	gone := dsPhone(1)
	u := base + "/api/v1/tenants/acme/customers/" + url.PathEscape(gone)

	// The live session cannot be removed: nothing is deleted.
	fail = errors.New("actor unreachable")
	if code, e := call(t, "DELETE", u, keyAdmin, nil); code != 503 || e.Error.Code != "session_unavailable" {
		t.Fatalf("%d %+v", code, e)
	}
	if n := countRows(t, s, chsink.TableMessages, "tenant = 'acme' AND phone = ?", gone); n == 0 {
		t.Fatal("rows deleted although the session was not")
	}
	fail = nil

	var e chsink.Erasure
	if code, errBody := call(t, "DELETE", u, keyAdmin, &e); code != 200 {
		t.Fatalf("%d %+v", code, errBody)
	}
	if e.PhoneHash != chsink.PhoneHash("acme", gone) || e.Deleted[chsink.TableMessages] == 0 || e.Deleted[chsink.TableAuthEvents] == 0 || e.AuditID == "" {
		t.Fatalf("erasure %+v", e)
	}
	if fmt.Sprint(hooked) != "[acme "+gone+" acme "+gone+"]" {
		t.Fatalf("session hook calls %v", hooked)
	}
	for _, table := range chsink.CustomerTables {
		if n := countRows(t, s, table, "tenant = 'acme' AND phone = ?", gone); n != 0 {
			t.Errorf("%s still holds %d rows of the customer", table, n)
		}
		// The same number at globex is another customer.
		if table == chsink.TableMessages {
			if n := countRows(t, s, table, "tenant = 'globex' AND phone = ?", gone); n == 0 {
				t.Errorf("globex's customer was deleted too")
			}
		}
	}
	if n := countRows(t, s, chsink.TableMessages, "tenant = 'acme' AND phone = ?", dsPhone(2)); n == 0 {
		t.Error("another customer was deleted")
	}
	// The audit: one done and one failed? No: the refused request never
	// reached the store. One row, with the hash and the actor, never the
	// number.
	var actor, hash, status string
	var tables []string
	if err := s.Conn().QueryRow(context.Background(), "SELECT actor, phone_hash, status, tables FROM audit").Scan(&actor, &hash, &status, &tables); err != nil {
		t.Fatal(err)
	}
	if actor != "api:ops" || hash != e.PhoneHash || status != "done" || len(tables) != len(chsink.CustomerTables) {
		t.Fatalf("audit %s %s %s %v", actor, hash, status, tables)
	}
	if n := countRows(t, s, chsink.TableAudit, "positionCaseInsensitive(concat(actor, detail, phone_hash), ?) > 0", strings.TrimPrefix(gone, "+")); n != 0 {
		t.Fatal("the audit holds the phone number")
	}
	// The summary no longer counts the customer: p1 had 12 messages in.
	var sum Summary
	call(t, "GET", base+"/api/v1/tenants/acme/analytics/summary"+dsQuery, keyAdmin, &sum)
	if sum.MessagesIn != wantMessagesIn-12 {
		t.Fatalf("after erasure: %d messages in, want %d", sum.MessagesIn, wantMessagesIn-12)
	}
	if code, e := call(t, "DELETE", base+"/api/v1/tenants/acme/customers/0151-12345678", keyAdmin, nil); code != 400 || e.Error.Code != "invalid_phone" {
		t.Fatalf("bad phone: %d %+v", code, e)
	}
}
