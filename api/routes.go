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
	const get, post, patch, del = fasthttp.MethodGet, fasthttp.MethodPost, fasthttp.MethodPatch, fasthttp.MethodDelete
	var out []Route
	if a != nil {
		out = append(out, []Route{
			{post, "tenants", apikeys.TenantsManage, a.createTenant},
			{get, "tenants/{tenant}", apikeys.TenantsManage, a.getTenant},
			{patch, "tenants/{tenant}", apikeys.TenantsManage, a.patchTenant},
			{del, "tenants/{tenant}", apikeys.TenantsManage, a.deleteTenant},
			{get, "tenants/{tenant}/agents", apikeys.ConversationsRead, a.listAgents},
			{post, "tenants/{tenant}/agents", apikeys.TenantsManage, a.createAgent},
			{patch, "tenants/{tenant}/agents/{id}", apikeys.TenantsManage, a.updateAgent},
			{del, "tenants/{tenant}/agents/{id}", apikeys.TenantsManage, a.deleteAgent},
			{get, "tenants/{tenant}/numbers", apikeys.TenantsManage, a.listNumbers},
			{post, "tenants/{tenant}/numbers", apikeys.TenantsManage, a.connectNumber},
			{patch, "tenants/{tenant}/numbers/{id}", apikeys.TenantsManage, a.updateNumber},
			{del, "tenants/{tenant}/numbers/{id}", apikeys.TenantsManage, a.deleteNumber},
			{post, "keys", apikeys.KeysManage, a.createKey},
			{get, "keys", apikeys.KeysManage, a.listKeys},
			{del, "keys/{id}", apikeys.KeysManage, a.revokeKey},
			{post, "keys/{id}/rotate", apikeys.KeysManage, a.rotateKey},
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
