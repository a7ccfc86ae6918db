package actors

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/protobuf/proto"

	"github.com/parleyhq/parley/bus"
	"github.com/parleyhq/parley/wire"
)

var (
	restoredSessions = promauto.NewCounter(prometheus.CounterOpts{
		Name: "parley_sessions_restored_total",
		Help: "Sessions restored from the parley.sessions changelog when partitions were assigned.",
	})
	restoreSeconds = promauto.NewHistogram(prometheus.HistogramOpts{
		Name:    "parley_sessions_restore_seconds",
		Help:    "Time to restore the sessions of newly assigned partitions.",
		Buckets: prometheus.ExponentialBuckets(0.01, 2, 14),
	})
	restoringPartitions = promauto.NewGauge(prometheus.GaugeOpts{
		Name: "parley_sessions_restoring_partitions",
		Help: "Partitions whose sessions are being restored; their messages wait.",
	})
)

// RouterOptions configure a Router.
type RouterOptions struct {
	Brokers []string
	// Security reaches a TLS or SASL cluster; nil is plaintext.
	Security *bus.Security
	// NodeID names this member; its transactional id derives from it, so
	// it must be stable across restarts and unique among live nodes.
	NodeID string
	// Partitions is the partition count of parley.inbound (and of the
	// changelog), to know which sessions belong to which partition.
	Partitions int
	// SessionTimeout and TransactionTimeout: see bus.ProcessorOptions.
	SessionTimeout     time.Duration
	TransactionTimeout time.Duration
	Logger             *slog.Logger
	// Fault is for crash tests: see bus.ProcessorOptions.Fault.
	Fault string
	// SkipChangelog is for benchmarks only: engine.Options.SkipChangelog.
	SkipChangelog bool
}

// Router consumes parley.inbound in the "actors" group and hands each record
// to its session actor, in partition order. Each polled batch is one Kafka
// transaction: the sessions' outputs (replies, events, API results), their
// new states on the parley.sessions changelog and the batch's offsets
// commit together, or none of them does and the batch is handled again
// against the restored state. A crash at any point therefore neither loses
// an acknowledged message nor sends a reply twice.
//
// The router owns the placement of the sessions and the actor system they
// run on: when the group assigns it a partition, it restores that
// partition's sessions from the changelog before any of its records is
// handled; when a partition leaves, its sessions leave memory. Data flows
// one way, router to placement to session: each delivery carries its own
// acknowledgement, which the session calls once it produced what the
// record caused, and nothing of the router is reachable from a session.
type Router struct {
	o         RouterOptions
	proc      *bus.Processor
	system    *actor.ActorSystem
	placement *Placement
	idleAfter time.Duration
	restoring atomic.Int32
	// joined is set once the first assignment was restored (even an
	// empty one): until then this member cannot answer for any session.
	joined atomic.Bool
}

// NewRouter creates a router and the placement of its sessions, which d
// equips. Run starts them and stops them when it returns.
func NewRouter(o RouterOptions, d Deps) *Router {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	d = d.withDefaults()
	system := NewSystem()
	r := &Router{o: o, system: system, placement: NewSessions(system, d), idleAfter: d.IdleAfter}
	r.proc = bus.NewProcessor(bus.ProcessorOptions{
		Brokers:            o.Brokers,
		Security:           o.Security,
		Topic:              wire.TopicInbound,
		Group:              wire.GroupActors,
		TransactionalID:    "parley-sessions-" + o.NodeID,
		SessionTimeout:     o.SessionTimeout,
		TransactionTimeout: o.TransactionTimeout,
		Logger:             o.Logger,
		Assigned:           r.restore,
		Revoked:            r.release,
		Aborted:            r.aborted,
		Fault:              o.Fault,
	})
	return r
}

// Run routes until ctx ends, then leaves the group and stops the sessions.
// Idle sessions are passivated meanwhile.
func (r *Router) Run(ctx context.Context) error {
	defer r.system.Shutdown()
	defer r.placement.StartSweeper(r.idleAfter)()
	// An assignment of no partition calls no callback: a member is ready
	// once it is in the group, which polling shows soon enough.
	go func() {
		select {
		case <-ctx.Done():
		case <-time.After(r.o.SessionTimeout + 3*time.Second):
			r.joined.Store(true)
		}
	}()
	return r.proc.Run(ctx, r.handle)
}

// Ready says whether this member can answer: it joined the group and no
// partition of its is being restored (readiness, /readyz).
func (r *Router) Ready(context.Context) error {
	if n := r.restoring.Load(); n > 0 {
		return fmt.Errorf("restoring the sessions of %d partitions", n)
	}
	if !r.joined.Load() {
		return errors.New("joining the sessions group")
	}
	return nil
}

// WaitReady waits until Ready, at most timeout; it returns Ready's last
// answer.
func (r *Router) WaitReady(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		err := r.Ready(ctx)
		if err == nil || time.Now().After(deadline) || ctx.Err() != nil {
			return err
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// delivery is one inbound record on its way to its session, with the
// transaction its outputs go into. It never leaves the process: sessions
// live on the member that consumes their partition.
type delivery struct {
	in        *wire.Inbound
	partition int32
	out       Output
	done      func()
}

// Deliver hands an inbound record of partition to its session, activating
// it if needed; the session produces what it caused into out, in that
// partition, then calls done, the delivery's acknowledgement. Records of
// one session are handled in the order of Deliver calls.
func (p *Placement) Deliver(in *wire.Inbound, partition int32, out Output, done func()) {
	p.Send(wire.ActorID(in.Tenant, in.Phone), &delivery{in: in, partition: partition, out: out, done: done})
}

// Output is where a delivery's records go: the open transaction.
type Output interface {
	Produce(r *kgo.Record)
	// Checkpoint marks a step for crash tests (bus.Txn.Checkpoint).
	Checkpoint(point string)
}

// handle hands a batch to the sessions and returns once each has produced
// what its record caused.
func (r *Router) handle(_ context.Context, recs []*kgo.Record, tx *bus.Txn) {
	var wg sync.WaitGroup
	for _, rec := range recs {
		in := &wire.Inbound{}
		if err := proto.Unmarshal(rec.Value, in); err != nil || in.Tenant == "" || in.Phone == "" {
			// A record no actor can take must not stall its partition:
			// its offset commits with the batch.
			r.o.Logger.Error("dropping undecodable inbound record", "partition", rec.Partition, "offset", rec.Offset, "err", err)
			continue
		}
		wg.Add(1)
		var out Output = tx
		if r.o.SkipChangelog {
			out = skipChangelog{tx}
		}
		r.placement.Deliver(in, rec.Partition, out, wg.Done)
	}
	wg.Wait()
}

// skipChangelog drops the changelog records (benchmarks only).
type skipChangelog struct{ Output }

func (s skipChangelog) Produce(r *kgo.Record) {
	if r.Topic != wire.TopicSessions {
		s.Output.Produce(r)
	}
}

// restore loads the sessions of newly assigned partitions from the
// changelog. It runs before any of their records is fetched.
func (r *Router) restore(ctx context.Context, parts []int32) error {
	r.restoring.Add(int32(len(parts)))
	restoringPartitions.Add(float64(len(parts)))
	defer func() {
		r.restoring.Add(-int32(len(parts)))
		restoringPartitions.Sub(float64(len(parts)))
	}()
	start := time.Now()
	// Whatever memory says of these partitions is older than the
	// changelog: another member may have handled them since.
	r.placement.DropWhere(r.inPartitions(parts))
	tombstones := 0
	n, err := bus.ReadPartitions(ctx, r.o.Brokers, r.o.Security, wire.TopicSessions, parts, r.o.TransactionTimeout+2*time.Second,
		func(_ int32, key, value []byte) {
			tenant, phone, ok := wire.SplitKey(key)
			if !ok {
				return
			}
			if value == nil {
				tombstones++
			}
			// The last record of a key wins; a tombstone removes it.
			r.placement.Restore(wire.ActorID(tenant, phone), value)
		})
	if err != nil {
		return err
	}
	_, dormant := r.placement.Counts()
	secs := time.Since(start).Seconds()
	restoreSeconds.Observe(secs)
	restoredSessions.Add(float64(n - tombstones))
	r.joined.Store(true)
	r.o.Logger.Info("sessions restored", "partitions", parts, "records", n, "tombstones", tombstones, "sessions_held", dormant, "seconds", fmt.Sprintf("%.3f", secs))
	return nil
}

// release forgets the sessions of partitions this member no longer owns.
func (r *Router) release(parts []int32) {
	n := r.placement.DropWhere(r.inPartitions(parts))
	r.o.Logger.Info("sessions released with their partitions", "partitions", parts, "sessions", n)
}

// aborted undoes a batch whose transaction did not commit: its sessions'
// memory is ahead of the changelog, so their partitions are restored
// before the records come again.
func (r *Router) aborted(parts []int32) {
	r.o.Logger.Warn("restoring sessions after an aborted transaction", "partitions", parts)
	for {
		err := r.restore(context.Background(), parts)
		if err == nil {
			return
		}
		r.o.Logger.Error("restore after abort failed; retrying", "err", err)
		time.Sleep(time.Second)
	}
}

// inPartitions matches session ids whose key lives in one of parts.
func (r *Router) inPartitions(parts []int32) func(id string) bool {
	set := map[int32]bool{}
	for _, p := range parts {
		set[p] = true
	}
	n := max(r.o.Partitions, 1)
	return func(id string) bool {
		tenant, phone, ok := splitActorID(id)
		if !ok {
			return false
		}
		return set[wire.Partition(wire.Key(tenant, phone), n)]
	}
}

// splitActorID is the inverse of wire.ActorID: tenant ids hold no colon,
// a customer id may.
func splitActorID(id string) (tenant, phone string, ok bool) {
	return strings.Cut(id, ":")
}
