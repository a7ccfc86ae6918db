package meta

import (
	"net/url"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/parleyhq/parley/channels"
	internalids "github.com/parleyhq/parley/internal/ids"
	"github.com/parleyhq/parley/wire"
)

// WebhookPath is the one webhook URL of every Meta number.
const WebhookPath = "/webhooks/meta"

// acceptWebhook serves /webhooks/meta. GET is the subscription handshake;
// POST carries messages and statuses, and the tenant of each change is
// found by its phone_number_id.
func (p *Provider) acceptWebhook(ctx *fasthttp.RequestCtx, env channels.Env) ([]*wire.Inbound, bool) {
	switch {
	case ctx.IsGet():
		handshake(ctx, env)
		return nil, true
	case ctx.IsPost():
		numbers, err := p.numbersOf(env.Tenants)
		if err != nil {
			// Config validation refuses such a registry
			// (config.Config.Validate): only a test can get here.
			ctx.Error(err.Error(), fasthttp.StatusInternalServerError)
			return nil, true
		}
		return events(ctx, env, numbers)
	default:
		ctx.Response.Header.Set("Allow", "GET, POST")
		ctx.Error("method not allowed", fasthttp.StatusMethodNotAllowed)
		return nil, true
	}
}

func handshake(ctx *fasthttp.RequestCtx, env channels.Env) {
	q, err := url.ParseQuery(string(ctx.URI().QueryString()))
	if err != nil {
		ctx.Error("malformed query", fasthttp.StatusBadRequest)
		return
	}
	for _, t := range env.Tenants.All() {
		for n := range t.EachNumber() {
			if n.Meta == nil {
				continue
			}
			if challenge, ok := VerifyChallenge(q, n.Meta.VerifyToken); ok {
				ctx.SetContentType("text/plain; charset=utf-8")
				ctx.SetBodyString(challenge)
				return
			}
		}
	}
	ctx.Error("verification failed", fasthttp.StatusForbidden)
}

func events(ctx *fasthttp.RequestCtx, env channels.Env, numbers *Numbers) ([]*wire.Inbound, bool) {
	body, signature := ctx.PostBody(), string(ctx.Request.Header.Peek(SignatureHeader))
	if !SignedByAny(body, signature, numbers.secrets) {
		env.Logger.Warn("meta webhook", "accepted", 0, "status", fasthttp.StatusForbidden, "err", ErrBadSignature)
		ctx.Error(ErrBadSignature.Error(), fasthttp.StatusForbidden)
		return nil, true
	}
	recs, err := Accept(body, signature, numbers.Lookup, time.Now(), internalids.New)
	status := ResponseStatus(len(recs), err)
	if err != nil {
		env.Logger.Warn("meta webhook", "accepted", len(recs), "status", status, "err", err)
	}
	if status != fasthttp.StatusOK {
		ctx.Error(err.Error(), status)
		return nil, true
	}
	// Every record must be acknowledged by the broker before Meta gets its
	// 200; a redelivery after a 503 is deduplicated by message id.
	return recs, false
}

func ackWebhook(ctx *fasthttp.RequestCtx, _ []*wire.Inbound) {
	ctx.SetContentType("text/plain; charset=utf-8")
	ctx.SetBodyString("ok")
}
