package clickhouse

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"google.golang.org/protobuf/proto"

	"github.com/parleyhq/parley/bus"
	"github.com/parleyhq/parley/internal/chserver"
	"github.com/parleyhq/parley/wire"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// all reports whether the tables hold exactly n distinct events.
func all(t *testing.T, s *Store, n uint64) func() (bool, string) {
	return func() (bool, string) {
		c := count(t, s)
		return c.distinct == n, fmt.Sprintf("%+v, want %d", c, n)
	}
}

func TestSinkInsertsEverythingAndCommits(t *testing.T) {
	s := openStore(t)
	brokers := startBroker(t)
	p := bus.NewProducer(brokers, bus.ProducerOptions{})
	defer p.Close()

	const n = 3000
	evs := makeEvents("s", n)
	produce(t, p, evs[:n/2])
	// Poison pills in the middle of the stream: bytes that are not an
	// Event, and an Event the schema cannot hold. Both are skipped, and
	// neither holds up the records behind it in its partition.
	bad, _ := proto.Marshal(&wire.Event{Id: "bad", Tenant: "tenant-0", Phone: "+447946000000",
		Kind: &wire.Event_Message{Message: &wire.MessageLog{Direction: "sideways"}}})
	produceRaw(t, p,
		kafka.Message{Topic: wire.TopicEvents, Key: wire.Key("tenant-0", "+447946000000"), Value: []byte("\xff\xff not protobuf")},
		kafka.Message{Topic: wire.TopicEvents, Key: wire.Key("tenant-0", "+447946000000"), Value: bad},
	)
	produce(t, p, evs[n/2:])

	stop := runSink(t, s, brokers, SinkOptions{BatchSize: 500, FlushEvery: 50 * time.Millisecond})
	eventually(t, 60*time.Second, "sink inserts every event", all(t, s, n))
	eventually(t, 10*time.Second, "offsets committed to the end, poison pills included", func() (bool, string) {
		return committedAll(t, brokers)
	})
	stop()
	if c := count(t, s); c.final != n || c.distinct != n {
		t.Fatalf("counts %+v, want %d", c, n)
	}
}

func TestSinkRestartAfterPartialProcessingYieldsExactlyN(t *testing.T) {
	s := openStore(t)
	brokers := startBroker(t)
	p := bus.NewProducer(brokers, bus.ProducerOptions{})
	defer p.Close()

	const n = 20000
	evs := makeEvents("p", n)
	produce(t, p, evs)
	// A sink before this one inserted the first 1000 events and died
	// before committing their offsets: they will be read and inserted
	// again.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.WriteEvents(ctx, evs[:1000]); err != nil {
		t.Fatal(err)
	}

	// First sink: stopped part way through.
	stop1 := runSink(t, s, brokers, SinkOptions{BatchSize: 200, FlushEvery: 20 * time.Millisecond})
	eventually(t, 60*time.Second, "first sink makes progress", func() (bool, string) {
		c := count(t, s)
		return c.distinct >= 4000, fmt.Sprintf("%+v", c)
	})
	stop1()
	partial := count(t, s)
	t.Logf("first sink stopped at %+v of %d", partial, n)

	// Second sink, same group: resumes from the committed offsets.
	stop2 := runSink(t, s, brokers, SinkOptions{BatchSize: 1000, FlushEvery: 20 * time.Millisecond})
	eventually(t, 60*time.Second, "second sink catches up", all(t, s, n))
	eventually(t, 10*time.Second, "offsets committed to the end", func() (bool, string) {
		return committedAll(t, brokers)
	})
	stop2()

	c := count(t, s)
	if c.final != n || c.distinct != n {
		t.Fatalf("counts %+v, want exactly %d", c, n)
	}
	if c.raw <= n {
		t.Logf("no duplicate rows left to collapse (%+v): merges got there first", c)
	}
	optimizedTo(t, s, n)
}

// TestSinkSurvivesClickHouseRestart stops the real server in the middle of
// the stream for a minute, keeps producing, and brings the server back on
// the same data and ports: meanwhile the sink backs off (a handful of
// attempts, not hundreds) and commits nothing, so the lag grows; then it
// retries the batch it holds and catches up with nothing lost or doubled.
func TestSinkSurvivesClickHouseRestart(t *testing.T) {
	const outage = time.Minute
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	srv, err := chserver.Start(ctx, chserver.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Stop() })
	s, err := Open(ctx, Config{Addr: srv.Addr(), Database: "parley", Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	brokers := startBroker(t)
	p := bus.NewProducer(brokers, bus.ProducerOptions{})
	defer p.Close()

	const n = 6000
	evs := makeEvents("k", n)
	// The default MaxBackoff (5s).
	stop := runSink(t, s, brokers, SinkOptions{BatchSize: 100, FlushEvery: 20 * time.Millisecond})

	produce(t, p, evs[:2000])
	eventually(t, 60*time.Second, "first events inserted", func() (bool, string) {
		c := count(t, s)
		return c.distinct >= 1000, fmt.Sprintf("%+v", c)
	})
	// Stop the server while the sink is still inserting, and keep
	// producing while it is down.
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := s.Ping(ctx); err == nil {
		t.Fatal("Ping succeeded with the server stopped")
	}
	failuresBefore := failedInserts()
	lagAtStop, _ := lag(t, brokers)
	for i := 2000; i < n; i += 500 {
		produce(t, p, evs[i:i+500])
	}
	time.Sleep(outage)
	lagAfter, state := lag(t, brokers)
	if lagAfter < lagAtStop+int64(n-2000) {
		t.Fatalf("lag %d after the outage (%s), want at least %d: %d at the stop and %d produced since, nothing committed",
			lagAfter, state, lagAtStop+int64(n-2000), lagAtStop, n-2000)
	}
	// Backoff from 100ms doubling to 5s, per inserter (2): about 17
	// attempts each in a minute; without backoff it would be hundreds.
	attempts := failedInserts() - failuresBefore
	if attempts < 2 || attempts > 50 {
		t.Fatalf("%v failed inserts during a %s outage, want a backed-off handful", attempts, outage)
	}
	t.Logf("outage %s: %v failed inserts, lag %d -> %d", outage, attempts, lagAtStop, lagAfter)

	srv, err = chserver.Start(ctx, srv.Options())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Stop() })
	if err := s.Ping(ctx); err != nil {
		t.Fatalf("Ping after restart: %v", err)
	}
	eventually(t, 90*time.Second, "sink catches up after the restart", all(t, s, n))
	eventually(t, 10*time.Second, "offsets committed to the end", func() (bool, string) {
		return committedAll(t, brokers)
	})
	stop()
	if c := count(t, s); c.final != n || c.distinct != n {
		t.Fatalf("counts %+v, want exactly %d", c, n)
	}
}

// failedInserts is parley_clickhouse_insert_errors_total over the tables:
// a failed attempt stops at its first failed table, so this counts
// attempts.
func failedInserts() float64 {
	var n float64
	for _, t := range EventTables {
		n += counterValue(insertErrors.WithLabelValues(t))
	}
	return n
}

// counterValue reads a Prometheus counter.
func counterValue(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		return -1
	}
	return m.GetCounter().GetValue()
}
