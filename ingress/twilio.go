package ingress

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/valyala/fasthttp"
	"google.golang.org/protobuf/proto"

	"github.com/parleyhq/parley/channels/twilio"
	"github.com/parleyhq/parley/internal/ids"
	"github.com/parleyhq/parley/wire"
)

// emptyTwiML tells Twilio there is nothing to say synchronously: replies go
// out through the Messages API once the session actor produced them.
const emptyTwiML = `<?xml version="1.0" encoding="UTF-8"?><Response/>`

// twilioWebhook takes POST /webhooks/twilio/{tenant} (inbound messages) and
// POST /webhooks/twilio/{tenant}/status (delivery status callbacks).
func (s *Server) twilioWebhook(ctx *fasthttp.RequestCtx) {
	rest := strings.TrimPrefix(string(ctx.Path()), twilioPrefix)
	if !ctx.IsPost() {
		ctx.Response.Header.Set("Allow", "POST")
		ctx.Error("method not allowed", fasthttp.StatusMethodNotAllowed)
		return
	}
	tenantID := rest
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		tenantID = rest[:i]
		if rest[i:] != "/status" {
			ctx.Error("not found", fasthttp.StatusNotFound)
			return
		}
	}
	t := s.o.Tenants.Get(tenantID)
	if t == nil || t.Twilio == nil {
		ctx.Error("unknown tenant", fasthttp.StatusNotFound)
		return
	}
	form, err := twilio.ParseForm(ctx.PostBody())
	if err != nil {
		ctx.Error("malformed form: "+err.Error(), fasthttp.StatusBadRequest)
		return
	}
	// Twilio signs the URL it called: the public one, which behind a proxy
	// differs from what this server sees.
	fullURL := s.o.PublicBaseURL + string(ctx.URI().RequestURI())
	sig := string(ctx.Request.Header.Peek("X-Twilio-Signature"))
	if !twilio.ValidSignature(t.Twilio.AuthToken.Reveal(), fullURL, form, sig) {
		ctx.Error("invalid signature", fasthttp.StatusForbidden)
		return
	}
	in, err := twilio.Normalize(t.ID, form, time.Now(), ids.New)
	if err != nil {
		ctx.Error(err.Error(), fasthttp.StatusBadRequest)
		return
	}
	if s.produceInbound(ctx, in) {
		ctx.SetContentType("text/xml; charset=utf-8")
		ctx.SetBodyString(emptyTwiML)
	}
}

// produceInbound writes inbound records and waits for the broker's ack of
// every one of them. A webhook's records go in one call, so a Meta batch
// of many events costs one round trip, not one per event.
func (s *Server) produceInbound(ctx *fasthttp.RequestCtx, ins ...*wire.Inbound) bool {
	msgs := make([]kafka.Message, len(ins))
	for i, in := range ins {
		value, err := proto.Marshal(in)
		if err != nil {
			ctx.Error("encode: "+err.Error(), fasthttp.StatusInternalServerError)
			return false
		}
		msgs[i] = kafka.Message{Topic: wire.TopicInbound, Key: wire.Key(in.Tenant, in.Phone), Value: value}
	}
	pctx, cancel := context.WithTimeout(context.Background(), s.o.ProduceTimeout)
	defer cancel()
	err := s.o.Producer.Produce(pctx, msgs...)
	if err != nil {
		s.o.Logger.Warn("inbound not acknowledged by the broker", "tenant", ins[0].Tenant, "records", len(ins), "err", err)
		ctx.Response.Header.Set("Retry-After", "5")
		msg := "broker unavailable, retry later"
		if errors.Is(err, context.DeadlineExceeded) {
			msg = "broker did not acknowledge in time, retry later"
		}
		ctx.Error(msg, fasthttp.StatusServiceUnavailable)
		return false
	}
	return true
}
