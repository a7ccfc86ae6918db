package analytics

import (
	"context"
	"errors"
	"io"
	"strings"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/parleyhq/parley/api"
	"github.com/parleyhq/parley/apikeys"
)

// mediaTimeout bounds one download, from the provider through to the
// client.
const mediaTimeout = 5 * time.Minute

// inlineTypes are the content types served for display. Anything else (an
// HTML or SVG file a customer sent, say) is served as a download, so that
// it cannot run script in the dashboard's origin.
var inlineTypes = []string{"image/jpeg", "image/png", "image/webp", "image/gif", "audio/", "video/", "application/pdf"}

// Media serves a file a customer sent, by its reference in the message
// log. Only references the tenant's own messages hold are fetched, so the
// endpoint is no general fetcher of provider URLs.
func (a *API) Media(ctx *fasthttp.RequestCtx, c api.Call) {
	t := c.Tenant
	ref := string(ctx.QueryArgs().Peek("ref"))
	if ref == "" || len(ref) > 2048 || strings.ContainsAny(ref, "\n\r") {
		apikeys.WriteError(ctx, fasthttp.StatusBadRequest, "invalid_ref", "ref must be one reference from a message's media")
		return
	}
	if a.o.FetchMedia == nil {
		apikeys.WriteError(ctx, fasthttp.StatusNotFound, "media_not_found", "media are not available here")
		return
	}
	qctx, cancel, ok := a.queryContext(ctx, a.o.QueryTimeout)
	if !ok {
		return
	}
	held, err := a.o.Store.HasMedia(qctx, t.ID, ref)
	cancel()
	if err != nil {
		a.fail(ctx, "media", err)
		return
	}
	if !held {
		apikeys.WriteError(ctx, fasthttp.StatusNotFound, "media_not_found", "no message of this tenant has that media")
		return
	}
	// The body is read after this handler returns: the download's context
	// ends when the body is closed (fasthttp closes it once sent).
	dctx, stop := context.WithTimeout(context.Background(), mediaTimeout)
	body, contentType, size, err := a.o.FetchMedia(dctx, t, ref)
	if err != nil {
		stop()
		if errors.Is(err, ErrMediaNotFound) {
			apikeys.WriteError(ctx, fasthttp.StatusNotFound, "media_not_found", "the provider no longer has this file")
			return
		}
		a.o.Logger.Warn("media download failed", "tenant", t.ID, "err", err)
		apikeys.WriteError(ctx, fasthttp.StatusBadGateway, "provider_error", "the provider did not serve the file")
		return
	}
	h := &ctx.Response.Header
	h.Set("Cache-Control", "private, max-age=300")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "sandbox; default-src 'none'")
	inline := false
	for _, p := range inlineTypes {
		inline = inline || strings.HasPrefix(contentType, p)
	}
	if inline {
		h.Set("Content-Disposition", "inline")
		ctx.SetContentType(contentType)
	} else {
		h.Set("Content-Disposition", "attachment")
		ctx.SetContentType("application/octet-stream")
	}
	if size < 0 {
		size = -1 // unknown: sent chunked
	}
	ctx.SetBodyStream(&cancelOnClose{body, stop}, int(size))
}

// cancelOnClose ends a download's context when its body is closed.
type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (c *cancelOnClose) Close() error {
	err := c.ReadCloser.Close()
	c.cancel()
	return err
}
