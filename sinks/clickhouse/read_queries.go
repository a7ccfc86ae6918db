package clickhouse

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// The reads of analytics.Querier that are not counted from rollups: sign-in
// codes and their outcomes, active sessions, power users.

// CodeMargin is how far past the range a code's verification (or the next
// code) is looked for: codes are valid for minutes (10 by default).
const CodeMargin = time.Hour

// timeCond is the condition on `at` for r, as integers (safe to splice).
func timeCond(r Range) string {
	return fmt.Sprintf("at >= toDateTime(%d) AND at < toDateTime(%d)", r.From.Unix(), r.To.Unix())
}

// authPairs is the per-phone pairing of codes with their outcome: for each
// phone, its code_sent (1) and code_verified (2) events in time order,
// deduplicated by event id (groupUniqArray), and for every code_sent in
// [from, to) a pair (sent at ms, 1 if the next event is a verification).
// Events up to CodeMargin past the range are read, so that a code sent
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
	)`, from, to, r.From.Unix(), r.To.Add(CodeMargin).Unix())
}

// AuthCodesPaired counts the codes sent in r and how many of them were
// verified, pairing every code with its outcome per phone.
func (s *Store) AuthCodesPaired(ctx context.Context, tenant string, r Range) (sent, verified uint64, err error) {
	query := `SELECT count(), toUInt64(sum(ok)) FROM (` + authPairs(r) + `)`
	err = s.query(ctx, query, []any{tenant}, func(rows driver.Rows) error {
		for rows.Next() {
			if err := rows.Scan(&sent, &verified); err != nil {
				return err
			}
		}
		return nil
	})
	return sent, verified, err
}

// AuthEdges counts the verifications in [From, From+margin) and [To,
// To+margin) whose code (the phone's last code sent before them) was sent
// in r.
func (s *Store) AuthEdges(ctx context.Context, tenant string, r Range) (uint64, error) {
	from, to := r.ms()
	m := CodeMargin.Milliseconds()
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
		r.From.Add(-CodeMargin).Unix(), r.From.Add(CodeMargin).Unix(), r.To.Add(-CodeMargin).Unix(), r.To.Add(CodeMargin).Unix())
	var n uint64
	err := s.query(ctx, query, []any{tenant}, func(rows driver.Rows) error {
		for rows.Next() {
			if err := rows.Scan(&n); err != nil {
				return err
			}
		}
		return nil
	})
	return n, err
}

// ActiveSessions counts the signed-in sessions at each instant of at
// (ascending; see analytics.Summary.ActiveSessions), in whole seconds as the session
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
// step is how customer messages are reduced before that: by bucket
// (the instants are a series' bucket ends), or, without a step, to one
// (a single instant). ttl and idle are the tenant's session TTL and idle
// timeout.
func (s *Store) ActiveSessions(ctx context.Context, tenant string, at []time.Time, ttl, idle time.Duration, step Step) ([]uint64, error) {
	if len(at) == 0 {
		return nil, nil
	}
	group := "0"
	if step != "" {
		group = step.sqlFunc() + "(at)"
	}
	ttlS, idleS := int64(ttl/time.Second), int64(idle/time.Second)
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
	GROUP BY T`, first-ttlS, last, first-idleS, instants, ttlS, idleS, group)
	out := make([]uint64, len(at))
	err := s.query(ctx, query, []any{tenant, tenant, tenant}, func(rows driver.Rows) error {
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
func (s *Store) PowerUsers(ctx context.Context, tenant string, r Range, limit int, ignoreCompaction bool) ([]PowerUser, error) {
	if !r.Valid() {
		return nil, fmt.Errorf("clickhouse: empty range")
	}
	inner := func(dirty bool) string {
		return `SELECT phone, ` + countIf(dirty, "direction = 'in'") + ` AS i, ` + countIf(dirty, "direction = 'out'") + ` AS o,
			groupUniqArrayIf(conversation_id, conversation_id != '') AS cs, min(at) AS f, max(at) AS l
			FROM messages WHERE tenant = ? AND {time} GROUP BY phone`
	}
	outer := fmt.Sprintf(`SELECT phone, sum(i) AS mi, sum(o), toUInt64(uniqExactArray(cs)), toUInt32(min(f)), toUInt32(max(l))
		FROM ({union}) GROUP BY phone ORDER BY mi DESC, phone LIMIT %d`, limit)
	var out []PowerUser
	err := s.additive(ctx, ignoreCompaction, TableMessages, r, inner, outer, []any{tenant}, func(rows driver.Rows) error {
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

// AuthRates hands, per bucket of step in which codes were sent in r, the
// codes sent and how many of them were verified to fn.
func (s *Store) AuthRates(ctx context.Context, tenant string, r Range, step Step, fn func(bucket int64, sent, verified uint64)) error {
	query := `SELECT toUInt32(` + step.sqlFunc() + `(toDateTime(intDiv(sent_ms, 1000), 'UTC'))) AS b, count(), toUInt64(sum(ok)) FROM (` + authPairs(r) + `) GROUP BY b`
	return s.query(ctx, query, []any{tenant}, func(rows driver.Rows) error {
		for rows.Next() {
			var b uint32
			var sent, ok uint64
			if err := rows.Scan(&b, &sent, &ok); err != nil {
				return err
			}
			fn(int64(b), sent, ok)
		}
		return nil
	})
}

// HasMedia reports whether a customer's message of the tenant holds the
// media reference ref.
func (s *Store) HasMedia(ctx context.Context, tenant, ref string) (bool, error) {
	var n uint64
	err := s.conn.QueryRow(ctx, `SELECT count() FROM messages
		WHERE tenant = ? AND direction = 'in' AND media != '' AND has(splitByChar('\n', media), ?)`, tenant, ref).Scan(&n)
	return n > 0, err
}
