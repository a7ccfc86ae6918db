package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/parleyhq/parley/bench/internal/baseline"
	"github.com/parleyhq/parley/bench/internal/kgoproducer"
	"github.com/parleyhq/parley/bench/loadgen"
	"github.com/parleyhq/parley/bus"
	"github.com/parleyhq/parley/channels"
	"github.com/parleyhq/parley/channels/twilio"
	"github.com/parleyhq/parley/ingress"
	"github.com/parleyhq/parley/tenants"
	"github.com/parleyhq/parley/wire"
)

// The one tenant both targets serve. The baseline uses the same token and
// public URL, so the same signed forms are valid on both.
const (
	tenantID      = "acme"
	authToken     = "0123456789abcdef0123456789abcdef"
	publicBaseURL = "https://parley.example.com"
	webhookPath   = "/webhooks/twilio/" + tenantID
	senderNumber  = "whatsapp:+14155238886"
)

var accountSID = loadgen.AccountSID(1)

// webhook is what the load generator signs for.
func webhook() loadgen.Webhook {
	return loadgen.Webhook{
		PublicBaseURL: publicBaseURL,
		Path:          webhookPath,
		AuthToken:     authToken,
		AccountSID:    accountSID,
		To:            senderNumber,
	}
}

// Targets. Only baseline and parley run by default; the others take
// Parley's figure apart when it falls short, one cost at a time:
//   - parley: the embedded broker as bus.StartEmbedded runs it for
//     `parley dev` (data directory, fsync of every batch), bus.Producer;
//   - parley-nofsync: the same data directory without the per-batch fsync
//     (records still reach the page cache before the ack, so they survive
//     the process being killed, not the machine losing power);
//   - parley-mem: the broker without a data directory;
//   - parley-noop: the ingress with a producer that acknowledges at once,
//     i.e. HTTP, signature, normalising and encoding without Kafka;
//   - parley-kgo, parley-kgo-nofsync: parley and parley-nofsync with
//     bus.Producer swapped for franz-go's client
//     (bench/internal/kgoproducer), to test the producer's batching.
const (
	targetBaseline   = "baseline"
	targetParley     = "parley"
	targetParleyMem  = "parley-mem"
	targetParleyNoop = "parley-noop"
)

// parleyTargets maps each Parley variant to how it is assembled.
var parleyTargets = map[string]parleyConfig{
	targetParley:         {Broker: "disk"},
	"parley-nofsync":     {Broker: "disk-nofsync"},
	targetParleyMem:      {Broker: "memory"},
	targetParleyNoop:     {Broker: "none"},
	"parley-kgo":         {Broker: "disk", Producer: "kgo"},
	"parley-kgo-nofsync": {Broker: "disk-nofsync", Producer: "kgo"},
}

// knownTargets in the order -help lists them.
var knownTargets = []string{targetBaseline, targetParley, "parley-nofsync", targetParleyMem,
	targetParleyNoop, "parley-kgo", "parley-kgo-nofsync"}

// running is a started target: stop shuts it down and releases what it
// holds (broker, temp dir).
type running struct {
	stop func(ctx context.Context) error
}

// parleyConfig says how to assemble Parley's ingress.
type parleyConfig struct {
	// Broker: "disk" (bus.StartEmbedded with a data dir: fsync per
	// batch, as `parley dev` runs it), "disk-nofsync" (kfake with the
	// data dir but without SyncWrites), "memory" (no data dir) or "none"
	// (a producer that acknowledges at once).
	Broker string
	// Producer: "" for bus.Producer (kafka-go), "kgo" for
	// kgoproducer.Producer.
	Producer   string
	Partitions int
	Logger     *slog.Logger
}

// startTarget serves the named target on ln.
func startTarget(name string, ln net.Listener, partitions int, logger *slog.Logger) (*running, error) {
	if name == targetBaseline {
		return startBaseline(ln), nil
	}
	c, ok := parleyTargets[name]
	if !ok {
		return nil, fmt.Errorf("unknown target %q (known: %v)", name, knownTargets)
	}
	c.Partitions, c.Logger = partitions, logger
	return startParley(ln, c)
}

// startBaseline serves the floor the ingress is measured against
// (bench/internal/baseline): parse the form, check the signature, nothing
// else.
func startBaseline(ln net.Listener) *running {
	return &running{stop: baseline.Serve(ln, publicBaseURL, authToken)}
}

// noopProducer acknowledges every record at once: the ingress without
// Kafka, to separate HTTP and normalising costs from the broker's.
type noopProducer struct{}

func (noopProducer) Produce(context.Context, ...kafka.Message) error { return nil }

func startParley(ln net.Listener, c parleyConfig) (*running, error) {
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	var (
		producer ingress.Producer = noopProducer{}
		cleanup  []func()
	)
	closeAll := func() {
		for i := len(cleanup) - 1; i >= 0; i-- {
			cleanup[i]()
		}
	}
	if c.Broker != "none" {
		dataDir := ""
		if c.Broker == "disk" || c.Broker == "disk-nofsync" {
			dir, err := os.MkdirTemp("", "parley-bench-kfake-")
			if err != nil {
				return nil, err
			}
			cleanup = append(cleanup, func() { os.RemoveAll(dir) })
			dataDir = dir
		}
		addrs, closeBroker, err := startBroker(c.Broker, dataDir)
		if err != nil {
			closeAll()
			return nil, err
		}
		cleanup = append(cleanup, closeBroker)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err = bus.EnsureTopics(ctx, addrs, c.Partitions, 1, wire.TopicInbound)
		cancel()
		if err != nil {
			closeAll()
			return nil, err
		}
		if c.Producer == "kgo" {
			p, err := kgoproducer.New(addrs)
			if err != nil {
				closeAll()
				return nil, err
			}
			cleanup = append(cleanup, p.Close)
			producer = p
		} else {
			p := bus.NewProducer(addrs, bus.ProducerOptions{})
			cleanup = append(cleanup, func() { p.Close() })
			producer = p
		}
	}
	reg, err := tenants.NewRegistry([]tenants.Tenant{{
		ID: tenantID, Name: "Acme",
		Twilio: &tenants.Twilio{AccountSID: accountSID, AuthToken: authToken, From: senderNumber},
	}})
	if err != nil {
		closeAll()
		return nil, err
	}
	// Production settings otherwise (ProduceTimeout, body limit): the
	// point is to measure the ingress as it ships.
	s := ingress.New(ingress.Options{
		PublicBaseURL: publicBaseURL,
		// Only the Twilio routes are measured; the sender is not used.
		Providers: channels.NewRegistry(twilio.New(nil, publicBaseURL)),
		Tenants:   reg,
		Producer:  producer,
		Logger:    c.Logger,
	})
	go s.Serve(ln)
	return &running{stop: func(ctx context.Context) error {
		err := s.Shutdown(ctx)
		closeAll()
		return err
	}}, nil
}

// startBroker starts the embedded broker. "disk" and "memory" go through
// bus.StartEmbedded, exactly as Parley runs it; "disk-nofsync" builds the
// same kfake cluster minus SyncWrites, which bus does not offer, to measure
// what the per-batch fsync costs.
func startBroker(kind, dataDir string) (addrs []string, closeFn func(), err error) {
	if kind == "disk-nofsync" {
		c, err := kfake.NewCluster(kfake.Ports(0), kfake.DefaultNumPartitions(8), kfake.DataDir(dataDir))
		if err != nil {
			return nil, nil, err
		}
		return c.ListenAddrs(), c.Close, nil
	}
	if kind == "memory" {
		dataDir = ""
	}
	b, err := bus.StartEmbedded(dataDir, 0)
	if err != nil {
		return nil, nil, err
	}
	return b.Addrs(), b.Close, nil
}
