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
	// IgnoreCompaction reads every day as if the janitor had not
	// compacted it (duplicates removed by distinct event ids everywhere).
	// The results are the same; it is slower. For comparisons (tests,
	// benchmarks).
	IgnoreCompaction bool
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
	var s *Summary
	err := q.exact(ctx, r, func(st *state) error {
		s = &Summary{Tenant: tenant, From: r.From.UTC(), To: r.To.UTC(), TopQueries: []QueryCount{}}
		return q.summary(ctx, st, tenant, r, rules, s)
	})
	if err != nil {
		return nil, err
	}
	return s, nil
}

// summary runs the summary's queries concurrently: on a small server the
// figures come out in the time of the slowest, not of the sum.
func (q *Querier) summary(ctx context.Context, st *state, tenant string, r Range, rules SessionRules, s *Summary) error {
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	run := func(name string, fn func() error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			defer func() { q.log.Debug("analytics summary part", "part", name, "took", time.Since(start)) }()
			if err := fn(); err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("%s: %w", name, err))
				mu.Unlock()
			}
		}()
	}
	run("messages", func() error { return q.messageCounts(ctx, st, tenant, r, s) })
	run("conversations", func() error { return q.conversationCounts(ctx, st, tenant, r, s) })
	run("first response", func() error { return q.firstResponse(ctx, st, tenant, r, s) })
	run("auth", func() error {
		sent, verified, err := q.authCodes(ctx, st, tenant, r)
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
		n, err := q.activeSessions(ctx, tenant, []time.Time{r.To}, rules, "0")
		if err == nil {
			s.ActiveSessions = n[0]
		}
		return err
	})
	run("llm tokens", func() error {
		v, err := q.llmTokens(ctx, st, tenant, r)
		s.LLMTokens = v
		return err
	})
	wg.Wait()
	return errors.Join(errs...)
}

// messageCounts fills MessagesIn, MessagesOut and TopQueries: messages
// by direction and query type.
func (q *Querier) messageCounts(ctx context.Context, st *state, tenant string, r Range, s *Summary) error {
	var in, out uint64
	var top []QueryCount
	err := q.counted(ctx, st, tenant, r, srcMessages, "", func() { in, out, top = 0, 0, nil }, func(_ int64, dim string, v int64) {
		dir, qt, _ := strings.Cut(dim, "/")
		if dir == "in" {
			in += uint64(v)
			if qt != "" {
				top = append(top, QueryCount{qt, uint64(v)})
			}
		} else {
			out += uint64(v)
		}
	})
	if err != nil {
		return err
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
}

// timeCond is the condition on `at` for r, as integers (safe to splice).
func timeCond(r Range) string {
	return fmt.Sprintf("at >= toDateTime(%d) AND at < toDateTime(%d)", r.From.Unix(), r.To.Unix())
}

// conversationCounts fills Conversations and Handoffs. A conversation
// has one start event (its id is derived from the inbound message that
// started it, so a replay has the same id): counting distinct start
// events counts conversations.
func (q *Querier) conversationCounts(ctx context.Context, st *state, tenant string, r Range, s *Summary) error {
	var started, handoffs uint64
	err := q.counted(ctx, st, tenant, r, srcConversations, "", func() { started, handoffs = 0, 0 }, func(_ int64, dim string, v int64) {
		switch dim {
		case "started":
			started += uint64(v)
		case "handoff":
			handoffs += uint64(v)
		}
	})
	s.Conversations, s.Handoffs = started, handoffs
	return err
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

// authCodes counts the codes sent in r and how many of them were
// verified (see Summary.AuthSuccessRate).
//
// A code is verified within its lifetime (CodeTTL, 10 minutes), which is
// less than codeMargin. So a verification at least codeMargin after r.From
// and before r.To verified a code sent in r: those are counted like the
// codes sent, exactly and cheaply (additive). Only the verifications near
// the edges, in [From, From+margin) and [To, To+margin), are paired with
// their code per phone, over the few events around the edges. A range not
// much longer than the margin is paired whole.
func (q *Querier) authCodes(ctx context.Context, st *state, tenant string, r Range) (sent, verified uint64, err error) {
	if r.To.Sub(r.From) <= 2*codeMargin {
		return q.authCodesPaired(ctx, tenant, r)
	}
	interior := Range{From: r.From.Add(codeMargin), To: r.To}
	authCount := func(r Range, event string) (uint64, error) {
		var n uint64
		err := q.counted(ctx, st, tenant, r, srcAuth, "", func() { n = 0 }, func(_ int64, dim string, v int64) {
			if dim == event {
				n += uint64(v)
			}
		})
		return n, err
	}
	if sent, err = authCount(r, "code_sent"); err != nil {
		return 0, 0, err
	}
	if verified, err = authCount(interior, "code_verified"); err != nil {
		return 0, 0, err
	}
	edges, err := q.authEdges(ctx, tenant, r)
	return sent, verified + edges, err
}

// authCodesPaired pairs every code sent in r with its outcome.
func (q *Querier) authCodesPaired(ctx context.Context, tenant string, r Range) (sent, verified uint64, err error) {
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

// authEdges counts the verifications in [From, From+margin) and [To,
// To+margin) whose code (the phone's last code sent before them) was sent
// in r.
func (q *Querier) authEdges(ctx context.Context, tenant string, r Range) (uint64, error) {
	from, to := r.ms()
	m := codeMargin.Milliseconds()
	query := fmt.Sprintf(`SELECT count() FROM (
		SELECT arrayJoin(arrayFilter(i -> tupleElement(ev[i], 2) = 2 AND
				((tupleElement(ev[i], 1) >= %[1]d AND tupleElement(ev[i], 1) < %[1]d + %[3]d) OR (tupleElement(ev[i], 1) >= %[2]d AND tupleElement(ev[i], 1) < %[2]d + %[3]d)),
			arrayEnumerate(ev))) AS i,
			arrayReduce('max', arrayMap(e -> tupleElement(e, 1), arrayFilter(e -> tupleElement(e, 2) = 1 AND tupleElement(e, 1) < tupleElement(ev[i], 1), ev))) AS code_ms
		FROM (
			SELECT phone, arraySort(groupUniqArray((toUInt64(at) * 1000 + at_ms, if(event = 'code_sent', 1, 2), event_id))) AS ev
			FROM auth_events
			WHERE tenant = ? AND event IN ('code_sent', 'code_verified') AND (
				(at >= toDateTime(%[4]d) AND at < toDateTime(%[5]d)) OR (at >= toDateTime(%[6]d) AND at < toDateTime(%[7]d)))
			GROUP BY phone
		)
	) WHERE code_ms >= %[1]d AND code_ms < %[2]d`,
		from, to, m,
		r.From.Add(-codeMargin).Unix(), r.From.Add(codeMargin).Unix(), r.To.Add(-codeMargin).Unix(), r.To.Add(codeMargin).Unix())
	var n uint64
	err := q.query(ctx, query, []any{tenant}, func(rows driver.Rows) error {
		for rows.Next() {
			if err := rows.Scan(&n); err != nil {
				return err
			}
		}
		return nil
	})
	return n, err
}

// activeSessions counts the signed-in sessions at each instant of at
// (ascending; see Summary.ActiveSessions), in whole seconds as the session
// core counts them. Only events before an instant count for it.
//
// Per phone that verified within a TTL before some instant: its
// verifications and expiries, and its customer messages reduced to the
// last one between consecutive instants (all that "the last message
// before T" needs). Then, per instant a verification can still cover,
// the rule. (CAST: on 18.16 an expression over a LowCardinality column is
// LowCardinality itself, and UNION ALL finds no common type with a plain
// UInt8.)
//
// group is how customer messages are reduced before that: by an
// expression of at that is constant between consecutive instants (the
// bucket for a series, a constant for one instant).
func (q *Querier) activeSessions(ctx context.Context, tenant string, at []time.Time, rules SessionRules, group string) ([]uint64, error) {
	if len(at) == 0 {
		return nil, nil
	}
	ttl, idle := int64(rules.SessionTTL/time.Second), int64(rules.IdleTimeout/time.Second)
	first, last := at[0].Unix(), at[len(at)-1].Unix()
	ts := make([]string, len(at))
	index := map[int64]int{}
	for i, t := range at {
		ts[i] = fmt.Sprintf("toUInt64(%d)", t.Unix())
		index[t.Unix()] = i
	}
	instants := "[" + strings.Join(ts, ", ") + "]"
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
				SELECT phone, max(toUInt64(at)) AS s, CAST(3 AS UInt8) AS k
				FROM messages
				WHERE tenant = ? AND direction = 'in' AND at >= toDateTime(%[3]d) AND at < toDateTime(%[2]d)
					AND phone IN (SELECT phone FROM auth_events WHERE tenant = ? AND event = 'code_verified' AND at >= toDateTime(%[1]d) AND at < toDateTime(%[2]d))
				GROUP BY phone, %[7]s
			)
			GROUP BY phone
			HAVING length(vs) > 0
		)
		ARRAY JOIN arrayFilter(T -> arrayExists(x -> x < T AND T < x + %[5]d, vs), %[4]s) AS T
	)
	WHERE v > 0 AND T < v + %[5]d AND NOT expired AND T < greatest(v, m) + %[6]d
	GROUP BY T`, first-ttl, last, first-idle, instants, ttl, idle, group)
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

// isTokens reports whether a usage metric is LLM tokens.
func isTokens(metric string) bool {
	return metric == "llm_prompt_tokens" || metric == "llm_completion_tokens"
}

// llmTokens sums prompt and completion tokens, exactly.
func (q *Querier) llmTokens(ctx context.Context, st *state, tenant string, r Range) (int64, error) {
	var total int64
	err := q.counted(ctx, st, tenant, r, srcUsage, "", func() { total = 0 }, func(_ int64, dim string, v int64) {
		if isTokens(dim) {
			total += v
		}
	})
	return total, err
}
