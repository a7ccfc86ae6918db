package engine

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
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
	"github.com/parleyhq/parley/internal/ids"
	"github.com/parleyhq/parley/internal/seal"
	chsink "github.com/parleyhq/parley/sinks/clickhouse"
	"github.com/parleyhq/parley/sinks/delivery"
	"github.com/parleyhq/parley/sinks/webhooks"
	"github.com/parleyhq/parley/tenants"
	"github.com/parleyhq/parley/tenants/configlog"
	"github.com/parleyhq/parley/wire"
)

// The steps of Start, each starting one part and registering how it stops
// with e.roles.

// checkSimulator refuses simulator tenants outside dev unless the config
// allows them: the simulator's page lets anyone post as any phone.
func checkSimulator(cfg *config.Config, o Options) error {
	if o.Embed || cfg.AllowSimulator {
		return nil
	}
	for _, t := range cfg.Tenants {
		if t.Sim {
			return fmt.Errorf("tenant %s is a simulator tenant: serve does not run the simulator, whose page lets anyone post as any phone; use `parley dev`, or set allow_simulator: true on a closed network", t.ID)
		}
	}
	return nil
}

// devDir is where `parley dev` keeps what it makes for itself (the secrets
// key); "" for serve, which must be given everything.
func (e *Engine) devDir() string {
	if e.o.Embed {
		return e.cfg.DataDir
	}
	return ""
}

// startKafka finds the brokers (or embeds one), makes sure Parley's topics
// exist and returns the inbound partition count, and starts the producer.
func (e *Engine) startKafka(ctx context.Context) (partitions int, err error) {
	cfg := e.cfg
	e.brokers = cfg.Kafka.Brokers
	if e.kafkaSec, err = KafkaSecurity(cfg); err != nil {
		return 0, err
	}
	if len(e.brokers) == 0 {
		if !e.o.Embed {
			return 0, errors.New("kafka.brokers is empty: configure brokers, or use `parley dev` to embed one")
		}
		if e.broker, err = bus.StartEmbedded(filepath.Join(cfg.DataDir, "kafka"), 0); err != nil {
			return 0, err
		}
		e.roles.Defer("embedded broker", e.broker.Close)
		e.brokers = e.broker.Addrs()
		e.kafkaSec = nil // the embedded broker speaks plaintext on loopback
	}
	if err := waitFor(ctx, 30*time.Second, func(c context.Context) (err error) {
		partitions, err = bus.EnsureParleyTopics(c, e.brokers, e.kafkaSec, cfg.Kafka.Partitions, cfg.Kafka.ReplicationFactor)
		return err
	}); err != nil {
		return 0, err
	}
	e.producer = bus.NewProducer(e.brokers, bus.ProducerOptions{Security: e.kafkaSec})
	e.roles.Defer("producer", func() { _ = e.producer.Close() })
	return partitions, nil
}

// startClickHouse finds ClickHouse (or starts a child server) and opens
// the store, which migrates the schema.
func (e *Engine) startClickHouse(ctx context.Context) (err error) {
	e.chAddr = e.cfg.ClickHouse.Addr
	if e.chAddr == "" {
		if !e.o.Embed {
			return errors.New("clickhouse.addr is empty: configure it, or use `parley dev` to start a local server")
		}
		if e.chServer, err = chserver.Start(ctx, chserver.Options{Dir: filepath.Join(e.cfg.DataDir, "clickhouse")}); err != nil {
			return err
		}
		e.roles.Defer("clickhouse server", func() { _ = e.chServer.Stop() })
		e.chAddr = e.chServer.Addr()
	}
	storeCfg, err := StoreConfig(e.cfg, e.chAddr, e.log)
	if err != nil {
		return err
	}
	if e.chServer != nil {
		storeCfg.TLS = nil // the local child server listens in plaintext on loopback
	}
	if e.store, err = chsink.Open(ctx, storeCfg); err != nil {
		return err
	}
	e.roles.Defer("clickhouse store", func() { _ = e.store.Close() })
	return nil
}

// providers are the WhatsApp providers: one line each. Sessions split
// replies to their text limits, the sender sends through them, the
// ingress mounts their routes. The simulator only in dev, or where the
// config allows it.
func (e *Engine) providers() *channels.Registry {
	sendClient := &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{
		// Hundreds of sends in flight to one provider host: keep their
		// connections instead of dialling for most of them.
		MaxIdleConns: 512, MaxIdleConnsPerHost: 256, IdleConnTimeout: 90 * time.Second,
	}}
	provs := []channels.Provider{
		twilio.New(sendClient, e.cfg.HTTP.PublicBaseURL),
		meta.New(sendClient, e.cfg.HTTP.MetaMaxBodyBytes),
	}
	if e.o.Embed || e.cfg.AllowSimulator {
		provs = append(provs, sim.New(e.Sim))
	}
	return channels.NewRegistry(provs...)
}

// consumer is the options of a role's Kafka consumer.
func (e *Engine) consumer() bus.ConsumerOptions {
	return bus.ConsumerOptions{Brokers: e.brokers, Security: e.kafkaSec, Logger: e.log, SessionTimeout: e.cfg.Kafka.SessionTimeout}
}

// followConfig loads the tenants of parley.config into reg beside the
// file's, and its API keys into keys, writes the file's tenants to it,
// and follows it: tenants and keys changed on any node apply here within
// a second.
func (e *Engine) followConfig(reg *tenants.Registry, keys *apikeys.Set, secrets *seal.Box) (*configlog.Log, error) {
	ctx, cancel := context.WithCancel(context.Background())
	e.roles.Defer("config", cancel)
	return configlog.Start(ctx, configlog.Options{
		Brokers: e.brokers, Security: e.kafkaSec, Producer: e.producer, Box: secrets, Registry: reg, Keys: keys, File: e.cfg.Tenants,
		Logger: e.log, AllowSimulator: e.o.Embed || e.cfg.AllowSimulator,
	})
}

// followReplies follows parley.replies: API calls wait in pending for
// their session's answer, which comes back there from whichever node
// holds the session.
func (e *Engine) followReplies() (*api.Pending, error) {
	pending := api.NewPending()
	ctx, cancel := context.WithCancel(context.Background())
	e.roles.Defer("replies", cancel)
	if err := bus.Tail(ctx, e.brokers, e.kafkaSec, wire.TopicReplies, e.log, pending.ResolveRecord); err != nil {
		return nil, fmt.Errorf("follow %s: %w", wire.TopicReplies, err)
	}
	return pending, nil
}

// startSessions starts the session actors, fed by parley.inbound in
// transactions, and the expiry of idle sessions.
func (e *Engine) startSessions(partitions int, deps actors.Deps) *actors.Router {
	cfg := e.cfg
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
		Security:       e.kafkaSec,
		NodeID:         member,
		Partitions:     partitions,
		SessionTimeout: cfg.Kafka.SessionTimeout,
		Logger:         e.log.With("node", cfg.NodeID),
		// Crash tests kill the process at a step of its first
		// transaction (docs/sessions.md).
		Fault:         os.Getenv("PARLEY_FAULT"),
		SkipChangelog: e.o.SkipChangelog,
	}, deps)
	e.roles.Go("sessions", router.Run)
	e.roles.Go("session expiry", func(ctx context.Context) error {
		router.RunExpiry(ctx, e.producer, time.Hour, cfg.Kafka.ExpiredSessionRetention, cfg.Kafka.DisposableSessionRetention)
		return nil
	})
	return router
}

// startDelivery starts the sender: parley.outbound to the providers.
func (e *Engine) startDelivery(reg *tenants.Registry, providers *channels.Registry, secrets *seal.Box) {
	sender := delivery.New(delivery.Options{
		Consumer:    e.consumer(),
		Tenants:     reg,
		Providers:   providers,
		Secrets:     secrets,
		Producer:    e.producer,
		Replication: e.cfg.Kafka.ReplicationFactor,
		Logger:      e.log,
	})
	e.roles.Go("delivery", sender.Run)
}

// startClickHouseRoles starts the sink (parley.events to ClickHouse) and
// the janitor: retention on servers without TTL, compaction of closed
// days, the rollups the dashboard reads.
func (e *Engine) startClickHouseRoles() {
	sink := chsink.NewSink(e.store, e.consumer(), chsink.SinkOptions{})
	e.roles.Go("clickhouse sink", sink.Run)
	e.roles.Go("clickhouse janitor", func(ctx context.Context) error {
		e.store.RunJanitor(ctx, chsink.JanitorOptions{Every: e.cfg.ClickHouse.JanitorEvery})
		return nil
	})
}

// startWebhooks starts the tenants' webhooks for Parley's events: queued
// per tenant, each endpoint behind a circuit breaker; what expires goes
// to wire.TopicWebhookDeadLetters.
func (e *Engine) startWebhooks(reg *tenants.Registry) {
	notifier := webhooks.New(webhooks.Options{Consumer: e.consumer(), Tenants: reg, Producer: e.producer, Logger: e.log})
	e.roles.Go("webhooks", notifier.Run)
}

// auditAdmin records a change made through the admin routes in the
// ClickHouse audit table; a failure is logged (the change stands).
func (e *Engine) auditAdmin(ctx context.Context, a api.AuditEntry) {
	if err := e.store.WriteAudit(ctx, chsink.AuditRecord{ID: ids.New(), At: time.Now(), Action: a.Action, Actor: a.Actor,
		Tenant: a.Tenant, Status: "done", Detail: a.Detail}); err != nil {
		e.log.Warn("audit record not written", "action", a.Action, "actor", a.Actor, "tenant", a.Tenant, "err", err)
	}
}

// frontDoor is what the HTTP server serves.
type frontDoor struct {
	reg       *tenants.Registry
	keys      *apikeys.Set
	providers *channels.Registry
	pending   *api.Pending
	router    *actors.Router
	backends  *backendSet
}

// startHTTP starts the public listener (webhooks, /api/v1, dashboard,
// simulator, health) and the operator listener when configured.
func (e *Engine) startHTTP(f frontDoor) (err error) {
	cfg := e.cfg
	e.http = ingress.New(ingress.Options{
		PublicBaseURL: cfg.HTTP.PublicBaseURL,
		MaxBodyBytes:  cfg.HTTP.MaxBodyBytes,
		ReadTimeout:   cfg.HTTP.ReadTimeout,
		MaxConns:      cfg.HTTP.MaxConnections,
		MaxConnsPerIP: cfg.HTTP.MaxConnectionsPerIP,
		Operator:      cfg.HTTP.OperatorAddr != "",
		Providers:     f.providers,
		Tenants:       f.reg,
		Producer:      e.producer,
		Logger:        e.log,
		Checks: []ingress.Check{
			{Name: "kafka", Fn: func(c context.Context) error { return bus.Ping(c, e.brokers, e.kafkaSec) }},
			{Name: "clickhouse", Fn: e.store.Ping},
			{Name: "sessions", Fn: f.router.Ready},
		},
	})
	// A caller whose session was on a node that died waits for the group
	// to move it (the session timeout) and for its restore.
	automation := api.New(api.Options{Tenants: f.reg, Providers: f.providers, Producer: e.producer, Pending: f.pending, Keys: f.keys,
		Config:  e.tenantLog,
		Audit:   e.auditAdmin,
		Timeout: cfg.Kafka.SessionTimeout + 10*time.Second})
	insights := analytics.NewAPI(analytics.Options{
		Store: e.store, Tenants: f.reg, Keys: f.keys, Logger: e.log,
		FetchMedia:    f.providers.FetchMedia,
		ForgetSession: e.forgetSession(automation),
	})
	// One router serves every /api/v1 route (api/routes.go).
	e.http.Mount(api.Prefix, "api", api.NewRouter(f.keys, f.reg, api.Routes(automation, insights)).Handle)
	e.http.Mount(analytics.DashboardPrefix, "dashboard", analytics.Dashboard)
	if e.o.Embed {
		// parley dev serves the demo business over the backend contract,
		// so tenants configured with backend kind http can point at it.
		e.http.Mount(DemoBackendPath, "demo-backend", fasthttpadaptor.NewFastHTTPHandler(
			http.StripPrefix(strings.TrimSuffix(DemoBackendPath, "/"), httpapi.Handler(f.backends.demo, DemoBackendToken))))
	}
	if e.ln = e.o.Listener; e.ln == nil {
		if e.ln, err = net.Listen("tcp", cfg.HTTP.Addr); err != nil {
			return fmt.Errorf("listen on http.addr: %w", err)
		}
	}
	e.roles.Serve("http", func() error { return e.http.Serve(e.ln) }, func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = e.http.Shutdown(ctx)
	})
	if addr := cfg.HTTP.OperatorAddr; addr != "" {
		if e.operatorLn, err = net.Listen("tcp", addr); err != nil {
			return fmt.Errorf("listen on http.operator_addr: %w", err)
		}
		operator := &fasthttp.Server{Handler: e.http.OperatorHandler, Name: "parley-operator", ReadTimeout: 10 * time.Second}
		e.roles.Serve("operator http", func() error { return operator.Serve(e.operatorLn) }, func() { _ = operator.Shutdown() })
	}
	// The simulator's event streams end first, so that the HTTP server's
	// shutdown is not held open by pages that never hang up.
	e.roles.Defer("simulator streams", e.Sim.Close)
	return nil
}

// forgetSession is the first step of an erasure: the live session is
// emptied through its own stream (a tombstone on the changelog), and the
// simulator page forgets the customer too.
func (e *Engine) forgetSession(automation *api.API) func(tenant, phone string) error {
	return func(tenant, phone string) error {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		r, err := automation.Do(ctx, tenant, phone, &wire.Command{Op: &wire.Command_Forget{Forget: &wire.Forget{}}, Operator: "gdpr"})
		if err != nil {
			return err
		}
		if !r.Ok {
			return errors.New(r.ErrorMessage)
		}
		e.Sim.Forget(tenant, phone)
		return nil
	}
}
