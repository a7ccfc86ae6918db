package sim

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/parleyhq/parley/channels"
	"github.com/parleyhq/parley/internal/ids"
	"github.com/parleyhq/parley/tenants"
	"github.com/parleyhq/parley/wire"
)

// Channel is the simulator's channel name.
const Channel = tenants.ChannelSimulator

// Provider is the WhatsApp simulator of `parley dev` behind
// channels.Provider: the page, the list of simulator tenants, sending as a
// customer (the same path as a provider webhook) and the reply stream;
// replies are delivered to the hub, inside the process.
type Provider struct {
	hub *Hub
}

var _ channels.Provider = (*Provider)(nil)

// New creates the provider for hub; a nil hub delivers nothing.
func New(hub *Hub) *Provider { return &Provider{hub: hub} }

// Name is Channel.
func (p *Provider) Name() string { return Channel }

// Local: the simulator delivers inside the process.
func (p *Provider) Local() bool { return true }

// Number is "": the simulator has no sender numbers.
func (p *Provider) Number(*tenants.Tenant) string { return "" }

// TextLimit is what the simulator takes in one message: WhatsApp's 4,096
// characters, as through Meta.
var TextLimit = channels.TextLimit{Max: 4096}

// TextLimit is WhatsApp's.
func (p *Provider) TextLimit() channels.TextLimit { return TextLimit }

// Send shows out on the page; a template as its name.
func (p *Provider) Send(_ context.Context, _ *tenants.Tenant, out *wire.Outbound, tpl *wire.Template) (string, error) {
	if p.hub != nil {
		text := out.Text
		if text == "" && tpl != nil {
			text = "[template " + tpl.Name + tpl.ContentSid + "]"
		}
		p.hub.Deliver(out.Tenant, out.Phone, Reply{ID: out.Id, Text: text, At: time.UnixMilli(out.CreatedAtMs)})
	}
	return "sim-" + out.Id, nil
}

// OwnsMedia: the simulator sends no files.
func (p *Provider) OwnsMedia(string) bool { return false }

// FetchMedia finds nothing.
func (p *Provider) FetchMedia(context.Context, *tenants.Tenant, string) (io.ReadCloser, string, int64, error) {
	return nil, "", 0, fmt.Errorf("simulator: %w", channels.ErrMediaNotFound)
}

// Routes are the page and its API.
func (p *Provider) Routes() []channels.Route {
	hub := p.hub
	if hub == nil {
		hub = NewHub()
	}
	page := func(h func(*fasthttp.RequestCtx)) func(*fasthttp.RequestCtx, channels.Env) ([]*wire.Inbound, bool) {
		return func(ctx *fasthttp.RequestCtx, _ channels.Env) ([]*wire.Inbound, bool) {
			h(ctx)
			return nil, true
		}
	}
	return []channels.Route{
		{Path: "/simulator/api/events", Prefix: true, Name: "simulator", Accept: func(ctx *fasthttp.RequestCtx, env channels.Env) ([]*wire.Inbound, bool) {
			hub.Events(ctx, env.Tenants)
			return nil, true
		}},
		{Path: "/simulator/api/tenants", Prefix: true, Name: "simulator", Accept: func(ctx *fasthttp.RequestCtx, env channels.Env) ([]*wire.Inbound, bool) {
			listTenants(ctx, env.Tenants)
			return nil, true
		}},
		{Path: "/simulator/api/send", Prefix: true, Name: "simulator", Accept: acceptSend, Ack: func(ctx *fasthttp.RequestCtx, ins []*wire.Inbound) {
			in := ins[0]
			// The customer's line joins the conversation shown on the page
			// once it is accepted, like a message on the phone.
			hub.Deliver(in.Tenant, in.Phone, Reply{ID: in.Id, Text: in.GetMessage().GetText(), At: time.UnixMilli(in.ReceivedAtMs), Customer: true})
			ctx.SetStatusCode(fasthttp.StatusAccepted)
			ctx.SetContentType("application/json")
			ctx.SetBodyString(`{"id":"` + in.Id + `"}`)
		}},
		{Path: "/simulator", Prefix: true, Name: "simulator", Accept: page(Page)},
	}
}

func listTenants(ctx *fasthttp.RequestCtx, reg *tenants.Registry) {
	type entry struct {
		ID   string `json:"id"`
		Name string `json:"name"`
	}
	list := []entry{}
	for _, t := range reg.All() {
		if t.Sim {
			list = append(list, entry{t.ID, t.Name})
		}
	}
	b, _ := json.Marshal(list)
	ctx.SetContentType("application/json")
	ctx.SetBody(b)
}

func acceptSend(ctx *fasthttp.RequestCtx, env channels.Env) ([]*wire.Inbound, bool) {
	if !ctx.IsPost() {
		ctx.Error("method not allowed", fasthttp.StatusMethodNotAllowed)
		return nil, true
	}
	in, err := ParseSend(ctx.PostBody(), ids.New(), time.Now())
	if err != nil {
		ctx.Error(err.Error(), fasthttp.StatusBadRequest)
		return nil, true
	}
	if t := env.Tenants.Get(in.Tenant); t == nil || !t.Sim {
		ctx.Error("unknown simulator tenant", fasthttp.StatusNotFound)
		return nil, true
	}
	return []*wire.Inbound{in}, false
}
