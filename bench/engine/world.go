package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/parleyhq/parley/backend"
	"github.com/parleyhq/parley/backend/demo"
	"github.com/parleyhq/parley/backend/httpapi"
)

// The outside world the engine talks to runs in this (the parent) process,
// beside the load generator: the customers (webhooks in), Twilio's Messages
// API (replies out) and the business's system (profile lookups and the
// tools' calls). Its CPU is counted with the load generator's, not the
// engine's.

// reply is one message the engine sent, as the provider received it.
type reply struct {
	phone string // E.164, "whatsapp:" stripped
	at    int64  // Unix nanoseconds of arrival
}

// watched is what a sign-in waits for: the reply's SID and text.
type watched struct {
	sid, body string
}

// provider is a Twilio-compatible Messages API that answers at once: it
// accepts every create call (no credential check, no validation beyond
// what the bench needs), gives the message a SID and records who it was
// for and when it arrived.
type provider struct {
	srv *fasthttp.Server
	ln  net.Listener
	seq atomic.Uint64
	// conns counts the connections the engine's sender opened.
	conns atomic.Int64

	mu      sync.Mutex
	replies []reply
	// watch, while sign-ins run, hands the replies of the numbers
	// signing in to their waiters.
	watching atomic.Bool
	watch    map[string]chan watched
}

func startProvider() (*provider, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &provider{ln: ln, watch: map[string]chan watched{}}
	p.srv = &fasthttp.Server{Handler: p.serve, Name: "twilio-bench", ConnState: func(_ net.Conn, st fasthttp.ConnState) {
		if st == fasthttp.StateNew {
			p.conns.Add(1)
		}
	}}
	go p.srv.Serve(ln)
	return p, nil
}

// URL goes in the tenant's twilio.api_base_url.
func (p *provider) URL() string { return "http://" + p.ln.Addr().String() }

func (p *provider) close() { _ = p.srv.Shutdown() }

func (p *provider) serve(ctx *fasthttp.RequestCtx) {
	at := time.Now().UnixNano()
	path := string(ctx.Path())
	if !ctx.IsPost() || !strings.HasPrefix(path, "/2010-04-01/Accounts/") || !strings.HasSuffix(path, "/Messages.json") {
		ctx.SetStatusCode(fasthttp.StatusNotFound)
		ctx.SetContentType("application/json")
		ctx.SetBodyString(`{"code":20404,"message":"not found","status":404}`)
		return
	}
	args := ctx.PostArgs()
	to := string(args.Peek("To"))
	phone := strings.TrimPrefix(to, "whatsapp:")
	sid := fmt.Sprintf("SM%032x", p.seq.Add(1))
	p.mu.Lock()
	p.replies = append(p.replies, reply{phone: phone, at: at})
	var w chan watched
	if p.watching.Load() {
		w = p.watch[phone]
	}
	p.mu.Unlock()
	if w != nil {
		select {
		case w <- watched{sid: sid, body: string(args.Peek("Body"))}:
		default: // the waiter has what it needs
		}
	}
	ctx.SetStatusCode(fasthttp.StatusCreated)
	ctx.SetContentType("application/json; charset=utf-8")
	// The fields twilio-go reads from the create call's answer.
	fmt.Fprintf(ctx, `{"sid":%q,"status":"queued","to":%q,"from":%q,"direction":"outbound-api","api_version":"2010-04-01"}`,
		sid, to, string(args.Peek("From")))
}

// startWatching routes the replies to each of phones to its own channel.
func (p *provider) startWatching(phones []string) map[string]chan watched {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[string]chan watched, len(phones))
	for _, ph := range phones {
		c := make(chan watched, 4)
		p.watch[ph] = c
		out[ph] = c
	}
	p.watching.Store(true)
	return out
}

func (p *provider) stopWatching() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.watching.Store(false)
	clear(p.watch)
}

// reset forgets the replies so far (those of the sign-ins): a target's
// run counts from here.
func (p *provider) reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.replies = nil
}

func (p *provider) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.replies)
}

// snapshot copies the replies so far.
func (p *provider) snapshot() []reply {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]reply(nil), p.replies...)
}

// everyone is the business's system for the bench: every number has one
// profile, the demo business's Sam Patel (so signed-in customers' questions
// about bookings, plans and their account get real answers), with the demo
// catalogue and calendar.
type everyone struct{ *demo.Backend }

func (everyone) ProfilesByPhone(context.Context, string) ([]backend.Profile, error) {
	return []backend.Profile{{ID: demo.ProfileSam, Name: "Sam Patel", Email: "sam@example.com", WhatsAppEnabled: true}}, nil
}

const backendToken = "bench-backend-token-0123456789"

// business serves everyone over the backend contract, as a tenant's own
// system would (the tenant's backend kind http).
type business struct {
	srv   *http.Server
	ln    net.Listener
	calls atomic.Int64
	// conns counts the connections the engine's backend client opened.
	conns atomic.Int64
}

func startBusiness() (*business, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	b := &business{ln: ln}
	h := httpapi.Handler(everyone{demo.New()}, backendToken)
	b.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.calls.Add(1)
		h.ServeHTTP(w, r)
	}), ReadHeaderTimeout: 10 * time.Second, ConnState: func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			b.conns.Add(1)
		}
	}}
	go func() {
		if err := b.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			fmt.Println("business backend:", err)
		}
	}()
	return b, nil
}

// URL goes in the tenant's backend.base_url.
func (b *business) URL() string { return "http://" + b.ln.Addr().String() + "/" }

func (b *business) close() { _ = b.srv.Close() }

// sixDigits finds the verification code in a reply.
func sixDigits(s string) string {
	run := 0
	for i := 0; i < len(s); i++ {
		if s[i] >= '0' && s[i] <= '9' {
			run++
			continue
		}
		if run == 6 {
			return s[i-6 : i]
		}
		run = 0
	}
	if run == 6 {
		return s[len(s)-6:]
	}
	return ""
}
