package rules_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/parleyhq/parley/backend/demo"
	"github.com/parleyhq/parley/brain"
	"github.com/parleyhq/parley/brain/rules"
)

// BenchmarkAnswer measures the engine time of one answered message with the
// rules brain: language, intent and slots, the tool calls and the phrasing.
// The backend is the in-memory demo, so the network to a tenant's system is
// excluded. The messages cycle through the evaluation set (every intent,
// English and Spanish, typos). Reported: mean (ns/op), p50 and p99 per
// message.
func BenchmarkAnswer(b *testing.B) {
	set := loadEval(b)
	now := set.Clock.In(demo.Location)
	clock := func() time.Time { return now }
	br := rules.New(rules.WithBackend(demo.NewAt(clock)), rules.WithLocation(demo.Location), rules.WithClock(clock))
	reqs := make([]brain.Request, len(set.Cases))
	for i, c := range set.Cases {
		reqs[i] = c.request(now)
	}
	ctx := context.Background()
	lat := make([]time.Duration, 0, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		start := time.Now()
		if _, err := br.Answer(ctx, reqs[i%len(reqs)]); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(lat)
	q := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Nanoseconds()) / 1e3 }
	b.ReportMetric(q(0.50), "p50-µs")
	b.ReportMetric(q(0.99), "p99-µs")
}
