package api

import (
	"strconv"
	"strings"

	"github.com/valyala/fasthttp"

	"github.com/parleyhq/parley/apikeys"
	"github.com/parleyhq/parley/tenants"
)

// Prefix is where the router is mounted: every /api/v1 route is in
// routes.go, under it.
const Prefix = "/api/v1/"

// Call is what the router established about a request before its handler
// runs: the caller's key (authorized for the route's permission and
// tenant), the tenant and the path's {phone} segment, if the route has
// them, and every other {name} segment (Param).
type Call struct {
	Key    *apikeys.Key
	Tenant *tenants.Tenant
	Phone  string
	params []param
}

// param is one {name} segment of the route and its value in the path.
type param struct{ name, value string }

// Param is the value of the route's {name} segment ("" when it has none):
// Param("id") in "tenants/{tenant}/numbers/{id}". Values are one path
// segment, not empty, as the request sent them.
func (c Call) Param(name string) string {
	for _, p := range c.params {
		if p.name == name {
			return p.value
		}
	}
	return ""
}

// Handler serves one route.
type Handler func(ctx *fasthttp.RequestCtx, c Call)

// Route is one /api/v1 endpoint.
type Route struct {
	// Method is the one method the route takes; a GET route answers HEAD
	// too.
	Method string
	// Pattern is the path under Prefix, segments separated by "/"; a
	// {name} segment matches one non-empty segment: {tenant} names the
	// tenant the key must reach, {phone} is Call.Phone, any other is
	// Call.Param(name).
	Pattern string
	// Need is the permission the key must grant (for the tenant, when the
	// pattern has one); empty: any known key.
	Need  apikeys.Permission
	Serve Handler
}

// Router serves every /api/v1 route: it finds the route (404 not_found
// for an unknown path, 405 method_not_allowed for a known one with another
// method), authorizes the key, then finds the tenant (404
// unknown_tenant): the key first, so that who may not see a tenant does
// not learn whether it exists either.
type Router struct {
	keys    *apikeys.Set
	tenants *tenants.Registry
	routes  []compiled
}

type compiled struct {
	Route
	segments  []string
	hasTenant bool
}

// NewRouter routes requests to routes (Routes): keys authorize them, reg
// holds their tenants.
func NewRouter(keys *apikeys.Set, reg *tenants.Registry, routes []Route) *Router {
	if keys == nil {
		keys, _ = apikeys.New(nil)
	}
	r := &Router{keys: keys, tenants: reg}
	for _, rt := range routes {
		r.routes = append(r.routes, compiled{rt, strings.Split(rt.Pattern, "/"), strings.Contains(rt.Pattern, "{tenant}")})
	}
	return r
}

// match reports whether path's segments fit the pattern's, and the values
// of {tenant} and the other {name} segments.
func (c *compiled) match(path []string) (tenant string, params []param, ok bool) {
	if len(path) != len(c.segments) {
		return "", nil, false
	}
	for i, s := range c.segments {
		switch {
		case path[i] == "":
			return "", nil, false
		case s == "{tenant}":
			tenant = path[i]
		case len(s) > 2 && s[0] == '{' && s[len(s)-1] == '}':
			params = append(params, param{s[1 : len(s)-1], path[i]})
		case s != path[i]:
			return "", nil, false
		}
	}
	return tenant, params, true
}

// takes reports whether the route serves method.
func (c *compiled) takes(method string) bool {
	return method == c.Method || (c.Method == fasthttp.MethodGet && method == fasthttp.MethodHead)
}

// Handle serves a request under Prefix.
func (r *Router) Handle(ctx *fasthttp.RequestCtx) {
	rest, _ := strings.CutPrefix(string(ctx.Path()), Prefix)
	path := strings.Split(strings.TrimSuffix(rest, "/"), "/")
	method := string(ctx.Method())
	var allow []string
	for i := range r.routes {
		rt := &r.routes[i]
		tenantID, params, ok := rt.match(path)
		if !ok {
			continue
		}
		if !rt.takes(method) {
			allow = append(allow, rt.Method)
			continue
		}
		key, ok := r.keys.AuthorizeRequest(ctx, tenantID, rt.Need)
		if !ok {
			return
		}
		c := Call{Key: key, params: params}
		c.Phone = c.Param("phone")
		if rt.hasTenant {
			if c.Tenant = r.tenants.Get(tenantID); c.Tenant == nil {
				Error(ctx, fasthttp.StatusNotFound, "unknown_tenant", "no tenant "+strconv.Quote(tenantID))
				return
			}
		}
		rt.Serve(ctx, c)
		return
	}
	if len(allow) > 0 {
		ctx.Response.Header.Set("Allow", strings.Join(allow, ", "))
		Error(ctx, fasthttp.StatusMethodNotAllowed, "method_not_allowed", "method not allowed")
		return
	}
	Error(ctx, fasthttp.StatusNotFound, "not_found", "no such endpoint")
}
