package api

import (
	"encoding/json"
	"strconv"

	"github.com/valyala/fasthttp"

	"github.com/parleyhq/parley/tenants"
)

// A tenant's WhatsApp numbers (Twilio senders, Meta Cloud numbers) as a
// resource of their own, as the number-connection guide presents them
// (connect, edit, switch on and off, delete), written through the
// tenant's record on parley.config like every other change.

// numberView is a tenant's number as the numbers routes answer with it,
// credentials masked (tenants.Twilio's Secret and tenants.Meta mask
// themselves in JSON).
type numberView struct {
	// ID names the number in the path: the Twilio sender's E.164 number,
	// or the Meta phone_number_id.
	ID          string          `json:"id"`
	Channel     string          `json:"channel"`
	DisplayName string          `json:"display_name"`
	Agent       string          `json:"assigned_agent,omitempty"`
	Active      bool            `json:"active"`
	First       bool            `json:"first"`
	Twilio      *tenants.Twilio `json:"twilio,omitempty"`
	Meta        *tenants.Meta   `json:"meta,omitempty"`
}

func viewNumber(t *tenants.Tenant, n tenants.Number) numberView {
	return numberView{ID: n.ID(), Channel: n.Channel(), DisplayName: n.DisplayName, Agent: n.Agent,
		Active: !n.Inactive, First: n.ID() == t.First().ID(), Twilio: n.Twilio, Meta: n.Meta}
}

// numberRequest is the body of POST and PATCH on numbers: the number's
// settings and one provider's credentials.
type numberRequest struct {
	DisplayName   *string         `json:"display_name"`
	AssignedAgent *string         `json:"assigned_agent"`
	Active        *bool           `json:"active"`
	Twilio        json.RawMessage `json:"twilio"`
	Meta          json.RawMessage `json:"meta"`
}

// listNumbers is GET /tenants/{tenant}/numbers: the first number first.
func (a *API) listNumbers(ctx *fasthttp.RequestCtx, c Call) {
	items := []numberView{}
	for n := range c.Tenant.EachNumber() {
		items = append(items, viewNumber(c.Tenant, n))
	}
	writeJSON(ctx, fasthttp.StatusOK, map[string]any{"items": items})
}

// connectNumber is POST /tenants/{tenant}/numbers {"display_name",
// "active", "twilio": {...} | "meta": {...}}: one more number of the
// tenant (its first, if it has none), served by every node within a
// second.
func (a *API) connectNumber(ctx *fasthttp.RequestCtx, c Call) {
	if !a.configured(ctx) || !a.notFromFile(ctx, c.Tenant.ID) {
		return
	}
	var req numberRequest
	if err := decodeStrict(ctx.PostBody(), &req); err != nil {
		Error(ctx, fasthttp.StatusBadRequest, "invalid_json", err.Error())
		return
	}
	if (len(req.Twilio) == 0) == (len(req.Meta) == 0) {
		Error(ctx, fasthttp.StatusBadRequest, "invalid_number", "give the credentials of one provider: twilio or meta")
		return
	}
	var n tenants.Number
	if !applyNumber(ctx, &n, req) {
		return
	}
	t := c.Tenant.Clone()
	if err := t.AddNumber(n); err != nil {
		Error(ctx, fasthttp.StatusConflict, "number_exists", err.Error())
		return
	}
	if !checkAssignment(ctx, c.Tenant, n, true) {
		return
	}
	if a.putNumber(ctx, t, n.ID(), fasthttp.StatusCreated) {
		a.audit(c, "number.connect", t.ID, n.Channel()+" "+n.ID())
	}
}

// updateNumber is PATCH /tenants/{tenant}/numbers/{id}: display name,
// active, and the provider's fields (a rotated token); the provider and
// the number itself (sender, phone_number_id) stay: another is another
// number.
func (a *API) updateNumber(ctx *fasthttp.RequestCtx, c Call) {
	if !a.configured(ctx) || !a.notFromFile(ctx, c.Tenant.ID) {
		return
	}
	n, ok := a.theNumber(ctx, c)
	if !ok {
		return
	}
	var req numberRequest
	if err := decodeStrict(ctx.PostBody(), &req); err != nil {
		Error(ctx, fasthttp.StatusBadRequest, "invalid_json", err.Error())
		return
	}
	if len(req.Twilio) > 0 && n.Twilio == nil || len(req.Meta) > 0 && n.Meta == nil {
		Error(ctx, fasthttp.StatusBadRequest, "invalid_number", "this number is on "+n.Channel()+": another provider is another number (connect it)")
		return
	}
	t := c.Tenant.Clone()
	n, _ = t.NumberByID(n.ID()) // the clone's, whose pointers are its own
	id := n.ID()
	if !applyNumber(ctx, &n, req) {
		return
	}
	if n.ID() != id {
		Error(ctx, fasthttp.StatusBadRequest, "invalid_number", "a number's sender or phone_number_id cannot change: connect the other number")
		return
	}
	if !checkAssignment(ctx, c.Tenant, n, req.Active != nil && *req.Active) {
		return
	}
	t.ReplaceNumber(id, n)
	keepMaskedSecrets(c.Tenant, &t)
	if a.putNumber(ctx, t, id, fasthttp.StatusOK) {
		a.audit(c, "number.update", t.ID, id+" fields "+fieldsOf(ctx.PostBody()))
	}
}

// deleteNumber is DELETE /tenants/{tenant}/numbers/{id}: its webhooks
// answer 404 (403 for a Twilio sender whose tenant has others) on every
// node within a second; the tenant and its conversations stay.
func (a *API) deleteNumber(ctx *fasthttp.RequestCtx, c Call) {
	if !a.configured(ctx) || !a.notFromFile(ctx, c.Tenant.ID) {
		return
	}
	n, ok := a.theNumber(ctx, c)
	if !ok {
		return
	}
	t := c.Tenant.Clone()
	t.RemoveNumber(n.ID())
	if a.writeTenant(ctx, t) {
		ctx.SetStatusCode(fasthttp.StatusNoContent)
		a.audit(c, "number.delete", t.ID, n.ID())
	}
}

// theNumber finds the path's {id} among the tenant's numbers, answering
// 404 unknown_number otherwise.
func (a *API) theNumber(ctx *fasthttp.RequestCtx, c Call) (tenants.Number, bool) {
	n, ok := c.Tenant.NumberByID(c.Param("id"))
	if !ok {
		Error(ctx, fasthttp.StatusNotFound, "unknown_number", "tenant "+c.Tenant.ID+" has no number "+strconv.Quote(c.Param("id")))
	}
	return n, ok
}

// applyNumber puts req's fields onto n: the provider's object merged
// field by field into what n has (copied first: n's pointers may be
// shared with the tenant the request read).
func applyNumber(ctx *fasthttp.RequestCtx, n *tenants.Number, req numberRequest) bool {
	if req.DisplayName != nil {
		n.DisplayName = *req.DisplayName
	}
	if req.AssignedAgent != nil {
		n.Agent = *req.AssignedAgent
	}
	if req.Active != nil {
		n.Inactive = !*req.Active
	}
	var err error
	switch {
	case len(req.Twilio) > 0:
		tw := tenants.Twilio{}
		if n.Twilio != nil {
			tw = *n.Twilio
		}
		err = decodeStrict(req.Twilio, &tw)
		n.Twilio = &tw
	case len(req.Meta) > 0:
		m := tenants.Meta{}
		if n.Meta != nil {
			m = *n.Meta
		}
		err = decodeStrict(req.Meta, &m)
		n.Meta = &m
	}
	if err != nil {
		Error(ctx, fasthttp.StatusBadRequest, "invalid_json", err.Error())
		return false
	}
	return true
}

// putNumber writes t and answers status and its number id; it reports
// whether it did.
func (a *API) putNumber(ctx *fasthttp.RequestCtx, t tenants.Tenant, id string, status int) bool {
	if !a.writeTenant(ctx, t) {
		return false
	}
	if got := a.o.Tenants.Get(t.ID); got != nil {
		t = *got
	}
	n, _ := t.NumberByID(id)
	writeJSON(ctx, status, viewNumber(&t, n))
	return true
}
