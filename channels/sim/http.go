package sim

import (
	"bufio"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/parleyhq/parley/internal/e164"
	"github.com/parleyhq/parley/tenants"
	"github.com/parleyhq/parley/wire"
)

//go:embed page.html
var page []byte

// ErrBadMessage is returned by ParseSend for a message the simulator cannot
// accept; the ingress answers 400.
var ErrBadMessage = errors.New("bad simulator message")

// SendRequest is what the page posts when the customer types a message.
type SendRequest struct {
	Tenant string `json:"tenant"`
	Phone  string `json:"phone"`
	Text   string `json:"text"`
}

// ParseSend turns the page's JSON into an inbound record of channel "sim".
func ParseSend(body []byte, id string, now time.Time) (*wire.Inbound, error) {
	var r SendRequest
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadMessage, err)
	}
	r.Phone = strings.TrimSpace(r.Phone)
	switch {
	case r.Tenant == "":
		return nil, fmt.Errorf("%w: tenant missing", ErrBadMessage)
	case !e164.Valid(r.Phone):
		return nil, fmt.Errorf("%w: phone %q is not E.164 (+447700900123)", ErrBadMessage, r.Phone)
	case strings.TrimSpace(r.Text) == "":
		return nil, fmt.Errorf("%w: empty text", ErrBadMessage)
	case len(r.Text) > 4096:
		return nil, fmt.Errorf("%w: text over 4096 characters", ErrBadMessage)
	}
	return &wire.Inbound{
		Id:           id,
		Tenant:       r.Tenant,
		Phone:        r.Phone,
		Channel:      "sim",
		ReceivedAtMs: now.UnixMilli(),
		Kind: &wire.Inbound_Message{Message: &wire.CustomerMessage{
			ProviderId: "sim-" + id,
			Text:       r.Text,
		}},
	}, nil
}

// Page serves the simulator page.
func Page(ctx *fasthttp.RequestCtx) {
	ctx.SetContentType("text/html; charset=utf-8")
	ctx.SetBody(page)
}

// Events streams the replies of one conversation as server-sent events:
// GET ...?tenant=demo&phone=%2B447700900456. The tenant must be one of
// reg's simulator tenants (404 otherwise), and past the hub's bounds the
// answer is 503.
func (h *Hub) Events(ctx *fasthttp.RequestCtx, reg *tenants.Registry) {
	tenant := string(ctx.QueryArgs().Peek("tenant"))
	phone := string(ctx.QueryArgs().Peek("phone"))
	if tenant == "" || !e164.Valid(phone) {
		ctx.Error("tenant and an E.164 phone are required", fasthttp.StatusBadRequest)
		return
	}
	if t := reg.Get(tenant); t == nil || !t.Sim {
		ctx.Error("unknown simulator tenant", fasthttp.StatusNotFound)
		return
	}
	recent, live, cancel, err := h.Subscribe(tenant, phone)
	if err != nil {
		ctx.Response.Header.Set("Retry-After", "5")
		ctx.Error(err.Error(), fasthttp.StatusServiceUnavailable)
		return
	}
	ctx.SetContentType("text/event-stream")
	ctx.Response.Header.Set("Cache-Control", "no-cache")
	ctx.SetBodyStreamWriter(func(w *bufio.Writer) {
		defer cancel()
		send := func(r Reply) error {
			b, _ := json.Marshal(r)
			if _, err := fmt.Fprintf(w, "id: %s\ndata: %s\n\n", r.ID, b); err != nil {
				return err
			}
			return w.Flush()
		}
		// Flush at once so the page (and any client) gets the headers
		// before the first reply exists.
		if _, err := w.WriteString(": connected\n\n"); err != nil || w.Flush() != nil {
			return
		}
		for _, r := range recent {
			if send(r) != nil {
				return
			}
		}
		// A comment line every 15s finds closed pages, which end the loop
		// through the write error.
		keepAlive := time.NewTicker(15 * time.Second)
		defer keepAlive.Stop()
		for {
			select {
			case <-h.closed:
				return
			case r := <-live:
				if send(r) != nil {
					return
				}
			case <-keepAlive.C:
				if _, err := w.WriteString(": keep-alive\n\n"); err != nil {
					return
				}
				if w.Flush() != nil {
					return
				}
			}
		}
	})
}
