package twilio

import (
	"strings"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/parleyhq/parley/channels"
	"github.com/parleyhq/parley/internal/ids"
	"github.com/parleyhq/parley/tenants"
	"github.com/parleyhq/parley/wire"
)

// webhookPrefix is where Twilio calls: /webhooks/twilio/{tenant} and
// /webhooks/twilio/{tenant}/status.
const webhookPrefix = "/webhooks/twilio/"

// emptyTwiML tells Twilio there is nothing to say synchronously: replies go
// out through the Messages API once the session actor produced them.
const emptyTwiML = `<?xml version="1.0" encoding="UTF-8"?><Response/>`

// acceptWebhook takes POST /webhooks/twilio/{tenant} (inbound messages) and
// POST /webhooks/twilio/{tenant}/status (delivery status callbacks).
func acceptWebhook(ctx *fasthttp.RequestCtx, env channels.Env) ([]*wire.Inbound, bool) {
	rest := strings.TrimPrefix(string(ctx.Path()), webhookPrefix)
	if !ctx.IsPost() {
		ctx.Response.Header.Set("Allow", "POST")
		ctx.Error("method not allowed", fasthttp.StatusMethodNotAllowed)
		return nil, true
	}
	tenantID := rest
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		tenantID = rest[:i]
		if rest[i:] != "/status" {
			ctx.Error("not found", fasthttp.StatusNotFound)
			return nil, true
		}
	}
	t := env.Tenants.Get(tenantID)
	if t == nil || t.Twilio == nil {
		ctx.Error("unknown tenant", fasthttp.StatusNotFound)
		return nil, true
	}
	form, err := ParseForm(ctx.PostBody())
	if err != nil {
		ctx.Error("malformed form: "+err.Error(), fasthttp.StatusBadRequest)
		return nil, true
	}
	// Twilio signs the URL it called: the public one, which behind a proxy
	// differs from what this server sees.
	fullURL := env.PublicBaseURL + string(ctx.URI().RequestURI())
	sig := string(ctx.Request.Header.Peek("X-Twilio-Signature"))
	// The tenant's senders share its webhook URL: the one the request is
	// signed for (its account's token) and addressed to (its account and
	// sender) is the number it came to.
	var number *tenants.Twilio
	var addressed error
	// signed: by one of the tenant's numbers' tokens; byItsAccount: by
	// the token of the account the request names.
	signed, byItsAccount := false, false
	for n := range t.EachNumber() {
		tw := n.Twilio
		if tw == nil || !ValidSignature(tw.AuthToken.Reveal(), fullURL, form, sig) {
			continue
		}
		signed = true
		byItsAccount = byItsAccount || tw.AccountSID == form.Get("AccountSid")
		if addressed = CheckAddressed(tw.AccountSID, tw.From, form); addressed == nil {
			number = tw
			break
		}
	}
	if !signed {
		ctx.Error("invalid signature", fasthttp.StatusForbidden)
		return nil, true
	}
	in, err := Normalize(t.ID, form, time.Now(), ids.New)
	if err != nil {
		ctx.Error(err.Error(), fasthttp.StatusBadRequest)
		return nil, true
	}
	if number == nil {
		// Signed by one of the tenant's accounts and naming it, but sent
		// to a sender the tenant does not have (deleted, or not yet
		// connected): no such number here. Another account: refused.
		if byItsAccount {
			ctx.Error("this sender is not connected to the tenant", fasthttp.StatusNotFound)
			return nil, true
		}
		ctx.Error(addressed.Error(), fasthttp.StatusForbidden)
		return nil, true
	}
	in.To = tenants.NumberID(number, nil)
	return []*wire.Inbound{in}, false
}

func ackWebhook(ctx *fasthttp.RequestCtx, _ []*wire.Inbound) {
	ctx.SetContentType("text/xml; charset=utf-8")
	ctx.SetBodyString(emptyTwiML)
}
