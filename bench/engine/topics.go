package main

import (
	"context"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/parleyhq/parley/wire"
)

// topicStat is what one of Parley's topics holds at the end of the drain:
// the sum of its partitions' end offsets (records, plus one control
// record per transaction that wrote to the partition) and the bytes of its
// partitions' files in the embedded broker's data directory.
type topicStat struct {
	Topic string `json:"topic"`
	Ends  int64  `json:"end_offsets"`
	Bytes int64  `json:"bytes"`
}

var statTopics = []string{wire.TopicInbound, wire.TopicSessions, wire.TopicOutbound, wire.TopicEvents, wire.TopicReplies}

// topicStats reads the end offsets from the broker and the sizes from
// dataDir (kfake's layout: partitions/<escaped topic>-<n>/).
func topicStats(ctx context.Context, brokers []string, dataDir string) ([]topicStat, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	client := &kafka.Client{Addr: kafka.TCP(brokers...)}
	meta, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: statTopics})
	if err != nil {
		return nil, err
	}
	req := map[string][]kafka.OffsetRequest{}
	for _, t := range meta.Topics {
		if t.Error != nil {
			return nil, fmt.Errorf("metadata of %s: %w", t.Name, t.Error)
		}
		for _, p := range t.Partitions {
			req[t.Name] = append(req[t.Name], kafka.LastOffsetOf(p.ID))
		}
	}
	res, err := client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: req})
	if err != nil {
		return nil, err
	}
	var out []topicStat
	for _, topic := range statTopics {
		s := topicStat{Topic: topic}
		for _, p := range res.Topics[topic] {
			if p.Error != nil {
				return nil, fmt.Errorf("end offset of %s/%d: %w", topic, p.Partition, p.Error)
			}
			s.Ends += p.LastOffset
		}
		prefix := url.PathEscape(topic) + "-"
		entries, _ := os.ReadDir(filepath.Join(dataDir, "partitions"))
		for _, e := range entries {
			if rest, ok := strings.CutPrefix(e.Name(), prefix); ok && e.IsDir() && !strings.Contains(rest, "-") {
				s.Bytes += dirSize(filepath.Join(dataDir, "partitions", e.Name()))
			}
		}
		out = append(out, s)
	}
	return out, nil
}

// dirSize is the bytes of the regular files under dir.
func dirSize(dir string) int64 {
	var n int64
	filepath.WalkDir(dir, func(_ string, e fs.DirEntry, err error) error {
		if err == nil && e.Type().IsRegular() {
			if fi, err := e.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}
