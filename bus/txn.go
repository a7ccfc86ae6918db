package bus

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/parleyhq/parley/internal/retry"
)

var (
	transactions = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "parley_transactions_total",
		Help: "Transactions of the session role, by outcome (committed, aborted, failed).",
	}, []string{"outcome"})
	transactionSeconds = promauto.NewHistogram(prometheus.HistogramOpts{
		Name:    "parley_transaction_seconds",
		Help:    "Time from a batch's poll to its transaction's end.",
		Buckets: prometheus.ExponentialBuckets(0.001, 2, 16),
	})
)

func init() {
	// Exported at 0 from the start, so alerts on a failure rate see a
	// series before the first failure.
	for _, o := range []string{"committed", "aborted", "failed"} {
		transactions.WithLabelValues(o)
	}
}

// ProcessorOptions configure a Processor.
type ProcessorOptions struct {
	Brokers []string
	// Security reaches a TLS or SASL cluster; nil is plaintext.
	Security *Security
	Topic    string
	Group    string
	// TransactionalID names this member's producer. It must be stable
	// across restarts of the same node (a restarted node fences and aborts
	// the transaction its previous life left open at once) and unique
	// among live nodes.
	TransactionalID string
	// SessionTimeout is the group session timeout. Default
	// DefaultSessionTimeout.
	SessionTimeout time.Duration
	// TransactionTimeout is how long the broker lets a transaction stay
	// open before aborting it. A killed node's open transaction holds the
	// read_committed position of every partition it wrote to until then,
	// so it bounds failover with the session timeout. Default: the
	// session timeout.
	TransactionTimeout time.Duration
	// MaxBatch bounds the records of one transaction. Default 2000.
	MaxBatch int
	Logger   *slog.Logger

	// Assigned is called with partitions newly assigned to this member,
	// before any of their records is handed out: the session role
	// restores their sessions here. An error is logged and retried.
	Assigned func(ctx context.Context, partitions []int32) error
	// Revoked is called with partitions this member no longer owns (moved
	// or lost), after the last transaction that handled their records
	// ended.
	Revoked func(partitions []int32)
	// Aborted is called when a batch's transaction did not commit: nothing
	// it produced is visible, its records come again, and whatever the
	// handler changed in memory for those partitions must be undone.
	Aborted func(partitions []int32)
	// Fault, for crash tests only, names a point at which the process
	// kills itself (SIGKILL) in its first transaction: "after-outputs",
	// "after-changelog" (Txn.Checkpoint, called by the handler) or
	// "before-commit" (everything written, offsets not yet committed).
	// The engine sets it from PARLEY_FAULT.
	Fault string
}

// TxnHandler handles one batch of records inside a transaction. It produces
// its outputs through tx and returns once all of them are handed to tx
// (tx.Produce may still be in flight: the transaction's end flushes it). The
// records are in partition order.
type TxnHandler func(ctx context.Context, recs []*kgo.Record, tx *Txn)

// Txn is the open transaction a TxnHandler produces into.
type Txn struct {
	cl    *kgo.Client
	mu    sync.Mutex
	err   error
	fault string
	// promise is produced, bound once.
	promise func(*kgo.Record, error)
}

// Checkpoint marks a step of the handler's work. A crash test that names
// this step (ProcessorOptions.Fault) dies here, SIGKILL, once what was
// produced so far is on the broker (written, not committed).
func (t *Txn) Checkpoint(point string) {
	if t.fault == "" || t.fault != point {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = t.cl.Flush(ctx)
	killSelf(point)
}

// killSelf ends the process as kill -9 does: no deferred call, no flush,
// no leaving the group.
func killSelf(point string) {
	fmt.Fprintf(os.Stderr, "PARLEY_FAULT %s: killing the process\n", point)
	if p, err := os.FindProcess(os.Getpid()); err == nil {
		_ = p.Kill()
	}
	select {} // the signal is on its way
}

// Produce adds r to the transaction. r.Partition must be set (the records
// of a session go to the partition of its inbound record: the changelog,
// outputs and input stay co-partitioned). A failed produce fails the
// transaction: it aborts and the batch is handled again.
func (t *Txn) Produce(r *kgo.Record) {
	t.cl.Produce(context.Background(), r, t.promise)
}

// produced records the first failed produce. One method value per
// transaction (newTxn), not a closure per record.
func (t *Txn) produced(_ *kgo.Record, err error) {
	if err == nil {
		return
	}
	t.mu.Lock()
	if t.err == nil {
		t.err = err
	}
	t.mu.Unlock()
}

func newTxn(cl *kgo.Client, fault string) *Txn {
	t := &Txn{cl: cl, fault: fault}
	t.promise = t.produced
	return t
}

func (t *Txn) failed() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.err
}

// Processor consumes a topic in a consumer group and handles each polled
// batch in one Kafka transaction: whatever the handler produces and the
// batch's consumed offsets commit together or not at all (exactly once,
// KIP-447). Rebalances wait for the open transaction to end
// (BlockRebalanceOnPoll), so a partition is never handled by two members at
// once, and assigned partitions are restored before they are fetched.
type Processor struct {
	o ProcessorOptions

	mu      sync.Mutex
	members map[string]bool // client ids at the last rebalance
}

// NewProcessor creates a processor; Run starts it.
func NewProcessor(o ProcessorOptions) *Processor {
	if o.SessionTimeout == 0 {
		o.SessionTimeout = DefaultSessionTimeout
	}
	if o.TransactionTimeout == 0 {
		o.TransactionTimeout = o.SessionTimeout
	}
	if o.MaxBatch == 0 {
		o.MaxBatch = 2000
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return &Processor{o: o}
}

func (p *Processor) client() (*kgo.GroupTransactSession, error) {
	o := p.o
	opts := append(groupOpts(ConsumerOptions{Brokers: o.Brokers, Security: o.Security, Topic: o.Topic, Group: o.Group, SessionTimeout: o.SessionTimeout, Logger: o.Logger}),
		kgo.TransactionalID(o.TransactionalID),
		kgo.TransactionTimeout(o.TransactionTimeout),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.BlockRebalanceOnPoll(),
		kgo.ProducerLinger(0),
		kgo.ProducerBatchMaxBytes(8<<20),
		kgo.MaxBufferedRecords(1<<20),
		kgo.ClientID(o.TransactionalID),
		kgo.OnPartitionsAssigned(func(ctx context.Context, cl *kgo.Client, m map[string][]int32) {
			parts := m[o.Topic]
			rebalances.WithLabelValues(o.Group, "assigned").Inc()
			o.Logger.Info("partitions assigned", "group", o.Group, "topic", o.Topic, "partitions", parts)
			go p.logMembers(ctx, cl)
			if o.Assigned == nil || len(parts) == 0 || ctx.Err() != nil {
				return
			}
			_ = retry.Backoff{Initial: time.Second, Multiplier: 1, OnRetry: func(_ int, err error, _ time.Duration) {
				o.Logger.Error("restoring assigned partitions failed; retrying", "partitions", parts, "err", err)
			}}.Do(ctx, func(int) error { return o.Assigned(ctx, parts) })
		}),
		kgo.OnPartitionsRevoked(func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
			if parts := m[o.Topic]; len(parts) > 0 {
				rebalances.WithLabelValues(o.Group, "revoked").Inc()
				o.Logger.Info("partitions revoked", "group", o.Group, "topic", o.Topic, "partitions", parts)
				if o.Revoked != nil {
					o.Revoked(parts)
				}
			}
		}),
		kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
			if parts := m[o.Topic]; len(parts) > 0 {
				rebalances.WithLabelValues(o.Group, "lost").Inc()
				o.Logger.Warn("partitions lost (this member was out of the group too long)", "group", o.Group, "topic", o.Topic, "partitions", parts)
				if o.Revoked != nil {
					o.Revoked(parts)
				}
			}
		}),
	)
	return kgo.NewGroupTransactSession(opts...)
}

// Run processes until ctx ends, then leaves the group so the partitions
// move at once. A transaction that cannot end (the producer was fenced or
// failed for good) restarts the member: its partitions are aborted and
// restored again.
func (p *Processor) Run(ctx context.Context, h TxnHandler) error {
	if ctx.Err() != nil {
		return nil
	}
	_ = retry.Backoff{Initial: time.Second, Multiplier: 1, OnRetry: func(_ int, err error, _ time.Duration) {
		p.o.Logger.Error("session transactions failed; rejoining", "err", err)
	}}.Do(ctx, func(int) error { return p.run(ctx, h) })
	return nil
}

func (p *Processor) run(ctx context.Context, h TxnHandler) error {
	s, err := p.client()
	if err != nil {
		return err
	}
	p.o.Logger.Info("joining the group", "group", p.o.Group, "member", p.o.TransactionalID, "session_timeout", p.o.SessionTimeout.String())
	defer p.o.Logger.Info("left the group", "group", p.o.Group, "member", p.o.TransactionalID)
	// Leaving the group hands the partitions over now rather than after
	// the session timeout (and calls Revoked for them).
	defer s.CloseAllowingRebalance()
	for {
		fetches := s.PollRecords(ctx, p.o.MaxBatch)
		if ctx.Err() != nil || fetches.IsClientClosed() {
			return nil
		}
		start := time.Now()
		fetches.EachError(func(topic string, part int32, err error) {
			p.o.Logger.Warn("fetch failed", "topic", topic, "partition", part, "group", p.o.Group, "err", err)
		})
		recs := fetches.Records()
		if len(recs) == 0 {
			s.AllowRebalance()
			continue
		}
		parts := map[int32]bool{}
		for _, r := range recs {
			parts[r.Partition] = true
		}
		if err := s.Begin(); err != nil {
			p.abort(parts)
			return fmt.Errorf("begin transaction: %w", err)
		}
		tx := newTxn(s.Client(), p.o.Fault)
		h(ctx, recs, tx)
		tx.Checkpoint("before-commit")
		want := kgo.TryCommit
		if err := tx.failed(); err != nil {
			p.o.Logger.Warn("a transactional produce failed; aborting the batch", "records", len(recs), "err", err)
			want = kgo.TryAbort
		}
		// End must not be cut short by a stop: a half-ended transaction
		// is aborted by the broker only after its timeout.
		endCtx, cancel := context.WithTimeout(context.Background(), p.o.TransactionTimeout+5*time.Second)
		committed, err := s.End(endCtx, want)
		cancel()
		transactionSeconds.Observe(time.Since(start).Seconds())
		switch {
		case err != nil:
			transactions.WithLabelValues("failed").Inc()
			p.abort(parts)
			return fmt.Errorf("end transaction: %w", err)
		case !committed:
			transactions.WithLabelValues("aborted").Inc()
			p.o.Logger.Warn("transaction aborted (rebalance or failed produce); its records are handled again", "records", len(recs))
			p.abort(parts)
		default:
			transactions.WithLabelValues("committed").Inc()
		}
		s.AllowRebalance()
	}
}

// logMembers logs who is in the group after a rebalance, and who joined or
// left since the last one: "a node left" is the first thing an operator
// wants to read after a failover.
func (p *Processor) logMembers(ctx context.Context, cl *kgo.Client) {
	req := kmsg.NewPtrDescribeGroupsRequest()
	req.Groups = []string{p.o.Group}
	resp, err := req.RequestWith(ctx, cl)
	if err != nil || len(resp.Groups) == 0 {
		return
	}
	now := map[string]bool{}
	for _, m := range resp.Groups[0].Members {
		now[m.ClientID] = true
	}
	p.mu.Lock()
	before := p.members
	p.members = now
	p.mu.Unlock()
	var joined, left []string
	for m := range now {
		if before != nil && !before[m] {
			joined = append(joined, m)
		}
	}
	for m := range before {
		if !now[m] {
			left = append(left, m)
		}
	}
	sort.Strings(joined)
	sort.Strings(left)
	members := make([]string, 0, len(now))
	for m := range now {
		members = append(members, m)
	}
	sort.Strings(members)
	if len(left) > 0 {
		p.o.Logger.Warn("group members left", "group", p.o.Group, "left", left, "members", members)
	}
	if len(joined) > 0 {
		p.o.Logger.Info("group members joined", "group", p.o.Group, "joined", joined, "members", members)
	}
	if before == nil {
		p.o.Logger.Info("group members", "group", p.o.Group, "members", members)
	}
}

func (p *Processor) abort(parts map[int32]bool) {
	if p.o.Aborted != nil {
		p.o.Aborted(keys(parts))
	}
}

func keys(m map[int32]bool) []int32 {
	out := make([]int32, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
