package clickhouse

import (
	"context"
	"log/slog"
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
	// Room for one batch being inserted and the next one filling, so the
	// consumer keeps fetching during an insert.
	if consumerOpts.MaxInFlight == 0 {
		consumerOpts.MaxInFlight = max(2*o.BatchSize, 10000)
	}
	return &Sink{store: store, copts: consumerOpts, o: o, log: o.Logger.With("role", "clickhouse-sink")}
}

// record is one fetched Kafka record and its completion.
type record struct {
	value []byte
	done  func()
	part  int
	off   int64
}

// Run consumes until ctx ends. Then it tries, for ShutdownGrace, to insert
// the batch it holds, and lets the consumer commit what was inserted.
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
			select {
			case in <- record{value: m.Value, done: done, part: m.Partition, off: m.Offset}:
			case <-hctx.Done():
				// Shutting down: not done, so not committed; read again
				// next time.
			}
		})
	}()

	var (
		events []*wire.Event
		dones  []func()
		timer  = time.NewTimer(time.Hour)
	)
	timer.Stop()
	// flush inserts the held batch and marks its records done. It fails
	// only when ctx ended first; the batch is then still held, for the
	// last attempt at shutdown.
	flush := func(ctx context.Context) {
		if len(events) == 0 || !s.insert(ctx, events) {
			return
		}
		for _, d := range dones {
			d()
		}
		events, dones = events[:0], dones[:0]
		timer.Stop()
	}
	for {
		select {
		case r := <-in:
			ev, ok := s.decode(r)
			if !ok {
				// A poison pill must not block the partition.
				r.done()
				continue
			}
			if len(events) == 0 {
				timer.Reset(s.o.FlushEvery)
			}
			events = append(events, ev)
			dones = append(dones, r.done)
			if len(events) >= s.o.BatchSize {
				flush(ctx)
			}
		case <-timer.C:
			flush(ctx)
		case <-ctx.Done():
			// Take what the consumer already handed over, then one last
			// bounded attempt.
			for len(in) > 0 {
				r := <-in
				if ev, ok := s.decode(r); ok {
					events, dones = append(events, ev), append(dones, r.done)
				} else {
					r.done()
				}
			}
			grace, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.o.ShutdownGrace)
			flush(grace)
			cancel()
			stopConsumer()
			return <-consumerDone
		case err := <-consumerDone:
			// The consumer gave up (its reader closed): what is held
			// can no longer be committed, so it is left for the next
			// sink to read again.
			return err
		}
	}
}

// decode parses and checks one record; false means it can never be
// stored and was logged.
func (s *Sink) decode(r record) (*wire.Event, bool) {
	ev := &wire.Event{}
	if err := proto.Unmarshal(r.value, ev); err != nil {
		sinkSkipped.WithLabelValues("decode").Inc()
		s.log.Warn("skipping undecodable record", "partition", r.part, "offset", r.off, "err", err)
		return nil, false
	}
	if err := CheckEvent(ev); err != nil {
		sinkSkipped.WithLabelValues("invalid").Inc()
		s.log.Warn("skipping invalid event", "partition", r.part, "offset", r.off, "err", err)
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
