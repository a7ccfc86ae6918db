package clickhouse

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"
	"google.golang.org/protobuf/proto"

	"github.com/parleyhq/parley/bus"
	"github.com/parleyhq/parley/wire"
)

// SinkOptions tune batching.
type SinkOptions struct {
	// BatchSize is the most events in one insert. Default 5000.
	BatchSize int
	// FlushEvery bounds how long an event waits for its batch to fill.
	// Default 200ms.
	FlushEvery time.Duration
	// MaxBackoff caps the wait between retries of a failed insert.
	// Default 5s.
	MaxBackoff time.Duration
	// Inserters is how many batches are inserted at once. Default 2: while
	// ClickHouse writes one batch's parts, the next batch's rows are sent,
	// which keeps both the server and the network busy.
	Inserters int
	// ShutdownGrace is how long Run, once its context ends, keeps trying
	// to insert the batch it holds. What it cannot insert is not committed
	// and is read again by the next sink. Default 5s.
	ShutdownGrace time.Duration
	Logger        *slog.Logger
}

// Sink moves parley.events into ClickHouse. A record's offset is committed
// only after the insert holding its event succeeded (bus.Consumer commits
// only records whose done was called, in partition order), so a crash
// loses nothing; what it replays collapses in the ReplacingMergeTree
// tables. A failed insert is retried, with backoff, forever: while
// ClickHouse is down the sink stops consuming and Kafka holds the backlog.
type Sink struct {
	store *Store
	copts bus.ConsumerOptions
	o     SinkOptions
	log   *slog.Logger
}

// NewSink creates a sink; Run starts it. Empty Topic and Group in
// consumerOpts default to parley.events and clickhouse-sink.
func NewSink(store *Store, consumerOpts bus.ConsumerOptions, o SinkOptions) *Sink {
	if o.BatchSize <= 0 {
		o.BatchSize = 5000
	}
	if o.FlushEvery <= 0 {
		o.FlushEvery = 200 * time.Millisecond
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 5 * time.Second
	}
	if o.Inserters <= 0 {
		o.Inserters = 2
	}
	if o.ShutdownGrace <= 0 {
		o.ShutdownGrace = 5 * time.Second
	}
	if o.Logger == nil {
		o.Logger = consumerOpts.Logger
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if consumerOpts.Topic == "" {
		consumerOpts.Topic = wire.TopicEvents
	}
	if consumerOpts.Group == "" {
		consumerOpts.Group = wire.GroupSink
	}
	if consumerOpts.Logger == nil {
		consumerOpts.Logger = o.Logger
	}
	// Room for the batches being inserted, one full and waiting, and the
	// next one filling, so the consumer keeps fetching during inserts.
	if consumerOpts.MaxInFlight == 0 {
		consumerOpts.MaxInFlight = max((o.Inserters+2)*o.BatchSize, 10000)
	}
	return &Sink{store: store, copts: consumerOpts, o: o, log: o.Logger.With("role", "clickhouse-sink")}
}

// record is one decoded event and its completion.
type record struct {
	ev   *wire.Event
	done func()
}

// batch is events to insert together, with their completions.
type batch struct {
	events []*wire.Event
	dones  []func()
}

// Run consumes until ctx ends. Then it tries, for ShutdownGrace, to insert
// the batches it holds, and lets the consumer commit what was inserted.
//
// Three stages overlap, because on a small machine they compete for the
// same cores and waiting for one of them is the cost: the consumer's
// goroutine fetches and decodes records; Run's loop groups them into
// batches; inserter goroutines write batches to ClickHouse while the next
// one fills. A full batch waits for the inserter, and then the
// consumer waits (MaxInFlight): backpressure instead of unbounded memory
// while ClickHouse is slow or down.
func (s *Sink) Run(ctx context.Context) error {
	consumer := bus.NewConsumer(s.copts)
	// The consumer outlives ctx by the final flush, so that the offsets
	// of that flush are still committed.
	cctx, stopConsumer := context.WithCancel(context.WithoutCancel(ctx))
	defer stopConsumer()
	in := make(chan record, s.o.BatchSize)
	consumerDone := make(chan error, 1)
	go func() {
		consumerDone <- consumer.Run(cctx, func(hctx context.Context, m kafka.Message, done func()) {
			ev, ok := s.decode(m.Value, m.Partition, m.Offset)
			if !ok {
				// A poison pill must not block the partition.
				done()
				return
			}
			select {
			case in <- record{ev: ev, done: done}:
			case <-hctx.Done():
				// Shutting down: not done, so not committed; read again
				// next time.
			}
		})
	}()

	// The inserters. Their context lives past ctx by the shutdown grace,
	// so that the batches they hold get a last chance. Batches may finish
	// in any order: the consumer commits a partition's offset only up to
	// its first record not yet done.
	ictx, stopInserts := context.WithCancel(context.WithoutCancel(ctx))
	defer stopInserts()
	batches := make(chan batch)
	inserterDone := make(chan struct{})
	var inserters sync.WaitGroup
	for range s.o.Inserters {
		inserters.Go(func() {
			for b := range batches {
				if !s.insert(ictx, b.events) {
					// Abandoned at shutdown: not done, so not committed.
					continue
				}
				for _, d := range b.dones {
					d()
				}
			}
		})
	}
	go func() { inserters.Wait(); close(inserterDone) }()

	var (
		cur   batch
		timer = time.NewTimer(time.Hour)
	)
	timer.Stop()
	// flush hands the filling batch to the inserter, waiting while it
	// inserts the previous one. false: ctx ended while waiting.
	flush := func(ctx context.Context) bool {
		if len(cur.events) == 0 {
			return true
		}
		select {
		case batches <- cur:
			cur = batch{}
			timer.Stop()
			return true
		case <-ctx.Done():
			return false
		}
	}
	// shutdown: the last batch, then wait for the inserter within the
	// grace period; what it could not insert is read again next time.
	shutdown := func() {
		grace, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.o.ShutdownGrace)
		defer cancel()
		flush(grace)
		close(batches)
		select {
		case <-inserterDone:
		case <-grace.Done():
			stopInserts()
			<-inserterDone
		}
	}
	for {
		select {
		case r := <-in:
			if len(cur.events) == 0 {
				timer.Reset(s.o.FlushEvery)
			}
			cur.events = append(cur.events, r.ev)
			cur.dones = append(cur.dones, r.done)
			if len(cur.events) >= s.o.BatchSize {
				flush(ctx)
			}
		case <-timer.C:
			flush(ctx)
		case <-ctx.Done():
			// Take what the consumer already handed over, then the last
			// bounded attempt.
			for len(in) > 0 {
				r := <-in
				cur.events, cur.dones = append(cur.events, r.ev), append(cur.dones, r.done)
			}
			shutdown()
			stopConsumer()
			return <-consumerDone
		case err := <-consumerDone:
			// The consumer gave up (its reader closed): what is held can
			// no longer be committed, so it is left for the next sink to
			// read again.
			stopInserts()
			close(batches)
			<-inserterDone
			return err
		}
	}
}

// decode parses and checks one record; false means it can never be
// stored and was logged.
func (s *Sink) decode(value []byte, partition int, offset int64) (*wire.Event, bool) {
	ev := &wire.Event{}
	if err := proto.Unmarshal(value, ev); err != nil {
		sinkSkipped.WithLabelValues("decode").Inc()
		s.log.Warn("skipping undecodable record", "partition", partition, "offset", offset, "err", err)
		return nil, false
	}
	if err := CheckEvent(ev); err != nil {
		sinkSkipped.WithLabelValues("invalid").Inc()
		s.log.Warn("skipping invalid event", "partition", partition, "offset", offset, "err", err)
		return nil, false
	}
	return ev, true
}

// insert writes one batch, retrying with exponential backoff until it
// succeeds (true) or ctx ends (false). It never gives up on its own: the
// events are only durable once ClickHouse has them.
func (s *Sink) insert(ctx context.Context, events []*wire.Event) bool {
	r, err := toRows(events)
	if err != nil {
		// Cannot happen: decode checked every event. Were it to, no retry
		// could fix it, and holding the batch would stall the sink, so it
		// goes the way of a poison pill.
		s.log.Error("batch rejected before insert", "events", len(events), "err", err)
		return true
	}
	backoff := 100 * time.Millisecond
	for attempt := 1; ; attempt++ {
		err := s.store.writeRows(ctx, r)
		if err == nil {
			if attempt > 1 {
				sinkRetrying.Set(0)
				s.log.Info("insert succeeded after retries", "events", len(events), "attempts", attempt)
			}
			return true
		}
		if ctx.Err() != nil {
			s.log.Warn("insert abandoned at shutdown; the records will be read again", "events", len(events), "err", err)
			return false
		}
		sinkRetrying.Set(1)
		s.log.Warn("insert failed, retrying", "events", len(events), "attempt", attempt, "backoff", backoff, "err", err)
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return false
		}
		backoff = min(2*backoff, s.o.MaxBackoff)
	}
}

// Options are the sink's options with the defaults filled in.
func (s *Sink) Options() SinkOptions { return s.o }
