// Package kafkatest starts Parley's embedded Kafka-protocol broker for
// tests: real TCP, real consumer groups, a temporary directory of the
// test's own.
package kafkatest

import (
	"context"
	"testing"
	"time"

	"github.com/parleyhq/parley/bus"
)

// Start starts a broker that closes when the test ends, with topics
// created (partitions each, replication 1) when any are named.
func Start(t testing.TB, partitions int, topics ...string) *bus.Embedded {
	t.Helper()
	b, err := bus.StartEmbedded(t.TempDir(), 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	if len(topics) == 0 {
		return b
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := bus.EnsureTopics(ctx, b.Addrs(), partitions, 1, topics...); err != nil {
		t.Fatal(err)
	}
	return b
}
