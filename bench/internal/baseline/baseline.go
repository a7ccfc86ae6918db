// Package baseline is the floor Parley's webhook handling is measured
// against: a bare fasthttp server whose handler does what any Twilio
// webhook endpoint must do (parse the form, check the signature against the
// public URL) and answers 200 with the same empty TwiML Parley answers, so
// that the two differ only in the work behind the answer. bench/ingress and
// bench/engine both run it.
package baseline

import (
	"context"
	"net"

	"github.com/valyala/fasthttp"

	"github.com/parleyhq/parley/channels/twilio"
)

// EmptyTwiML is what Parley answers a Twilio webhook.
const EmptyTwiML = `<?xml version="1.0" encoding="UTF-8"?><Response/>`

// Handler checks every request against authToken, as signed for
// publicBaseURL plus the request URI (any path: messages and status
// callbacks alike).
func Handler(publicBaseURL, authToken string) fasthttp.RequestHandler {
	return func(ctx *fasthttp.RequestCtx) {
		if !ctx.IsPost() {
			ctx.Error("method not allowed", fasthttp.StatusMethodNotAllowed)
			return
		}
		form, err := twilio.ParseForm(ctx.PostBody())
		if err != nil {
			ctx.Error("malformed form", fasthttp.StatusBadRequest)
			return
		}
		fullURL := publicBaseURL + string(ctx.URI().RequestURI())
		sig := string(ctx.Request.Header.Peek("X-Twilio-Signature"))
		if !twilio.ValidSignature(authToken, fullURL, form, sig) {
			ctx.Error("invalid signature", fasthttp.StatusForbidden)
			return
		}
		ctx.SetContentType("text/xml; charset=utf-8")
		ctx.SetBodyString(EmptyTwiML)
	}
}

// Serve serves Handler on ln with fasthttp's defaults, as a bare service
// would run (no limits the load could hit); the returned function shuts
// the server down.
func Serve(ln net.Listener, publicBaseURL, authToken string) (stop func(context.Context) error) {
	srv := &fasthttp.Server{Handler: Handler(publicBaseURL, authToken), Name: "baseline"}
	go srv.Serve(ln)
	return srv.ShutdownWithContext
}
