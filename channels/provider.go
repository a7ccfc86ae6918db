// Package channels is where WhatsApp providers plug into Parley. A provider
// (channels/twilio, channels/meta, channels/sim) is one package that
// implements Provider: the webhooks it serves, how it sends, how long a
// text may be and how a customer's file is fetched. The engine registers
// each provider once, in a Registry; the ingress mounts the registry's
// routes, the sender picks a record's provider from it and the analytics
// API fetches media through it. Failed sends speak one vocabulary,
// SendError.
package channels

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/valyala/fasthttp"

	"github.com/parleyhq/parley/tenants"
	"github.com/parleyhq/parley/wire"
)

// Provider is one WhatsApp provider.
type Provider interface {
	// Name is the provider's channel name: wire.Inbound.Channel and
	// wire.Outbound.Channel, and the label of its metrics.
	Name() string
	// Routes are the webhooks and pages the provider serves.
	Routes() []Route
	// Number is the sender number t's messages leave from through this
	// provider ("twilio:whatsapp:+14155238886", "meta:106540352242922"):
	// the rate-limit lane, shared by the tenants that share the number.
	// "" means t has no number here.
	Number(t *tenants.Tenant) string
	// Send sends out's text, or tpl when tpl is not nil, to out.Phone and
	// returns the provider's message id. A refusal is a *SendError.
	Send(ctx context.Context, t *tenants.Tenant, out *wire.Outbound, tpl *wire.Template) (string, error)
	// TextLimit is how long one text message may be.
	TextLimit() TextLimit
	// OwnsMedia reports whether ref, a reference in messages.media, names
	// a file of this provider.
	OwnsMedia(ref string) bool
	// FetchMedia downloads t's customer's file ref. It returns the body
	// (the caller closes it), its content type and size (-1 when
	// unknown); an error wrapping ErrMediaNotFound when the provider does
	// not serve it.
	FetchMedia(ctx context.Context, t *tenants.Tenant, ref string) (io.ReadCloser, string, int64, error)
}

// Checker is implemented by a provider whose credentials have a shape it
// can check before anything is sent: a number connected at runtime is
// refused with a clear message instead of failing at its first send.
type Checker interface {
	CheckConnect(t *tenants.Tenant) error
}

// CheckConnect checks the credentials of each of t's numbers with its
// provider, when that provider has a Checker.
func (r *Registry) CheckConnect(t *tenants.Tenant) error {
	for n := range t.EachNumber() {
		v, _ := t.Via(n.ID())
		if c, ok := r.Get(n.Channel()).(Checker); ok {
			if err := c.CheckConnect(v); err != nil {
				return fmt.Errorf("number %s: %w", n.ID(), err)
			}
		}
	}
	return nil
}

// Local is implemented by a provider that delivers inside this process (the
// simulator): its sends are not rate limited, retried or recorded in the
// sender's ledger.
type Local interface {
	Local() bool
}

// IsLocal reports whether p delivers inside this process.
func IsLocal(p Provider) bool {
	l, ok := p.(Local)
	return ok && l.Local()
}

// Env is what the ingress gives a route with each request.
type Env struct {
	Tenants *tenants.Registry
	// PublicBaseURL is what providers call and sign, without trailing
	// slash.
	PublicBaseURL string
	Logger        *slog.Logger
}

// Route is one webhook (or page) of a provider, served by the ingress.
//
// The ingress checks the body against MaxBodyBytes, calls Accept, writes
// the records Accept returned to parley.inbound and waits for the broker's
// acknowledgement (answering 503 when it does not come), then calls Ack.
// So a webhook is answered 200 only once its records are safe.
type Route struct {
	// Path is the request path, or with Prefix every path starting with
	// it.
	Path   string
	Prefix bool
	// Name labels the route in metrics.
	Name string
	// MaxBodyBytes caps the request body (413 beyond); 0 means the
	// ingress's default.
	MaxBodyBytes int
	// Accept reads a request and returns the records to produce.
	// answered true means Accept wrote the answer itself (a refusal, a
	// handshake, a page) and there is nothing to produce.
	Accept func(ctx *fasthttp.RequestCtx, env Env) (ins []*wire.Inbound, answered bool)
	// Ack writes the answer once ins are acknowledged. Nil: 200, no body.
	Ack func(ctx *fasthttp.RequestCtx, ins []*wire.Inbound)
}

// Registry holds the providers of a process by name, in the order they
// were registered. It is read-only after NewRegistry and safe for
// concurrent use.
type Registry struct {
	list   []Provider
	byName map[string]Provider
}

// NewRegistry registers providers; their names must differ.
func NewRegistry(providers ...Provider) *Registry {
	r := &Registry{byName: make(map[string]Provider, len(providers))}
	for _, p := range providers {
		if p == nil {
			continue
		}
		if _, dup := r.byName[p.Name()]; dup {
			panic(fmt.Sprintf("channels: provider %q registered twice", p.Name()))
		}
		r.byName[p.Name()] = p
		r.list = append(r.list, p)
	}
	return r
}

// Get returns the provider named name, or nil. A nil Registry has none.
func (r *Registry) Get(name string) Provider {
	if r == nil {
		return nil
	}
	return r.byName[name]
}

// All returns the providers in registration order.
func (r *Registry) All() []Provider {
	if r == nil {
		return nil
	}
	return r.list
}

// Routes are the routes of every provider.
func (r *Registry) Routes() []Route {
	var out []Route
	for _, p := range r.All() {
		out = append(out, p.Routes()...)
	}
	return out
}

// FetchMedia downloads t's customer's file ref from the provider it came
// through; an error wrapping ErrMediaNotFound when no provider serving t
// owns it.
func (r *Registry) FetchMedia(ctx context.Context, t *tenants.Tenant, ref string) (io.ReadCloser, string, int64, error) {
	for _, p := range r.All() {
		if !p.OwnsMedia(ref) {
			continue
		}
		// A file is its number's: a tenant with several numbers of the
		// provider (other accounts, other apps) tries each, first first.
		err := fmt.Errorf("%w: %q", ErrMediaNotFound, ref)
		var refused error
		for n := range t.EachNumber() {
			v, _ := t.Via(n.ID())
			if p.Number(v) == "" {
				continue
			}
			body, ct, size, ferr := p.FetchMedia(ctx, v, ref)
			if ferr == nil {
				return body, ct, size, nil
			}
			if !errors.Is(ferr, ErrMediaNotFound) && refused == nil {
				refused = ferr
			}
			err = ferr
		}
		if refused != nil {
			return nil, "", 0, refused
		}
		return nil, "", 0, err
	}
	return nil, "", 0, fmt.Errorf("%w: %q", ErrMediaNotFound, ref)
}
