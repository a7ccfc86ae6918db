package engine

import (
	"bytes"
	"context"
	"regexp"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/protobuf/proto"

	"github.com/parleyhq/parley/wire"
)

// TestOneTimeCodesAreSealedOnKafka: the customer gets their code from
// Twilio, while parley.outbound carries it only sealed: no record there
// contains it, and one carries a sealed text.
func TestOneTimeCodesAreSealedOnKafka(t *testing.T) {
	h := startHarness(t)
	h.sendWhatsApp(t, "SM0123456789abcdef0123456789abc5ea", "+447700900456", "Hello")
	got := h.twilio.WaitFor(1, 30*time.Second)
	code := regexp.MustCompile(`\b\d{6}\b`).FindString(got[0].Body)
	if code == "" {
		t.Fatalf("the first reply has no code: %q", got[0].Body)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(h.engine.Brokers()...), kgo.ConsumeTopics(wire.TopicOutbound),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sealed := 0
	for sealed == 0 && ctx.Err() == nil {
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
			if bytes.Contains(r.Value, []byte(code)) {
				t.Errorf("parley.outbound carries the code in clear: %q", r.Value)
			}
			var out wire.Outbound
			if proto.Unmarshal(r.Value, &out) == nil && len(out.SealedText) > 0 && out.Text == "" {
				sealed++
			}
		})
	}
	if sealed == 0 {
		t.Fatal("no sealed text on parley.outbound")
	}
}
