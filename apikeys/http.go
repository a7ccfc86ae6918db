package apikeys

import (
	"encoding/json"

	"github.com/valyala/fasthttp"
)

// ErrorBody is the JSON every API error is answered with:
// {"error": {"code": "...", "message": "..."}}.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail is the inside of ErrorBody.
type ErrorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// WriteError answers with status and the JSON error body.
func WriteError(ctx *fasthttp.RequestCtx, status int, code, message string) {
	b, _ := json.Marshal(ErrorBody{ErrorDetail{Code: code, Message: message}})
	ctx.Response.Header.Set("Cache-Control", "no-store")
	ctx.SetContentType("application/json; charset=utf-8")
	ctx.SetStatusCode(status)
	ctx.SetBody(b)
}

// WriteAuthError answers an Authorize failure: its status and code, and
// for 401 the WWW-Authenticate challenge. Any other error is a 500.
func WriteAuthError(ctx *fasthttp.RequestCtx, err error) {
	e, ok := AsError(err)
	if !ok {
		WriteError(ctx, fasthttp.StatusInternalServerError, "internal", "internal error")
		return
	}
	if e.Status == fasthttp.StatusUnauthorized {
		ctx.Response.Header.Set("WWW-Authenticate", `Bearer realm="parley"`)
	}
	WriteError(ctx, e.Status, e.Code, e.Message)
}

// AuthorizeRequest is Authorize on a fasthttp request's Authorization
// header. On failure it has already answered the request; the handler
// just returns.
func (s *Set) AuthorizeRequest(ctx *fasthttp.RequestCtx, tenant string, need Permission) (*Key, bool) {
	k, err := s.Authorize(string(ctx.Request.Header.Peek(fasthttp.HeaderAuthorization)), tenant, need)
	if err != nil {
		WriteAuthError(ctx, err)
		return nil, false
	}
	return k, true
}
