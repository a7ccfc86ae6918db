package bus_test

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/parleyhq/parley/bus"
	"github.com/parleyhq/parley/wire"
)

// TestTopicsAreCreatedWithTheirRetention: every topic Parley creates
// carries the retention (and, for the changelog, compaction) that
// wire.Topics gives it, read back from the broker: what the README
// promises of how long customers' messages stay in Kafka.
func TestTopicsAreCreatedWithTheirRetention(t *testing.T) {
	b, err := bus.StartEmbedded("", 0)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := bus.EnsureParleyTopics(ctx, b.Addrs(), nil, 2, 1); err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	for topic, want := range wire.Topics {
		rc, err := adm.DescribeTopicConfigs(ctx, topic)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		for _, r := range rc {
			for _, c := range r.Configs {
				if c.Value != nil {
					got[c.Key] = *c.Value
				}
			}
		}
		if len(want) == 0 {
			t.Errorf("%s: Parley creates it without a retention", topic)
		}
		for k, v := range want {
			if got[k] != v {
				t.Errorf("%s: %s = %q, want %q", topic, k, got[k], v)
			}
		}
	}
}
