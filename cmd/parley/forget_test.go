package main

import (
	"context"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"google.golang.org/protobuf/proto"

	"github.com/parleyhq/parley/bus"
	"github.com/parleyhq/parley/wire"
)

// `parley forget --config` queues the session's erasure on the customer's
// own stream, so the node holding the session (or the next to start)
// erases it and tombstones the changelog (actors' TestErasedSessionIsNotRestored).
func TestForgetQueuesTheSessionsErasure(t *testing.T) {
	b, err := bus.StartEmbedded(t.TempDir(), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := bus.EnsureParleyTopics(ctx, b.Addrs(), nil, 1, 1); err != nil {
		t.Fatal(err)
	}
	if err := forgetSession(ctx, b.Addrs(), nil, "acme", "+447700900123", "cli:test"); err != nil {
		t.Fatal(err)
	}
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: b.Addrs(), Topic: wire.TopicInbound, Partition: 0})
	defer r.Close()
	m, err := r.ReadMessage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	in := &wire.Inbound{}
	if err := proto.Unmarshal(m.Value, in); err != nil {
		t.Fatal(err)
	}
	if string(m.Key) != string(wire.Key("acme", "+447700900123")) || in.GetCommand().GetForget() == nil || in.GetCommand().GetOperator() != "cli:test" {
		t.Fatalf("queued %s: %v", m.Key, in)
	}
}
