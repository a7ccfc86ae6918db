// Package ingress is Parley's HTTP front door: provider webhooks in, records
// to Kafka out, plus health, readiness and metrics. A webhook is answered 200
// only after the broker acknowledged its record, so an acknowledged message is
// never lost; when the broker is down the answer is 503 and the provider
// retries.
package ingress

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/segmentio/kafka-go"
	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttpadaptor"

	"github.com/parleyhq/parley/channels"
	"github.com/parleyhq/parley/tenants"
)

var (
	requests = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "parley_http_requests_total",
		Help: "HTTP requests by route and status code.",
	}, []string{"route", "status"})
	connsRefused = promauto.NewCounter(prometheus.CounterOpts{
		Name: "parley_http_connections_refused_total",
		Help: "Connections closed at once because their address had max_connections_per_ip open.",
	})
)

// Producer is the part of bus.Producer the ingress needs.
type Producer interface {
	Produce(ctx context.Context, msgs ...kafka.Message) error
}

// Check is one readiness probe: nil when the dependency is reachable.
type Check struct {
	Name string
	Fn   func(ctx context.Context) error
}

// Options configure a Server.
type Options struct {
	// PublicBaseURL is what providers call and sign, without trailing slash.
	PublicBaseURL string
	// MaxBodyBytes: larger bodies get 413, on every route that sets no
	// cap of its own. Default 64 KiB.
	MaxBodyBytes int
	// Providers are the WhatsApp providers whose routes (webhooks, the
	// simulator) the server mounts.
	Providers *channels.Registry
	// ProduceTimeout bounds the wait for the broker's ack before 503.
	// Default 5s, well inside Twilio's 15s webhook timeout.
	ProduceTimeout time.Duration
	Tenants        *tenants.Registry
	Producer       Producer
	Checks         []Check
	Logger         *slog.Logger
	// ReadTimeout bounds reading a whole request, headers and body: a
	// client trickling its body is cut off at it. Default 10 s (Twilio
	// and Meta send a webhook at once).
	ReadTimeout time.Duration
	// MaxConns caps the open connections (default 10,000) and
	// MaxConnsPerIP those of one client address (default 1,024), so
	// idle or slow clients cannot take every connection.
	MaxConns      int
	MaxConnsPerIP int
	// Operator moves /metrics and /readyz's error texts off this server
	// onto OperatorHandler (the engine serves it on http.operator_addr):
	// the public listener then answers /metrics 404, and /readyz names a
	// failing dependency without its error, which can carry addresses and
	// server versions.
	Operator bool
	// MaxLargeBodies caps the requests reading a body larger than
	// MaxBodyBytes at once (only routes with a larger cap, Meta's, have
	// them); more get 503 and the provider retries. Default 16: at Meta's
	// 3 MiB cap, at most 48 MiB of bodies in memory.
	MaxLargeBodies int
}

// Server routes requests. Other packages mount their handlers on it
// (simulator, API, dashboard) before it starts serving.
type Server struct {
	o      Options
	env    channels.Env
	mounts []mount
	srv    *fasthttp.Server
	// largeBodies holds a slot per request reading a body larger than
	// the default cap.
	largeBodies chan struct{}
}

type mount struct {
	prefix string
	exact  bool // prefix is the whole path
	route  string
	// maxBody caps the body; 0: Options.MaxBodyBytes.
	maxBody int
	h       fasthttp.RequestHandler
}

// New creates a server.
func New(o Options) *Server {
	if o.MaxBodyBytes == 0 {
		o.MaxBodyBytes = 64 << 10
	}
	if o.ProduceTimeout == 0 {
		o.ProduceTimeout = 5 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.ReadTimeout <= 0 {
		o.ReadTimeout = 10 * time.Second
	}
	if o.MaxConns <= 0 {
		o.MaxConns = 10000
	}
	if o.MaxConnsPerIP <= 0 {
		o.MaxConnsPerIP = 1024
	}
	if o.MaxLargeBodies <= 0 {
		o.MaxLargeBodies = 16
	}
	s := &Server{o: o, env: channels.Env{Tenants: o.Tenants, PublicBaseURL: o.PublicBaseURL, Logger: o.Logger},
		largeBodies: make(chan struct{}, o.MaxLargeBodies)}
	for _, r := range o.Providers.Routes() {
		r := r
		s.mount(mount{prefix: r.Path, exact: !r.Prefix, route: r.Name, maxBody: r.MaxBodyBytes,
			h: func(ctx *fasthttp.RequestCtx) { s.serveRoute(ctx, r) }})
	}
	s.srv = &fasthttp.Server{
		Handler: s.Handle,
		Name:    "parley",
		Logger:  printfLogger{o.Logger},
		// Bodies are streamed: the handler runs after the headers, and
		// Handle reads the body only up to the cap of its route
		// (readBody). Without streaming fasthttp would buffer every
		// route's body up to the largest cap (Meta's 3 MiB) before any
		// route's own cap applied.
		MaxRequestBodySize: o.MaxBodyBytes,
		StreamRequestBody:  true,
		// Multipart bodies would otherwise be parsed, to temporary files,
		// before routing; no route takes multipart.
		DisablePreParseMultipartForm: true,
		ReadTimeout:                  o.ReadTimeout,
		WriteTimeout:                 30 * time.Second,
		IdleTimeout:                  120 * time.Second,
		Concurrency:                  o.MaxConns, // per IP: Serve's listener
		ErrorHandler: func(ctx *fasthttp.RequestCtx, err error) {
			// fasthttp calls this for requests it could not read; an
			// oversized body is the case that matters.
			if errors.Is(err, fasthttp.ErrBodyTooLarge) {
				lingerDrain(ctx.Conn(), ctx.Request.Header.ContentLength())
				ctx.Error("request body too large", fasthttp.StatusRequestEntityTooLarge)
				requests.WithLabelValues("unknown", "413").Inc()
				return
			}
			ctx.Error("bad request", fasthttp.StatusBadRequest)
			requests.WithLabelValues("unknown", "400").Inc()
		},
	}
	return s
}

// Mount routes every path starting with prefix to h; route names it in
// metrics. Longer prefixes win.
func (s *Server) Mount(prefix, route string, h fasthttp.RequestHandler) {
	s.mount(mount{prefix: prefix, route: route, h: h})
}

func (s *Server) mount(m mount) {
	s.mounts = append(s.mounts, m)
	for i := len(s.mounts) - 1; i > 0 && len(s.mounts[i].prefix) > len(s.mounts[i-1].prefix); i-- {
		s.mounts[i], s.mounts[i-1] = s.mounts[i-1], s.mounts[i]
	}
}

// Handle is the root handler.
func (s *Server) Handle(ctx *fasthttp.RequestCtx) {
	route, limit, h := s.route(string(ctx.Path()))
	if limit <= 0 {
		limit = s.o.MaxBodyBytes
	}
	if s.readBody(ctx, limit) {
		h(ctx)
	}
	requests.WithLabelValues(route, strconv.Itoa(ctx.Response.StatusCode())).Inc()
}

// readBody reads the request's body, at most limit bytes of it, so that
// handlers find it in ctx.PostBody(). When it answers the request itself
// (413 over the cap, 503 when too many large bodies are being read, 400
// when the client stopped sending) it returns false.
//
// fasthttp has read the headers and at most 8 KiB of the body when the
// handler runs (StreamRequestBody). Reading the rest here, rather than
// with PostBody, bounds it by the route's cap and sees a client that
// went away (PostBody would hand on the error's text as the body).
func (s *Server) readBody(ctx *fasthttp.RequestCtx, limit int) bool {
	tooLarge := func() bool {
		ctx.SetConnectionClose()
		lingerDrain(ctx.Conn(), ctx.Request.Header.ContentLength())
		ctx.Error("request body too large", fasthttp.StatusRequestEntityTooLarge)
		return false
	}
	cl := ctx.Request.Header.ContentLength()
	if cl > limit {
		return tooLarge() // refused by its Content-Length
	}
	stream := ctx.RequestBodyStream()
	if stream == nil {
		return true // no body (a GET)
	}
	if cl < 0 || cl > s.o.MaxBodyBytes {
		// A large (Meta) or chunked body: one of the few slots for
		// large bodies, so slow clients cannot make the server hold
		// many of them.
		select {
		case s.largeBodies <- struct{}{}:
			defer func() { <-s.largeBodies }()
		default:
			ctx.SetConnectionClose()
			ctx.Response.Header.Set("Retry-After", "1")
			ctx.Error("too many large requests at once", fasthttp.StatusServiceUnavailable)
			return false
		}
	}
	body := bodyBuffers.Get().(*bytes.Buffer)
	defer func() { body.Reset(); bodyBuffers.Put(body) }()
	n, err := body.ReadFrom(io.LimitReader(stream, int64(limit)+1))
	switch {
	case n > int64(limit):
		return tooLarge()
	case err != nil:
		ctx.SetConnectionClose()
		ctx.Error("request body could not be read", fasthttp.StatusBadRequest)
		return false
	}
	ctx.Request.SetBody(body.Bytes()) // copies
	return true
}

// bodyBuffers are readBody's buffers, reused across requests.
var bodyBuffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// route finds the handler of path, the route name it has in metrics and
// its body cap (0: the default).
func (s *Server) route(path string) (string, int, fasthttp.RequestHandler) {
	switch path {
	case "/healthz":
		return "healthz", 0, func(ctx *fasthttp.RequestCtx) {
			ctx.SetContentType("text/plain; charset=utf-8")
			ctx.SetBodyString("ok\n")
		}
	case "/readyz":
		return "readyz", 0, func(ctx *fasthttp.RequestCtx) { s.readyz(ctx, !s.o.Operator) }
	case "/metrics":
		if !s.o.Operator {
			return "metrics", 0, metricsHandler
		}
	}
	for _, m := range s.mounts {
		if m.exact && path == m.prefix || !m.exact && strings.HasPrefix(path, m.prefix) {
			return m.route, m.maxBody, m.h
		}
	}
	return "other", 0, func(ctx *fasthttp.RequestCtx) { ctx.Error("not found", fasthttp.StatusNotFound) }
}

var metricsHandler = fasthttpadaptor.NewFastHTTPHandler(promhttp.Handler())

// OperatorHandler serves the operator's listener: /metrics, /readyz with
// each failing dependency's error, /healthz.
func (s *Server) OperatorHandler(ctx *fasthttp.RequestCtx) {
	switch string(ctx.Path()) {
	case "/metrics":
		metricsHandler(ctx)
	case "/readyz":
		s.readyz(ctx, true)
	case "/healthz":
		ctx.SetBodyString("ok\n")
	default:
		ctx.Error("not found", fasthttp.StatusNotFound)
	}
}

// readyz runs the checks; detail adds a failing check's error text.
func (s *Server) readyz(ctx *fasthttp.RequestCtx, detail bool) {
	c, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	ctx.SetContentType("text/plain; charset=utf-8")
	ok := true
	for _, ch := range s.o.Checks {
		if err := ch.Fn(c); err != nil {
			ok = false
			if detail {
				ctx.WriteString(ch.Name + ": " + err.Error() + "\n")
			} else {
				ctx.WriteString(ch.Name + ": not ready\n")
			}
		} else {
			ctx.WriteString(ch.Name + ": ok\n")
		}
	}
	if !ok {
		ctx.SetStatusCode(fasthttp.StatusServiceUnavailable)
	}
}

// Serve serves on ln until Shutdown.
func (s *Server) Serve(ln net.Listener) error {
	return s.srv.Serve(limitPerIP(ln, s.o.MaxConnsPerIP))
}

// Shutdown stops accepting, waits for in-flight requests, and returns.
func (s *Server) Shutdown(ctx context.Context) error { return s.srv.ShutdownWithContext(ctx) }

// printfLogger sends fasthttp's connection-level messages (oversized bodies,
// resets) to the structured log at debug level: they are the client's
// problem and already answered.
type printfLogger struct{ l *slog.Logger }

func (p printfLogger) Printf(format string, args ...any) {
	p.l.Debug(fmt.Sprintf(format, args...))
}

// maxLinger bounds what lingerDrain reads of an oversized body; beyond it
// the client is abusive or broken and may see a reset instead of the 413.
const (
	maxLinger     = 16 << 20
	lingerIdle    = 250 * time.Millisecond // longer than a round trip on a slow link
	lingerTimeout = 2 * time.Second
)

// lingerDrain reads and discards what the client is still sending of a
// body fasthttp refused by its Content-Length. fasthttp closes the
// connection after the 413; closing a socket with unread data makes the
// kernel send a reset, and a client still writing its body (every client
// that does not use Expect: 100-continue) then gets "connection reset"
// instead of the 413. net/http does the same lingering read after a
// handler leaves a body unread. contentLength < 0 means chunked.
func lingerDrain(c net.Conn, contentLength int) {
	remaining := int64(contentLength)
	if remaining < 0 || remaining > maxLinger {
		remaining = maxLinger
	}
	buf := make([]byte, 32<<10)
	deadline := time.Now().Add(lingerTimeout)
	for remaining > 0 {
		// A pause of lingerIdle means the client is done sending (part of
		// the body may already sit in fasthttp's read buffer, so the count
		// alone cannot tell).
		d := time.Now().Add(lingerIdle)
		if d.After(deadline) {
			d = deadline
		}
		if c.SetReadDeadline(d) != nil {
			return
		}
		n, err := c.Read(buf)
		remaining -= int64(n)
		if err != nil {
			break
		}
	}
	_ = c.SetReadDeadline(time.Time{})
}
