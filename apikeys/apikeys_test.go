package apikeys

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
	"gopkg.in/yaml.v3"

	"github.com/parleyhq/parley/tenants"
)

const (
	adminKey   = "admin-key-0123456789"
	acmeAgent  = "acme-agent-0123456789"
	acmeReader = "acme-analyst-0123456789"
	multi      = "multi-analyst-0123456789"
)

func testSet(t *testing.T) *Set {
	t.Helper()
	s, err := New([]Key{
		{Key: adminKey, Tenants: []string{"*"}, Role: RoleAdmin, Name: "ops"},
		{Key: acmeAgent, Tenants: []string{"acme"}, Role: RoleAgent},
		{Key: acmeReader, Tenants: []string{"acme"}, Role: RoleAnalyst},
		{Key: multi, Tenants: []string{"acme", "globex"}, Role: RoleAnalyst},
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestAuthorize(t *testing.T) {
	s := testSet(t)
	cases := []struct {
		name, header, tenant string
		need                 Permission
		want                 error
		label                string
	}{
		{"no header", "", "acme", AnalyticsRead, ErrMissingKey, ""},
		{"not bearer", "Basic " + adminKey, "acme", AnalyticsRead, ErrMissingKey, ""},
		{"bearer without key", "Bearer   ", "acme", AnalyticsRead, ErrMissingKey, ""},
		{"unknown key", "Bearer nope-nope-nope-nope", "acme", AnalyticsRead, ErrBadKey, ""},
		{"prefix of a key", "Bearer " + adminKey[:len(adminKey)-1], "acme", AnalyticsRead, ErrBadKey, ""},
		{"key plus a char", "Bearer " + adminKey + "x", "acme", AnalyticsRead, ErrBadKey, ""},
		{"admin anywhere", "Bearer " + adminKey, "globex", CustomersForget, nil, "ops"},
		{"scheme case-insensitive", "bearer " + adminKey, "acme", AnalyticsRead, nil, "ops"},
		{"agent own tenant messages", "Bearer " + acmeAgent, "acme", MessagesSend, nil, "agent:****6789"},
		{"agent own tenant conversations", "Bearer " + acmeAgent, "acme", ConversationsWrite, nil, "agent:****6789"},
		{"agent no analytics", "Bearer " + acmeAgent, "acme", AnalyticsRead, ErrRole, ""},
		{"agent no forget", "Bearer " + acmeAgent, "acme", CustomersForget, ErrRole, ""},
		{"agent other tenant", "Bearer " + acmeAgent, "globex", MessagesSend, ErrTenant, ""},
		{"analyst analytics", "Bearer " + acmeReader, "acme", AnalyticsRead, nil, "analyst:****6789"},
		{"analyst reads the log", "Bearer " + acmeReader, "acme", MessagesRead, nil, "analyst:****6789"},
		{"analyst read only", "Bearer " + acmeReader, "acme", MessagesSend, ErrRole, ""},
		{"analyst no conversations write", "Bearer " + acmeReader, "acme", ConversationsWrite, ErrRole, ""},
		{"analyst other tenant", "Bearer " + acmeReader, "globex", AnalyticsRead, ErrTenant, ""},
		{"two tenants, second", "Bearer " + multi, "globex", AnalyticsRead, nil, "analyst:****6789"},
		{"two tenants, third", "Bearer " + multi, "initech", AnalyticsRead, ErrTenant, ""},
		{"tenant star is not a wildcard request", "Bearer " + acmeReader, "*", AnalyticsRead, ErrTenant, ""},
		{"no tenant check", "Bearer " + acmeReader, "", "", nil, "analyst:****6789"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			k, err := s.Authorize(c.header, c.tenant, c.need)
			if !errors.Is(err, c.want) {
				t.Fatalf("err = %v, want %v", err, c.want)
			}
			if c.want == nil && k.Label() != c.label {
				t.Fatalf("key %s, want %s", k.Label(), c.label)
			}
			if c.want != nil {
				e, ok := AsError(err)
				if !ok || (e.Status != 401 && e.Status != 403) {
					t.Fatalf("error %v is not a typed 401/403", err)
				}
			}
		})
	}
}

func TestNewRejects(t *testing.T) {
	cases := []struct {
		name string
		keys []Key
		want string
	}{
		{"short key", []Key{{Key: "short", Tenants: []string{"*"}, Role: RoleAdmin}}, "shorter"},
		{"empty key", []Key{{Key: "", Tenants: []string{"*"}, Role: RoleAdmin}}, "shorter"},
		{"bad role", []Key{{Key: adminKey, Tenants: []string{"*"}, Role: "root"}}, "role"},
		{"no tenants", []Key{{Key: adminKey, Role: RoleAdmin}}, "no tenants"},
		{"empty tenant", []Key{{Key: adminKey, Tenants: []string{""}, Role: RoleAdmin}}, "empty tenant"},
		{"duplicate", []Key{{Key: adminKey, Tenants: []string{"*"}, Role: RoleAdmin}, {Key: adminKey, Tenants: []string{"a"}, Role: RoleAgent}}, "twice"},
	}
	for _, c := range cases {
		if _, err := New(c.keys); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want %q", c.name, err, c.want)
		}
	}
	if s, err := New(nil); err != nil || s.Len() != 0 {
		t.Fatalf("no keys: %v", err)
	}
	// No keys: every request is refused.
	s, _ := New(nil)
	if _, err := s.Authorize("Bearer "+adminKey, "acme", AnalyticsRead); !errors.Is(err, ErrBadKey) {
		t.Fatalf("empty set: %v", err)
	}
}

func TestKeyFromYAMLNeverPrintsTheSecret(t *testing.T) {
	var keys []Key
	doc := "- { key: \"" + adminKey + "\", tenants: [\"*\"], role: admin }\n- { key: \"" + acmeAgent + "\", tenants: [acme], role: agent, name: acme-crm }\n"
	if err := yaml.Unmarshal([]byte(doc), &keys); err != nil {
		t.Fatal(err)
	}
	if len(keys) != 2 || keys[0].Key.Reveal() != adminKey || keys[1].Tenants[0] != "acme" || keys[1].Name != "acme-crm" {
		t.Fatalf("parsed %#v", keys)
	}
	out, _ := json.Marshal(keys)
	yml, _ := yaml.Marshal(keys)
	for _, s := range []string{string(out), string(yml)} {
		if strings.Contains(s, adminKey) || strings.Contains(s, acmeAgent) {
			t.Fatalf("secret printed: %s", s)
		}
	}
}

func TestWriteAuthError(t *testing.T) {
	cases := []struct {
		err    error
		status int
		code   string
	}{
		{ErrMissingKey, 401, "missing_key"},
		{ErrBadKey, 401, "bad_key"},
		{ErrTenant, 403, "forbidden_tenant"},
		{ErrRole, 403, "forbidden_role"},
		{errors.New("boom"), 500, "internal"},
	}
	for _, c := range cases {
		var ctx fasthttp.RequestCtx
		WriteAuthError(&ctx, c.err)
		if ctx.Response.StatusCode() != c.status {
			t.Errorf("%v: status %d", c.err, ctx.Response.StatusCode())
		}
		var body ErrorBody
		if err := json.Unmarshal(ctx.Response.Body(), &body); err != nil || body.Error.Code != c.code || body.Error.Message == "" {
			t.Errorf("%v: body %s", c.err, ctx.Response.Body())
		}
		if string(ctx.Response.Header.ContentType()) != "application/json; charset=utf-8" {
			t.Errorf("content type %s", ctx.Response.Header.ContentType())
		}
		if got := string(ctx.Response.Header.Peek("WWW-Authenticate")); (c.status == 401) != (got != "") {
			t.Errorf("%v: WWW-Authenticate %q", c.err, got)
		}
	}
}

func TestAuthorizeRequest(t *testing.T) {
	s := testSet(t)
	var ctx fasthttp.RequestCtx
	ctx.Request.Header.Set("Authorization", "Bearer "+acmeReader)
	if k, ok := s.AuthorizeRequest(&ctx, "acme", AnalyticsRead); !ok || k.Role != RoleAnalyst {
		t.Fatalf("allowed request refused: %d %s", ctx.Response.StatusCode(), ctx.Response.Body())
	}
	var other fasthttp.RequestCtx
	other.Request.Header.Set("Authorization", "Bearer "+acmeReader)
	if _, ok := s.AuthorizeRequest(&other, "globex", AnalyticsRead); ok || other.Response.StatusCode() != 403 {
		t.Fatalf("other tenant: %v %d", ok, other.Response.StatusCode())
	}
}

// BenchmarkIdentify shows the cost of the constant-time scan: one SHA-256
// and a compare per configured key.
func BenchmarkIdentify(b *testing.B) {
	keys := make([]Key, 100)
	for i := range keys {
		keys[i] = Key{Key: tenants.Secret("0123456789abcdef-" + strings.Repeat("x", i)), Tenants: []string{"*"}, Role: RoleAdmin}
	}
	s, err := New(keys)
	if err != nil {
		b.Fatal(err)
	}
	h := "Bearer " + keys[99].Key.Reveal()
	for b.Loop() {
		if _, err := s.Identify(h); err != nil {
			b.Fatal(err)
		}
	}
}
