package main

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/parleyhq/parley/wire"
)

// writeResult is the changelog write phase.
type writeResult struct {
	Records    int     `json:"records"`
	Tombstones int     `json:"tombstones"`
	Bytes      int64   `json:"bytes"`
	Seconds    float64 `json:"seconds"`
	PerS       float64 `json:"records_per_s"`
	MiBPerS    float64 `json:"mib_per_s"`
	Errors     int64   `json:"errors"`
	FirstError string  `json:"first_error,omitempty"`
	// BrokerCPUCores is the broker process's CPU over the write, in cores.
	BrokerCPUCores float64 `json:"broker_cpu_cores"`
	DataDirBytes   int64   `json:"data_dir_bytes"`
	BrokerRSS      uint64  `json:"broker_rss_bytes"`
}

// write produces the dataset to parley.sessions: franz-go's kgo, each
// record in wire.Partition(key) as the session role writes it, async with
// a promise per record, batches up to the broker's 1 MB limit, acks=all
// and idempotent (kgo's defaults), so a key's records keep their order.
func write(ctx context.Context, brokers []string, partitions int, ds *dataset) (writeResult, error) {
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(brokers...),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerBatchMaxBytes(1_000_000),
		kgo.MaxBufferedRecords(256<<10),
		kgo.ProducerLinger(20*time.Millisecond),
	)
	if err != nil {
		return writeResult{}, err
	}
	defer cl.Close()
	var (
		errs  atomic.Int64
		first atomic.Value
	)
	promise := func(_ *kgo.Record, err error) {
		if err != nil && errs.Add(1) == 1 {
			first.Store(err.Error())
		}
	}
	r := writeResult{Records: len(ds.records), Bytes: ds.bytes}
	t0 := time.Now()
	next := t0.Add(5 * time.Second)
	for i, rec := range ds.records {
		if rec.value == nil {
			r.Tombstones++
		}
		cl.Produce(ctx, &kgo.Record{
			Topic:     wire.TopicSessions,
			Key:       rec.key,
			Value:     rec.value,
			Partition: wire.Partition(rec.key, partitions),
		}, promise)
		if i&0xfff == 0 && time.Now().After(next) {
			progress("write: %d of %d records (%.0f/s)", i, len(ds.records), float64(i)/time.Since(t0).Seconds())
			next = next.Add(5 * time.Second)
		}
		if ctx.Err() != nil {
			return r, ctx.Err()
		}
	}
	if err := cl.Flush(ctx); err != nil {
		return r, err
	}
	d := time.Since(t0)
	r.Seconds = d.Seconds()
	r.PerS = float64(r.Records) / d.Seconds()
	r.MiBPerS = float64(r.Bytes) / (1 << 20) / d.Seconds()
	r.Errors = errs.Load()
	if s, ok := first.Load().(string); ok {
		r.FirstError = s
	}
	if r.Errors > 0 {
		return r, fmt.Errorf("write: %d records failed, first: %s", r.Errors, r.FirstError)
	}
	return r, nil
}
