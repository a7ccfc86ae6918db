// Package kgoproducer is a diagnostic stand-in for bus.Producer built on
// franz-go's kgo client. The benchmarks use it to test whether the
// producer's batching is what limits Parley's ingress; it is not part of
// Parley.
package kgoproducer

import (
	"context"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Producer has bus.Producer's Produce. kgo differs from the kafka-go async
// writer under bus.Producer where it matters here: with one produce request
// in flight per broker, records that arrive meanwhile wait and all go out in
// the next request, one batch per partition, so batches grow when the broker
// is slow. kafka-go cuts a batch per partition every BatchTimeout and sends
// each as its own request, so a slow broker gets more, smaller batches.
type Producer struct {
	cl *kgo.Client
}

// New makes a client for brokers.
func New(brokers []string) (*Producer, error) {
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(brokers...),
		// acks=all, as bus.Producer; kgo's default, stated for the reader.
		kgo.RequiredAcks(kgo.AllISRAcks()),
		// No linger: a lone webhook goes out at once, and under load the
		// in-flight request is what batches records together.
		kgo.ProducerLinger(0),
		// Java's murmur2 for keyed records, like kafka.Murmur2Balancer.
		kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)),
		kgo.ProduceRequestTimeout(5*time.Second),
	)
	if err != nil {
		return nil, err
	}
	return &Producer{cl: cl}, nil
}

// Produce hands the records to the client and waits for the broker's ack.
func (p *Producer) Produce(ctx context.Context, msgs ...kafka.Message) error {
	recs := make([]*kgo.Record, len(msgs))
	for i, m := range msgs {
		recs[i] = &kgo.Record{Topic: m.Topic, Key: m.Key, Value: m.Value}
	}
	return p.cl.ProduceSync(ctx, recs...).FirstErr()
}

// Close flushes and closes the client.
func (p *Producer) Close() { p.cl.Close() }
