package api

import (
	"github.com/valyala/fasthttp"

	"github.com/parleyhq/parley/apikeys"
)

// Analytics is what the analytics package serves under /api/v1
// (analytics.API): figures, the conversation log, media and erasure.
type Analytics interface {
	Tenants(ctx *fasthttp.RequestCtx, c Call)
	Summary(ctx *fasthttp.RequestCtx, c Call)
	Timeseries(ctx *fasthttp.RequestCtx, c Call)
	PowerUsers(ctx *fasthttp.RequestCtx, c Call)
	Messages(ctx *fasthttp.RequestCtx, c Call)
	Media(ctx *fasthttp.RequestCtx, c Call)
	Forget(ctx *fasthttp.RequestCtx, c Call)
}

// Routes is every /api/v1 route, each with its method and the permission
// its key needs (apikeys.grants says which roles have it). The automation
// API (a) and analytics (an) contribute the handlers; either may be nil,
// leaving its routes out (tests of the other).
func Routes(a *API, an Analytics) []Route {
	const get, post, del = fasthttp.MethodGet, fasthttp.MethodPost, fasthttp.MethodDelete
	var out []Route
	if a != nil {
		out = append(out, []Route{
			{post, "tenants/{tenant}/messages", apikeys.MessagesSend, a.send},
			{post, "tenants/{tenant}/ai/respond", apikeys.MessagesSend, a.respond},
			{post, "tenants/{tenant}/conversations/{phone}/status", apikeys.ConversationsWrite, a.setStatus},
			{post, "tenants/{tenant}/conversations/{phone}/ai", apikeys.ConversationsWrite, a.setAI},
		}...)
	}
	if an != nil {
		out = append(out, []Route{
			{get, "tenants", "", an.Tenants},
			{get, "tenants/{tenant}/analytics/summary", apikeys.AnalyticsRead, an.Summary},
			{get, "tenants/{tenant}/analytics/timeseries", apikeys.AnalyticsRead, an.Timeseries},
			{get, "tenants/{tenant}/analytics/power-users", apikeys.AnalyticsRead, an.PowerUsers},
			{get, "tenants/{tenant}/messages", apikeys.MessagesRead, an.Messages},
			{get, "tenants/{tenant}/media", apikeys.MediaRead, an.Media},
			{del, "tenants/{tenant}/customers/{phone}", apikeys.CustomersForget, an.Forget},
		}...)
	}
	return out
}
