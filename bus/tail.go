package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Tail follows every partition of topic from its current end (committed
// records only) and calls fn for each new record until ctx ends. It returns
// once positioned, so a record produced after it returned is seen; the
// follower runs in the background. Every node tails parley.replies: the
// answer to a command comes back to the node whose caller waits for it,
// wherever the session ran.
func Tail(ctx context.Context, brokers []string, sec *Security, topic string, log *slog.Logger, fn func(key, value []byte)) error {
	cl, parts, ends, err := openTopic(ctx, brokers, sec, topic, log)
	if err != nil {
		return err
	}
	starts := map[int32]kgo.Offset{}
	for _, p := range parts {
		starts[p] = kgo.NewOffset().At(ends[p])
	}
	cl.AddConsumePartitions(map[string]map[int32]kgo.Offset{topic: starts})
	go func() {
		defer cl.Close()
		for {
			fetches := cl.PollFetches(ctx)
			if ctx.Err() != nil || fetches.IsClientClosed() {
				return
			}
			fetches.EachError(func(t string, p int32, err error) {
				log.Warn("tail fetch failed", "topic", t, "partition", p, "err", err)
			})
			fetches.EachRecord(func(r *kgo.Record) { fn(r.Key, r.Value) })
		}
	}()
	return nil
}

// openTopic is a client reading committed records of topic, with extra
// options, and the topic's partitions and their end offsets: where Tail
// starts and where Follow has caught up.
func openTopic(ctx context.Context, brokers []string, sec *Security, topic string, log *slog.Logger, extra ...kgo.Opt) (*kgo.Client, []int32, map[int32]int64, error) {
	opts := append(sec.KgoOpts(),
		kgo.SeedBrokers(brokers...),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.FetchMaxWait(100*time.Millisecond),
		kgo.WithLogger(kgoLogger{log}),
	)
	cl, err := kgo.NewClient(append(opts, extra...)...)
	if err != nil {
		return nil, nil, nil, err
	}
	parts, err := partitionsOf(ctx, cl, topic)
	if err != nil {
		cl.Close()
		return nil, nil, nil, err
	}
	ends, err := listEnds(ctx, cl, topic, parts, 1)
	if err != nil {
		cl.Close()
		return nil, nil, nil, err
	}
	return cl, parts, ends, nil
}

// partitionsOf lists the partitions of topic.
func partitionsOf(ctx context.Context, cl *kgo.Client, topic string) ([]int32, error) {
	req := kmsg.NewPtrMetadataRequest()
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr(topic)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return nil, err
	}
	for _, t := range resp.Topics {
		if t.Topic != nil && *t.Topic == topic {
			parts := make([]int32, 0, len(t.Partitions))
			for _, p := range t.Partitions {
				parts = append(parts, p.Partition)
			}
			if len(parts) > 0 {
				return parts, nil
			}
		}
	}
	return nil, fmt.Errorf("topic %s not found", topic)
}

// Follow reads every partition of topic from its start (committed records
// only) and calls fn for each record, then keeps following it until ctx
// ends. It returns once it read what the topic held when it was called
// (calling caughtUp first), or with an error; the follower runs in the
// background after. fn runs on one goroutine; a nil value is a
// tombstone. Every node follows the compacted parley.config this way:
// tenants and keys as they are, then each change as it comes.
func Follow(ctx context.Context, brokers []string, sec *Security, topic string, log *slog.Logger, fn func(key, value []byte), caughtUp func()) error {
	cl, parts, ends, err := openTopic(ctx, brokers, sec, topic, log,
		kgo.KeepControlRecords(),
		kgo.FetchMaxPartitionBytes(8<<20),
		kgo.FetchMaxBytes(64<<20),
	)
	if err != nil {
		return err
	}
	starts := map[int32]kgo.Offset{}
	remaining := map[int32]int64{}
	for _, p := range parts {
		starts[p] = kgo.NewOffset().AtStart()
		if ends[p] > 0 {
			remaining[p] = ends[p]
		}
	}
	cl.AddConsumePartitions(map[string]map[int32]kgo.Offset{topic: starts})
	ready := make(chan struct{})
	signal := func() {
		if ready != nil {
			if caughtUp != nil {
				caughtUp()
			}
			close(ready)
			ready = nil
		}
	}
	done := ready
	go func() {
		defer cl.Close()
		idle := 0
		if len(remaining) == 0 {
			signal()
		}
		for {
			fetches := cl.PollFetches(ctx)
			if ctx.Err() != nil || fetches.IsClientClosed() {
				return
			}
			fetches.EachError(func(t string, p int32, err error) {
				var eof *kgo.ErrFirstReadEOF
				if !errors.As(err, &eof) {
					log.Warn("follow fetch failed", "topic", t, "partition", p, "err", err)
				}
			})
			got := false
			fetches.EachRecord(func(r *kgo.Record) {
				got = true
				if !r.Attrs.IsControl() {
					fn(r.Key, r.Value)
				}
				if end, ok := remaining[r.Partition]; ok && r.Offset+1 >= end {
					delete(remaining, r.Partition)
				}
			})
			if ready == nil {
				continue
			}
			switch {
			case got:
				idle = 0
			case len(remaining) > 0:
				// Compaction can remove the records just before the end
				// offset: a partition with nothing more to give is read.
				if idle++; idle >= 5 {
					clear(remaining)
				}
			}
			if len(remaining) == 0 {
				signal()
			}
		}
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
