package clustertest

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// HighWatermark is the end of a partition counting every record written,
// committed or not: a crash test takes it before and after a node dies
// mid-transaction, and what lies between is what the dead attempt wrote.
// Compaction never lowers it.
func (c *Cluster) HighWatermark(topic string, partition int32) (int64, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.Broker.Addr))
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req := kmsg.NewPtrListOffsetsRequest()
	req.IsolationLevel = 0 // read_uncommitted: the high watermark, not the last stable offset
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewListOffsetsRequestTopicPartition()
	rp.Partition = partition
	rp.Timestamp = -1 // latest
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	res, err := req.RequestWith(ctx, cl)
	if err != nil {
		return 0, err
	}
	for _, t := range res.Topics {
		for _, p := range t.Partitions {
			if p.Partition != partition {
				continue
			}
			if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
				return 0, fmt.Errorf("list offsets %s/%d: %w", topic, partition, err)
			}
			return p.Offset, nil
		}
	}
	return 0, fmt.Errorf("list offsets %s/%d: no answer for the partition", topic, partition)
}

// UncommittedRecords reads partition of topic from offset from to its high
// watermark as a read_uncommitted consumer does: records of open and
// aborted transactions too, which no Parley consumer ever sees. A crash
// test reads what the dead attempt wrote with it. Control records (commit
// and abort markers) are left out.
func (c *Cluster) UncommittedRecords(topic string, partition int32, from int64) ([]*kgo.Record, error) {
	end, err := c.HighWatermark(topic, partition)
	if err != nil || end <= from {
		return nil, err
	}
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(c.Broker.Addr),
		kgo.FetchIsolationLevel(kgo.ReadUncommitted()),
		// Kept, so a range ending on a marker is read to its end.
		kgo.KeepControlRecords(),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {partition: kgo.NewOffset().At(from)}}),
		kgo.FetchMaxWait(200*time.Millisecond),
	)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var out []*kgo.Record
	for {
		fetches := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return out, fmt.Errorf("read %s/%d: %d records before the end %d: %w", topic, partition, len(out), end, ctx.Err())
		}
		if err := fetches.Err0(); err != nil {
			return out, fmt.Errorf("read %s/%d: %w", topic, partition, err)
		}
		done := false
		fetches.EachRecord(func(r *kgo.Record) {
			if r.Offset < end && !r.Attrs.IsControl() {
				out = append(out, r)
			}
			if r.Offset+1 >= end {
				done = true
			}
		})
		if done {
			return out, nil
		}
	}
}
