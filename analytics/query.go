// Package analytics answers questions about conversations from ClickHouse:
// the figures of the dashboard (summary, time series, power users), the
// conversation log, GDPR erasure, and the JSON API and dashboard page that
// serve them. Definitions of every figure are in docs/analytics.md; the
// comments on Summary repeat them.
//
// The figures are composed from the reads of sinks/clickhouse's Store,
// which owns every query of ClickHouse: each is scoped by tenant and exact
// under at-least-once delivery, reading rollups where they are still
// valid (sinks/clickhouse/read.go, read_rollup.go).
package analytics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/parleyhq/parley/conversation"
	chsink "github.com/parleyhq/parley/sinks/clickhouse"
	"github.com/parleyhq/parley/tenants"
)

// Querier composes the figures from the store's reads. It is safe for
// concurrent use.
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

// Summary computes the figures. The queries run concurrently.
func (q *Querier) Summary(ctx context.Context, tenant string, r chsink.Range, rules SessionRules) (*Summary, error) {
	if !r.Valid() {
		return nil, errors.New("analytics: empty range")
	}
	var s *Summary
	err := q.store.Exact(ctx, r, q.IgnoreCompaction, func(st *chsink.Snapshot) error {
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
func (q *Querier) summary(ctx context.Context, st *chsink.Snapshot, tenant string, r chsink.Range, rules SessionRules, s *Summary) error {
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
	run("first response", func() error {
		f, err := q.store.FirstResponses(ctx, st, tenant, r)
		s.FirstResponseP50, s.FirstResponseP95, s.FirstResponseSamples = f.P50, f.P95, f.Samples
		return err
	})
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
		n, err := q.store.ActiveSessions(ctx, tenant, []time.Time{r.To}, rules.SessionTTL, rules.IdleTimeout, "")
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
func (q *Querier) messageCounts(ctx context.Context, st *chsink.Snapshot, tenant string, r chsink.Range, s *Summary) error {
	var in, out uint64
	var top []QueryCount
	err := q.store.Counted(ctx, st, tenant, r, chsink.SourceMessages, "", func() { in, out, top = 0, 0, nil }, func(_ int64, dim string, v int64) {
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

// conversationCounts fills Conversations and Handoffs. A conversation
// has one start event (its id is derived from the inbound message that
// started it, so a replay has the same id): counting distinct start
// events counts conversations.
func (q *Querier) conversationCounts(ctx context.Context, st *chsink.Snapshot, tenant string, r chsink.Range, s *Summary) error {
	var started, handoffs uint64
	err := q.store.Counted(ctx, st, tenant, r, chsink.SourceConversations, "", func() { started, handoffs = 0, 0 }, func(_ int64, dim string, v int64) {
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

// authCodes counts the codes sent in r and how many of them were
// verified (see Summary.AuthSuccessRate).
//
// A code is verified within its lifetime (CodeTTL, 10 minutes), which is
// less than chsink.CodeMargin. So a verification at least chsink.CodeMargin after r.From
// and before r.To verified a code sent in r: those are counted like the
// codes sent, exactly and cheaply (additive). Only the verifications near
// the edges, in [From, From+margin) and [To, To+margin), are paired with
// their code per phone, over the few events around the edges. A range not
// much longer than the margin is paired whole.
func (q *Querier) authCodes(ctx context.Context, st *chsink.Snapshot, tenant string, r chsink.Range) (sent, verified uint64, err error) {
	if r.To.Sub(r.From) <= 2*chsink.CodeMargin {
		return q.store.AuthCodesPaired(ctx, tenant, r)
	}
	interior := chsink.Range{From: r.From.Add(chsink.CodeMargin), To: r.To}
	authCount := func(r chsink.Range, event string) (uint64, error) {
		var n uint64
		err := q.store.Counted(ctx, st, tenant, r, chsink.SourceAuth, "", func() { n = 0 }, func(_ int64, dim string, v int64) {
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
	edges, err := q.store.AuthEdges(ctx, tenant, r)
	return sent, verified + edges, err
}

// isTokens reports whether a usage metric is LLM tokens.
func isTokens(metric string) bool {
	return metric == "llm_prompt_tokens" || metric == "llm_completion_tokens"
}

// llmTokens sums prompt and completion tokens, exactly.
func (q *Querier) llmTokens(ctx context.Context, st *chsink.Snapshot, tenant string, r chsink.Range) (int64, error) {
	var total int64
	err := q.store.Counted(ctx, st, tenant, r, chsink.SourceUsage, "", func() { total = 0 }, func(_ int64, dim string, v int64) {
		if isTokens(dim) {
			total += v
		}
	})
	return total, err
}
