package bus

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
)

func startBroker(t *testing.T) []string {
	t.Helper()
	b, err := StartEmbedded(t.TempDir(), 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b.Addrs()
}

func TestProduceWaitsForAckAndConsumerCommitsOnlyFinishedWork(t *testing.T) {
	brokers := startBroker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := EnsureTopics(ctx, brokers, 1, 1, "t"); err != nil {
		t.Fatal(err)
	}
	p := NewProducer(brokers, ProducerOptions{})
	defer p.Close()

	// Many concurrent callers share batches; each gets its own ack.
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for i := range 100 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- p.Produce(ctx, kafka.Message{Topic: "t", Key: []byte("k"), Value: []byte(fmt.Sprint(i))})
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}

	// First consumer: finish records 0..49 except 10; only 0..9 may commit.
	c := NewConsumer(ConsumerOptions{Brokers: brokers, Topic: "t", Group: "g", CommitEvery: 10 * time.Millisecond})
	runCtx, stop := context.WithCancel(ctx)
	seen := make(chan int64, 100)
	ran := make(chan struct{})
	go func() {
		defer close(ran)
		_ = c.Run(runCtx, func(_ context.Context, m kafka.Message, done func()) {
			if m.Offset < 50 && m.Offset != 10 {
				done()
			}
			seen <- m.Offset
		})
	}()
	for range 100 {
		<-seen
	}
	// Run commits what is ready on its way out; wait for it to return.
	stop()
	<-ran

	// Second consumer in the same group resumes at offset 10.
	c2 := NewConsumer(ConsumerOptions{Brokers: brokers, Topic: "t", Group: "g"})
	runCtx2, stop2 := context.WithCancel(ctx)
	defer stop2()
	first := make(chan int64, 1)
	go func() {
		_ = c2.Run(runCtx2, func(_ context.Context, m kafka.Message, done func()) {
			select {
			case first <- m.Offset:
			default:
			}
			done()
		})
	}()
	select {
	case off := <-first:
		if off != 10 {
			t.Fatalf("resumed at offset %d, want 10 (the first unfinished record)", off)
		}
	case <-ctx.Done():
		t.Fatal("second consumer got nothing")
	}
}

func TestProduceFailsWhenBrokerIsDown(t *testing.T) {
	b, err := StartEmbedded("", 0)
	if err != nil {
		t.Fatal(err)
	}
	brokers := b.Addrs()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := EnsureTopics(ctx, brokers, 1, 1, "t"); err != nil {
		t.Fatal(err)
	}
	b.Close()
	p := NewProducer(brokers, ProducerOptions{})
	defer p.Close()
	pctx, pcancel := context.WithTimeout(ctx, 3*time.Second)
	defer pcancel()
	if err := p.Produce(pctx, kafka.Message{Topic: "t", Value: []byte("x")}); err == nil {
		t.Fatal("produce to a stopped broker succeeded")
	}
}

// committedOffset is the group's committed offset of partition 0 of topic.
// (kafkatest.Committed does the same for other packages; kafkatest imports
// bus, so bus's own tests cannot use it.)
func committedOffset(t *testing.T, brokers []string, group, topic string) int64 {
	t.Helper()
	client := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 10 * time.Second}
	res, err := client.OffsetFetch(context.Background(), &kafka.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{topic: {0}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range res.Topics[topic] {
		if p.Partition == 0 {
			return p.CommittedOffset
		}
	}
	t.Fatalf("no committed offset of %s/0 for group %s", topic, group)
	return 0
}

// With Drain, a consumer stopped while its records are still being worked
// on waits for them and commits them: a graceful restart replays nothing.
// A record that is not done within Drain is left to be replayed.
func TestConsumerDrainsHandedOutRecordsBeforeTheLastCommit(t *testing.T) {
	brokers := startBroker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cases := []struct {
		name   string
		drain  time.Duration
		finish time.Duration // how long after the stop the records are done
		want   int64         // committed offset after Run returned
	}{
		{"drained", 5 * time.Second, 300 * time.Millisecond, 20},
		{"no drain", 0, 300 * time.Millisecond, 0},
		{"not done within the drain", 100 * time.Millisecond, 3 * time.Second, 0},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			topic := fmt.Sprintf("drain%d", i)
			if err := EnsureTopics(ctx, brokers, 1, 1, topic); err != nil {
				t.Fatal(err)
			}
			p := NewProducer(brokers, ProducerOptions{})
			defer p.Close()
			for j := range 20 {
				if err := p.Produce(ctx, kafka.Message{Topic: topic, Value: []byte(fmt.Sprint(j))}); err != nil {
					t.Fatal(err)
				}
			}
			c := NewConsumer(ConsumerOptions{Brokers: brokers, Topic: topic, Group: "g" + topic, Drain: tc.drain})
			runCtx, stop := context.WithCancel(ctx)
			var mu sync.Mutex
			var dones []func()
			handed := make(chan struct{}, 20)
			ran := make(chan struct{})
			go func() {
				defer close(ran)
				_ = c.Run(runCtx, func(_ context.Context, _ kafka.Message, done func()) {
					mu.Lock()
					dones = append(dones, done)
					mu.Unlock()
					handed <- struct{}{}
				})
			}()
			for range 20 {
				<-handed
			}
			stop()
			// The work finishes a moment after the stop.
			tm := time.AfterFunc(tc.finish, func() {
				mu.Lock()
				defer mu.Unlock()
				for _, d := range dones {
					d()
				}
			})
			<-ran
			tm.Stop()
			if got := committedOffset(t, brokers, "g"+topic, topic); got != tc.want && !(tc.want == 0 && got < 0) {
				t.Fatalf("committed offset %d, want %d", got, tc.want)
			}
		})
	}
}
