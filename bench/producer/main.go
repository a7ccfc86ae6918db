// Command producer measures the ingress's Kafka leg alone: -conns callers,
// each producing one record and waiting for its ack before the next (what a
// webhook handler does), against the embedded kfake broker, with Parley's
// bus.Producer (kafka-go) and with franz-go's kgo client for comparison.
//
//	go run ./bench/producer
//	go run ./bench/producer -partitions 1 -brokers fsync
//
// Besides records/s it counts produce requests at the broker, which shows
// how well each producer batches: the fsyncing broker pays two fsyncs per
// partition batch, so records per partition batch is what its throughput
// follows.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/parleyhq/parley/bench/internal/kgoproducer"
	"github.com/parleyhq/parley/bench/loadgen"
	"github.com/parleyhq/parley/bus"
)

const topic = "parley.bench"

type producer interface {
	Produce(ctx context.Context, msgs ...kafka.Message) error
}

type result struct {
	Producer          string          `json:"producer"`
	Broker            string          `json:"broker"`
	RecordsPerSec     float64         `json:"records_per_s"`
	RequestsPerSec    float64         `json:"produce_requests_per_s"`
	RecordsPerRequest float64         `json:"records_per_request"`
	RecordsPerBatch   float64         `json:"records_per_partition_batch"`
	Errors            int64           `json:"errors"`
	Latency           loadgen.Latency `json:"latency"`
}

func main() {
	var (
		producers  = flag.String("producers", "bus,kgo", "comma-separated: bus (Parley's kafka-go producer), kgo")
		brokers    = flag.String("brokers", "fsync,nofsync,mem", "comma-separated broker modes: fsync (data dir + fsync per batch, as `parley dev`), nofsync (data dir), mem")
		conns      = flag.Int("conns", 256, "concurrent callers, one record in flight each")
		partitions = flag.Int("partitions", 8, "partitions of the topic")
		duration   = flag.Duration("duration", 5*time.Second, "measurement per combination")
		valueBytes = flag.Int("value", 300, "record value size (an encoded wire.Inbound is ~300 bytes)")
		asJSON     = flag.Bool("json", false, "print results as JSON")
	)
	flag.Parse()
	var results []result
	for b := range strings.SplitSeq(*brokers, ",") {
		for p := range strings.SplitSeq(*producers, ",") {
			r, err := measure(strings.TrimSpace(p), strings.TrimSpace(b), *conns, *partitions, *duration, *valueBytes)
			if err != nil {
				fmt.Fprintf(os.Stderr, "%s/%s: %v\n", p, b, err)
				os.Exit(1)
			}
			results = append(results, r)
		}
	}
	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		enc.Encode(results)
		return
	}
	fmt.Printf("%d callers, %d partitions, %d-byte records, %s per line\n\n", *conns, *partitions, *valueBytes, *duration)
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "producer\tbroker\trecords/s\tproduce req/s\trecords/req\trecords/partition batch\tp50\tp99\terrors\t")
	for _, r := range results {
		fmt.Fprintf(tw, "%s\t%s\t%.0f\t%.0f\t%.1f\t%.1f\t%.2fms\t%.2fms\t%d\t\n", r.Producer, r.Broker,
			r.RecordsPerSec, r.RequestsPerSec, r.RecordsPerRequest, r.RecordsPerBatch,
			float64(r.Latency.P50)/1e6, float64(r.Latency.P99)/1e6, r.Errors)
	}
	tw.Flush()
}

// startBroker mirrors bus.StartEmbedded (8 default partitions, SyncWrites
// with a data dir) but builds the cluster itself to count produce requests.
func startBroker(mode string) (*kfake.Cluster, func(), error) {
	opts := []kfake.Opt{kfake.Ports(0), kfake.DefaultNumPartitions(8)}
	cleanup := func() {}
	if mode == "fsync" || mode == "nofsync" {
		dir, err := os.MkdirTemp("", "parley-bench-producer-")
		if err != nil {
			return nil, nil, err
		}
		cleanup = func() { os.RemoveAll(dir) }
		opts = append(opts, kfake.DataDir(dir))
		if mode == "fsync" {
			opts = append(opts, kfake.SyncWrites())
		}
	} else if mode != "mem" {
		return nil, nil, fmt.Errorf("unknown broker mode %q", mode)
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		cleanup()
		return nil, nil, err
	}
	return c, func() { c.Close(); cleanup() }, nil
}

func measure(which, mode string, conns, partitions int, d time.Duration, valueBytes int) (result, error) {
	c, stop, err := startBroker(mode)
	if err != nil {
		return result{}, err
	}
	defer stop()
	var counting atomic.Bool
	var requests, batches atomic.Int64
	// A control function that never handles the request only looks at it;
	// KeepControl keeps it for every produce request.
	c.ControlKey(int16(kmsg.Produce), func(r kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		if counting.Load() {
			requests.Add(1)
			for _, t := range r.(*kmsg.ProduceRequest).Topics {
				batches.Add(int64(len(t.Partitions)))
			}
		}
		return nil, nil, false
	})
	ctx := context.Background()
	if err := bus.EnsureTopics(ctx, c.ListenAddrs(), partitions, 1, topic); err != nil {
		return result{}, err
	}
	var p producer
	switch which {
	case "bus":
		bp := bus.NewProducer(c.ListenAddrs(), bus.ProducerOptions{})
		defer bp.Close()
		p = bp
	case "kgo":
		kp, err := kgoproducer.New(c.ListenAddrs())
		if err != nil {
			return result{}, err
		}
		defer kp.Close()
		p = kp
	default:
		return result{}, fmt.Errorf("unknown producer %q", which)
	}
	value := make([]byte, valueBytes)
	// The first record waits for metadata; keep it out of the figures.
	if err := p.Produce(ctx, kafka.Message{Topic: topic, Key: []byte("warm-up"), Value: value}); err != nil {
		return result{}, err
	}

	counting.Store(true)
	end := time.Now().Add(d)
	var (
		wg     sync.WaitGroup
		n      atomic.Int64
		errs   atomic.Int64
		mu     sync.Mutex
		allLat []time.Duration
	)
	for i := range conns {
		wg.Go(func() {
			var lat []time.Duration
			for j := 0; ; j++ {
				begin := time.Now()
				if !begin.Before(end) {
					break
				}
				// Distinct keys (one phone each) spread over the
				// partitions as real sessions do.
				key := fmt.Appendf(nil, "acme|+44%05d%06d", i, j)
				pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
				err := p.Produce(pctx, kafka.Message{Topic: topic, Key: key, Value: value})
				cancel()
				if err != nil {
					errs.Add(1)
					continue
				}
				lat = append(lat, time.Since(begin))
				n.Add(1)
			}
			mu.Lock()
			allLat = append(allLat, lat...)
			mu.Unlock()
		})
	}
	wg.Wait()
	counting.Store(false)
	r := result{
		Producer:       which,
		Broker:         mode,
		RecordsPerSec:  float64(n.Load()) / d.Seconds(),
		RequestsPerSec: float64(requests.Load()) / d.Seconds(),
		Errors:         errs.Load(),
		Latency:        loadgen.Summarise(allLat),
	}
	if requests.Load() > 0 {
		r.RecordsPerRequest = float64(n.Load()) / float64(requests.Load())
		r.RecordsPerBatch = float64(n.Load()) / float64(batches.Load())
	}
	return r, nil
}
