package ingress

import (
	"net/url"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/parleyhq/parley/channels/meta"
	"github.com/parleyhq/parley/internal/ids"
)

// metaWebhook serves /webhooks/meta: one URL for every Meta number. GET is
// the subscription handshake; POST carries messages and statuses, and the
// tenant of each change is found by its phone_number_id.
func (s *Server) metaWebhook(ctx *fasthttp.RequestCtx) {
	switch {
	case ctx.IsGet():
		s.metaHandshake(ctx)
	case ctx.IsPost():
		s.metaEvents(ctx)
	default:
		ctx.Response.Header.Set("Allow", "GET, POST")
		ctx.Error("method not allowed", fasthttp.StatusMethodNotAllowed)
	}
}

func (s *Server) metaHandshake(ctx *fasthttp.RequestCtx) {
	q, err := url.ParseQuery(string(ctx.URI().QueryString()))
	if err != nil {
		ctx.Error("malformed query", fasthttp.StatusBadRequest)
		return
	}
	for _, t := range s.o.Tenants.All() {
		if t.Meta == nil {
			continue
		}
		if challenge, ok := meta.VerifyChallenge(q, t.Meta.VerifyToken); ok {
			ctx.SetContentType("text/plain; charset=utf-8")
			ctx.SetBodyString(challenge)
			return
		}
	}
	ctx.Error("verification failed", fasthttp.StatusForbidden)
}

func (s *Server) metaEvents(ctx *fasthttp.RequestCtx) {
	lookup := func(phoneNumberID string) (meta.Number, bool) {
		t := s.o.Tenants.ByMetaNumber(phoneNumberID)
		if t == nil {
			return meta.Number{}, false
		}
		return meta.Number{Tenant: t.ID, AppSecret: t.Meta.AppSecret}, true
	}
	recs, err := meta.Accept(ctx.PostBody(), string(ctx.Request.Header.Peek(meta.SignatureHeader)), lookup, time.Now(), ids.New)
	status := meta.ResponseStatus(len(recs), err)
	if err != nil {
		s.o.Logger.Warn("meta webhook", "accepted", len(recs), "status", status, "err", err)
	}
	if status != fasthttp.StatusOK {
		ctx.Error(err.Error(), status)
		return
	}
	// Every record must be acknowledged by the broker before Meta gets its
	// 200; a redelivery after a 503 is deduplicated by message id.
	if len(recs) > 0 && !s.produceInbound(ctx, recs...) {
		return
	}
	ctx.SetContentType("text/plain; charset=utf-8")
	ctx.SetBodyString("ok")
}
