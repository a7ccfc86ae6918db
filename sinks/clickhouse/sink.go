package clickhouse

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/parleyhq/parley/bus"
	"github.com/parleyhq/parley/internal/retry"
	"github.com/parleyhq/parley/wire"
)

// SinkOptions tune batching.
type SinkOptions struct {
	// BatchSize is the most events in one insert. Default 50,000: every
	// insert writes a new part per table, and ClickHouse pays per part
	// (files, then merges; an insert is delayed once a partition holds 150
	// parts). bench/sink measured 5,000-event batches at a third of the
	// rate of 50,000.
	BatchSize int
	// FlushEvery bounds how long an event waits for its batch to fill: at
	// low traffic, the delay before the dashboard shows an event. Default
	// 1s, which also bounds inserts to about one per second per table.
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
		o.BatchSize = 50000
	}
	if o.FlushEvery <= 0 {
		o.FlushEvery = time.Second
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

// batch is events to insert together, with their completions.
type batch struct {
	events []flat
	dones  []func()
}

// filling is the batch the consumer appends to. The consumer's goroutine
// decodes each record and appends it under the mutex; Run's loop swaps
// in an empty batch when this one is full or old enough. No channel
// operation per record: at a few hundred thousand records a second, a
// channel send and a select per record were a tenth of the sink's CPU.
type filling struct {
	mu    sync.Mutex
	cur   batch
	since time.Time
	// full is signalled when cur reaches the batch size, first is
	// signalled when it gets its first record (to start the timer).
	full, first chan struct{}
	// free holds emptied batches for reuse, so their arrays are not
	// allocated (and collected) again for every batch.
	free chan batch
}

func (f *filling) add(ev flat, done func(), size int) {
	f.mu.Lock()
	f.cur.events = append(f.cur.events, ev)
	f.cur.dones = append(f.cur.dones, done)
	n := len(f.cur.events)
	if n == 1 {
		f.since = time.Now()
	}
	f.mu.Unlock()
	signal := f.full
	switch n {
	case size:
	case 1:
		signal = f.first
	default:
		return
	}
	select {
	case signal <- struct{}{}:
	default:
	}
}

// take swaps the filling batch for an empty one and returns it.
func (f *filling) take(size int) (batch, time.Time) {
	next := batch{}
	select {
	case next = <-f.free:
	default:
		next = batch{events: make([]flat, 0, size), dones: make([]func(), 0, size)}
	}
	f.mu.Lock()
	b, since := f.cur, f.since
	f.cur = next
	f.mu.Unlock()
	return b, since
}

// recycle returns an inserted batch's arrays for reuse.
func (f *filling) recycle(b batch) {
	clear(b.events) // drop the strings, so the old records can be collected
	clear(b.dones)
	select {
	case f.free <- batch{events: b.events[:0], dones: b.dones[:0]}:
	default:
	}
}

// Run consumes until ctx ends. Then it tries, for ShutdownGrace, to insert
// the batches it holds, and lets the consumer commit what was inserted.
//
// Three stages overlap, because on a small machine they compete for the
// same cores and waiting for one of them is the cost: the consumer's
// goroutine fetches and decodes records into the filling batch; Run's
// loop hands full (or old enough) batches on; inserter goroutines write
// them to ClickHouse. A full batch waits for an inserter, and then the
// consumer waits (MaxInFlight): backpressure instead of unbounded memory
// while ClickHouse is slow or down.
func (s *Sink) Run(ctx context.Context) error {
	consumer := bus.NewConsumer(s.copts)
	// The consumer outlives ctx by the final flush, so that the offsets
	// of that flush are still committed.
	cctx, stopConsumer := context.WithCancel(context.WithoutCancel(ctx))
	defer stopConsumer()
	fill := &filling{full: make(chan struct{}, 1), first: make(chan struct{}, 1), free: make(chan batch, s.o.Inserters+2)}
	fill.cur = batch{events: make([]flat, 0, s.o.BatchSize), dones: make([]func(), 0, s.o.BatchSize)}
	consumerDone := make(chan error, 1)
	go func() {
		consumerDone <- consumer.Run(cctx, func(_ context.Context, m kafka.Message, done func()) {
			ev, ok := s.decode(m.Value, m.Partition, m.Offset)
			if !ok {
				// A poison pill must not block the partition.
				done()
				return
			}
			fill.add(ev, done, s.o.BatchSize)
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
				fill.recycle(b)
			}
		})
	}
	go func() { inserters.Wait(); close(inserterDone) }()

	timer := time.NewTimer(time.Hour)
	timer.Stop()
	// held is a batch taken but not yet handed over (ctx ended while an
	// inserter was awaited).
	var held batch
	// flush takes the filling batch and hands it to an inserter, waiting
	// while all are busy. false: ctx ended while waiting; the batch is
	// held for the shutdown.
	flush := func(ctx context.Context) bool {
		if len(held.events) == 0 {
			held, _ = fill.take(s.o.BatchSize)
		}
		if len(held.events) == 0 {
			return true
		}
		select {
		case batches <- held:
			held = batch{}
			return true
		case <-ctx.Done():
			return false
		}
	}
	// shutdown: the last batch, then wait for the inserters within the
	// grace period; what they could not insert is read again next time.
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
		case <-fill.first:
			// A new batch started filling: it goes at the latest after
			// FlushEvery.
			fill.mu.Lock()
			since := fill.since
			fill.mu.Unlock()
			timer.Reset(max(0, s.o.FlushEvery-time.Since(since)))
		case <-fill.full:
			flush(ctx)
		case <-timer.C:
			fill.mu.Lock()
			n, since := len(fill.cur.events), fill.since
			fill.mu.Unlock()
			if n > 0 && time.Since(since) < s.o.FlushEvery {
				// The batch that started the timer already went (full);
				// this is a younger one.
				timer.Reset(s.o.FlushEvery - time.Since(since))
				continue
			}
			flush(ctx)
		case <-ctx.Done():
			// The batch filled so far goes, within the grace period, while
			// the consumer still runs to commit its offsets afterwards.
			// Records it appends meanwhile are not done, so not
			// committed: the next sink reads them again.
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
func (s *Sink) decode(value []byte, partition int, offset int64) (flat, bool) {
	ev, err := decodeFlat(value)
	if err != nil {
		sinkSkipped.WithLabelValues("decode").Inc()
		s.log.Warn("skipping undecodable record", "partition", partition, "offset", offset, "err", err)
		return ev, false
	}
	if err := ev.check(); err != nil {
		sinkSkipped.WithLabelValues("invalid").Inc()
		s.log.Warn("skipping invalid event", "partition", partition, "offset", offset, "err", err)
		return ev, false
	}
	return ev, true
}

// insert writes one batch, retrying with exponential backoff until it
// succeeds (true) or ctx ends (false). It never gives up on its own: the
// events are only durable once ClickHouse has them.
func (s *Sink) insert(ctx context.Context, events []flat) bool {
	r, err := flatRows(events)
	if err != nil {
		// Cannot happen: decode checked every event. Were it to, no retry
		// could fix it, and holding the batch would stall the sink, so it
		// goes the way of a poison pill.
		s.log.Error("batch rejected before insert", "events", len(events), "err", err)
		return true
	}
	attempts := 0
	policy := retry.Backoff{Initial: 100 * time.Millisecond, Max: s.o.MaxBackoff,
		OnRetry: func(attempt int, err error, wait time.Duration) {
			sinkRetrying.Set(1)
			s.log.Warn("insert failed, retrying", "events", len(events), "attempt", attempt, "backoff", wait, "err", err)
		}}
	err = policy.Do(ctx, func(attempt int) error {
		attempts = attempt
		return s.store.writeRows(ctx, r)
	})
	if err != nil {
		// Do gives up only when ctx ends.
		s.log.Warn("insert abandoned at shutdown; the records will be read again", "events", len(events), "err", err)
		return false
	}
	if attempts > 1 {
		sinkRetrying.Set(0)
		s.log.Info("insert succeeded after retries", "events", len(events), "attempts", attempts)
	}
	return true
}

// Options are the sink's options with the defaults filled in.
func (s *Sink) Options() SinkOptions { return s.o }
