package delivery

import (
	"context"
	"fmt"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/parleyhq/parley/bus"
)

// recordWriter writes everything the sender produces — ledger entries,
// events, dead letters — with acks=all through one franz-go client.
//
// Not bus.Producer (kafka-go): every send costs a ledger write and an
// events write that its customer's next message waits for, and kafka-go's
// writer sends one request per partition batch, cut every BatchTimeout,
// one in flight per partition. kgo keeps one request in flight per broker
// and puts everything that arrived meanwhile, all partitions, in the next
// one, so batches grow with load instead of requests (see "Outbound" in
// bench/README.md for the difference it makes).
type recordWriter struct {
	cl *kgo.Client
}

func newRecordWriter(brokers []string, sec *bus.Security, ledgerTopic string) (*recordWriter, error) {
	keyed := kgo.StickyKeyPartitioner(nil) // Java's murmur2, as kafka.Murmur2Balancer
	cl, err := kgo.NewClient(append(sec.KgoOpts(),
		kgo.SeedBrokers(brokers...),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		// No linger: a lone send is recorded at once; under load the
		// request in flight is what gathers the next batch.
		kgo.ProducerLinger(0),
		kgo.RecordPartitioner(kgo.BasicConsistentPartitioner(func(topic string) func(*kgo.Record, int) int {
			if topic == ledgerTopic {
				// The ledger partition numbered like the outbound record's.
				return func(r *kgo.Record, n int) int { return int(r.Partition) % n }
			}
			tp := keyed.ForTopic(topic)
			return func(r *kgo.Record, n int) int { return tp.Partition(r, n) }
		})),
		kgo.ProduceRequestTimeout(10*time.Second),
		kgo.RecordDeliveryTimeout(30*time.Second),
	)...)
	if err != nil {
		return nil, fmt.Errorf("kafka client: %w", err)
	}
	return &recordWriter{cl: cl}, nil
}

// write produces msgs (Partition is honoured for the ledger topic only)
// and returns once all are acknowledged, or the first error.
func (w *recordWriter) write(ctx context.Context, msgs ...kafka.Message) error {
	recs := make([]*kgo.Record, len(msgs))
	for i, m := range msgs {
		r := &kgo.Record{Topic: m.Topic, Key: m.Key, Value: m.Value, Partition: int32(m.Partition)}
		for _, h := range m.Headers {
			r.Headers = append(r.Headers, kgo.RecordHeader{Key: h.Key, Value: h.Value})
		}
		recs[i] = r
	}
	return w.cl.ProduceSync(ctx, recs...).FirstErr()
}

func (w *recordWriter) close() { w.cl.Close() }
