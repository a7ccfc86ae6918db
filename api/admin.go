package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/parleyhq/parley/apikeys"
	"github.com/parleyhq/parley/tenants"
	"github.com/parleyhq/parley/tenants/configlog"
)

// ConfigLog is where changes made through the admin routes go
// (tenants/configlog.Log): records on parley.config, applied on every
// node within about a second, kept across restarts.
type ConfigLog interface {
	PutTenant(ctx context.Context, t tenants.Tenant) error
	DeleteTenant(ctx context.Context, id string) error
	// FromFile reports whether the config file defines the tenant: the
	// file wins at every start, so the API does not change it.
	FromFile(id string) bool
	PutKey(ctx context.Context, st apikeys.Stored) error
	DeleteKey(ctx context.Context, id string) error
}

// configTimeout bounds one configuration change: written, then applied
// on this node.
const configTimeout = 10 * time.Second

// DefaultRotationOverlap is how long a rotated key keeps working beside
// its replacement unless the request says otherwise: a day to roll the
// new key out to every client.
const DefaultRotationOverlap = 24 * time.Hour

// MaxRotationOverlap is the longest overlap a rotation may ask for.
const MaxRotationOverlap = 30 * 24 * time.Hour

// tenantView is a tenant as the admin routes answer with it: its
// configuration, credentials masked (tenants.Secret and tenants.Meta mask
// themselves in JSON), and where it is defined.
type tenantView struct {
	*tenants.Tenant
	// Source is "config" for a tenant the config file defines (changed
	// there, not through the API) and "api" for one created at runtime.
	Source string `json:"source"`
}

func (a *API) view(t *tenants.Tenant) tenantView {
	v := tenantView{Tenant: t, Source: "api"}
	if a.o.Config != nil && a.o.Config.FromFile(t.ID) {
		v.Source = "config"
	}
	return v
}

// AuditEntry is one change made through the admin routes: never a
// credential.
type AuditEntry struct {
	Action string // tenant.create, number.update, key.revoke, ...
	Actor  string // the key's label
	Tenant string // "" for agency-wide changes
	Detail string
}

// audit records a change that was applied; a failure is logged by
// Options.Audit, not answered: the change itself stands.
func (a *API) audit(c Call, action, tenant, detail string) {
	if a.o.Audit == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	a.o.Audit(ctx, AuditEntry{Action: action, Actor: c.Key.Label(), Tenant: tenant, Detail: detail})
}

// fieldsOf names the top-level fields of a JSON object body, sorted: what
// a PATCH changed, for the audit.
func fieldsOf(body []byte) string {
	var m map[string]json.RawMessage
	_ = json.Unmarshal(body, &m)
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	sort.Strings(names)
	return strings.Join(names, ",")
}

// configured answers 503 when this node takes no configuration changes.
func (a *API) configured(ctx *fasthttp.RequestCtx) bool {
	if a.o.Config == nil {
		Error(ctx, fasthttp.StatusServiceUnavailable, "config_unavailable", "this node takes no configuration changes")
		return false
	}
	return true
}

// agencyWide refuses, with 403, a key that does not reach every tenant.
func agencyWide(ctx *fasthttp.RequestCtx, c Call, what string) bool {
	if !c.Key.AgencyWide() {
		Error(ctx, fasthttp.StatusForbidden, "forbidden_tenant", what+" needs an agency-wide key (tenants: [\"*\"])")
		return false
	}
	return true
}

// decodeStrict decodes body into v, refusing fields v does not have: a
// misspelt field in a configuration change is an error, not a no-op.
func decodeStrict(body []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(body))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		return err
	}
	if d.More() {
		return errors.New("more than one JSON value")
	}
	return nil
}

// createTenant is POST /tenants: a new business, its channel, backend and
// brain, served by every node within a second.
func (a *API) createTenant(ctx *fasthttp.RequestCtx, c Call) {
	if !a.configured(ctx) || !agencyWide(ctx, c, "creating a tenant") {
		return
	}
	var t tenants.Tenant
	if err := decodeStrict(ctx.PostBody(), &t); err != nil {
		Error(ctx, fasthttp.StatusBadRequest, "invalid_json", err.Error())
		return
	}
	if a.o.Tenants.Get(t.ID) != nil {
		Error(ctx, fasthttp.StatusConflict, "tenant_exists", "tenant "+strconv.Quote(t.ID)+" exists: change it with PATCH /api/v1/tenants/"+t.ID)
		return
	}
	if a.putTenant(ctx, t, fasthttp.StatusCreated) {
		a.audit(c, "tenant.create", t.ID, "")
	}
}

// getTenant is GET /tenants/{tenant}: its configuration, masked.
func (a *API) getTenant(ctx *fasthttp.RequestCtx, c Call) {
	writeJSON(ctx, fasthttp.StatusOK, a.view(c.Tenant))
}

// patchTenant is PATCH /tenants/{tenant}: the fields the body has replace
// the tenant's; objects (twilio, meta, backend, brain, session, webhook,
// outbound) merge field by field, null removes an optional one, lists and
// templates are replaced whole. A credential sent back as the API showed
// it (masked) is kept, not overwritten with its mask.
func (a *API) patchTenant(ctx *fasthttp.RequestCtx, c Call) {
	if !a.configured(ctx) || !a.notFromFile(ctx, c.Tenant.ID) {
		return
	}
	body := ctx.PostBody()
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(body, &fields); err != nil {
		Error(ctx, fasthttp.StatusBadRequest, "invalid_json", err.Error())
		return
	}
	t := c.Tenant.Clone()
	if _, ok := fields["templates"]; ok {
		t.Templates = nil
	}
	if err := decodeStrict(body, &t); err != nil {
		Error(ctx, fasthttp.StatusBadRequest, "invalid_json", err.Error())
		return
	}
	if t.ID != c.Tenant.ID {
		Error(ctx, fasthttp.StatusBadRequest, "invalid_tenant", "a tenant's id cannot change: create a new tenant instead")
		return
	}
	keepMaskedSecrets(c.Tenant, &t)
	if a.putTenant(ctx, t, fasthttp.StatusOK) {
		a.audit(c, "tenant.update", t.ID, "fields "+fieldsOf(body))
	}
}

// deleteTenant is DELETE /tenants/{tenant}: its webhooks answer 404 on
// every node within a second; its conversations stay in ClickHouse for
// the retention period.
func (a *API) deleteTenant(ctx *fasthttp.RequestCtx, c Call) {
	if !a.configured(ctx) || !agencyWide(ctx, c, "deleting a tenant") || !a.notFromFile(ctx, c.Tenant.ID) {
		return
	}
	wait, cancel := context.WithTimeout(context.Background(), configTimeout)
	defer cancel()
	if err := a.o.Config.DeleteTenant(wait, c.Tenant.ID); err != nil {
		configError(ctx, err)
		return
	}
	ctx.SetStatusCode(fasthttp.StatusNoContent)
	a.audit(c, "tenant.delete", c.Tenant.ID, "")
}

func (a *API) notFromFile(ctx *fasthttp.RequestCtx, id string) bool {
	if a.o.Config.FromFile(id) {
		Error(ctx, fasthttp.StatusConflict, "defined_in_config_file",
			"tenant "+strconv.Quote(id)+" is defined in the config file, which wins at every start: change it there")
		return false
	}
	return true
}

// putTenant writes t and answers status and the tenant once this node
// applied it; it reports whether it did.
func (a *API) putTenant(ctx *fasthttp.RequestCtx, t tenants.Tenant, status int) bool {
	if !a.writeTenant(ctx, t) {
		return false
	}
	if got := a.o.Tenants.Get(t.ID); got != nil {
		writeJSON(ctx, status, a.view(got))
	} else {
		writeJSON(ctx, status, a.view(&t))
	}
	return true
}

// writeTenant checks t and writes it, returning once this node applied
// it; when it returns false it has answered why.
func (a *API) writeTenant(ctx *fasthttp.RequestCtx, t tenants.Tenant) bool {
	if t.Sim {
		Error(ctx, fasthttp.StatusBadRequest, "invalid_tenant", "simulator tenants come from the config file of parley dev, not the API")
		return false
	}
	if err := a.o.Providers.CheckConnect(&t); err != nil {
		Error(ctx, fasthttp.StatusBadRequest, "invalid_credentials", err.Error())
		return false
	}
	wait, cancel := context.WithTimeout(context.Background(), configTimeout)
	defer cancel()
	if err := a.o.Config.PutTenant(wait, t); err != nil {
		configError(ctx, err)
		return false
	}
	return true
}

// configError answers a failed configuration change.
func configError(ctx *fasthttp.RequestCtx, err error) {
	switch {
	case errors.Is(err, tenants.ErrNumberTaken):
		Error(ctx, fasthttp.StatusConflict, "number_taken", err.Error())
	case errors.Is(err, tenants.ErrUnknownAgent):
		Error(ctx, fasthttp.StatusBadRequest, "unknown_agent", err.Error())
	case errors.Is(err, configlog.ErrInvalid):
		Error(ctx, fasthttp.StatusBadRequest, "invalid_tenant", err.Error())
	case errors.Is(err, configlog.ErrNotApplied), errors.Is(err, context.DeadlineExceeded):
		// Written: it applies when this node catches up. Sending the same
		// change again is harmless.
		ctx.Response.Header.Set("Retry-After", "1")
		Error(ctx, fasthttp.StatusServiceUnavailable, "not_applied", "the change is written to parley.config but not yet applied on this node")
	default:
		ctx.Response.Header.Set("Retry-After", "5")
		Error(ctx, fasthttp.StatusServiceUnavailable, "broker_unavailable", "the change could not be written; retry later")
	}
}

// keepMaskedSecrets puts back every credential of old that next carries
// as its mask: a tenant read with GET and sent back keeps its secrets.
func keepMaskedSecrets(old *tenants.Tenant, next *tenants.Tenant) {
	keep := func(was tenants.Secret, now *tenants.Secret) {
		if *now != was && *now == tenants.Secret(tenants.Mask(was.Reveal())) {
			*now = was
		}
	}
	keepString := func(was string, now *string) {
		if *now != was && *now == tenants.Mask(was) {
			*now = was
		}
	}
	for was := range old.EachNumber() {
		now, ok := next.NumberByID(was.ID())
		if !ok {
			continue
		}
		// now's pointers are next's own: changing them changes next.
		if was.Twilio != nil && now.Twilio != nil {
			keep(was.Twilio.AuthToken, &now.Twilio.AuthToken)
		}
		if was.Meta != nil && now.Meta != nil {
			keepString(was.Meta.AccessToken, &now.Meta.AccessToken)
			keepString(was.Meta.AppSecret, &now.Meta.AppSecret)
			keepString(was.Meta.VerifyToken, &now.Meta.VerifyToken)
		}
	}
	if old.Webhook != nil && next.Webhook != nil {
		keep(old.Webhook.Secret, &next.Webhook.Secret)
	}
	keep(old.Backend.Token, &next.Backend.Token)
	keep(old.Brain.APIKey, &next.Brain.APIKey)
}

// keyRequest is the body of POST /keys.
type keyRequest struct {
	// Agent makes the key an agent's: role agent, the agent's tenant.
	Agent   string   `json:"agent"`
	Name    string   `json:"name"`
	Role    string   `json:"role"`
	Tenants []string `json:"tenants"`
}

// createdKey is the answer of POST /keys and of a rotation: the key as
// GET /keys lists it, but with the secret itself, this once, as its key
// (the shallower field wins in encoding/json).
type createdKey struct {
	apikeys.Info
	Secret string `json:"key"`
}

// createKey is POST /keys {"name", "role", "tenants"}: a key for tenants
// the caller reaches ("*" only from an agency-wide key), its secret
// answered once and kept nowhere.
func (a *API) createKey(ctx *fasthttp.RequestCtx, c Call) {
	if !a.configured(ctx) {
		return
	}
	var req keyRequest
	if err := decodeStrict(ctx.PostBody(), &req); err != nil {
		Error(ctx, fasthttp.StatusBadRequest, "invalid_json", err.Error())
		return
	}
	if !c.Key.Oversees(req.Tenants) {
		Error(ctx, fasthttp.StatusForbidden, "forbidden_tenant", "this API key cannot make keys for all of these tenants")
		return
	}
	if req.Agent != "" {
		if len(req.Tenants) != 1 || req.Role != apikeys.RoleAgent {
			Error(ctx, fasthttp.StatusBadRequest, "invalid_key", "an agent's key has role agent and the agent's one tenant")
			return
		}
		t := a.o.Tenants.Get(req.Tenants[0])
		ag, ok := tenants.Agent{}, false
		if t != nil {
			ag, ok = t.AgentByID(req.Agent)
		}
		if !ok {
			Error(ctx, fasthttp.StatusBadRequest, "unknown_agent", "tenant "+req.Tenants[0]+" has no agent "+strconv.Quote(req.Agent))
			return
		}
		if req.Name == "" {
			req.Name = ag.Name
		}
	}
	secret, st, err := apikeys.Generate(req.Name, req.Role, req.Tenants, c.Key.Label(), time.Now())
	if err != nil {
		Error(ctx, fasthttp.StatusBadRequest, "invalid_key", err.Error())
		return
	}
	st.Agent = req.Agent
	wait, cancel := context.WithTimeout(context.Background(), configTimeout)
	defer cancel()
	if err := a.o.Config.PutKey(wait, st); err != nil {
		configError(ctx, err)
		return
	}
	answerKey(ctx, secret, st)
	a.audit(c, "key.create", "", keyDetail(st))
}

// answerKey answers 201 with a new key, its secret this once.
func answerKey(ctx *fasthttp.RequestCtx, secret string, st apikeys.Stored) {
	ctx.Response.Header.Set("Cache-Control", "no-store")
	writeJSON(ctx, fasthttp.StatusCreated, createdKey{Info: st.Info(), Secret: secret})
}

// listKeys is GET /keys: the keys of the tenants the caller reaches,
// masked, with their last use on this node.
func (a *API) listKeys(ctx *fasthttp.RequestCtx, c Call) {
	items := a.o.Keys.List(c.Key)
	if items == nil {
		items = []apikeys.Info{}
	}
	writeJSON(ctx, fasthttp.StatusOK, map[string]any{"items": items})
}

// storedKey finds the key of the route's {id} that the caller may manage,
// answering 404 unknown_key otherwise (a key of another tenant is not
// told apart from none).
func (a *API) storedKey(ctx *fasthttp.RequestCtx, c Call) (apikeys.Stored, bool) {
	st, ok := a.o.Keys.Stored(c.Param("id"))
	if ok && c.Key.Oversees(st.Tenants) {
		return st, true
	}
	Error(ctx, fasthttp.StatusNotFound, "unknown_key", "no API key "+strconv.Quote(c.Param("id"))+" (keys from the config file are revoked there)")
	return apikeys.Stored{}, false
}

// revokeKey is DELETE /keys/{id}: refused on every node within a second.
func (a *API) revokeKey(ctx *fasthttp.RequestCtx, c Call) {
	if !a.configured(ctx) {
		return
	}
	st, ok := a.storedKey(ctx, c)
	if !ok {
		return
	}
	wait, cancel := context.WithTimeout(context.Background(), configTimeout)
	defer cancel()
	if err := a.o.Config.DeleteKey(wait, st.ID); err != nil {
		configError(ctx, err)
		return
	}
	ctx.SetStatusCode(fasthttp.StatusNoContent)
	a.audit(c, "key.revoke", "", keyDetail(st))
}

// rotateKey is POST /keys/{id}/rotate {"overlap": "24h"}: a new key with
// the same name, role and tenants; the old one keeps working for the
// overlap (default DefaultRotationOverlap, "0s" ends it at once).
func (a *API) rotateKey(ctx *fasthttp.RequestCtx, c Call) {
	if !a.configured(ctx) {
		return
	}
	old, ok := a.storedKey(ctx, c)
	if !ok {
		return
	}
	var req struct {
		Overlap *string `json:"overlap"`
	}
	if body := bytes.TrimSpace(ctx.PostBody()); len(body) > 0 {
		if err := decodeStrict(body, &req); err != nil {
			Error(ctx, fasthttp.StatusBadRequest, "invalid_json", err.Error())
			return
		}
	}
	overlap := DefaultRotationOverlap
	if req.Overlap != nil {
		d, err := time.ParseDuration(*req.Overlap)
		if err != nil || d < 0 || d > MaxRotationOverlap {
			Error(ctx, fasthttp.StatusBadRequest, "invalid_overlap", "overlap is a duration such as \"24h\", from 0s to 720h")
			return
		}
		overlap = d
	}
	now := time.Now()
	secret, next, err := apikeys.Generate(old.Name, old.Role, old.Tenants, c.Key.Label(), now)
	if err != nil {
		Error(ctx, fasthttp.StatusBadRequest, "invalid_key", err.Error())
		return
	}
	next.Agent = old.Agent
	wait, cancel := context.WithTimeout(context.Background(), configTimeout)
	defer cancel()
	// The replacement first: if the old key's change fails, both work.
	if err := a.o.Config.PutKey(wait, next); err != nil {
		configError(ctx, err)
		return
	}
	if exp := now.Add(overlap).UTC(); old.ExpiresAt.IsZero() || exp.Before(old.ExpiresAt) {
		old.ExpiresAt = exp
		if err := a.o.Config.PutKey(wait, old); err != nil {
			configError(ctx, err)
			return
		}
	}
	answerKey(ctx, secret, next)
	a.audit(c, "key.rotate", "", keyDetail(next)+" replaces "+old.ID+" (overlap "+overlap.String()+")")
}

// keyDetail says which key, of which role and tenants, for the audit.
func keyDetail(st apikeys.Stored) string {
	d := st.ID + " role " + st.Role + " tenants " + strings.Join(st.Tenants, ",")
	if st.Agent != "" {
		d += " agent " + st.Agent
	}
	return d
}
