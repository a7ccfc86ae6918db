package bus

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kgo"
)

// outputsOf reads every committed record of topic through a bus.Consumer
// (read_committed) until want arrived or the deadline passed.
func outputsOf(t *testing.T, brokers []string, topic string, want int, within time.Duration) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	var mu sync.Mutex
	var got []string
	c := NewConsumer(ConsumerOptions{Brokers: brokers, Topic: topic, Group: "reader-" + topic + fmt.Sprint(time.Now().UnixNano())})
	runCtx, stop := context.WithCancel(ctx)
	go func() {
		for {
			mu.Lock()
			n := len(got)
			mu.Unlock()
			if n >= want || ctx.Err() != nil {
				// Linger a moment: more than want would be a duplicate.
				time.Sleep(300 * time.Millisecond)
				stop()
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
	_ = c.Run(runCtx, func(_ context.Context, m kafka.Message, done func()) {
		mu.Lock()
		got = append(got, string(m.Value))
		mu.Unlock()
		done()
	})
	return got
}

func produceN(t *testing.T, brokers []string, topic string, n int) {
	t.Helper()
	p := NewProducer(brokers, ProducerOptions{})
	defer p.Close()
	for i := range n {
		if err := p.Produce(context.Background(), kafka.Message{Topic: topic, Key: []byte(fmt.Sprint(i)), Value: []byte(fmt.Sprint(i))}); err != nil {
			t.Fatal(err)
		}
	}
}

// Every record's output and the record's offset commit together; a batch
// whose transaction aborted is invisible to read_committed readers and is
// handled again, so each input has exactly one output in the end.
func TestProcessorCommitsOutputsWithOffsetsAndRedoesAbortedBatches(t *testing.T) {
	brokers := startBroker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	if err := EnsureTopics(ctx, brokers, 1, 1, "in", "out"); err != nil {
		t.Fatal(err)
	}
	const n = 50
	produceN(t, brokers, "in", n)

	var aborted atomic.Int32
	var failOnce atomic.Bool
	failOnce.Store(true)
	handled := make(chan int, 10*n)
	p := NewProcessor(ProcessorOptions{
		Brokers: brokers, Topic: "in", Group: "proc", TransactionalID: "proc-1",
		SessionTimeout: 6 * time.Second,
		Aborted:        func([]int32) { aborted.Add(1) },
	})
	runCtx, stop := context.WithCancel(ctx)
	ran := make(chan struct{})
	go func() {
		defer close(ran)
		_ = p.Run(runCtx, func(_ context.Context, recs []*kgo.Record, tx *Txn) {
			for _, r := range recs {
				tx.Produce(&kgo.Record{Topic: "out", Partition: r.Partition, Value: append([]byte("out-"), r.Value...)})
				handled <- len(recs)
			}
			if failOnce.CompareAndSwap(true, false) {
				// The first batch's transaction fails: its outputs were
				// written and must never be read.
				tx.mu.Lock()
				tx.err = errors.New("injected produce failure")
				tx.mu.Unlock()
			}
		})
	}()
	got := outputsOf(t, brokers, "out", n, 60*time.Second)
	stop()
	<-ran
	if aborted.Load() == 0 {
		t.Fatal("the failed batch was not reported as aborted")
	}
	seen := map[string]int{}
	for _, v := range got {
		seen[v]++
	}
	for i := range n {
		if c := seen[fmt.Sprintf("out-%d", i)]; c != 1 {
			t.Fatalf("output of record %d read %d times (outputs: %d)", i, c, len(got))
		}
	}
	if c := committedOffset(t, brokers, "proc", "in"); c != n {
		t.Fatalf("committed offset %d, want %d", c, n)
	}
}

// ReadPartitions restores only what was committed: an aborted transaction's
// state records are not part of the changelog.
func TestReadPartitionsSkipsAbortedTransactions(t *testing.T) {
	brokers := startBroker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := EnsureTopics(ctx, brokers, 2, 1, "log"); err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.TransactionalID("writer"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	write := func(commit bool, recs ...*kgo.Record) {
		t.Helper()
		if err := cl.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
		if err := cl.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
			t.Fatal(err)
		}
	}
	write(true, &kgo.Record{Topic: "log", Partition: 0, Key: []byte("a"), Value: []byte("a1")},
		&kgo.Record{Topic: "log", Partition: 1, Key: []byte("b"), Value: []byte("b1")})
	write(false, &kgo.Record{Topic: "log", Partition: 0, Key: []byte("a"), Value: []byte("a-aborted")})
	write(true, &kgo.Record{Topic: "log", Partition: 1, Key: []byte("b"), Value: nil})

	last := map[string]string{}
	n, err := ReadPartitions(ctx, brokers, nil, "log", []int32{0, 1}, 5*time.Second, func(_ int32, k, v []byte) {
		if v == nil {
			delete(last, string(k))
			return
		}
		last[string(k)] = string(v)
	})
	if err != nil {
		t.Fatal(err)
	}
	if n != 3 || len(last) != 1 || last["a"] != "a1" {
		t.Fatalf("read %d records, state %v; want 3 records and a=a1 only (b tombstoned, the aborted write skipped)", n, last)
	}
}
