package clickhouse

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/parleyhq/parley/wire"
)

// ErrInvalidEvent marks an event the schema cannot hold (no id, no kind,
// an unknown direction, a time outside DateTime's range). Retrying cannot
// fix it; the sink logs and skips it.
var ErrInvalidEvent = errors.New("invalid event")

// maxDateTimeMs is the last millisecond a DateTime (UInt32 seconds) holds.
const maxDateTimeMs = (math.MaxUint32+1)*1000 - 1

// Rows as the tables take them, one struct per table.
type messageRow struct {
	eventID, tenant, phone, direction, messageID, providerID string
	channel, conversationID, body, queryType                 string
	at                                                       time.Time
	atMs                                                     uint16
	providerAt                                               time.Time
	providerAtMs                                             uint16
}

type authRow struct {
	eventID, tenant, phone, profileID, event string
	attempt                                  uint8
	at                                       time.Time
	atMs                                     uint16
}

type toolCallRow struct {
	eventID, tenant, phone, conversationID, tool, err string
	ok                                                uint8
	latencyUs                                         uint64
	at                                                time.Time
	atMs                                              uint16
}

type usageRow struct {
	eventID, tenant, phone, metric, model string
	value                                 int64
	at                                    time.Time
	atMs                                  uint16
}

type deliveryRow struct {
	eventID, tenant, phone, messageID, providerID, status, errorCode, channel string
	at                                                                        time.Time
	atMs                                                                      uint16
}

type conversationRow struct {
	eventID, tenant, phone, conversationID, change, status, operator, summary string
	aiEnabled, byCustomer                                                     uint8
	at                                                                        time.Time
	atMs                                                                      uint16
}

// rows are a batch of events split by table, with what was already
// written: a retry after a partial failure sends only the rest. Each table
// is one insert, so it is either written whole or not at all.
type rows struct {
	messages      []messageRow
	auth          []authRow
	toolCalls     []toolCallRow
	usage         []usageRow
	deliveries    []deliveryRow
	conversations []conversationRow
	written       map[string]bool
	totalEvents   int
}

// CheckEvent reports why an event cannot be stored (wrapping
// ErrInvalidEvent), or nil.
func CheckEvent(ev *wire.Event) error {
	if ev == nil {
		return fmt.Errorf("%w: nil", ErrInvalidEvent)
	}
	if ev.Id == "" {
		return fmt.Errorf("%w: no id", ErrInvalidEvent)
	}
	if ev.AtMs < 0 || ev.AtMs > maxDateTimeMs {
		return fmt.Errorf("%w %s: at_ms %d outside DateTime's range", ErrInvalidEvent, ev.Id, ev.AtMs)
	}
	switch k := ev.Kind.(type) {
	case *wire.Event_Message:
		if k.Message == nil {
			return fmt.Errorf("%w %s: empty message", ErrInvalidEvent, ev.Id)
		}
		if d := k.Message.Direction; d != "in" && d != "out" {
			return fmt.Errorf("%w %s: direction %q, want in or out", ErrInvalidEvent, ev.Id, d)
		}
		if p := k.Message.ProviderAtMs; p < 0 || p > maxDateTimeMs {
			return fmt.Errorf("%w %s: provider_at_ms %d outside DateTime's range", ErrInvalidEvent, ev.Id, p)
		}
	case *wire.Event_Auth:
		if k.Auth == nil {
			return fmt.Errorf("%w %s: empty auth event", ErrInvalidEvent, ev.Id)
		}
	case *wire.Event_ToolCall:
		if k.ToolCall == nil {
			return fmt.Errorf("%w %s: empty tool call", ErrInvalidEvent, ev.Id)
		}
		if k.ToolCall.LatencyUs < 0 {
			return fmt.Errorf("%w %s: negative latency", ErrInvalidEvent, ev.Id)
		}
	case *wire.Event_Usage:
		if k.Usage == nil || k.Usage.Metric == "" {
			return fmt.Errorf("%w %s: usage without a metric", ErrInvalidEvent, ev.Id)
		}
	case *wire.Event_Delivery:
		if k.Delivery == nil {
			return fmt.Errorf("%w %s: empty delivery report", ErrInvalidEvent, ev.Id)
		}
	case *wire.Event_Conversation:
		if k.Conversation == nil {
			return fmt.Errorf("%w %s: empty conversation change", ErrInvalidEvent, ev.Id)
		}
	default:
		return fmt.Errorf("%w %s: unknown kind %T", ErrInvalidEvent, ev.Id, ev.Kind)
	}
	return nil
}

// splitMs is a Unix millisecond time as DateTime second and millisecond.
func splitMs(ms int64) (time.Time, uint16) {
	return time.Unix(ms/1000, 0).UTC(), uint16(ms % 1000)
}

func bit(b bool) uint8 {
	if b {
		return 1
	}
	return 0
}

// toRows converts valid events; it fails on the first invalid one, before
// anything is written.
func toRows(events []*wire.Event) (*rows, error) {
	r := &rows{totalEvents: len(events), written: map[string]bool{}}
	for _, ev := range events {
		if err := CheckEvent(ev); err != nil {
			return nil, err
		}
		at, atMs := splitMs(ev.AtMs)
		switch k := ev.Kind.(type) {
		case *wire.Event_Message:
			m := k.Message
			pat, patMs := splitMs(m.ProviderAtMs)
			r.messages = append(r.messages, messageRow{
				eventID: ev.Id, tenant: ev.Tenant, phone: ev.Phone, direction: m.Direction,
				messageID: m.MessageId, providerID: m.ProviderId, channel: m.Channel,
				conversationID: m.ConversationId, body: m.Body, queryType: m.QueryType,
				at: at, atMs: atMs, providerAt: pat, providerAtMs: patMs,
			})
		case *wire.Event_Auth:
			a := k.Auth
			r.auth = append(r.auth, authRow{
				eventID: ev.Id, tenant: ev.Tenant, phone: ev.Phone, profileID: a.ProfileId,
				event: a.Event, attempt: uint8(min(max(a.Attempt, 0), math.MaxUint8)),
				at: at, atMs: atMs,
			})
		case *wire.Event_ToolCall:
			t := k.ToolCall
			r.toolCalls = append(r.toolCalls, toolCallRow{
				eventID: ev.Id, tenant: ev.Tenant, phone: ev.Phone, conversationID: t.ConversationId,
				tool: t.Tool, ok: bit(t.Ok), latencyUs: uint64(t.LatencyUs), err: t.Error,
				at: at, atMs: atMs,
			})
		case *wire.Event_Usage:
			u := k.Usage
			r.usage = append(r.usage, usageRow{
				eventID: ev.Id, tenant: ev.Tenant, phone: ev.Phone, metric: u.Metric, value: u.Value, model: u.Model,
				at: at, atMs: atMs,
			})
		case *wire.Event_Delivery:
			d := k.Delivery
			r.deliveries = append(r.deliveries, deliveryRow{
				eventID: ev.Id, tenant: ev.Tenant, phone: ev.Phone, messageID: d.MessageId, providerID: d.ProviderId,
				status: d.Status, errorCode: d.ErrorCode, channel: d.Channel, at: at, atMs: atMs,
			})
		case *wire.Event_Conversation:
			c := k.Conversation
			r.conversations = append(r.conversations, conversationRow{
				eventID: ev.Id, tenant: ev.Tenant, phone: ev.Phone, conversationID: c.ConversationId,
				change: c.Change, status: c.Status, aiEnabled: bit(c.AiEnabled), operator: c.Operator,
				summary: c.Summary, byCustomer: bit(c.ByCustomer), at: at, atMs: atMs,
			})
		}
	}
	return r, nil
}

// tableBatch is one table's share of a batch: its name, column list and
// how to append its rows.
type tableBatch struct {
	table, columns string
	n              int
	fill           func(driver.Batch) error
}

// batches lists the tables this batch writes to, in a fixed order. Rows
// are appended column by column (Column(i).Append of a whole slice): one
// call per column instead of one per row, which is most of the writer's
// CPU otherwise.
func (r *rows) batches() []tableBatch {
	var out []tableBatch
	if n := len(r.messages); n > 0 {
		out = append(out, tableBatch{TableMessages, messageColumns, n, func(b driver.Batch) error {
			rs := r.messages
			return appendColumns(b,
				col(rs, func(m messageRow) string { return m.eventID }),
				col(rs, func(m messageRow) string { return m.tenant }),
				col(rs, func(m messageRow) string { return m.phone }),
				col(rs, func(m messageRow) string { return m.direction }),
				col(rs, func(m messageRow) string { return m.messageID }),
				col(rs, func(m messageRow) string { return m.providerID }),
				col(rs, func(m messageRow) string { return m.channel }),
				col(rs, func(m messageRow) string { return m.conversationID }),
				col(rs, func(m messageRow) string { return m.body }),
				col(rs, func(m messageRow) string { return m.queryType }),
				col(rs, func(m messageRow) time.Time { return m.at }),
				col(rs, func(m messageRow) uint16 { return m.atMs }),
				col(rs, func(m messageRow) time.Time { return m.providerAt }),
				col(rs, func(m messageRow) uint16 { return m.providerAtMs }),
			)
		}})
	}
	if n := len(r.auth); n > 0 {
		out = append(out, tableBatch{TableAuthEvents, authColumns, n, func(b driver.Batch) error {
			rs := r.auth
			return appendColumns(b,
				col(rs, func(a authRow) string { return a.eventID }),
				col(rs, func(a authRow) string { return a.tenant }),
				col(rs, func(a authRow) string { return a.phone }),
				col(rs, func(a authRow) string { return a.profileID }),
				col(rs, func(a authRow) string { return a.event }),
				col(rs, func(a authRow) uint8 { return a.attempt }),
				col(rs, func(a authRow) time.Time { return a.at }),
				col(rs, func(a authRow) uint16 { return a.atMs }),
			)
		}})
	}
	if n := len(r.toolCalls); n > 0 {
		out = append(out, tableBatch{TableToolCalls, toolCallColumns, n, func(b driver.Batch) error {
			rs := r.toolCalls
			return appendColumns(b,
				col(rs, func(t toolCallRow) string { return t.eventID }),
				col(rs, func(t toolCallRow) string { return t.tenant }),
				col(rs, func(t toolCallRow) string { return t.phone }),
				col(rs, func(t toolCallRow) string { return t.conversationID }),
				col(rs, func(t toolCallRow) string { return t.tool }),
				col(rs, func(t toolCallRow) uint8 { return t.ok }),
				col(rs, func(t toolCallRow) uint64 { return t.latencyUs }),
				col(rs, func(t toolCallRow) string { return t.err }),
				col(rs, func(t toolCallRow) time.Time { return t.at }),
				col(rs, func(t toolCallRow) uint16 { return t.atMs }),
			)
		}})
	}
	if n := len(r.usage); n > 0 {
		out = append(out, tableBatch{TableUsage, usageColumns, n, func(b driver.Batch) error {
			rs := r.usage
			return appendColumns(b,
				col(rs, func(u usageRow) string { return u.eventID }),
				col(rs, func(u usageRow) string { return u.tenant }),
				col(rs, func(u usageRow) string { return u.phone }),
				col(rs, func(u usageRow) string { return u.metric }),
				col(rs, func(u usageRow) int64 { return u.value }),
				col(rs, func(u usageRow) string { return u.model }),
				col(rs, func(u usageRow) time.Time { return u.at }),
				col(rs, func(u usageRow) uint16 { return u.atMs }),
			)
		}})
	}
	if n := len(r.deliveries); n > 0 {
		out = append(out, tableBatch{TableDeliveries, deliveryColumns, n, func(b driver.Batch) error {
			rs := r.deliveries
			return appendColumns(b,
				col(rs, func(d deliveryRow) string { return d.eventID }),
				col(rs, func(d deliveryRow) string { return d.tenant }),
				col(rs, func(d deliveryRow) string { return d.phone }),
				col(rs, func(d deliveryRow) string { return d.messageID }),
				col(rs, func(d deliveryRow) string { return d.providerID }),
				col(rs, func(d deliveryRow) string { return d.status }),
				col(rs, func(d deliveryRow) string { return d.errorCode }),
				col(rs, func(d deliveryRow) string { return d.channel }),
				col(rs, func(d deliveryRow) time.Time { return d.at }),
				col(rs, func(d deliveryRow) uint16 { return d.atMs }),
			)
		}})
	}
	if n := len(r.conversations); n > 0 {
		out = append(out, tableBatch{TableConversations, conversationColumns, n, func(b driver.Batch) error {
			rs := r.conversations
			return appendColumns(b,
				col(rs, func(c conversationRow) string { return c.eventID }),
				col(rs, func(c conversationRow) string { return c.tenant }),
				col(rs, func(c conversationRow) string { return c.phone }),
				col(rs, func(c conversationRow) string { return c.conversationID }),
				col(rs, func(c conversationRow) string { return c.change }),
				col(rs, func(c conversationRow) string { return c.status }),
				col(rs, func(c conversationRow) uint8 { return c.aiEnabled }),
				col(rs, func(c conversationRow) string { return c.operator }),
				col(rs, func(c conversationRow) string { return c.summary }),
				col(rs, func(c conversationRow) uint8 { return c.byCustomer }),
				col(rs, func(c conversationRow) time.Time { return c.at }),
				col(rs, func(c conversationRow) uint16 { return c.atMs }),
			)
		}})
	}
	return out
}

// col extracts one column from typed rows.
func col[R, V any](rs []R, f func(R) V) any {
	out := make([]V, len(rs))
	for i := range rs {
		out[i] = f(rs[i])
	}
	return out
}

// appendColumns appends whole columns, in the order of the column list.
func appendColumns(b driver.Batch, columns ...any) error {
	for i, c := range columns {
		if err := b.Column(i).Append(c); err != nil {
			return fmt.Errorf("column %d: %w", i, err)
		}
	}
	return nil
}

// WriteEvents inserts events into their tables, one batch per table. It
// writes nothing if any event is invalid (ErrInvalidEvent). Writing the
// same events again is harmless: see the table design in schema.go.
func (s *Store) WriteEvents(ctx context.Context, events []*wire.Event) error {
	r, err := toRows(events)
	if err != nil {
		return err
	}
	return s.writeRows(ctx, r)
}

// writeRows inserts the tables not yet written. Each table is one batch,
// so a failure leaves a table either written or not; the tables already
// written are remembered for the retry.
func (s *Store) writeRows(ctx context.Context, r *rows) error {
	for _, tb := range r.batches() {
		if r.written[tb.table] {
			continue
		}
		if err := s.insert(ctx, tb.table, tb.columns, tb.n, tb.fill); err != nil {
			return err
		}
		r.written[tb.table] = true
	}
	return nil
}

// insert sends one batch with an explicit column list (18.16 needs it) and
// keeps the metrics.
func (s *Store) insert(ctx context.Context, table, columns string, n int, fill func(driver.Batch) error) (err error) {
	start := time.Now()
	defer func() {
		if err != nil {
			insertErrors.WithLabelValues(table).Inc()
			err = fmt.Errorf("clickhouse: insert %d rows into %s: %w", n, table, err)
			return
		}
		insertSeconds.WithLabelValues(table).Observe(time.Since(start).Seconds())
		rowsInserted.WithLabelValues(table).Add(float64(n))
	}()
	b, err := s.conn.PrepareBatch(ctx, "INSERT INTO "+table+" ("+columns+")")
	if err != nil {
		return err
	}
	if err := fill(b); err != nil {
		_ = b.Abort()
		return err
	}
	return b.Send()
}
