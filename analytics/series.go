package analytics

import (
	"context"
	"fmt"
	"strings"
	"time"

	chsink "github.com/parleyhq/parley/sinks/clickhouse"
)

// Metrics a time series can show.
const (
	MetricMessagesIn      = "messages_in"
	MetricMessagesOut     = "messages_out"
	MetricConversations   = "conversations"
	MetricAuthSuccessRate = "auth_success_rate"
	MetricActiveSessions  = "active_sessions"
	MetricLLMTokens       = "llm_tokens"
)

// Metrics lists the time series metrics.
var Metrics = []string{MetricMessagesIn, MetricMessagesOut, MetricConversations, MetricAuthSuccessRate, MetricActiveSessions, MetricLLMTokens}

// MaxPoints bounds a series, so that a request cannot ask for millions of
// buckets.
const MaxPoints = 2000

// Point is one bucket of a series. Value is null where the metric has no
// value (a success rate without codes sent).
type Point struct {
	T     time.Time `json:"t"`
	Value *float64  `json:"value"`
}

// Series is a metric over time.
type Series struct {
	Tenant string      `json:"tenant"`
	Metric string      `json:"metric"`
	Step   chsink.Step `json:"step"`
	From   time.Time   `json:"from"`
	To     time.Time   `json:"to"`
	Points []Point     `json:"points"`
}

// Buckets are the bucket starts of r: from the bucket holding r.From to
// the last one starting before r.To. The first and last buckets may be
// partial: only [r.From, r.To) is counted.
func Buckets(r chsink.Range, step chsink.Step) []time.Time {
	var out []time.Time
	for t := step.Start(r.From); t.Before(r.To); t = t.Add(step.Duration()) {
		out = append(out, t)
	}
	return out
}

// Timeseries computes metric per bucket of step over r. Each bucket's
// value is the summary's figure for the bucket's part of r, except
// active_sessions, which is the summary's figure at the bucket's end (or
// r.To for the last one).
func (q *Querier) Timeseries(ctx context.Context, tenant, metric string, step chsink.Step, r chsink.Range, rules SessionRules) (*Series, error) {
	if !r.Valid() {
		return nil, fmt.Errorf("analytics: empty range")
	}
	if step != chsink.StepHour && step != chsink.StepDay {
		return nil, fmt.Errorf("analytics: step %q: want hour or day", step)
	}
	buckets := Buckets(r, step)
	if len(buckets) > MaxPoints {
		return nil, fmt.Errorf("analytics: %d points: at most %d (use a larger step or a shorter range)", len(buckets), MaxPoints)
	}
	s := &Series{Tenant: tenant, Metric: metric, Step: step, From: r.From.UTC(), To: r.To.UTC(), Points: make([]Point, len(buckets))}
	index := make(map[int64]int, len(buckets))
	for i, b := range buckets {
		s.Points[i].T = b
		index[b.Unix()] = i
	}
	set := func(bucket int64, v float64) {
		if i, ok := index[bucket]; ok {
			s.Points[i].Value = &v
		}
	}
	zero := func() {
		for i := range s.Points {
			v := 0.0
			s.Points[i].Value = &v
		}
	}
	// sum adds a counted source's values per bucket, for the dims keep
	// says.
	sum := func(src chsink.Source, keep func(dim string) bool) error {
		return q.store.Exact(ctx, r, q.IgnoreCompaction, func(st *chsink.Snapshot) error {
			return q.store.Counted(ctx, st, tenant, r, src, step, zero, func(b int64, dim string, v int64) {
				if !keep(dim) {
					return
				}
				if i, ok := index[b]; ok {
					*s.Points[i].Value += float64(v)
				}
			})
		})
	}
	var err error
	switch metric {
	case MetricMessagesIn:
		err = sum(chsink.SourceMessages, func(dim string) bool { return strings.HasPrefix(dim, "in/") })
	case MetricMessagesOut:
		err = sum(chsink.SourceMessages, func(dim string) bool { return strings.HasPrefix(dim, "out/") })
	case MetricLLMTokens:
		err = sum(chsink.SourceUsage, isTokens)
	case MetricConversations:
		err = sum(chsink.SourceConversations, func(dim string) bool { return dim == "started" })
	case MetricAuthSuccessRate:
		err = q.store.AuthRates(ctx, tenant, r, step, func(b int64, sent, ok uint64) {
			if sent > 0 {
				set(b, float64(ok)/float64(sent))
			}
		})
	case MetricActiveSessions:
		ends := make([]time.Time, len(buckets))
		for i, b := range buckets {
			ends[i] = b.Add(step.Duration())
			if ends[i].After(r.To) {
				ends[i] = r.To
			}
		}
		var counts []uint64
		counts, err = q.store.ActiveSessions(ctx, tenant, ends, rules.SessionTTL, rules.IdleTimeout, step)
		if err == nil {
			for i, n := range counts {
				set(buckets[i].Unix(), float64(n))
			}
		}
	default:
		return nil, fmt.Errorf("analytics: unknown metric %q", metric)
	}
	if err != nil {
		return nil, err
	}
	return s, nil
}

// PowerUsers are the limit customers with the most messages sent in r
// (Store.PowerUsers).
func (q *Querier) PowerUsers(ctx context.Context, tenant string, r chsink.Range, limit int) ([]chsink.PowerUser, error) {
	return q.store.PowerUsers(ctx, tenant, r, limit, q.IgnoreCompaction)
}

// Messages returns the newest log entries matching f, each event once
// (Store.Messages).
func (q *Querier) Messages(ctx context.Context, tenant string, f chsink.MessageFilter) ([]chsink.LogEntry, error) {
	return q.store.Messages(ctx, tenant, f)
}
