package analytics

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

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

// Step is a time series' bucket width.
type Step string

// Steps. Buckets are UTC hours and days (toStartOfHour / toStartOfDay;
// 18.16 has no toStartOfInterval).
const (
	StepHour Step = "hour"
	StepDay  Step = "day"
)

// MaxPoints bounds a series, so that a request cannot ask for millions of
// buckets.
const MaxPoints = 2000

func (s Step) duration() time.Duration {
	if s == StepDay {
		return 24 * time.Hour
	}
	return time.Hour
}

// start is the bucket start at or before t.
func (s Step) start(t time.Time) time.Time {
	if s == StepDay {
		return dayStart(t)
	}
	return t.UTC().Truncate(time.Hour)
}

// sqlFunc is the ClickHouse function that maps a DateTime to its bucket.
func (s Step) sqlFunc() string {
	if s == StepDay {
		return "toStartOfDay"
	}
	return "toStartOfHour"
}

// Point is one bucket of a series. Value is null where the metric has no
// value (a success rate without codes sent).
type Point struct {
	T     time.Time `json:"t"`
	Value *float64  `json:"value"`
}

// Series is a metric over time.
type Series struct {
	Tenant string    `json:"tenant"`
	Metric string    `json:"metric"`
	Step   Step      `json:"step"`
	From   time.Time `json:"from"`
	To     time.Time `json:"to"`
	Points []Point   `json:"points"`
}

// Buckets are the bucket starts of r: from the bucket holding r.From to
// the last one starting before r.To. The first and last buckets may be
// partial: only [r.From, r.To) is counted.
func Buckets(r Range, step Step) []time.Time {
	var out []time.Time
	for t := step.start(r.From); t.Before(r.To); t = t.Add(step.duration()) {
		out = append(out, t)
	}
	return out
}

// Timeseries computes metric per bucket of step over r. Each bucket's
// value is the summary's figure for the bucket's part of r, except
// active_sessions, which is the summary's figure at the bucket's end (or
// r.To for the last one).
func (q *Querier) Timeseries(ctx context.Context, tenant, metric string, step Step, r Range, rules SessionRules) (*Series, error) {
	if !r.Valid() {
		return nil, fmt.Errorf("analytics: empty range")
	}
	if step != StepHour && step != StepDay {
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
	sum := func(src source, keep func(dim string) bool) error {
		return q.exact(ctx, r, func(st *state) error {
			return q.counted(ctx, st, tenant, r, src, step, zero, func(b int64, dim string, v int64) {
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
		err = sum(srcMessages, func(dim string) bool { return strings.HasPrefix(dim, "in/") })
	case MetricMessagesOut:
		err = sum(srcMessages, func(dim string) bool { return strings.HasPrefix(dim, "out/") })
	case MetricLLMTokens:
		err = sum(srcUsage, isTokens)
	case MetricConversations:
		err = sum(srcConversations, func(dim string) bool { return dim == "started" })
	case MetricAuthSuccessRate:
		query := `SELECT toUInt32(` + step.sqlFunc() + `(toDateTime(intDiv(sent_ms, 1000), 'UTC'))) AS b, count(), toUInt64(sum(ok)) FROM (` + authPairs(r) + `) GROUP BY b`
		err = q.query(ctx, query, []any{tenant}, func(rows driver.Rows) error {
			for rows.Next() {
				var b uint32
				var sent, ok uint64
				if err := rows.Scan(&b, &sent, &ok); err != nil {
					return err
				}
				if sent > 0 {
					set(int64(b), float64(ok)/float64(sent))
				}
			}
			return nil
		})
	case MetricActiveSessions:
		ends := make([]time.Time, len(buckets))
		for i, b := range buckets {
			ends[i] = minTime(b.Add(step.duration()), r.To)
		}
		var counts []uint64
		counts, err = q.activeSessions(ctx, tenant, ends, rules, step.sqlFunc()+"(at)")
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

// PowerUser is one of a tenant's most active customers.
type PowerUser struct {
	Phone         string    `json:"phone"`
	MessagesIn    uint64    `json:"messages_in"`
	MessagesOut   uint64    `json:"messages_out"`
	Conversations uint64    `json:"conversations"`
	FirstSeen     time.Time `json:"first_seen"`
	LastSeen      time.Time `json:"last_seen"`
}

// PowerUsers are the limit customers with the most messages sent in r
// (ties by phone), with their replies, conversations and first and last
// message in r.
func (q *Querier) PowerUsers(ctx context.Context, tenant string, r Range, limit int) ([]PowerUser, error) {
	if !r.Valid() {
		return nil, fmt.Errorf("analytics: empty range")
	}
	inner := func(dirty bool) string {
		return `SELECT phone, ` + countIf(dirty, "direction = 'in'") + ` AS i, ` + countIf(dirty, "direction = 'out'") + ` AS o,
			groupUniqArrayIf(conversation_id, conversation_id != '') AS cs, min(at) AS f, max(at) AS l
			FROM messages WHERE tenant = ? AND {time} GROUP BY phone`
	}
	outer := fmt.Sprintf(`SELECT phone, sum(i) AS mi, sum(o), toUInt64(uniqExactArray(cs)), toUInt32(min(f)), toUInt32(max(l))
		FROM ({union}) GROUP BY phone ORDER BY mi DESC, phone LIMIT %d`, limit)
	var out []PowerUser
	err := q.additive(ctx, chsink.TableMessages, r, inner, outer, []any{tenant}, func(rows driver.Rows) error {
		out = []PowerUser{}
		for rows.Next() {
			var p PowerUser
			var f, l uint32
			if err := rows.Scan(&p.Phone, &p.MessagesIn, &p.MessagesOut, &p.Conversations, &f, &l); err != nil {
				return err
			}
			p.FirstSeen, p.LastSeen = time.Unix(int64(f), 0).UTC(), time.Unix(int64(l), 0).UTC()
			out = append(out, p)
		}
		return nil
	})
	return out, err
}
