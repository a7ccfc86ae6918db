package clickhouse

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"google.golang.org/protobuf/proto"

	"github.com/parleyhq/parley/bus"
	"github.com/parleyhq/parley/internal/chtest"
	"github.com/parleyhq/parley/internal/kafkatest"
	"github.com/parleyhq/parley/wire"
)

func TestMain(m *testing.M) { chtest.Main(m) }

// openStore opens a store on a database of the test's own.
func openStore(t *testing.T) *Store {
	t.Helper()
	addr := chtest.ForTest(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := Open(ctx, Config{Addr: addr, Database: chtest.Database(t, addr), Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// testLogger logs through t, so output shows with the failing test (or
// -v), and goes quiet once the test is over.
func testLogger(t *testing.T) *slog.Logger {
	w := &testWriter{t: t}
	t.Cleanup(func() { w.mu.Lock(); w.over = true; w.mu.Unlock() })
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct {
	mu   sync.Mutex
	t    *testing.T
	over bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.over {
		w.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

// baseMs is 2024-03-01 23:59:59.900 UTC: the events straddle midnight, so
// they fall in two daily partitions.
const baseMs = 1709337599900

// makeEvents makes n events, ids "<prefix>-i", every third an auth event,
// over several tenants and phones, 7 ms apart.
func makeEvents(prefix string, n int) []*wire.Event {
	evs := make([]*wire.Event, n)
	for i := range n {
		ev := &wire.Event{
			Id:     fmt.Sprintf("%s-%06d", prefix, i),
			Tenant: fmt.Sprintf("tenant-%d", i%3),
			Phone:  fmt.Sprintf("+4479460%05d", i%50),
			AtMs:   baseMs + int64(i)*7,
		}
		if i%3 == 2 {
			ev.Kind = &wire.Event_Auth{Auth: &wire.AuthEvent{Event: "code_sent", ProfileId: "p-" + ev.Phone, Attempt: int32(i % 4)}}
		} else {
			dir := "in"
			if i%2 == 1 {
				dir = "out"
			}
			ev.Kind = &wire.Event_Message{Message: &wire.MessageLog{
				Direction: dir, MessageId: "m-" + ev.Id, ProviderId: "SM" + ev.Id, Channel: "twilio",
				Body: fmt.Sprintf("hello %d", i), ConversationId: "c-" + ev.Phone, QueryType: "booking",
				ProviderAtMs: ev.AtMs - 3, ReplyId: fmt.Sprintf("choice-%d", i%3), Media: "meta-media:" + ev.Id,
			}}
		}
		evs[i] = ev
	}
	return evs
}

// counts are rows in both event tables: all of them (duplicates until a
// merge), deduplicated by FINAL, and distinct event ids.
type counts struct{ raw, final, distinct uint64 }

func count(t *testing.T, s *Store) counts {
	t.Helper()
	var c counts
	for _, table := range []string{TableMessages, TableAuthEvents} {
		var raw, final, distinct uint64
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := s.Conn().QueryRow(ctx, "SELECT count(), uniqExact(event_id) FROM "+table).Scan(&raw, &distinct)
		if err == nil {
			err = s.Conn().QueryRow(ctx, "SELECT count() FROM "+table+" FINAL").Scan(&final)
		}
		cancel()
		if err != nil {
			t.Fatalf("count %s: %v", table, err)
		}
		c.raw, c.final, c.distinct = c.raw+raw, c.final+final, c.distinct+distinct
	}
	return c
}

// optimize merges every part, so plain count() is deduplicated too.
func optimize(t *testing.T, s *Store) {
	t.Helper()
	for _, table := range []string{TableMessages, TableAuthEvents} {
		if err := s.Conn().Exec(context.Background(), "OPTIMIZE TABLE "+table+" FINAL"); err != nil {
			t.Fatalf("optimize %s: %v", table, err)
		}
	}
}

// optimizedTo runs OPTIMIZE FINAL until the tables hold n rows as stored
// (duplicates collapsed). ClickHouse skips an OPTIMIZE without a word
// when a background merge holds the parts it would merge, so one call
// is not always the last merge.
func optimizedTo(t *testing.T, s *Store, n uint64) {
	t.Helper()
	eventually(t, 30*time.Second, "OPTIMIZE FINAL collapses the duplicates", func() (bool, string) {
		optimize(t, s)
		c := count(t, s)
		return c.raw == n && c.final == n, fmt.Sprintf("%+v", c)
	})
}

// eventually polls cond every 20ms until it holds or timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s (%s)", what, timeout, state)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// startBroker starts an embedded Kafka-protocol broker with parley.events.
func startBroker(t *testing.T) []string {
	t.Helper()
	return kafkatest.Start(t, 4, wire.TopicEvents).Addrs()
}

// produce writes events to parley.events, keyed by session as the actors do.
func produce(t *testing.T, p *bus.Producer, evs []*wire.Event) {
	t.Helper()
	msgs := make([]kafka.Message, len(evs))
	for i, ev := range evs {
		v, err := proto.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		msgs[i] = kafka.Message{Topic: wire.TopicEvents, Key: wire.Key(ev.Tenant, ev.Phone), Value: v}
	}
	produceRaw(t, p, msgs...)
}

func produceRaw(t *testing.T, p *bus.Producer, msgs ...kafka.Message) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := p.Produce(ctx, msgs...); err != nil {
		t.Fatal(err)
	}
}

// runSink runs a sink until the returned stop is called; stop waits for
// Run to return and fails the test on its error.
func runSink(t *testing.T, s *Store, brokers []string, o SinkOptions) (stop func()) {
	t.Helper()
	if o.Logger == nil {
		o.Logger = testLogger(t)
	}
	sink := NewSink(s, bus.ConsumerOptions{Brokers: brokers, CommitEvery: 20 * time.Millisecond}, o)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- sink.Run(ctx) }()
	stopped := false
	stop = func() {
		t.Helper()
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-errc:
			if err != nil {
				t.Errorf("sink: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("sink did not stop within 30s")
		}
	}
	t.Cleanup(stop)
	return stop
}

// committedAll reports whether the sink's group has committed every
// partition of parley.events up to its end.
func committedAll(t *testing.T, brokers []string) (bool, string) {
	t.Helper()
	n, state := lag(t, brokers)
	return n == 0, state
}

// lag is how many records of parley.events the sink's group has not
// committed yet, over partitions 0-3, and the offsets per partition.
func lag(t *testing.T, brokers []string) (int64, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	client := &kafka.Client{Addr: kafka.TCP(brokers...)}
	parts := []int{0, 1, 2, 3}
	committed, err := client.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: wire.GroupSink, Topics: map[string][]int{wire.TopicEvents: parts}})
	if err != nil {
		return -1, err.Error()
	}
	var req []kafka.OffsetRequest
	for _, p := range parts {
		req = append(req, kafka.LastOffsetOf(p))
	}
	last, err := client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{wire.TopicEvents: req}})
	if err != nil {
		return -1, err.Error()
	}
	ends := map[int]int64{}
	for _, po := range last.Topics[wire.TopicEvents] {
		ends[po.Partition] = po.LastOffset
	}
	state := ""
	var n int64
	for _, po := range committed.Topics[wire.TopicEvents] {
		state += fmt.Sprintf("p%d %d/%d ", po.Partition, po.CommittedOffset, ends[po.Partition])
		n += ends[po.Partition] - max(po.CommittedOffset, 0)
	}
	return n, state
}
