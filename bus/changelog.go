package bus

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ReadPartitions reads the committed records of partitions of topic from the
// start to their current end and calls fn for each, in offset order per
// partition (a compacted changelog: the last value of a key wins; a nil
// value is a tombstone). It first waits, up to wait, until no transaction
// is open on those partitions: a member that died mid-transaction leaves
// one open until the broker aborts it, and reading before then could miss
// a commit that is still landing. It returns the records read.
func ReadPartitions(ctx context.Context, brokers []string, sec *Security, topic string, partitions []int32, wait time.Duration, fn func(partition int32, key, value []byte)) (int, error) {
	if len(partitions) == 0 {
		return 0, nil
	}
	cl, err := kgo.NewClient(append(sec.KgoOpts(),
		kgo.SeedBrokers(brokers...),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.KeepControlRecords(),
		kgo.FetchMaxWait(200*time.Millisecond),
		kgo.FetchMaxPartitionBytes(8<<20),
		kgo.FetchMaxBytes(64<<20),
	)...)
	if err != nil {
		return 0, err
	}
	defer cl.Close()

	var ends map[int32]int64
	deadline := time.Now().Add(wait)
	for {
		committed, err := listEnds(ctx, cl, topic, partitions, 1)
		if err != nil {
			return 0, err
		}
		all, err := listEnds(ctx, cl, topic, partitions, 0)
		if err != nil {
			return 0, err
		}
		open := false
		for p, e := range all {
			if committed[p] < e {
				open = true
			}
		}
		ends = committed
		if !open || time.Now().After(deadline) {
			break
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}

	starts := map[int32]kgo.Offset{}
	remaining := map[int32]int64{}
	for _, p := range partitions {
		if ends[p] > 0 {
			starts[p] = kgo.NewOffset().AtStart()
			remaining[p] = ends[p]
		}
	}
	if len(starts) == 0 {
		return 0, nil
	}
	cl.AddConsumePartitions(map[string]map[int32]kgo.Offset{topic: starts})
	n := 0
	idle := 0
	for len(remaining) > 0 {
		fetches := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return n, ctx.Err()
		}
		var eof *kgo.ErrFirstReadEOF
		if err := fetches.Err0(); err != nil && !fetches.IsClientClosed() && !errors.As(err, &eof) {
			return n, fmt.Errorf("read %s: %w", topic, err)
		}
		got := false
		fetches.EachRecord(func(r *kgo.Record) {
			got = true
			end, ok := remaining[r.Partition]
			if !ok {
				return
			}
			if !r.Attrs.IsControl() {
				fn(r.Partition, r.Key, r.Value)
				n++
			}
			if r.Offset+1 >= end {
				delete(remaining, r.Partition)
			}
		})
		if got {
			idle = 0
			continue
		}
		// Compaction can remove the record at the end offset's left; a
		// partition that has nothing more to give is done.
		if idle++; idle >= 5 {
			break
		}
	}
	return n, nil
}

// listEnds lists the end offsets of partitions: isolation 1 is
// read_committed (the last stable offset), 0 the high watermark.
func listEnds(ctx context.Context, cl *kgo.Client, topic string, partitions []int32, isolation int8) (map[int32]int64, error) {
	req := kmsg.NewPtrListOffsetsRequest()
	req.IsolationLevel = isolation
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = topic
	for _, p := range partitions {
		rp := kmsg.NewListOffsetsRequestTopicPartition()
		rp.Partition = p
		rp.Timestamp = -1 // latest
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	shards := cl.RequestSharded(ctx, req)
	out := map[int32]int64{}
	for _, sh := range shards {
		if sh.Err != nil {
			return nil, sh.Err
		}
		resp := sh.Resp.(*kmsg.ListOffsetsResponse)
		for _, t := range resp.Topics {
			for _, p := range t.Partitions {
				if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
					return nil, fmt.Errorf("list offsets %s/%d: %w", topic, p.Partition, err)
				}
				out[p.Partition] = p.Offset
			}
		}
	}
	return out, nil
}
