// Package analytics answers questions about conversations from ClickHouse:
// the figures of the dashboard (summary, time series, power users), the
// conversation log, GDPR erasure, and the JSON API and dashboard page that
// serve them. Definitions of every figure are in docs/analytics.md; the
// comments on Summary repeat them.
//
// Every query is scoped by tenant, takes its values through
// clickhouse-go's client-side binding (18.16 has no server-side
// parameters) or as integers the package computed itself, and is exact
// under at-least-once delivery: duplicates are removed by FINAL, by
// uniqExact of event ids, or by aggregates that ignore them (min, max,
// distinct), see split.go.
package analytics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/parleyhq/parley/conversation"
	chsink "github.com/parleyhq/parley/sinks/clickhouse"
	"github.com/parleyhq/parley/tenants"
)

// Range is a half-open time range [From, To), in whole seconds.
type Range struct {
	From, To time.Time
}

// Valid reports whether the range is usable: From before To.
func (r Range) Valid() bool { return r.From.Before(r.To) }

func (r Range) ms() (int64, int64) { return r.From.UnixMilli(), r.To.UnixMilli() }

// Querier runs the analytics queries. It is safe for concurrent use.
type Querier struct {
	store *chsink.Store
	log   *slog.Logger
	// AlwaysFinal reads every day with FINAL instead of reading compacted
	// days without it. The results are the same; it is slower. For
	// comparisons (tests, benchmarks).
	AlwaysFinal bool
}

// NewQuerier queries store.
func NewQuerier(store *chsink.Store, log *slog.Logger) *Querier {
	if log == nil {
		log = slog.Default()
	}
	return &Querier{store: store, log: log}
}

// SessionRules are the sign-in rules active sessions are computed by: the
// tenant's, as the session actors apply them.
type SessionRules struct {
	SessionTTL  time.Duration
	IdleTimeout time.Duration
}

// RulesOf is the tenant's session rules, with the core's defaults for what
// it does not set.
func RulesOf(t *tenants.Tenant) SessionRules {
	d := conversation.DefaultPolicy()
	r := SessionRules{SessionTTL: d.SessionTTL, IdleTimeout: d.IdleTimeout}
	if t != nil && t.Session.SessionTTL > 0 {
		r.SessionTTL = t.Session.SessionTTL
	}
	if t != nil && t.Session.IdleTimeout > 0 {
		r.IdleTimeout = t.Session.IdleTimeout
	}
	return r
}

// QueryCount is one entry of the most common queries.
type QueryCount struct {
	Query string `json:"query"`
	Count uint64 `json:"count"`
}

// Summary is the dashboard's figures for one tenant and range. Counts are
// of distinct events (a replayed event counts once).
type Summary struct {
	Tenant string    `json:"tenant"`
	From   time.Time `json:"from"`
	To     time.Time `json:"to"`
	// Conversations started in the range (conversation events with
	// change "started").
	Conversations uint64 `json:"conversations"`
	// MessagesIn and MessagesOut: messages logged in the range, from and
	// to customers.
	MessagesIn  uint64 `json:"messages_in"`
	MessagesOut uint64 `json:"messages_out"`
	// ActiveSessions: signed-in sessions at To: phones whose last
	// code_verified before To is less than the session TTL old, with no
	// session_expired after it, and whose last customer message (or the
	// verification) is less than the idle timeout old.
	ActiveSessions uint64 `json:"active_sessions"`
	// AuthSuccessRate: CodesVerified / CodesSent, null when no code was
	// sent. CodesSent: codes sent in the range. CodesVerified: those of
	// them that were verified, i.e. the next code_sent or code_verified
	// event of the same phone after the code is a code_verified (a new
	// code replaces the old one, and a code is verified at most once).
	AuthSuccessRate *float64 `json:"auth_success_rate"`
	CodesSent       uint64   `json:"codes_sent"`
	CodesVerified   uint64   `json:"codes_verified"`
	// TopQueries: the ten most frequent query types of customer messages
	// in the range, most frequent first (ties by name).
	TopQueries []QueryCount `json:"top_queries"`
	// FirstResponseP50 and P95, in milliseconds, over the conversations
	// started in the range that were answered: the time from the first
	// customer message (when the ingress accepted it) to the first reply.
	// Exact quantiles (quantileExact: the value at position floor(q·n) of
	// the sorted samples). Null without samples.
	FirstResponseP50 *uint64 `json:"first_response_ms_p50"`
	FirstResponseP95 *uint64 `json:"first_response_ms_p95"`
	// FirstResponseSamples is the number of conversations measured.
	FirstResponseSamples uint64 `json:"first_response_samples"`
	// Handoffs: conversation events with change "handoff" in the range.
	Handoffs uint64 `json:"handoffs"`
	// LLMTokens: usage llm_prompt_tokens + llm_completion_tokens in the
	// range.
	LLMTokens int64 `json:"llm_tokens"`
}

// TopQueriesN is how many query types the summary lists.
const TopQueriesN = 10

// noTime is conversation_firsts' "no such message".
const noTime = uint64(math.MaxUint64)

// codeMargin is how far past the range a code's verification (or the next
// code) is looked for: codes are valid for minutes (10 by default).
const codeMargin = time.Hour

// Summary computes the figures. The queries run concurrently.
func (q *Querier) Summary(ctx context.Context, tenant string, r Range, rules SessionRules) (*Summary, error) {
	if !r.Valid() {
		return nil, errors.New("analytics: empty range")
	}
	s := &Summary{Tenant: tenant, From: r.From.UTC(), To: r.To.UTC(), TopQueries: []QueryCount{}}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	run := func(name string, fn func() error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := fn(); err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("%s: %w", name, err))
				mu.Unlock()
			}
		}()
	}
	run("messages", func() error { return q.messageCounts(ctx, tenant, r, s) })
	run("conversations", func() error { return q.conversationCounts(ctx, tenant, r, s) })
	run("first response", func() error { return q.firstResponse(ctx, tenant, r, s) })
	run("auth", func() error {
		sent, verified, err := q.authCodes(ctx, tenant, r)
		if err != nil {
			return err
		}
		s.CodesSent, s.CodesVerified = sent, verified
		if sent > 0 {
			rate := float64(verified) / float64(sent)
			s.AuthSuccessRate = &rate
		}
		return nil
	})
	run("active sessions", func() error {
		n, err := q.activeSessions(ctx, tenant, []time.Time{r.To}, rules)
		if err == nil {
			s.ActiveSessions = n[0]
		}
		return err
	})
	run("llm tokens", func() error {
		v, err := q.llmTokens(ctx, tenant, r)
		s.LLMTokens = v
		return err
	})
	wg.Wait()
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return s, nil
}

// messageCounts fills MessagesIn, MessagesOut and TopQueries from one scan
// of messages grouped by direction and query type.
func (q *Querier) messageCounts(ctx context.Context, tenant string, r Range, s *Summary) error {
	const inner = `SELECT direction, query_type, count() AS c FROM {from} WHERE tenant = ? AND {time} GROUP BY direction, query_type`
	const outer = `SELECT toString(direction), toString(query_type), sum(c) FROM ({union}) GROUP BY direction, query_type`
	return q.additive(ctx, chsink.TableMessages, r, inner, outer, []any{tenant}, func(rows driver.Rows) error {
		var in, out uint64
		var top []QueryCount
		for rows.Next() {
			var dir, qt string
			var c uint64
			if err := rows.Scan(&dir, &qt, &c); err != nil {
				return err
			}
			if dir == "in" {
				in += c
				if qt != "" {
					top = append(top, QueryCount{qt, c})
				}
			} else {
				out += c
			}
		}
		sort.Slice(top, func(i, j int) bool {
			if top[i].Count != top[j].Count {
				return top[i].Count > top[j].Count
			}
			return top[i].Query < top[j].Query
		})
		if len(top) > TopQueriesN {
			top = top[:TopQueriesN]
		}
		if top == nil {
			top = []QueryCount{}
		}
		s.MessagesIn, s.MessagesOut, s.TopQueries = in, out, top
		return nil
	})
}

// timeCond is the condition on `at` for r, as integers (safe to splice).
func timeCond(r Range) string {
	return fmt.Sprintf("at >= toDateTime(%d) AND at < toDateTime(%d)", r.From.Unix(), r.To.Unix())
}

// conversationCounts fills Conversations and Handoffs. uniqExact ignores
// duplicates: no FINAL needed.
func (q *Querier) conversationCounts(ctx context.Context, tenant string, r Range, s *Summary) error {
	query := `SELECT uniqExactIf(conversation_id, change = 'started' AND conversation_id != ''), uniqExactIf(event_id, change = 'handoff')
		FROM conversations WHERE tenant = ? AND ` + timeCond(r)
	return q.query(ctx, query, []any{tenant}, func(rows driver.Rows) error {
		for rows.Next() {
			if err := rows.Scan(&s.Conversations, &s.Handoffs); err != nil {
				return err
			}
		}
		return nil
	})
}

// firstResponse fills the first-response quantiles from the
// conversation_firsts rollup, for the conversations started in r. The
// rollup is read from the day before r (the ingress accepts a message a
// moment before the session starts the conversation) with no upper bound:
// a reply days later still is the first reply.
func (q *Querier) firstResponse(ctx context.Context, tenant string, r Range, s *Summary) error {
	query := fmt.Sprintf(`SELECT quantilesExact(0.5, 0.95)(fo - fi), count() FROM (
		SELECT conversation_id, minMerge(first_in_ms) AS fi, minMerge(first_out_ms) AS fo
		FROM conversation_firsts
		WHERE tenant = ? AND day >= toDate(toDateTime(%d)) - 1 AND conversation_id IN (
			SELECT conversation_id FROM conversations WHERE tenant = ? AND change = 'started' AND %s)
		GROUP BY conversation_id
	) WHERE fi != %d AND fo != %d AND fo >= fi`, r.From.Unix(), timeCond(r), noTime, noTime)
	return q.query(ctx, query, []any{tenant, tenant}, func(rows driver.Rows) error {
		for rows.Next() {
			var qs []uint64
			var n uint64
			if err := rows.Scan(&qs, &n); err != nil {
				return err
			}
			s.FirstResponseSamples = n
			if n > 0 && len(qs) == 2 {
				p50, p95 := qs[0], qs[1]
				s.FirstResponseP50, s.FirstResponseP95 = &p50, &p95
			}
		}
		return nil
	})
}

// authPairs is the per-phone pairing of codes with their outcome: for each
// phone, its code_sent (1) and code_verified (2) events in time order,
// deduplicated by event id (groupUniqArray), and for every code_sent in
// [from, to) a pair (sent at ms, 1 if the next event is a verification).
// Events up to codeMargin past the range are read, so that a code sent
// just before `to` finds its outcome, and one sent after `to` ends the
// previous code's chance.
func authPairs(r Range) string {
	from, to := r.ms()
	return fmt.Sprintf(`SELECT arrayJoin(arrayMap(i -> (tupleElement(ev[i], 1), if(i < length(ev) AND tupleElement(ev[i + 1], 2) = 2, 1, 0)),
			arrayFilter(i -> tupleElement(ev[i], 2) = 1 AND tupleElement(ev[i], 1) >= %d AND tupleElement(ev[i], 1) < %d, arrayEnumerate(ev)))) AS pair,
		tupleElement(pair, 1) AS sent_ms, tupleElement(pair, 2) AS ok
	FROM (
		SELECT phone, arraySort(groupUniqArray((toUInt64(at) * 1000 + at_ms, if(event = 'code_sent', 1, 2), event_id))) AS ev
		FROM auth_events
		WHERE tenant = ? AND event IN ('code_sent', 'code_verified') AND at >= toDateTime(%d) AND at < toDateTime(%d)
		GROUP BY phone
	)`, from, to, r.From.Unix(), r.To.Add(codeMargin).Unix())
}

// authCodes counts the codes sent in r and how many of them were verified.
func (q *Querier) authCodes(ctx context.Context, tenant string, r Range) (sent, verified uint64, err error) {
	query := `SELECT count(), toUInt64(sum(ok)) FROM (` + authPairs(r) + `)`
	err = q.query(ctx, query, []any{tenant}, func(rows driver.Rows) error {
		for rows.Next() {
			if err := rows.Scan(&sent, &verified); err != nil {
				return err
			}
		}
		return nil
	})
	return sent, verified, err
}

// activeSessions counts the signed-in sessions at each instant of at (see
// Summary.ActiveSessions), in whole seconds as the session core counts
// them. Only events before an instant count for it.
func (q *Querier) activeSessions(ctx context.Context, tenant string, at []time.Time, rules SessionRules) ([]uint64, error) {
	if len(at) == 0 {
		return nil, nil
	}
	ttl, idle := int64(rules.SessionTTL/time.Second), int64(rules.IdleTimeout/time.Second)
	first, last := at[0].Unix(), at[len(at)-1].Unix()
	ts := make([]string, len(at))
	index := map[int64]int{}
	for i, t := range at {
		ts[i] = fmt.Sprint(t.Unix())
		index[t.Unix()] = i
	}
	// Per phone: verifications and expiries within a TTL before the
	// instants, customer messages within an idle timeout, restricted to
	// phones that verified at all in that window. (CAST: on 18.16 an
	// expression over a LowCardinality column is LowCardinality itself,
	// and UNION ALL finds no common type with a plain UInt8.)
	query := fmt.Sprintf(`SELECT T, count() FROM (
		SELECT T,
			arrayReduce('max', arrayFilter(x -> x < T, vs)) AS v,
			arrayReduce('max', arrayFilter(x -> x < T, ms)) AS m,
			arrayExists(x -> x > v AND x < T, xs) AS expired
		FROM (
			SELECT phone, groupArrayIf(s, k = 1) AS vs, groupArrayIf(s, k = 2) AS xs, groupArrayIf(s, k = 3) AS ms
			FROM (
				SELECT phone, toUInt64(at) AS s, CAST(if(event = 'code_verified', 1, 2) AS UInt8) AS k
				FROM auth_events
				WHERE tenant = ? AND event IN ('code_verified', 'session_expired') AND at >= toDateTime(%[1]d) AND at < toDateTime(%[2]d)
				UNION ALL
				SELECT phone, toUInt64(at) AS s, toUInt8(3) AS k
				FROM messages
				WHERE tenant = ? AND direction = 'in' AND at >= toDateTime(%[3]d) AND at < toDateTime(%[2]d)
					AND phone IN (SELECT phone FROM auth_events WHERE tenant = ? AND event = 'code_verified' AND at >= toDateTime(%[1]d) AND at < toDateTime(%[2]d))
			)
			GROUP BY phone
			HAVING length(vs) > 0
		)
		ARRAY JOIN [%[4]s] AS T
	)
	WHERE v > 0 AND T < v + %[5]d AND NOT expired AND T < greatest(v, m) + %[6]d
	GROUP BY T`, first-ttl, last, first-idle, "toUInt64("+strings.Join(ts, "), toUInt64(")+")", ttl, idle)
	out := make([]uint64, len(at))
	err := q.query(ctx, query, []any{tenant, tenant, tenant}, func(rows driver.Rows) error {
		for rows.Next() {
			var t, n uint64
			if err := rows.Scan(&t, &n); err != nil {
				return err
			}
			if i, ok := index[int64(t)]; ok {
				out[i] = n
			}
		}
		return nil
	})
	return out, err
}

// llmTokens sums prompt and completion tokens, exactly (additive).
func (q *Querier) llmTokens(ctx context.Context, tenant string, r Range) (int64, error) {
	const inner = `SELECT sum(value) AS v FROM {from} WHERE tenant = ? AND metric IN ('llm_prompt_tokens', 'llm_completion_tokens') AND {time}`
	const outer = `SELECT toInt64(sum(v)) FROM ({union})`
	var total int64
	err := q.additive(ctx, chsink.TableUsage, r, inner, outer, []any{tenant}, func(rows driver.Rows) error {
		total = 0
		for rows.Next() {
			if err := rows.Scan(&total); err != nil {
				return err
			}
		}
		return nil
	})
	return total, err
}
