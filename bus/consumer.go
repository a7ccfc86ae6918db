package bus

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

var (
	consumerLag = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Name: "parley_consumer_lag",
		Help: "Records behind the end of the topic, per consumer group.",
	}, []string{"group", "topic"})
	consumed = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "parley_consumed_total",
		Help: "Records fetched, per consumer group.",
	}, []string{"group", "topic"})
	rebalances = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "parley_rebalances_total",
		Help: "Partition assignment changes seen by this member, per consumer group and kind (assigned, revoked, lost).",
	}, []string{"group", "kind"})
)

// DefaultSessionTimeout is how long the group waits for a silent member
// (a killed node) before its partitions move: the floor of failover.
// kafka-go's and Kafka's 30-45 s defaults meant half a minute of silence;
// Apache Kafka refuses less than 6 s (group.min.session.timeout.ms).
const DefaultSessionTimeout = 10 * time.Second

// RebalanceTimeout is how long a rebalance waits for every member of a
// group to rejoin and sync, given the group's session timeout: what a
// member killed in the middle of a rebalance holds its group for. Twice the
// session timeout leaves a live member time to end the transaction it is
// in (TransactionTimeout defaults to the session timeout) before it
// rejoins.
func RebalanceTimeout(sessionTimeout time.Duration) time.Duration {
	return 2 * sessionTimeout
}

// ConsumerOptions configure a Consumer.
type ConsumerOptions struct {
	Brokers []string
	Topic   string
	Group   string
	// MaxInFlight bounds records handed out and not yet done, so a slow
	// stage applies backpressure instead of buffering without limit.
	// Default 10000.
	MaxInFlight int
	// CommitEvery is how often finished offsets are committed. Default 100ms.
	CommitEvery time.Duration
	// Drain is how long Run, once ctx ends, stops fetching and waits for
	// the records it handed out to be done before its last commit. Zero:
	// no wait. A record still not done is replayed by the next owner;
	// draining keeps a graceful restart from replaying work that was
	// about to finish.
	Drain time.Duration
	// SessionTimeout is the group session timeout. Default
	// DefaultSessionTimeout.
	SessionTimeout time.Duration
	// Security reaches a TLS or SASL cluster; nil is plaintext.
	Security *Security
	Logger   *slog.Logger
}

func (o *ConsumerOptions) defaults() {
	if o.MaxInFlight == 0 {
		o.MaxInFlight = 10000
	}
	if o.CommitEvery == 0 {
		o.CommitEvery = 100 * time.Millisecond
	}
	if o.SessionTimeout == 0 {
		o.SessionTimeout = DefaultSessionTimeout
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
}

// groupOpts are the client options every Parley consumer group shares:
// read_committed (the session role writes in transactions; an aborted
// attempt must never be sent or stored), cooperative-sticky assignment (a
// rebalance moves only the partitions that change owner; the others keep
// running), and a session timeout short enough for a quick failover.
func groupOpts(o ConsumerOptions) []kgo.Opt {
	// The rebalance timeout is stated, not left at kgo's 60 s: a node
	// killed while its join was in flight is not expired by its session
	// timeout (the broker's answer to the join never reached it, so no
	// heartbeat clock started) but only when the rebalance timeout of the
	// group's members runs out, and until then no member of that group
	// gets partitions. Left at 60 s, a kill -9 at the wrong moment kept
	// replies unsent for a minute.
	rebalance := RebalanceTimeout(o.SessionTimeout)
	return append(o.Security.KgoOpts(),
		kgo.SeedBrokers(o.Brokers...),
		kgo.ConsumerGroup(o.Group),
		kgo.ConsumeTopics(o.Topic),
		kgo.DisableAutoCommit(),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.Balancers(kgo.CooperativeStickyBalancer()),
		kgo.SessionTimeout(o.SessionTimeout),
		kgo.RebalanceTimeout(rebalance),
		kgo.HeartbeatInterval(max(o.SessionTimeout/10, 100*time.Millisecond)),
		kgo.FetchMaxWait(100*time.Millisecond),
		kgo.FetchMaxPartitionBytes(1<<20),
		kgo.WithLogger(kgoLogger{o.Logger}),
	)
}

// Consumer reads a topic in a consumer group and commits an offset only when
// the record at it and every record before it in its partition are done
// (at-least-once). Records are handed out in partition order; they may finish
// in any order.
//
// It is franz-go's kgo underneath rather than kafka-go: kafka-go hands out
// records of aborted transactions (it parses the broker's aborted list and
// ignores it), and the session role writes parley.outbound and
// parley.events in transactions. See docs/sessions.md.
type Consumer struct {
	o       ConsumerOptions
	slots   *slots
	mu      sync.Mutex
	parts   map[int32]*partitionTrack
	lag     map[int32]int64
	commits chan struct{}
	cl      *kgo.Client
	// consumed is this consumer's counter, looked up once: a label
	// lookup per record was a seventh of the sink's consuming CPU.
	consumed prometheus.Counter
}

// partitionTrack is the in-flight window of one partition.
type partitionTrack struct {
	pending   []int64 // offsets handed out, in order
	done      map[int64]bool
	committed int64 // next offset to commit (last committed + 1), -1 none
	ready     int64 // highest contiguous done offset + 1, -1 none
	epoch     int32 // leader epoch of the latest record
}

// NewConsumer creates a consumer; Run starts it.
func NewConsumer(o ConsumerOptions) *Consumer {
	o.defaults()
	return &Consumer{
		o:        o,
		slots:    newSlots(o.MaxInFlight),
		consumed: consumed.WithLabelValues(o.Group, o.Topic),
		parts:    map[int32]*partitionTrack{},
		lag:      map[int32]int64{},
		commits:  make(chan struct{}, 1),
	}
}

// Handler receives one record. It must call done exactly once, from any
// goroutine, when the record's work is durable.
type Handler func(ctx context.Context, m kafka.Message, done func())

// Run fetches until ctx ends, then commits what finished and leaves the
// group, so that the partitions move to the other members at once.
func (c *Consumer) Run(ctx context.Context, h Handler) error {
	opts := append(groupOpts(c.o),
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
			rebalances.WithLabelValues(c.o.Group, "assigned").Inc()
			c.o.Logger.Info("partitions assigned", "group", c.o.Group, "topic", c.o.Topic, "partitions", m[c.o.Topic])
		}),
		kgo.OnPartitionsRevoked(func(ctx context.Context, _ *kgo.Client, m map[string][]int32) {
			if len(m[c.o.Topic]) == 0 {
				return
			}
			rebalances.WithLabelValues(c.o.Group, "revoked").Inc()
			c.o.Logger.Info("partitions revoked", "group", c.o.Group, "topic", c.o.Topic, "partitions", m[c.o.Topic])
			// What finished is committed before the partition moves, so
			// its next owner replays as little as possible.
			c.commitReady(ctx)
			c.forget(m[c.o.Topic])
		}),
		kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
			rebalances.WithLabelValues(c.o.Group, "lost").Inc()
			c.o.Logger.Warn("partitions lost", "group", c.o.Group, "topic", c.o.Topic, "partitions", m[c.o.Topic])
			c.forget(m[c.o.Topic])
		}),
	)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return err
	}
	c.cl = cl
	commitCtx, stopCommits := context.WithCancel(context.Background())
	committerDone := make(chan struct{})
	go func() {
		defer close(committerDone)
		c.commitLoop(commitCtx)
	}()
	defer func() {
		stopCommits()
		<-committerDone
		c.commitReady(context.Background())
		cl.Close() // leaves the group
	}()
	for {
		// Every free slot at once: one poll may fill them all.
		free, ok := c.slots.takeFree(ctx)
		if !ok {
			c.drain()
			return nil
		}
		fetches := cl.PollRecords(ctx, free)
		if ctx.Err() != nil {
			c.slots.release(free)
			c.drain()
			return nil
		}
		fetches.EachError(func(topic string, p int32, err error) {
			c.o.Logger.Warn("fetch failed", "topic", topic, "partition", p, "group", c.o.Group, "err", err)
		})
		used := 0
		fetches.EachPartition(func(p kgo.FetchTopicPartition) {
			if n := len(p.Records); n > 0 {
				c.mu.Lock()
				c.lag[p.Partition] = max(p.HighWatermark-p.Records[n-1].Offset-1, 0)
				c.mu.Unlock()
			}
			for _, r := range p.Records {
				used++
				c.consumed.Inc()
				c.track(r.Partition, r.Offset, r.LeaderEpoch)
				partition, offset := r.Partition, r.Offset
				var once sync.Once
				h(ctx, Message(r), func() {
					once.Do(func() {
						c.finish(partition, offset)
						c.slots.release(1)
					})
				})
			}
		})
		c.slots.release(free - used)
		if used == 0 && fetches.IsClientClosed() {
			return nil
		}
	}
}

// Message is a kgo record as the kafka-go message Parley's handlers take.
func Message(r *kgo.Record) kafka.Message {
	m := kafka.Message{Topic: r.Topic, Partition: int(r.Partition), Offset: r.Offset, Key: r.Key, Value: r.Value, Time: r.Timestamp}
	for _, h := range r.Headers {
		m.Headers = append(m.Headers, kafka.Header{Key: h.Key, Value: h.Value})
	}
	return m
}

// drain waits up to o.Drain for every record handed out to be done: each
// holds a slot until then.
func (c *Consumer) drain() {
	if c.o.Drain <= 0 {
		return
	}
	deadline := time.Now().Add(c.o.Drain)
	for c.slots.inUse() > 0 {
		if time.Now().After(deadline) {
			c.o.Logger.Warn("stopping with records not done; the next owner replays them", "topic", c.o.Topic, "group", c.o.Group, "records", c.slots.inUse())
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (c *Consumer) track(partition int32, offset int64, epoch int32) {
	c.mu.Lock()
	defer c.mu.Unlock()
	p := c.parts[partition]
	if p == nil {
		p = &partitionTrack{done: map[int64]bool{}, committed: -1, ready: -1}
		c.parts[partition] = p
	}
	if n := len(p.pending); n > 0 && offset <= p.pending[n-1] {
		// A rebalance or reconnect rewound the partition to its committed
		// offset: forget the old window, the records come again.
		p.pending = p.pending[:0]
		clear(p.done)
	}
	p.pending = append(p.pending, offset)
	p.epoch = epoch
}

// forget drops the windows of partitions this member no longer owns:
// records of them still in flight finish without committing anything.
func (c *Consumer) forget(partitions []int32) {
	c.mu.Lock()
	for _, p := range partitions {
		delete(c.parts, p)
		delete(c.lag, p)
	}
	c.mu.Unlock()
}

func (c *Consumer) finish(partition int32, offset int64) {
	c.mu.Lock()
	p := c.parts[partition]
	if p == nil {
		c.mu.Unlock()
		return
	}
	p.done[offset] = true
	advanced := false
	for len(p.pending) > 0 && p.done[p.pending[0]] {
		delete(p.done, p.pending[0])
		p.ready = p.pending[0] + 1
		p.pending = p.pending[1:]
		advanced = true
	}
	c.mu.Unlock()
	if advanced {
		select {
		case c.commits <- struct{}{}:
		default:
		}
	}
}

func (c *Consumer) commitLoop(ctx context.Context) {
	t := time.NewTicker(c.o.CommitEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		select {
		case <-c.commits:
			c.commitReady(ctx)
		default:
		}
		consumerLag.WithLabelValues(c.o.Group, c.o.Topic).Set(float64(c.Lag()))
	}
}

// commitReady commits, per partition, the offset after the last record
// that is done together with all before it.
func (c *Consumer) commitReady(ctx context.Context) {
	c.mu.Lock()
	offsets := map[int32]kgo.EpochOffset{}
	prev := map[int32]int64{}
	for part, p := range c.parts {
		if p.ready > p.committed {
			offsets[part] = kgo.EpochOffset{Epoch: p.epoch, Offset: p.ready}
			prev[part] = p.committed
			p.committed = p.ready
		}
	}
	c.mu.Unlock()
	if len(offsets) == 0 || c.cl == nil {
		return
	}
	c.cl.CommitOffsetsSync(ctx, map[string]map[int32]kgo.EpochOffset{c.o.Topic: offsets},
		func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
			if err == nil {
				err = commitError(resp)
			}
			if err == nil {
				return
			}
			// After a rebalance the commit of a revoked partition fails;
			// its new owner re-reads from the last commit and
			// deduplicates. Any other failure (a stop cutting the commit
			// short, a broker away) is tried again by the next commit.
			c.o.Logger.Warn("commit failed", "topic", c.o.Topic, "group", c.o.Group, "err", err)
			c.mu.Lock()
			for part, off := range offsets {
				if p := c.parts[part]; p != nil && p.committed == off.Offset {
					p.committed = prev[part]
				}
			}
			c.mu.Unlock()
		})
}

// Lag is the records behind the end of the topic, over the partitions this
// member holds, as of their latest fetches.
func (c *Consumer) Lag() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	var n int64
	for _, l := range c.lag {
		n += l
	}
	return n
}

// slots bound the records handed out and not yet done. Taking every free
// slot in one step matters: a channel used as a semaphore cost a send per
// slot to take and a receive per slot to give back, up to MaxInFlight per
// poll, which at light load was a third of the engine's CPU (bench/engine).
type slots struct {
	mu    sync.Mutex
	used  int
	max   int
	freed chan struct{} // signalled (capacity 1) when slots were released
}

func newSlots(n int) *slots {
	return &slots{max: n, freed: make(chan struct{}, 1)}
}

// takeFree waits until a slot is free and takes every free one; false if
// ctx ended first.
func (s *slots) takeFree(ctx context.Context) (int, bool) {
	for {
		s.mu.Lock()
		if n := s.max - s.used; n > 0 {
			s.used = s.max
			s.mu.Unlock()
			return n, true
		}
		s.mu.Unlock()
		select {
		case <-s.freed:
		case <-ctx.Done():
			return 0, false
		}
	}
}

func (s *slots) release(n int) {
	if n <= 0 {
		return
	}
	s.mu.Lock()
	s.used -= n
	s.mu.Unlock()
	select {
	case s.freed <- struct{}{}:
	default:
	}
}

func (s *slots) inUse() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.used
}
