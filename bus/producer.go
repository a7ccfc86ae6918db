package bus

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/segmentio/kafka-go"
)

var produceSeconds = promauto.NewHistogram(prometheus.HistogramOpts{
	Name:    "parley_produce_seconds",
	Help:    "Time from handing records to the producer to the broker's acknowledgement (acks=all).",
	Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
})

// ErrProducerClosed is returned by Produce after Close.
var ErrProducerClosed = errors.New("producer closed")

// Producer group-commits: every caller's records join shared batches of an
// asynchronous kafka-go writer, and each caller waits only for the
// acknowledgement of its own records. One synchronous write per caller would
// cap the ingress at tens of thousands of records a second; batches of many
// callers reach hundreds of thousands.
type Producer struct {
	w      *kafka.Writer
	closed atomic.Bool
}

// ProducerOptions tune batching. The zero value is good for the ingress.
type ProducerOptions struct {
	// BatchTimeout bounds how long a record waits for its batch to fill:
	// the latency a lone webhook pays. Default 2ms.
	BatchTimeout time.Duration
	// BatchSize is the most records in one produce request per partition.
	// Default 200: kafka-go allocates room for a full batch for every
	// batch, and under webhook load batches are small.
	BatchSize int
	// Security reaches a TLS or SASL cluster; nil is plaintext.
	Security *Security
}

// NewProducer writes to any topic (each record names its own) with
// acks=all and Java's murmur2 partitioner, so that other producers and the
// actor placement agree on where a key lives.
func NewProducer(brokers []string, o ProducerOptions) *Producer {
	if o.BatchTimeout == 0 {
		o.BatchTimeout = 2 * time.Millisecond
	}
	if o.BatchSize == 0 {
		o.BatchSize = 200
	}
	p := &Producer{}
	p.w = &kafka.Writer{
		Addr:         kafka.TCP(brokers...),
		Transport:    o.Security.Transport(),
		Balancer:     &kafka.Murmur2Balancer{},
		RequiredAcks: kafka.RequireAll,
		Async:        true,
		BatchTimeout: o.BatchTimeout,
		BatchSize:    o.BatchSize,
		BatchBytes:   8 << 20,
		MaxAttempts:  3,
		WriteTimeout: 5 * time.Second,
		Completion:   complete,
	}
	return p
}

// waiter collects the acknowledgements of one Produce call.
type waiter struct {
	pending atomic.Int32
	once    sync.Once
	done    chan error
}

func (w *waiter) finish(err error) {
	if err != nil {
		w.once.Do(func() { w.done <- err })
		return
	}
	if w.pending.Add(-1) == 0 {
		w.once.Do(func() { w.done <- nil })
	}
}

// complete runs on the writer's goroutines when a batch was acknowledged or
// failed; it wakes the callers whose records were in it.
func complete(msgs []kafka.Message, err error) {
	for i := range msgs {
		if w, ok := msgs[i].WriterData.(*waiter); ok {
			w.finish(err)
		}
	}
}

// Produce hands records to the shared batches and returns once the broker
// acknowledged all of them (nil) or one failed. If ctx ends first it returns
// ctx's error; the records may still be written later, which consumers
// tolerate because they deduplicate.
func (p *Producer) Produce(ctx context.Context, msgs ...kafka.Message) error {
	if p.closed.Load() {
		return ErrProducerClosed
	}
	start := time.Now()
	w := &waiter{done: make(chan error, 1)}
	w.pending.Store(int32(len(msgs)))
	for i := range msgs {
		msgs[i].WriterData = w
	}
	if err := p.w.WriteMessages(ctx, msgs...); err != nil {
		return err
	}
	select {
	case err := <-w.done:
		if err == nil {
			produceSeconds.Observe(time.Since(start).Seconds())
		}
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// ProduceAsync hands records to the shared batches and calls done once with
// the outcome, from a writer goroutine. done must not block.
func (p *Producer) ProduceAsync(ctx context.Context, done func(error), msgs ...kafka.Message) {
	if p.closed.Load() {
		done(ErrProducerClosed)
		return
	}
	w := &waiter{done: make(chan error, 1)}
	w.pending.Store(int32(len(msgs)))
	for i := range msgs {
		msgs[i].WriterData = w
	}
	if err := p.w.WriteMessages(ctx, msgs...); err != nil {
		done(err)
		return
	}
	go func() { done(<-w.done) }()
}

// Close flushes pending batches and stops the writer.
func (p *Producer) Close() error {
	p.closed.Store(true)
	return p.w.Close()
}
