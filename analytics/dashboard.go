package analytics

import (
	"embed"
	"mime"
	"path"
	"strings"

	"github.com/valyala/fasthttp"
)

// The dashboard is three static files, embedded so that the binary serves
// them with no files beside it and no CDN (machines running Parley may
// have no internet access). The page loads without a key and asks for
// one; the key stays in the tab's sessionStorage and goes with every API
// call as Authorization: Bearer.
//
//go:embed dashboard
var dashboardFS embed.FS

// DashboardPrefix is where the dashboard lives: mount Dashboard on it.
const DashboardPrefix = "/dashboard"

// dashboardCSP allows the page's own script, style and API calls only. No
// inline script exists, so none is allowed: a message body that made its
// way into the page as HTML could not run. Images may also be blob: URLs:
// the files customers sent, fetched with the key and shown in the log.
const dashboardCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// Dashboard serves the dashboard page (/dashboard, /dashboard/) and its
// assets (/dashboard/app.js, /dashboard/app.css).
func Dashboard(ctx *fasthttp.RequestCtx) {
	if !ctx.IsGet() && !ctx.IsHead() {
		ctx.Error("method not allowed", fasthttp.StatusMethodNotAllowed)
		return
	}
	name := strings.TrimPrefix(string(ctx.Path()), DashboardPrefix)
	name = strings.TrimPrefix(name, "/")
	if name == "" {
		name = "index.html"
	}
	if strings.Contains(name, "/") || strings.HasPrefix(name, ".") {
		ctx.Error("not found", fasthttp.StatusNotFound)
		return
	}
	body, err := dashboardFS.ReadFile("dashboard/" + name)
	if err != nil {
		ctx.Error("not found", fasthttp.StatusNotFound)
		return
	}
	ct := mime.TypeByExtension(path.Ext(name))
	if ct == "" {
		ct = "application/octet-stream"
	}
	h := &ctx.Response.Header
	h.Set("Content-Security-Policy", dashboardCSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	// Small files; always revalidated, so a new binary's page is used at
	// once.
	h.Set("Cache-Control", "no-cache")
	ctx.SetContentType(ct)
	ctx.SetBody(body)
}
