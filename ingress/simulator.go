package ingress

import (
	"encoding/json"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/parleyhq/parley/channels/sim"
	"github.com/parleyhq/parley/internal/ids"
)

// MountSimulator serves the WhatsApp simulator of `parley dev`: the page,
// the list of simulator tenants, sending as a customer, and the reply stream.
// Messages typed on the page take the same path as a provider webhook.
func (s *Server) MountSimulator(hub *sim.Hub) {
	s.Mount("/simulator/api/events", "simulator", hub.Events)
	s.Mount("/simulator/api/tenants", "simulator", s.simTenants)
	s.Mount("/simulator/api/send", "simulator", func(ctx *fasthttp.RequestCtx) { s.simSend(ctx, hub) })
	s.Mount("/simulator", "simulator", sim.Page)
}

func (s *Server) simTenants(ctx *fasthttp.RequestCtx) {
	type entry struct {
		ID   string `json:"id"`
		Name string `json:"name"`
	}
	list := []entry{}
	for _, t := range s.o.Tenants.All() {
		if t.Sim {
			list = append(list, entry{t.ID, t.Name})
		}
	}
	b, _ := json.Marshal(list)
	ctx.SetContentType("application/json")
	ctx.SetBody(b)
}

func (s *Server) simSend(ctx *fasthttp.RequestCtx, hub *sim.Hub) {
	if !ctx.IsPost() {
		ctx.Error("method not allowed", fasthttp.StatusMethodNotAllowed)
		return
	}
	in, err := sim.ParseSend(ctx.PostBody(), ids.New(), time.Now())
	if err != nil {
		ctx.Error(err.Error(), fasthttp.StatusBadRequest)
		return
	}
	if t := s.o.Tenants.Get(in.Tenant); t == nil || !t.Sim {
		ctx.Error("unknown simulator tenant", fasthttp.StatusNotFound)
		return
	}
	if s.produceInbound(ctx, in) {
		// The customer's line joins the conversation shown on the page
		// once it is accepted, like a message on the phone.
		hub.Deliver(in.Tenant, in.Phone, sim.Reply{ID: in.Id, Text: in.GetMessage().GetText(), At: time.UnixMilli(in.ReceivedAtMs), Customer: true})
		ctx.SetStatusCode(fasthttp.StatusAccepted)
		ctx.SetContentType("application/json")
		ctx.SetBodyString(`{"id":"` + in.Id + `"}`)
	}
}
