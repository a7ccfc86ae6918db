package api

import (
	"encoding/json"
	"strconv"
	"strings"

	"github.com/valyala/fasthttp"

	"github.com/parleyhq/parley/tenants"
)

// A tenant has one WhatsApp number today: a Twilio sender or a Meta Cloud
// number. The numbers routes are that number as a resource of its own,
// as the number-connection guide presents it (connect, edit, switch
// on and off, delete), written through the tenant's record on
// parley.config like every other change.

// numberView is a tenant's number as the numbers routes answer with it,
// credentials masked (tenants.Twilio's Secret and tenants.Meta mask
// themselves in JSON).
type numberView struct {
	// ID names the number in the path: the Twilio sender's E.164 number,
	// or the Meta phone_number_id.
	ID          string          `json:"id"`
	Channel     string          `json:"channel"`
	DisplayName string          `json:"display_name"`
	Active      bool            `json:"active"`
	Twilio      *tenants.Twilio `json:"twilio,omitempty"`
	Meta        *tenants.Meta   `json:"meta,omitempty"`
}

// numberID is the path id of t's number, "" when none is connected.
func numberID(t *tenants.Tenant) string {
	switch {
	case t.Twilio != nil:
		return strings.TrimPrefix(t.Twilio.From, "whatsapp:")
	case t.Meta != nil:
		return t.Meta.PhoneNumberID
	}
	return ""
}

func viewNumber(t *tenants.Tenant) numberView {
	return numberView{ID: numberID(t), Channel: t.Channel(), DisplayName: t.Number.DisplayName,
		Active: !t.Number.Inactive, Twilio: t.Twilio, Meta: t.Meta}
}

// numberRequest is the body of POST and PATCH on numbers: the number's
// settings and one provider's credentials.
type numberRequest struct {
	DisplayName *string         `json:"display_name"`
	Active      *bool           `json:"active"`
	Twilio      json.RawMessage `json:"twilio"`
	Meta        json.RawMessage `json:"meta"`
}

// listNumbers is GET /tenants/{tenant}/numbers.
func (a *API) listNumbers(ctx *fasthttp.RequestCtx, c Call) {
	items := []numberView{}
	if c.Tenant.Channel() == tenants.ChannelTwilio || c.Tenant.Channel() == tenants.ChannelMeta {
		items = append(items, viewNumber(c.Tenant))
	}
	writeJSON(ctx, fasthttp.StatusOK, map[string]any{"items": items})
}

// connectNumber is POST /tenants/{tenant}/numbers {"display_name",
// "active", "twilio": {...} | "meta": {...}}: the tenant's number, served
// by every node within a second.
func (a *API) connectNumber(ctx *fasthttp.RequestCtx, c Call) {
	if !a.configured(ctx) || !a.notFromFile(ctx, c.Tenant.ID) {
		return
	}
	var req numberRequest
	if err := decodeStrict(ctx.PostBody(), &req); err != nil {
		Error(ctx, fasthttp.StatusBadRequest, "invalid_json", err.Error())
		return
	}
	if id := numberID(c.Tenant); id != "" || c.Tenant.Sim {
		Error(ctx, fasthttp.StatusConflict, "number_exists",
			"this tenant has a number ("+strconv.Quote(id)+"): a tenant has one number; change it with PATCH or delete it first")
		return
	}
	if (len(req.Twilio) == 0) == (len(req.Meta) == 0) {
		Error(ctx, fasthttp.StatusBadRequest, "invalid_number", "give the credentials of one provider: twilio or meta")
		return
	}
	t := c.Tenant.Clone()
	t.Number = tenants.NumberSettings{}
	if !a.applyNumber(ctx, &t, req) {
		return
	}
	a.putNumber(ctx, t, fasthttp.StatusCreated)
}

// updateNumber is PATCH /tenants/{tenant}/numbers/{id}: display name,
// active, and the provider's fields (a rotated token); another provider
// is a new number (delete, then connect).
func (a *API) updateNumber(ctx *fasthttp.RequestCtx, c Call) {
	if !a.configured(ctx) || !a.notFromFile(ctx, c.Tenant.ID) || !a.theNumber(ctx, c) {
		return
	}
	var req numberRequest
	if err := decodeStrict(ctx.PostBody(), &req); err != nil {
		Error(ctx, fasthttp.StatusBadRequest, "invalid_json", err.Error())
		return
	}
	if len(req.Twilio) > 0 && c.Tenant.Twilio == nil || len(req.Meta) > 0 && c.Tenant.Meta == nil {
		Error(ctx, fasthttp.StatusBadRequest, "invalid_number", "this number is on "+c.Tenant.Channel()+": another provider is another number (delete this one, then connect)")
		return
	}
	t := c.Tenant.Clone()
	if !a.applyNumber(ctx, &t, req) {
		return
	}
	keepMaskedSecrets(c.Tenant, &t)
	a.putNumber(ctx, t, fasthttp.StatusOK)
}

// deleteNumber is DELETE /tenants/{tenant}/numbers/{id}: its webhooks
// answer 404 on every node within a second; the tenant and its
// conversations stay.
func (a *API) deleteNumber(ctx *fasthttp.RequestCtx, c Call) {
	if !a.configured(ctx) || !a.notFromFile(ctx, c.Tenant.ID) || !a.theNumber(ctx, c) {
		return
	}
	t := c.Tenant.Clone()
	t.Twilio, t.Meta, t.Number = nil, nil, tenants.NumberSettings{}
	if a.writeTenant(ctx, t) {
		ctx.SetStatusCode(fasthttp.StatusNoContent)
	}
}

// theNumber answers 404 unknown_number unless the path's {id} is the
// tenant's number.
func (a *API) theNumber(ctx *fasthttp.RequestCtx, c Call) bool {
	if id := numberID(c.Tenant); id == "" || id != c.Param("id") {
		Error(ctx, fasthttp.StatusNotFound, "unknown_number", "tenant "+c.Tenant.ID+" has no number "+strconv.Quote(c.Param("id")))
		return false
	}
	return true
}

// applyNumber puts req's fields onto t: the provider's object merged
// field by field into what t has.
func (a *API) applyNumber(ctx *fasthttp.RequestCtx, t *tenants.Tenant, req numberRequest) bool {
	if req.DisplayName != nil {
		t.Number.DisplayName = *req.DisplayName
	}
	if req.Active != nil {
		t.Number.Inactive = !*req.Active
	}
	var err error
	switch {
	case len(req.Twilio) > 0:
		if t.Twilio == nil {
			t.Twilio = &tenants.Twilio{}
		}
		err = decodeStrict(req.Twilio, t.Twilio)
	case len(req.Meta) > 0:
		if t.Meta == nil {
			t.Meta = &tenants.Meta{}
		}
		err = decodeStrict(req.Meta, t.Meta)
	}
	if err != nil {
		Error(ctx, fasthttp.StatusBadRequest, "invalid_json", err.Error())
		return false
	}
	return true
}

// putNumber writes t and answers status and its number.
func (a *API) putNumber(ctx *fasthttp.RequestCtx, t tenants.Tenant, status int) {
	if !a.writeTenant(ctx, t) {
		return
	}
	if got := a.o.Tenants.Get(t.ID); got != nil {
		t = *got
	}
	writeJSON(ctx, status, viewNumber(&t))
}
