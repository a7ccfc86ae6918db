package bus

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/segmentio/kafka-go"
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
)

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
	Drain  time.Duration
	Logger *slog.Logger
}

// Consumer reads a topic in a consumer group and commits an offset only when
// the record at it and every record before it in its partition are done
// (at-least-once). Records are handed out in partition order; they may finish
// in any order.
type Consumer struct {
	o       ConsumerOptions
	r       *kafka.Reader
	slots   chan struct{}
	mu      sync.Mutex
	parts   map[int]*partitionTrack
	commits chan struct{}
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
}

// NewConsumer creates a consumer; Run starts it.
func NewConsumer(o ConsumerOptions) *Consumer {
	if o.MaxInFlight == 0 {
		o.MaxInFlight = 10000
	}
	if o.CommitEvery == 0 {
		o.CommitEvery = 100 * time.Millisecond
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return &Consumer{
		o: o,
		r: kafka.NewReader(kafka.ReaderConfig{
			Brokers:  o.Brokers,
			Topic:    o.Topic,
			GroupID:  o.Group,
			MinBytes: 1,
			// kafka-go's default. With 16 MB, the embedded broker spent
			// a fifth of a busy sink's CPU growing fetch responses
			// (bench/sink), for no gain in throughput.
			MaxBytes:       1 << 20,
			MaxWait:        100 * time.Millisecond,
			StartOffset:    kafka.FirstOffset,
			CommitInterval: 0, // commits are ours, synchronous
			QueueCapacity:  1000,
		}),
		slots:    make(chan struct{}, o.MaxInFlight),
		consumed: consumed.WithLabelValues(o.Group, o.Topic),
		parts:    map[int]*partitionTrack{},
		commits:  make(chan struct{}, 1),
	}
}

// Handler receives one record. It must call done exactly once, from any
// goroutine, when the record's work is durable.
type Handler func(ctx context.Context, m kafka.Message, done func())

// Run fetches until ctx ends, then commits what finished and closes the
// reader.
func (c *Consumer) Run(ctx context.Context, h Handler) error {
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
		_ = c.r.Close()
	}()
	for {
		select {
		case c.slots <- struct{}{}:
		case <-ctx.Done():
			c.drain()
			return nil
		}
		m, err := c.r.FetchMessage(ctx)
		if err != nil {
			<-c.slots
			if ctx.Err() != nil {
				c.drain()
				return nil
			}
			if errors.Is(err, io.EOF) {
				return err
			}
			c.o.Logger.Warn("fetch failed", "topic", c.o.Topic, "group", c.o.Group, "err", err)
			time.Sleep(200 * time.Millisecond)
			continue
		}
		c.consumed.Inc()
		c.track(m.Partition, m.Offset)
		partition, offset := m.Partition, m.Offset
		var once sync.Once
		h(ctx, m, func() {
			once.Do(func() {
				c.finish(partition, offset)
				<-c.slots
			})
		})
	}
}

// drain waits up to o.Drain for every record handed out to be done: each
// holds a slot until then.
func (c *Consumer) drain() {
	if c.o.Drain <= 0 {
		return
	}
	deadline := time.Now().Add(c.o.Drain)
	for len(c.slots) > 0 {
		if time.Now().After(deadline) {
			c.o.Logger.Warn("stopping with records not done; the next owner replays them", "topic", c.o.Topic, "group", c.o.Group, "records", len(c.slots))
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (c *Consumer) track(partition int, offset int64) {
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
}

func (c *Consumer) finish(partition int, offset int64) {
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
		if s := c.r.Stats(); s.Lag >= 0 {
			consumerLag.WithLabelValues(c.o.Group, c.o.Topic).Set(float64(s.Lag))
		}
	}
}

// commitReady commits, per partition, the offset after the last record
// that is done together with all before it.
func (c *Consumer) commitReady(ctx context.Context) {
	c.mu.Lock()
	var msgs []kafka.Message
	for part, p := range c.parts {
		if p.ready > p.committed {
			// CommitMessages commits m.Offset+1.
			msgs = append(msgs, kafka.Message{Topic: c.o.Topic, Partition: part, Offset: p.ready - 1})
			p.committed = p.ready
		}
	}
	c.mu.Unlock()
	if len(msgs) == 0 {
		return
	}
	if err := c.r.CommitMessages(ctx, msgs...); err != nil {
		// After a rebalance the commit of a revoked partition fails; its
		// new owner re-reads from the last commit and deduplicates.
		c.o.Logger.Warn("commit failed", "topic", c.o.Topic, "group", c.o.Group, "err", err)
	}
}

// Lag is the reader's last known lag.
func (c *Consumer) Lag() int64 { return c.r.Stats().Lag }
