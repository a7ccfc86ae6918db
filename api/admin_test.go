package api

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/parleyhq/parley/apikeys"
	"github.com/parleyhq/parley/bus"
	"github.com/parleyhq/parley/channels"
	"github.com/parleyhq/parley/channels/meta"
	"github.com/parleyhq/parley/channels/twilio"
	"github.com/parleyhq/parley/internal/kafkatest"
	"github.com/parleyhq/parley/internal/seal"
	"github.com/parleyhq/parley/tenants"
	"github.com/parleyhq/parley/tenants/configlog"
)

const (
	opsKey         = "admin-test-ops-key-000001"    // agency-wide admin
	acmeAdminKey   = "admin-test-acme-admin-00002"  // admin of acme only
	acmeAgentKey   = "admin-test-acme-agent-00003"  // agent of acme
	globexAdminKey = "admin-test-globex-admin-0004" // admin of globex only
	twilioToken    = "f00dfeedf00dfeedf00dfeedf00dbeef"
)

// adminWorld is one node's admin API on a real Kafka-protocol broker:
// changes go to parley.config and come back through configlog.
type adminWorld struct {
	t      *testing.T
	mu     sync.Mutex
	audits []AuditEntry
	router *Router
	reg    *tenants.Registry
	keys   *apikeys.Set
}

func newAdminWorld(t *testing.T) *adminWorld {
	t.Helper()
	br := kafkatest.Start(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := bus.EnsureParleyTopics(ctx, br.Addrs(), nil, 2, 1); err != nil {
		t.Fatal(err)
	}
	file := []tenants.Tenant{twilioTenant("acme")}
	reg, err := tenants.NewRegistry(append([]tenants.Tenant(nil), file...))
	if err != nil {
		t.Fatal(err)
	}
	keys, err := apikeys.New([]apikeys.Key{
		{Key: opsKey, Tenants: []string{"*"}, Role: apikeys.RoleAdmin, Name: "ops"},
		{Key: acmeAdminKey, Tenants: []string{"acme"}, Role: apikeys.RoleAdmin, Name: "acme-admin"},
		{Key: acmeAgentKey, Tenants: []string{"acme"}, Role: apikeys.RoleAgent, Name: "acme-agent"},
		{Key: globexAdminKey, Tenants: []string{"globex"}, Role: apikeys.RoleAdmin, Name: "globex-admin"},
	})
	if err != nil {
		t.Fatal(err)
	}
	k, _ := seal.ParseKey(seal.NewKey())
	box, err := seal.New(k)
	if err != nil {
		t.Fatal(err)
	}
	p := bus.NewProducer(br.Addrs(), bus.ProducerOptions{})
	t.Cleanup(func() { _ = p.Close() })
	follow, stop := context.WithCancel(context.Background())
	t.Cleanup(stop)
	log, err := configlog.Start(follow, configlog.Options{Brokers: br.Addrs(), Producer: p, Box: box, Registry: reg, Keys: keys,
		File: file, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	provs := channels.NewRegistry(twilio.New(nil, ""), meta.New(nil, 0))
	w := &adminWorld{t: t, reg: reg, keys: keys}
	a := New(Options{Tenants: reg, Keys: keys, Providers: provs, Config: log, Audit: func(_ context.Context, e AuditEntry) {
		w.mu.Lock()
		w.audits = append(w.audits, e)
		w.mu.Unlock()
	}})
	w.router = NewRouter(keys, reg, Routes(a, nil))
	return w
}

func twilioTenant(id string) tenants.Tenant {
	return tenants.Tenant{ID: id, Name: "Tenant " + id, Twilio: &tenants.Twilio{
		AccountSID: "AC0123456789abcdef0123456789abcdef", AuthToken: twilioToken, From: "whatsapp:+14155238886"}}
}

// twilioBody is t as a request sends it: tenants.Tenant itself marshals
// its credentials masked.
func twilioBody(t tenants.Tenant) map[string]any {
	return map[string]any{"id": t.ID, "name": t.Name, "twilio": map[string]any{
		"account_sid": t.Twilio.AccountSID, "auth_token": t.Twilio.AuthToken.Reveal(), "from": t.Twilio.From}}
}

func metaTenant(id, number string) map[string]any {
	return map[string]any{"id": id, "name": "Meta " + id, "meta": map[string]any{
		"phone_number_id": number, "access_token": "EAAmetaACCESStoken0001", "app_secret": "appSECRETvalue0000001", "verify_token": "verify0001"}}
}

// do sends one request and returns its status, its error code (if any)
// and its body.
func (w *adminWorld) do(method, path, key string, body any) (int, string, []byte) {
	w.t.Helper()
	var ctx fasthttp.RequestCtx
	ctx.Request.Header.SetMethod(method)
	ctx.Request.SetRequestURI(path)
	switch b := body.(type) {
	case nil:
	case string:
		ctx.Request.SetBodyString(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			w.t.Fatal(err)
		}
		ctx.Request.SetBody(raw)
	}
	ctx.Request.Header.Set("Authorization", "Bearer "+key)
	w.router.Handle(&ctx)
	var e apikeys.ErrorBody
	_ = json.Unmarshal(ctx.Response.Body(), &e)
	return ctx.Response.StatusCode(), e.Error.Code, append([]byte(nil), ctx.Response.Body()...)
}

// agent makes an agent of tenant through the API and returns its id.
func (w *adminWorld) agent(tenant, name string, whatsapp bool) string {
	w.t.Helper()
	status, _, body := w.do("POST", "/api/v1/tenants/"+tenant+"/agents", opsKey,
		map[string]any{"name": name, "email": strings.ToLower(name) + "@" + tenant + ".example", "whatsapp_enabled": whatsapp})
	var ag tenants.Agent
	if err := json.Unmarshal(body, &ag); status != 201 || err != nil || ag.ID == "" {
		w.t.Fatalf("create agent %s: %d %s", name, status, body)
	}
	return ag.ID
}

type adminCase struct {
	name         string
	method, path string
	key          string
	body         any
	status       int
	code         string
}

func (w *adminWorld) run(cases []adminCase) {
	w.t.Helper()
	for _, c := range cases {
		status, code, body := w.do(c.method, c.path, c.key, c.body)
		if status != c.status || code != c.code {
			w.t.Errorf("%s: %d %s, want %d %q", c.name, status, body, c.status, c.code)
		}
		for _, secret := range []string{twilioToken, "EAAmetaACCESStoken0001", "appSECRETvalue0000001"} {
			if strings.Contains(string(body), secret) {
				w.t.Errorf("%s: a credential in the answer: %s", c.name, body)
			}
		}
	}
}

// TestAdminTenantRoutes: tenants are created, read, changed and deleted
// through parley.config; every refusal has its status and code; no
// credential is ever answered.
func TestAdminTenantRoutes(t *testing.T) {
	w := newAdminWorld(t)
	bravo := twilioBody(twilioTenant("bravo"))
	bad := twilioTenant("badtoken")
	bad.Twilio.AuthToken = "0123456789abcdef-0123456789abcde"
	badToken := twilioBody(bad)
	w.run([]adminCase{
		{"create needs an agency-wide key", "POST", "/api/v1/tenants", acmeAdminKey, bravo, 403, "forbidden_tenant"},
		{"create needs an admin", "POST", "/api/v1/tenants", acmeAgentKey, bravo, 403, "forbidden_role"},
		{"create", "POST", "/api/v1/tenants", opsKey, bravo, 201, ""},
		{"create twice", "POST", "/api/v1/tenants", opsKey, bravo, 409, "tenant_exists"},
		{"a token twilio-go refuses", "POST", "/api/v1/tenants", opsKey, badToken, 400, "invalid_credentials"},
		{"a misspelt field", "POST", "/api/v1/tenants", opsKey, `{"id":"typo","nmae":"x"}`, 400, "invalid_json"},
		{"not JSON", "POST", "/api/v1/tenants", opsKey, `{`, 400, "invalid_json"},
		{"no number yet", "POST", "/api/v1/tenants", opsKey, map[string]any{"id": "nochan"}, 201, ""},
		{"a bad id", "POST", "/api/v1/tenants", opsKey, map[string]any{"id": "Bad Id", "simulator": false}, 400, "invalid_tenant"},
		{"simulator", "POST", "/api/v1/tenants", opsKey, map[string]any{"id": "sim", "simulator": true}, 400, "invalid_tenant"},
		{"meta", "POST", "/api/v1/tenants", opsKey, metaTenant("charlie", "106540352242922"), 201, ""},
		{"meta number of another tenant", "POST", "/api/v1/tenants", opsKey, metaTenant("delta", "106540352242922"), 409, "number_taken"},
		{"read", "GET", "/api/v1/tenants/bravo", opsKey, nil, 200, ""},
		{"read own tenant", "GET", "/api/v1/tenants/acme", acmeAdminKey, nil, 200, ""},
		{"read another tenant", "GET", "/api/v1/tenants/bravo", acmeAdminKey, nil, 403, "forbidden_tenant"},
		{"read as agent", "GET", "/api/v1/tenants/acme", acmeAgentKey, nil, 403, "forbidden_role"},
		{"read unknown", "GET", "/api/v1/tenants/nobody", opsKey, nil, 404, "unknown_tenant"},
		{"change the file's tenant", "PATCH", "/api/v1/tenants/acme", opsKey, map[string]any{"name": "x"}, 409, "defined_in_config_file"},
		{"change the id", "PATCH", "/api/v1/tenants/bravo", opsKey, map[string]any{"id": "other"}, 400, "invalid_tenant"},
		{"change into something invalid", "PATCH", "/api/v1/tenants/bravo", opsKey, map[string]any{"time_zone": "Mars/Olympus"}, 400, "invalid_tenant"},
		{"delete needs an agency-wide key", "DELETE", "/api/v1/tenants/acme", acmeAdminKey, nil, 403, "forbidden_tenant"},
		{"delete the file's tenant", "DELETE", "/api/v1/tenants/acme", opsKey, nil, 409, "defined_in_config_file"},
		{"a method the path lacks", "PUT", "/api/v1/tenants/bravo", opsKey, nil, 405, "method_not_allowed"},
	})
	if got := w.reg.Get("bravo"); got == nil || got.Twilio.AuthToken != twilioToken {
		t.Fatalf("bravo after create: %+v", got)
	}
	if w.reg.Get("delta") != nil || w.reg.Get("badtoken") != nil {
		t.Fatal("a refused tenant was applied")
	}

	// What GET shows, sent back with a change, keeps the credentials.
	_, _, shown := w.do("GET", "/api/v1/tenants/bravo", opsKey, nil)
	var view map[string]any
	if err := json.Unmarshal(shown, &view); err != nil || view["source"] != "api" {
		t.Fatalf("GET bravo: %s", shown)
	}
	view["name"] = "Bravo Cleaning"
	view["templates"] = map[string]any{"reminder": map[string]any{"content_sid": "HX0001", "language": "en"}}
	delete(view, "source")
	w.run([]adminCase{{"change", "PATCH", "/api/v1/tenants/bravo", opsKey, view, 200, ""}})
	got := w.reg.Get("bravo")
	if got.Name != "Bravo Cleaning" || got.Twilio.AuthToken != twilioToken || got.Templates["reminder"].ContentSID != "HX0001" {
		t.Fatalf("bravo after PATCH: %+v", got)
	}
	w.run([]adminCase{{"templates are replaced whole", "PATCH", "/api/v1/tenants/bravo", opsKey, map[string]any{"templates": map[string]any{}}, 200, ""}})
	if got := w.reg.Get("bravo"); len(got.Templates) != 0 || got.Name != "Bravo Cleaning" {
		t.Fatalf("bravo after clearing templates: %+v", got)
	}

	w.run([]adminCase{
		{"delete", "DELETE", "/api/v1/tenants/bravo", opsKey, nil, 204, ""},
		{"read deleted", "GET", "/api/v1/tenants/bravo", opsKey, nil, 404, "unknown_tenant"},
	})
	if w.reg.Get("bravo") != nil {
		t.Fatal("bravo still in the registry")
	}
}

// TestAdminKeyRoutes: keys are made for the tenants the caller reaches,
// answered once, listed masked, rotated with an overlap and revoked.
func TestAdminKeyRoutes(t *testing.T) {
	w := newAdminWorld(t)
	w.run([]adminCase{
		{"a key for every tenant from a tenant's admin", "POST", "/api/v1/keys", acmeAdminKey, map[string]any{"role": "agent", "tenants": []string{"*"}}, 403, "forbidden_tenant"},
		{"a key for another tenant", "POST", "/api/v1/keys", acmeAdminKey, map[string]any{"role": "agent", "tenants": []string{"globex"}}, 403, "forbidden_tenant"},
		{"an unknown role", "POST", "/api/v1/keys", acmeAdminKey, map[string]any{"role": "root", "tenants": []string{"acme"}}, 400, "invalid_key"},
		{"no tenants", "POST", "/api/v1/keys", acmeAdminKey, map[string]any{"role": "agent"}, 400, "invalid_key"},
		{"an agent makes no keys", "POST", "/api/v1/keys", acmeAgentKey, map[string]any{"role": "agent", "tenants": []string{"acme"}}, 403, "forbidden_role"},
		{"revoke an unknown key", "DELETE", "/api/v1/keys/key_0000000000000000", opsKey, nil, 404, "unknown_key"},
	})

	status, _, body := w.do("POST", "/api/v1/keys", acmeAdminKey, map[string]any{"name": "acme-bot", "role": "agent", "tenants": []string{"acme"}})
	var made struct {
		Key, ID, Name, Source string
	}
	if err := json.Unmarshal(body, &made); status != 201 || err != nil || !strings.HasPrefix(made.Key, apikeys.KeyPrefix) || made.Name != "acme-bot" {
		t.Fatalf("create: %d %s", status, body)
	}
	if _, err := w.keys.Authorize("Bearer "+made.Key, "acme", apikeys.MessagesSend); err != nil {
		t.Fatalf("the new key: %v", err)
	}

	_, _, listed := w.do("GET", "/api/v1/keys", acmeAdminKey, nil)
	if strings.Contains(string(listed), made.Key) || strings.Contains(string(listed), acmeAgentKey) {
		t.Fatalf("GET /keys shows a secret: %s", listed)
	}
	var list struct{ Items []apikeys.Info }
	_ = json.Unmarshal(listed, &list)
	var names []string
	for _, k := range list.Items {
		names = append(names, k.Name)
	}
	if strings.Join(names, ",") != "acme-admin,acme-agent,acme-bot" {
		t.Fatalf("acme's admin lists %v: %s", names, listed)
	}

	w.run([]adminCase{
		{"another tenant's admin does not see the key", "DELETE", "/api/v1/keys/" + made.ID, globexAdminKey, nil, 404, "unknown_key"},
		{"a bad overlap", "POST", "/api/v1/keys/" + made.ID + "/rotate", acmeAdminKey, map[string]any{"overlap": "forever"}, 400, "invalid_overlap"},
	})
	status, _, body = w.do("POST", "/api/v1/keys/"+made.ID+"/rotate", acmeAdminKey, map[string]any{"overlap": "1h"})
	var rotated struct{ Key, ID string }
	if err := json.Unmarshal(body, &rotated); status != 201 || err != nil || rotated.ID == made.ID || rotated.Key == made.Key {
		t.Fatalf("rotate: %d %s", status, body)
	}
	for _, k := range []string{made.Key, rotated.Key} {
		if _, err := w.keys.Identify("Bearer " + k); err != nil {
			t.Fatalf("inside the overlap: %v", err)
		}
	}
	if old, _ := w.keys.Stored(made.ID); time.Until(old.ExpiresAt) > time.Hour || time.Until(old.ExpiresAt) < 59*time.Minute {
		t.Fatalf("the rotated key expires at %v", old.ExpiresAt)
	}

	w.run([]adminCase{{"revoke", "DELETE", "/api/v1/keys/" + rotated.ID, acmeAdminKey, nil, 204, ""}})
	if _, err := w.keys.Identify("Bearer " + rotated.Key); err == nil {
		t.Fatal("a revoked key still works")
	}
	w.run([]adminCase{{"a configured key is not the API's", "DELETE", "/api/v1/keys/acme-agent", opsKey, nil, 404, "unknown_key"}})
}

// TestAdminNumberRoutes: a tenant made without a number gets one
// connected, edited, switched off (sends answer 503 sender_offline) and
// deleted through the numbers routes.
func TestAdminNumberRoutes(t *testing.T) {
	w := newAdminWorld(t)
	tw := twilioBody(twilioTenant("x"))["twilio"]
	const number = "/api/v1/tenants/bravo/numbers/+14155238886"
	send := map[string]any{"to": "+4915112345678", "text": "hello"}
	w.run([]adminCase{{"a tenant without a number", "POST", "/api/v1/tenants", opsKey, map[string]any{"id": "bravo", "name": "Bravo"}, 201, ""}})
	sam := w.agent("bravo", "Sam", true)
	kim := w.agent("bravo", "Kim", false)
	w.run([]adminCase{
		{"no agent", "POST", "/api/v1/tenants/bravo/numbers", opsKey, map[string]any{"twilio": tw}, 400, "agent_required"},
		{"an unknown agent", "POST", "/api/v1/tenants/bravo/numbers", opsKey, map[string]any{"twilio": tw, "assigned_agent": "agt_nobody"}, 400, "unknown_agent"},
		{"an agent without WhatsApp", "POST", "/api/v1/tenants/bravo/numbers", opsKey, map[string]any{"twilio": tw, "assigned_agent": kim}, 400, "unknown_agent"},
		{"inactive needs no agent yet", "POST", "/api/v1/tenants/bravo/numbers", opsKey, map[string]any{"twilio": map[string]any{
			"account_sid": "AC0123456789abcdef0123456789abcdef", "auth_token": twilioToken, "from": "whatsapp:+14155239999"}, "active": false}, 201, ""},
		{"switched on without an agent", "PATCH", "/api/v1/tenants/bravo/numbers/+14155239999", opsKey, map[string]any{"active": true}, 400, "agent_required"},
		{"removed again", "DELETE", "/api/v1/tenants/bravo/numbers/+14155239999", opsKey, nil, 204, ""},
		{"none listed", "GET", "/api/v1/tenants/bravo/numbers", opsKey, nil, 200, ""},
		{"no number: sends are offline", "POST", "/api/v1/tenants/bravo/messages", opsKey, send, 503, "sender_offline"},
		{"no provider", "POST", "/api/v1/tenants/bravo/numbers", opsKey, map[string]any{"display_name": "x"}, 400, "invalid_number"},
		{"two providers", "POST", "/api/v1/tenants/bravo/numbers", opsKey, map[string]any{"twilio": tw, "meta": metaTenant("x", "1")["meta"]}, 400, "invalid_number"},
		{"a misspelt field", "POST", "/api/v1/tenants/bravo/numbers", opsKey, map[string]any{"twilio": map[string]any{"acount_sid": "AC"}}, 400, "invalid_json"},
		{"a token twilio-go refuses", "POST", "/api/v1/tenants/bravo/numbers", opsKey, map[string]any{"assigned_agent": sam, "twilio": map[string]any{
			"account_sid": "AC0123456789abcdef0123456789abcdef", "auth_token": "has-dashes-0123456789", "from": "whatsapp:+14155238886"}}, 400, "invalid_credentials"},
		{"an agent connects nothing", "POST", "/api/v1/tenants/acme/numbers", acmeAgentKey, map[string]any{"twilio": tw}, 403, "forbidden_role"},
		{"the file's tenant", "POST", "/api/v1/tenants/acme/numbers", opsKey, map[string]any{"twilio": tw}, 409, "defined_in_config_file"},
		{"connect", "POST", "/api/v1/tenants/bravo/numbers", opsKey, map[string]any{"display_name": "Front desk", "twilio": tw, "assigned_agent": sam}, 201, ""},
		{"its agent cannot lose WhatsApp", "PATCH", "/api/v1/tenants/bravo/agents/" + sam, opsKey, map[string]any{"whatsapp_enabled": false}, 409, "agent_assigned"},
		{"nor go", "DELETE", "/api/v1/tenants/bravo/agents/" + sam, opsKey, nil, 409, "agent_assigned"},
		{"connect a second", "POST", "/api/v1/tenants/bravo/numbers", opsKey, map[string]any{"twilio": tw}, 409, "number_exists"},
		{"another number", "PATCH", "/api/v1/tenants/bravo/numbers/+14155230000", opsKey, map[string]any{"active": false}, 404, "unknown_number"},
		{"another provider", "PATCH", number, opsKey, map[string]any{"meta": map[string]any{"phone_number_id": "1"}}, 400, "invalid_number"},
		{"switch off", "PATCH", number, opsKey, map[string]any{"active": false, "twilio": map[string]any{"auth_token": "****beef"}}, 200, ""},
		{"switched off: sends are offline", "POST", "/api/v1/tenants/bravo/messages", opsKey, send, 503, "sender_offline"},
	})
	got := w.reg.Get("bravo")
	if got.Twilio == nil || got.Twilio.AuthToken != twilioToken || !got.Number.Inactive || got.Number.DisplayName != "Front desk" || got.Number.Agent != sam {
		t.Fatalf("bravo's number: %+v %+v", got.Twilio, got.Number)
	}
	_, _, listed := w.do("GET", "/api/v1/tenants/bravo/numbers", opsKey, nil)
	var list struct{ Items []numberView }
	if err := json.Unmarshal(listed, &list); err != nil || len(list.Items) != 1 || list.Items[0].ID != "+14155238886" ||
		list.Items[0].Active || list.Items[0].Channel != "twilio" || list.Items[0].Twilio.AuthToken != "****beef" {
		t.Fatalf("numbers: %s", listed)
	}

	w.run([]adminCase{
		{"a Meta number", "POST", "/api/v1/tenants", opsKey, metaTenant("charlie", "106540352242922"), 201, ""},
		{"the Meta number again, elsewhere", "POST", "/api/v1/tenants", opsKey, map[string]any{"id": "delta"}, 201, ""},
		{"connect it to delta", "POST", "/api/v1/tenants/delta/numbers", opsKey, map[string]any{"meta": metaTenant("x", "106540352242922")["meta"], "active": false}, 409, "number_taken"},
		{"delete", "DELETE", number, opsKey, nil, 204, ""},
		{"delete again", "DELETE", number, opsKey, nil, 404, "unknown_number"},
	})
	if got := w.reg.Get("bravo"); got == nil || got.Twilio != nil || got.Number != (tenants.NumberSettings{}) {
		t.Fatalf("bravo after its number was deleted: %+v", got)
	}
}

// withWABA is a Meta number's fields with its business account id.
func withWABA(m any, id string) map[string]any {
	out := map[string]any{"business_account_id": id}
	for k, v := range m.(map[string]any) {
		out[k] = v
	}
	return out
}

// TestAdminSeveralNumbers: a tenant's second and third numbers (Twilio
// and Meta) are connected beside its first; sends choose one ("from"),
// an unknown one is a 400 and a switched-off one a 503; deleting the
// first makes the next the first; every credential stays sealed away
// from the answers.
func TestAdminSeveralNumbers(t *testing.T) {
	w := newAdminWorld(t)
	w.run([]adminCase{{"a tenant", "POST", "/api/v1/tenants", opsKey, twilioBody(twilioTenant("bravo")), 201, ""}})
	sam := w.agent("bravo", "Sam", true)
	second := map[string]any{"account_sid": "AC0123456789abcdef0123456789abcde2", "auth_token": "5econdf00dfeedf00dfeedf00dbeef22", "from": "whatsapp:+14155230002"}
	send := func(from string) map[string]any {
		return map[string]any{"to": "+4915112345678", "text": "hello", "from": from}
	}
	w.run([]adminCase{
		{"a second Twilio sender", "POST", "/api/v1/tenants/bravo/numbers", opsKey, map[string]any{"display_name": "Sales", "twilio": second, "assigned_agent": sam}, 201, ""},
		{"a Meta number with a bad business account id", "POST", "/api/v1/tenants/bravo/numbers", opsKey, map[string]any{"assigned_agent": sam, "meta": withWABA(metaTenant("x", "106540352242922")["meta"], "waba-1")}, 400, "invalid_tenant"},
		{"a Meta number", "POST", "/api/v1/tenants/bravo/numbers", opsKey, map[string]any{"display_name": "Support", "assigned_agent": sam, "meta": withWABA(metaTenant("x", "106540352242922")["meta"], "102290129340398")}, 201, ""},
		{"the second again", "POST", "/api/v1/tenants/bravo/numbers", opsKey, map[string]any{"twilio": second, "assigned_agent": sam}, 409, "number_exists"},
		{"the Meta number on another tenant", "POST", "/api/v1/tenants", opsKey, metaTenant("charlie", "106540352242922"), 409, "number_taken"},
		{"switch the second off", "PATCH", "/api/v1/tenants/bravo/numbers/+14155230002", opsKey, map[string]any{"active": false}, 200, ""},
		{"send from an unknown number", "POST", "/api/v1/tenants/bravo/messages", opsKey, send("+19995550000"), 400, "unknown_sender"},
		{"send from the switched-off number", "POST", "/api/v1/tenants/bravo/messages", opsKey, send("+14155230002"), 503, "sender_offline"},
		{"change a number's sender", "PATCH", "/api/v1/tenants/bravo/numbers/+14155230002", opsKey, map[string]any{"twilio": map[string]any{"from": "whatsapp:+14155230003"}}, 400, "invalid_number"},
	})
	got := w.reg.Get("bravo")
	if n := got.Numbers(); len(n) != 3 || n[1].ID() != "+14155230002" || !n[1].Inactive || n[2].Meta == nil || n[2].Meta.BusinessAccountID != "102290129340398" ||
		n[1].Twilio.AuthToken != "5econdf00dfeedf00dfeedf00dbeef22" {
		t.Fatalf("bravo's numbers: %+v", n)
	}
	if v, ok := got.Via("+14155230002"); !ok || v.Twilio.From != "whatsapp:+14155230002" || got.Twilio.From != "whatsapp:+14155238886" {
		t.Fatalf("Via the second: %+v", v)
	}
	w.run([]adminCase{{"delete the first", "DELETE", "/api/v1/tenants/bravo/numbers/+14155238886", opsKey, nil, 204, ""}})
	got = w.reg.Get("bravo")
	if n := got.Numbers(); len(n) != 2 || got.First().ID() != "+14155230002" || n[1].Meta == nil {
		t.Fatalf("after deleting the first: %+v", n)
	}
	var actions []string
	for _, e := range w.audits {
		actions = append(actions, e.Action+" "+e.Actor+" "+e.Tenant+" "+e.Detail)
		if strings.Contains(e.Detail, "5econdf00dfeedf00dfeedf00dbeef22") || strings.Contains(e.Detail, twilioToken) {
			t.Fatalf("a credential in the audit: %+v", e)
		}
	}
	want := []string{
		"tenant.create ops bravo ",
		"agent.create ops bravo " + sam,
		"number.connect ops bravo twilio +14155230002",
		"number.connect ops bravo meta 106540352242922",
		"number.update ops bravo +14155230002 fields active",
		"number.delete ops bravo +14155238886",
	}
	if strings.Join(actions, "\n") != strings.Join(want, "\n") {
		t.Fatalf("audit:\n%s\nwant:\n%s", strings.Join(actions, "\n"), strings.Join(want, "\n"))
	}
	_, _, listed := w.do("GET", "/api/v1/tenants/bravo/numbers", opsKey, nil)
	var list struct{ Items []numberView }
	if err := json.Unmarshal(listed, &list); err != nil || len(list.Items) != 2 || !list.Items[0].First || list.Items[1].Channel != "meta" ||
		strings.Contains(string(listed), "5econdf00dfeedf00dfeedf00dbeef22") || strings.Contains(string(listed), "appSECRETvalue0000001") {
		t.Fatalf("numbers: %s", listed)
	}
}

// TestAdminAgentRoutes: a tenant's agents are made, listed (agents may
// list them), changed and deleted; a key made for an agent names it, and
// goes when the agent goes.
func TestAdminAgentRoutes(t *testing.T) {
	w := newAdminWorld(t)
	w.run([]adminCase{{"a tenant", "POST", "/api/v1/tenants", opsKey, twilioBody(twilioTenant("bravo")), 201, ""}})
	sam := w.agent("bravo", "Sam", true)
	w.run([]adminCase{
		{"a bad email", "POST", "/api/v1/tenants/bravo/agents", opsKey, map[string]any{"name": "Zed", "email": "zed"}, 400, "invalid_agent"},
		{"no name", "POST", "/api/v1/tenants/bravo/agents", opsKey, map[string]any{"email": "zed@bravo.example"}, 400, "invalid_agent"},
		{"an email taken", "POST", "/api/v1/tenants/bravo/agents", opsKey, map[string]any{"name": "Sam 2", "email": "SAM@bravo.example"}, 409, "agent_exists"},
		{"an agent makes no agents", "POST", "/api/v1/tenants/acme/agents", acmeAgentKey, map[string]any{"name": "Zed", "email": "zed@acme.example"}, 403, "forbidden_role"},
		{"an agent lists them", "GET", "/api/v1/tenants/acme/agents", acmeAgentKey, nil, 200, ""},
		{"rename", "PATCH", "/api/v1/tenants/bravo/agents/" + sam, opsKey, map[string]any{"name": "Sam Smith"}, 200, ""},
		{"an unknown agent", "PATCH", "/api/v1/tenants/bravo/agents/agt_nobody", opsKey, map[string]any{"name": "x"}, 404, "unknown_agent"},
		{"a key for an unknown agent", "POST", "/api/v1/keys", opsKey, map[string]any{"agent": "agt_nobody", "role": "agent", "tenants": []string{"bravo"}}, 400, "unknown_agent"},
		{"an agent's key for two tenants", "POST", "/api/v1/keys", opsKey, map[string]any{"agent": sam, "role": "agent", "tenants": []string{"bravo", "acme"}}, 400, "invalid_key"},
	})
	if ag, _ := w.reg.Get("bravo").AgentByID(sam); ag.Name != "Sam Smith" || !ag.WhatsAppEnabled || ag.Email != "sam@bravo.example" {
		t.Fatalf("sam after PATCH: %+v", ag)
	}
	status, _, body := w.do("POST", "/api/v1/keys", opsKey, map[string]any{"agent": sam, "role": "agent", "tenants": []string{"bravo"}})
	var made struct{ Key, ID, Name, Agent string }
	if err := json.Unmarshal(body, &made); status != 201 || err != nil || made.Agent != sam || made.Name != "Sam Smith" {
		t.Fatalf("an agent's key: %d %s", status, body)
	}
	k, err := w.keys.Authorize("Bearer "+made.Key, "bravo", apikeys.ConversationsWrite)
	if err != nil || k.Agent != sam || k.Label() != "Sam Smith" {
		t.Fatalf("the agent's key: %+v %v", k, err)
	}
	w.run([]adminCase{{"delete", "DELETE", "/api/v1/tenants/bravo/agents/" + sam, opsKey, nil, 204, ""}})
	if _, err := w.keys.Identify("Bearer " + made.Key); err == nil {
		t.Fatal("a deleted agent's key still works")
	}
	if _, ok := w.reg.Get("bravo").AgentByID(sam); ok {
		t.Fatal("the agent is still there")
	}
}
