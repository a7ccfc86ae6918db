// Package engine assembles Parley's roles — ingress, session actors, sender,
// ClickHouse sink — into one running process, against configured Kafka and
// ClickHouse (serve) or embedded ones (dev).
package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttpadaptor"

	"github.com/parleyhq/parley/actors"
	"github.com/parleyhq/parley/analytics"
	"github.com/parleyhq/parley/api"
	"github.com/parleyhq/parley/apikeys"
	"github.com/parleyhq/parley/backend/httpapi"
	"github.com/parleyhq/parley/bus"
	"github.com/parleyhq/parley/channels"
	"github.com/parleyhq/parley/channels/meta"
	"github.com/parleyhq/parley/channels/sim"
	"github.com/parleyhq/parley/channels/twilio"
	"github.com/parleyhq/parley/config"
	"github.com/parleyhq/parley/ingress"
	"github.com/parleyhq/parley/internal/chserver"
	"github.com/parleyhq/parley/internal/retry"
	"github.com/parleyhq/parley/internal/seal"
	chsink "github.com/parleyhq/parley/sinks/clickhouse"
	"github.com/parleyhq/parley/sinks/delivery"
	"github.com/parleyhq/parley/sinks/webhooks"
	"github.com/parleyhq/parley/tenants"
	"github.com/parleyhq/parley/wire"
)

// Where `parley dev` serves the demo business over HTTP, and the bearer
// token it accepts (a development credential, not a secret).
const (
	DemoBackendPath  = "/demo-backend/"
	DemoBackendToken = "demo-backend-token"
)

// Options say how to run.
type Options struct {
	// Embed starts what the config leaves out: a Kafka-protocol broker when
	// kafka.brokers is empty, a ClickHouse child process when
	// clickhouse.addr is empty (parley dev). Without it, both are required.
	Embed  bool
	Logger *slog.Logger
	// Listener, when set, is used instead of listening on http.addr (tests
	// pass one on port 0).
	Listener net.Listener
	// SkipChangelog, for benchmarks only, leaves the sessions' state out
	// of their transactions, to measure what the changelog write costs.
	// Sessions are then not durable.
	SkipChangelog bool
}

// Engine is a running Parley.
type Engine struct {
	cfg        *config.Config
	log        *slog.Logger
	broker     *bus.Embedded
	chServer   *chserver.Server
	store      *chsink.Store
	producer   *bus.Producer
	http       *ingress.Server
	ln         net.Listener
	operator   *fasthttp.Server
	operatorLn net.Listener
	cancel     context.CancelFunc
	wg         sync.WaitGroup
	brokers    []string
	chAddr     string
	Sim        *sim.Hub
}

// Start brings every role up and returns once the engine accepts webhooks.
func Start(ctx context.Context, cfg *config.Config, o Options) (_ *Engine, err error) {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	e := &Engine{cfg: cfg, log: o.Logger, Sim: sim.NewHub()}
	defer func() {
		if err != nil {
			e.Close()
		}
	}()
	reg, err := tenants.NewRegistry(cfg.Tenants)
	if err != nil {
		return nil, err
	}
	if !o.Embed && !cfg.AllowSimulator {
		for _, t := range cfg.Tenants {
			if t.Sim {
				return nil, fmt.Errorf("tenant %s is a simulator tenant: serve does not run the simulator, whose page lets anyone post as any phone; use `parley dev`, or set allow_simulator: true on a closed network", t.ID)
			}
		}
	}

	// Kafka.
	e.brokers = cfg.Kafka.Brokers
	if len(e.brokers) == 0 {
		if !o.Embed {
			return nil, errors.New("kafka.brokers is empty: configure brokers, or use `parley dev` to embed one")
		}
		e.broker, err = bus.StartEmbedded(filepath.Join(cfg.DataDir, "kafka"), 0)
		if err != nil {
			return nil, err
		}
		e.brokers = e.broker.Addrs()
	}
	partitions := 0
	if err := waitFor(ctx, 30*time.Second, func(c context.Context) (err error) {
		partitions, err = bus.EnsureParleyTopics(c, e.brokers, cfg.Kafka.Partitions, cfg.Kafka.ReplicationFactor)
		return err
	}); err != nil {
		return nil, err
	}

	// ClickHouse.
	e.chAddr = cfg.ClickHouse.Addr
	if e.chAddr == "" {
		if !o.Embed {
			return nil, errors.New("clickhouse.addr is empty: configure it, or use `parley dev` to start a local server")
		}
		e.chServer, err = chserver.Start(ctx, chserver.Options{Dir: filepath.Join(cfg.DataDir, "clickhouse")})
		if err != nil {
			return nil, err
		}
		e.chAddr = e.chServer.Addr()
	}
	// Open migrates the schema.
	e.store, err = chsink.Open(ctx, StoreConfig(cfg, e.chAddr, e.log))
	if err != nil {
		return nil, err
	}

	e.producer = bus.NewProducer(e.brokers, bus.ProducerOptions{})
	runCtx, cancel := context.WithCancel(context.Background())
	e.cancel = cancel
	consumerOpts := func() bus.ConsumerOptions {
		return bus.ConsumerOptions{Brokers: e.brokers, Logger: e.log, SessionTimeout: cfg.Kafka.SessionTimeout}
	}

	// The providers: one line each. Sessions split replies to their
	// text limits, the sender sends through them. The simulator only in
	// dev, or where the config allows it (its page lets anyone post as
	// any phone).
	sendClient := &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{
		// Hundreds of sends in flight to one provider host: keep their
		// connections instead of dialling for most of them.
		MaxIdleConns: 512, MaxIdleConnsPerHost: 256, IdleConnTimeout: 90 * time.Second,
	}}
	provs := []channels.Provider{
		twilio.New(sendClient, cfg.HTTP.PublicBaseURL),
		meta.New(sendClient, cfg.HTTP.MetaMaxBodyBytes),
	}
	if o.Embed || cfg.AllowSimulator {
		provs = append(provs, sim.New(e.Sim))
	}
	providers := channels.NewRegistry(provs...)

	// Session actors. API calls wait in pending for their session's answer,
	// which comes back on parley.replies from whichever node holds it.
	pending := api.NewPending()
	if err := bus.Tail(runCtx, e.brokers, wire.TopicReplies, e.log, pending.ResolveRecord); err != nil {
		return nil, fmt.Errorf("follow %s: %w", wire.TopicReplies, err)
	}
	backends, err := newBackends(reg)
	if err != nil {
		return nil, err
	}
	brains, err := newBrains(reg, backends)
	if err != nil {
		return nil, err
	}
	// One-time codes cross parley.outbound sealed, with the key every
	// node shares (PARLEY_SECRETS_KEY; parley dev keeps one in its data
	// directory).
	devDir := ""
	if o.Embed {
		devDir = cfg.DataDir
	}
	secrets, err := seal.FromEnv(devDir)
	if err != nil {
		return nil, err
	}
	member := cfg.NodeID
	if e.broker != nil {
		// The embedded broker's data belongs to this one process, so its
		// member name can be fixed: a restart after kill -9 then fences
		// and aborts the transaction the dead process left open at once,
		// instead of waiting for it to time out.
		member = "embedded"
	}
	router := actors.NewRouter(actors.RouterOptions{
		Brokers:        e.brokers,
		NodeID:         member,
		Partitions:     partitions,
		SessionTimeout: cfg.Kafka.SessionTimeout,
		Logger:         e.log.With("node", cfg.NodeID),
		// Crash tests kill the process at a step of its first
		// transaction (docs/sessions.md).
		Fault:         os.Getenv("PARLEY_FAULT"),
		SkipChangelog: o.SkipChangelog,
	}, actors.Deps{
		Tenants:   reg,
		Providers: providers,
		Secrets:   secrets,
		Logger:    e.log,
		Brains:    brains.For,
		Backends:  backends.Profiles,
	})
	e.goRun("actors", func() error { return router.Run(runCtx) })
	e.goRun("session-expiry", func() error {
		router.RunExpiry(runCtx, e.producer, time.Hour, cfg.Kafka.ExpiredSessionRetention, cfg.Kafka.DisposableSessionRetention)
		return nil
	})

	// Sender.
	sender := delivery.New(delivery.Options{
		Consumer:    consumerOpts(),
		Tenants:     reg,
		Providers:   providers,
		Secrets:     secrets,
		Producer:    e.producer,
		Replication: cfg.Kafka.ReplicationFactor,
		Logger:      e.log,
	})
	e.goRun("sender", func() error { return sender.Run(runCtx) })

	// ClickHouse sink.
	sink := chsink.NewSink(e.store, consumerOpts(), chsink.SinkOptions{})
	e.goRun("clickhouse-sink", func() error { return sink.Run(runCtx) })
	// Retention (on servers without TTL), compaction of closed days and
	// the rollups the dashboard reads.
	e.goRun("clickhouse-janitor", func() error {
		e.store.RunJanitor(runCtx, chsink.JanitorOptions{Every: cfg.ClickHouse.JanitorEvery})
		return nil
	})

	// Tenant webhooks: queued per tenant, each endpoint behind a circuit
	// breaker; what expires goes to wire.TopicWebhookDeadLetters.
	notifier := webhooks.New(webhooks.Options{Consumer: consumerOpts(), Tenants: reg, Producer: e.producer, Logger: e.log})
	e.goRun("webhooks", func() error { return notifier.Run(runCtx) })

	// Ingress.
	e.http = ingress.New(ingress.Options{
		PublicBaseURL: cfg.HTTP.PublicBaseURL,
		MaxBodyBytes:  cfg.HTTP.MaxBodyBytes,
		ReadTimeout:   cfg.HTTP.ReadTimeout,
		MaxConns:      cfg.HTTP.MaxConnections,
		MaxConnsPerIP: cfg.HTTP.MaxConnectionsPerIP,
		Operator:      cfg.HTTP.OperatorAddr != "",
		Providers:     providers,
		Tenants:       reg,
		Producer:      e.producer,
		Logger:        e.log,
		Checks: []ingress.Check{
			{Name: "kafka", Fn: func(c context.Context) error { return bus.Ping(c, e.brokers) }},
			{Name: "clickhouse", Fn: e.store.Ping},
			{Name: "sessions", Fn: router.Ready},
		},
	})
	keys, err := apikeys.New(cfg.APIKeys)
	if err != nil {
		return nil, err
	}
	// A caller whose session was on a node that died waits for the group
	// to move it (the session timeout) and for its restore.
	automation := api.New(api.Options{Tenants: reg, Providers: providers, Producer: e.producer, Pending: pending, Keys: keys,
		Timeout: cfg.Kafka.SessionTimeout + 10*time.Second})
	insights := analytics.NewAPI(analytics.Options{
		Store:   e.store,
		Tenants: reg,
		Keys:    keys,
		Logger:  e.log,
		// Erasure first empties the live session, through its own
		// stream, then deletes the rows.
		FetchMedia: func(ctx context.Context, t *tenants.Tenant, ref string) (io.ReadCloser, string, int64, error) {
			return asMediaResult(providers.FetchMedia(ctx, t, ref))
		},
		ForgetSession: func(tenant, phone string) error {
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			defer cancel()
			r, err := automation.Do(ctx, tenant, phone, &wire.Command{Op: &wire.Command_Forget{Forget: &wire.Forget{}}, Operator: "gdpr"})
			if err != nil {
				return err
			}
			if !r.Ok {
				return errors.New(r.ErrorMessage)
			}
			// What the simulator page shows of the customer goes too.
			e.Sim.Forget(tenant, phone)
			return nil
		},
	})
	// One router serves every /api/v1 route (api/routes.go).
	e.http.Mount(api.Prefix, "api", api.NewRouter(keys, reg, api.Routes(automation, insights)).Handle)
	e.http.Mount(analytics.DashboardPrefix, "dashboard", analytics.Dashboard)
	if o.Embed {
		// parley dev serves the demo business over the backend contract,
		// so tenants configured with backend kind http can point at it.
		e.http.Mount(DemoBackendPath, "demo-backend", fasthttpadaptor.NewFastHTTPHandler(
			http.StripPrefix(strings.TrimSuffix(DemoBackendPath, "/"), httpapi.Handler(backends.demo, DemoBackendToken))))
	}
	e.ln = o.Listener
	if e.ln == nil {
		e.ln, err = net.Listen("tcp", cfg.HTTP.Addr)
		if err != nil {
			return nil, fmt.Errorf("listen on http.addr: %w", err)
		}
	}
	e.goRun("http", func() error { return e.http.Serve(e.ln) })
	if addr := cfg.HTTP.OperatorAddr; addr != "" {
		e.operatorLn, err = net.Listen("tcp", addr)
		if err != nil {
			return nil, fmt.Errorf("listen on http.operator_addr: %w", err)
		}
		e.operator = &fasthttp.Server{Handler: e.http.OperatorHandler, Name: "parley-operator", ReadTimeout: 10 * time.Second}
		e.goRun("operator-http", func() error { return e.operator.Serve(e.operatorLn) })
	}
	// Webhooks are accepted from here on (Kafka keeps them); answers start
	// once this member joined the sessions group and restored what it was
	// given. Waiting for that here makes "running" mean "answering".
	if err := router.WaitReady(ctx, cfg.Kafka.SessionTimeout+10*time.Second); err != nil {
		e.log.Warn("sessions not ready yet; /readyz says why", "err", err)
	}
	return e, nil
}

// asMediaResult passes a provider's download on, its "not found" as the
// API's.
func asMediaResult(body io.ReadCloser, ct string, size int64, err error) (io.ReadCloser, string, int64, error) {
	if errors.Is(err, channels.ErrMediaNotFound) {
		err = fmt.Errorf("%w: %v", analytics.ErrMediaNotFound, err)
	}
	return body, ct, size, err
}

// StoreConfig is the ClickHouse store's configuration for cfg, at addr
// (cfg's, or the local server's that `parley dev` started).
func StoreConfig(cfg *config.Config, addr string, log *slog.Logger) chsink.Config {
	return chsink.Config{
		Addr:          addr,
		Database:      cfg.ClickHouse.Database,
		Username:      cfg.ClickHouse.Username,
		Password:      cfg.ClickHouse.Password.Reveal(),
		RetentionDays: cfg.ClickHouse.Retention(),
		Logger:        log,
	}
}

// goRun runs a role until the engine closes; a role that fails is logged.
func (e *Engine) goRun(name string, fn func() error) {
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		if err := fn(); err != nil {
			e.log.Error("role stopped", "role", name, "err", err)
		}
	}()
}

// URL is the base URL the HTTP server listens on.
func (e *Engine) URL() string { return "http://" + e.ln.Addr().String() }

// OperatorURL is the base URL of the operator listener (/metrics, /readyz
// with error texts); "" when http.operator_addr is not set.
func (e *Engine) OperatorURL() string {
	if e.operatorLn == nil {
		return ""
	}
	return "http://" + e.operatorLn.Addr().String()
}

// Brokers are the Kafka bootstrap addresses in use.
func (e *Engine) Brokers() []string { return e.brokers }

// ClickHouseAddr is the ClickHouse native address in use.
func (e *Engine) ClickHouseAddr() string { return e.chAddr }

// Store is the ClickHouse store.
func (e *Engine) Store() *chsink.Store { return e.store }

// Close stops accepting requests, lets the roles finish what they hold,
// then stops what the engine started (child ClickHouse, embedded broker).
func (e *Engine) Close() {
	if e.Sim != nil {
		e.Sim.Close()
	}
	if e.http != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = e.http.Shutdown(ctx)
		cancel()
	}
	if e.operator != nil {
		_ = e.operator.Shutdown()
	}
	if e.cancel != nil {
		e.cancel()
	}
	e.wg.Wait()
	if e.producer != nil {
		_ = e.producer.Close()
	}
	if e.store != nil {
		e.store.Close()
	}
	if e.chServer != nil {
		e.chServer.Stop()
	}
	if e.broker != nil {
		e.broker.Close()
	}
}

// waitFor retries fn until it succeeds or the timeout passes: a broker that
// was just started, or a restarting one, answers after a moment.
func waitFor(ctx context.Context, timeout time.Duration, fn func(context.Context) error) error {
	return retry.Backoff{Initial: 200 * time.Millisecond, Multiplier: 1, MaxElapsed: timeout}.Do(ctx, func(int) error {
		c, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		return fn(c)
	})
}
