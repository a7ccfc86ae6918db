package bus

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/parleyhq/parley/wire"
)

// EnsureTopics creates the topics that are missing, over plaintext (tests
// and benchmarks against the embedded broker). It goes through
// kafka.Client rather than Conn.CreateTopics: after the latter, kafka-go's
// writers fail for seconds on a stale metadata cache.
func EnsureTopics(ctx context.Context, brokers []string, partitions, replication int, topics ...string) error {
	specs := map[string]map[string]string{}
	for _, t := range topics {
		specs[t] = nil
	}
	return ensureTopics(ctx, brokers, nil, partitions, replication, specs)
}

// EnsureParleyTopics creates every topic Parley uses (wire.Topics, the
// changelog compacted) and checks that the sessions' changelog has as many
// partitions as parley.inbound: a session's state must live in the
// partition of its messages, or a member would restore the wrong sessions.
// It returns the partition count of parley.inbound, which may differ from
// partitions when the topics already existed.
func EnsureParleyTopics(ctx context.Context, brokers []string, sec *Security, partitions, replication int) (int, error) {
	// Metadata first: CreateTopics reports a failed connection (TLS, a
	// login) only as "Broker Not Available".
	client := sec.Client(brokers, 10*time.Second)
	if _, err := client.Metadata(ctx, &kafka.MetadataRequest{}); err != nil {
		return 0, sec.explain(err)
	}
	if err := ensureTopics(ctx, brokers, sec, partitions, replication, wire.Topics); err != nil {
		return 0, err
	}
	md, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{wire.TopicInbound, wire.TopicSessions}})
	if err != nil {
		return 0, fmt.Errorf("topic metadata: %w", err)
	}
	counts := map[string]int{}
	for _, t := range md.Topics {
		counts[t.Name] = len(t.Partitions)
	}
	if counts[wire.TopicInbound] != counts[wire.TopicSessions] || counts[wire.TopicInbound] == 0 {
		return 0, fmt.Errorf("%w: %s has %d partitions, %s %d; give both the same count",
			ErrNotCopartitioned, wire.TopicInbound, counts[wire.TopicInbound], wire.TopicSessions, counts[wire.TopicSessions])
	}
	return counts[wire.TopicInbound], nil
}

// EnsureTopic creates topic with configs unless it exists: for topics
// whose settings come from a role's own options (the sender's ledger
// retention). Parley's fixed topics are wire.Topics (EnsureParleyTopics).
func EnsureTopic(ctx context.Context, brokers []string, sec *Security, topic string, partitions, replication int, configs map[string]string) error {
	return ensureTopics(ctx, brokers, sec, partitions, replication, map[string]map[string]string{topic: configs})
}

func ensureTopics(ctx context.Context, brokers []string, sec *Security, partitions, replication int, specs map[string]map[string]string) error {
	client := sec.Client(brokers, 10*time.Second)
	req := &kafka.CreateTopicsRequest{}
	for t, configs := range specs {
		n := partitions
		if fixed, ok := wire.TopicPartitions[t]; ok {
			n = fixed
		}
		tc := kafka.TopicConfig{
			Topic:             t,
			NumPartitions:     n,
			ReplicationFactor: replication,
		}
		for k, v := range configs {
			tc.ConfigEntries = append(tc.ConfigEntries, kafka.ConfigEntry{ConfigName: k, ConfigValue: v})
		}
		req.Topics = append(req.Topics, tc)
	}
	resp, err := client.CreateTopics(ctx, req)
	if err != nil {
		return fmt.Errorf("create topics: %w", err)
	}
	for topic, err := range resp.Errors {
		if err != nil && !errors.Is(err, kafka.TopicAlreadyExists) {
			return fmt.Errorf("create topic %s: %w", topic, err)
		}
	}
	return nil
}

// Ping reports whether a broker answers a metadata request.
func Ping(ctx context.Context, brokers []string, sec *Security) error {
	client := sec.Client(brokers, 2*time.Second)
	_, err := client.Metadata(ctx, &kafka.MetadataRequest{})
	if err = sec.explain(err); err != nil {
		var ne net.Error
		if errors.As(err, &ne) {
			return fmt.Errorf("broker unreachable: %w", err)
		}
		return err
	}
	return nil
}

// ErrNotCopartitioned says the changelog and its input topic differ in
// partition count: a session's state would live in another partition than
// its messages.
var ErrNotCopartitioned = errors.New("topics are not co-partitioned")
