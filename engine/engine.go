// Package engine assembles Parley's roles — ingress, session actors, sender,
// ClickHouse sink — into one running process, against configured Kafka and
// ClickHouse (serve) or embedded ones (dev).
package engine

import (
	"context"
	"log/slog"
	"net"
	"time"

	"github.com/parleyhq/parley/actors"
	"github.com/parleyhq/parley/apikeys"
	"github.com/parleyhq/parley/bus"
	"github.com/parleyhq/parley/channels/sim"
	"github.com/parleyhq/parley/config"
	"github.com/parleyhq/parley/ingress"
	"github.com/parleyhq/parley/internal/chserver"
	"github.com/parleyhq/parley/internal/retry"
	"github.com/parleyhq/parley/internal/seal"
	chsink "github.com/parleyhq/parley/sinks/clickhouse"
	"github.com/parleyhq/parley/tenants"
	"github.com/parleyhq/parley/tenants/configlog"
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
	o          Options
	log        *slog.Logger
	roles      group
	broker     *bus.Embedded
	chServer   *chserver.Server
	store      *chsink.Store
	producer   *bus.Producer
	http       *ingress.Server
	ln         net.Listener
	operatorLn net.Listener
	brokers    []string
	kafkaSec   *bus.Security
	chAddr     string
	Sim        *sim.Hub
	tenantLog  *configlog.Log
}

// Start brings every role up, in the order data flows back from the
// outside world (infrastructure, sessions, the roles that consume what
// sessions produce, then the front door), and returns once the engine
// accepts webhooks and answers them. Each step is in roles.go.
func Start(ctx context.Context, cfg *config.Config, o Options) (_ *Engine, err error) {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	e := &Engine{cfg: cfg, o: o, log: o.Logger, roles: group{log: o.Logger}, Sim: sim.NewHub()}
	defer func() {
		if err != nil {
			e.Close()
		}
	}()
	if err := checkSimulator(cfg, o); err != nil {
		return nil, err
	}
	reg, err := tenants.NewRegistry(cfg.Tenants)
	if err != nil {
		return nil, err
	}
	keys, err := apikeys.New(cfg.APIKeys)
	if err != nil {
		return nil, err
	}
	partitions, err := e.startKafka(ctx)
	if err != nil {
		return nil, err
	}
	if err := e.startClickHouse(ctx); err != nil {
		return nil, err
	}
	secrets, err := seal.FromEnv(e.devDir())
	if err != nil {
		return nil, err
	}
	backends, err := newBackends(reg, e.log)
	if err != nil {
		return nil, err
	}
	brains, err := newBrains(reg, backends, e.log)
	if err != nil {
		return nil, err
	}
	if e.tenantLog, err = e.followConfig(reg, keys, secrets); err != nil {
		return nil, err
	}
	providers := e.providers()
	pending, err := e.followReplies()
	if err != nil {
		return nil, err
	}
	router := e.startSessions(partitions, actors.Deps{Tenants: reg, Providers: providers, Secrets: secrets,
		Logger: e.log, Brains: brains.For, Backends: backends.Profiles})
	e.startDelivery(reg, providers, secrets)
	e.startClickHouseRoles()
	e.startWebhooks(reg)
	if err := e.startHTTP(frontDoor{reg: reg, keys: keys, providers: providers, pending: pending, router: router, backends: backends}); err != nil {
		return nil, err
	}
	// Webhooks are accepted from here on (Kafka keeps them); answers start
	// once this member joined the sessions group and restored what it was
	// given. Waiting for that here makes "running" mean "answering".
	if err := router.WaitReady(ctx, cfg.Kafka.SessionTimeout+10*time.Second); err != nil {
		e.log.Warn("sessions not ready yet; /readyz says why", "err", err)
	}
	return e, nil
}

// StoreConfig is the ClickHouse store's configuration for cfg, at addr
// (cfg's, or the local server's that `parley dev` started), its TLS files
// loaded.
func StoreConfig(cfg *config.Config, addr string, log *slog.Logger) (chsink.Config, error) {
	tc, err := cfg.ClickHouse.TLS.Build("clickhouse.tls")
	if err != nil {
		return chsink.Config{}, err
	}
	return chsink.Config{
		Addr:          addr,
		Database:      cfg.ClickHouse.Database,
		Username:      cfg.ClickHouse.Username,
		Password:      cfg.ClickHouse.Password.Reveal(),
		TLS:           tc,
		RetentionDays: cfg.ClickHouse.Retention(),
		Logger:        log,
	}, nil
}

// KafkaSecurity is how cfg's Kafka clients reach the brokers (kafka.tls,
// kafka.sasl, their files loaded): nil for plaintext. Every client the
// engine and the CLI make takes it.
func KafkaSecurity(cfg *config.Config) (*bus.Security, error) {
	k := cfg.Kafka
	tc, err := k.TLS.Build("kafka.tls")
	if err != nil {
		return nil, err
	}
	if tc == nil && k.SASL.Mechanism == "" {
		return nil, nil
	}
	s := &bus.Security{TLS: tc}
	if k.SASL.Mechanism != "" {
		s.SASL = &bus.SASL{Mechanism: k.SASL.Mechanism, Username: k.SASL.Username, Password: k.SASL.Password.Reveal()}
	}
	return s, s.Validate()
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

// Close stops what Start started, the last first: the simulator's streams
// and the HTTP servers (no new requests, in-flight ones finish), then
// each role in turn (it finishes what it holds), then the producer, the
// store, a child ClickHouse and the embedded broker.
func (e *Engine) Close() { e.roles.Stop() }

// waitFor retries fn until it succeeds or the timeout passes: a broker that
// was just started, or a restarting one, answers after a moment.
func waitFor(ctx context.Context, timeout time.Duration, fn func(context.Context) error) error {
	return retry.Backoff{Initial: 200 * time.Millisecond, Multiplier: 1, MaxElapsed: timeout}.Do(ctx, func(int) error {
		c, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		return fn(c)
	})
}
