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

// Rows are kept as columns, the way the native protocol sends them: one
// slice per column, appended to as events are split by table, and handed
// to clickhouse-go whole (Column(i).Append). No per-row struct and no copy
// between rows and columns: on a busy sink that garbage was a large part
// of the CPU.

// common are the columns every event table starts (event_id, tenant,
// phone) and ends (at, at_ms) with.
type common struct {
	id, tenant, phone []string
	at                []time.Time
	ms                []uint16
}

type messageCols struct {
	common
	direction, messageID, providerID, channel, conversationID, body, queryType, replyID, media []string
	providerAt                                                                                 []time.Time
	providerAtMs                                                                               []uint16
}

type authCols struct {
	common
	profileID, event []string
	attempt          []uint8
}

type toolCallCols struct {
	common
	conversationID, tool, err []string
	ok                        []uint8
	latencyUs                 []uint64
}

type usageCols struct {
	common
	metric, model []string
	value         []int64
}

type deliveryCols struct {
	common
	messageID, providerID, status, errorCode, channel []string
}

type conversationCols struct {
	common
	conversationID, change, status, operator, summary []string
	aiEnabled, byCustomer                             []uint8
}

// rows are a batch of events split by table, with what was already
// written: a retry after a partial failure sends only the rest. Each table
// is one insert, so it is either written whole or not at all.
type rows struct {
	messages      messageCols
	auth          authCols
	toolCalls     toolCallCols
	usage         usageCols
	deliveries    deliveryCols
	conversations conversationCols
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
	flats := make([]flat, len(events))
	for i, ev := range events {
		if err := CheckEvent(ev); err != nil {
			return nil, err
		}
		flats[i] = flatOf(ev)
	}
	return flatRows(flats)
}

// flatRows splits flat events into the tables' columns.
func flatRows(flats []flat) (*rows, error) {
	r := &rows{totalEvents: len(flats), written: map[string]bool{}}
	for i := range flats {
		f := &flats[i]
		if err := f.check(); err != nil {
			return nil, err
		}
		at, atMs := splitMs(f.atMs)
		add := func(c *common) {
			c.id, c.tenant, c.phone = append(c.id, f.id), append(c.tenant, f.tenant), append(c.phone, f.phone)
			c.at, c.ms = append(c.at, at), append(c.ms, atMs)
		}
		switch f.kind {
		case kindMessage:
			c := &r.messages
			add(&c.common)
			pat, patMs := splitMs(f.n[0])
			c.direction, c.messageID, c.providerID = append(c.direction, f.s[0]), append(c.messageID, f.s[1]), append(c.providerID, f.s[2])
			c.channel, c.body, c.conversationID = append(c.channel, f.s[3]), append(c.body, f.s[4]), append(c.conversationID, f.s[5])
			c.queryType, c.replyID, c.media = append(c.queryType, f.s[6]), append(c.replyID, f.s[7]), append(c.media, f.s[8])
			c.providerAt, c.providerAtMs = append(c.providerAt, pat), append(c.providerAtMs, patMs)
		case kindAuth:
			c := &r.auth
			add(&c.common)
			c.event, c.profileID = append(c.event, f.s[0]), append(c.profileID, f.s[1])
			c.attempt = append(c.attempt, uint8(min(max(f.n[0], 0), math.MaxUint8)))
		case kindToolCall:
			c := &r.toolCalls
			add(&c.common)
			c.tool, c.err, c.conversationID = append(c.tool, f.s[0]), append(c.err, f.s[1]), append(c.conversationID, f.s[2])
			c.ok, c.latencyUs = append(c.ok, bit(f.b[0])), append(c.latencyUs, uint64(f.n[0]))
		case kindUsage:
			c := &r.usage
			add(&c.common)
			c.metric, c.model, c.value = append(c.metric, f.s[0]), append(c.model, f.s[1]), append(c.value, f.n[0])
		case kindDelivery:
			c := &r.deliveries
			add(&c.common)
			c.messageID, c.providerID, c.status = append(c.messageID, f.s[0]), append(c.providerID, f.s[1]), append(c.status, f.s[2])
			c.errorCode, c.channel = append(c.errorCode, f.s[3]), append(c.channel, f.s[4])
		case kindConversation:
			c := &r.conversations
			add(&c.common)
			c.conversationID, c.change, c.status = append(c.conversationID, f.s[0]), append(c.change, f.s[1]), append(c.status, f.s[2])
			c.operator, c.summary = append(c.operator, f.s[3]), append(c.summary, f.s[4])
			c.aiEnabled, c.byCustomer = append(c.aiEnabled, bit(f.b[0])), append(c.byCustomer, bit(f.b[1]))
		}
	}
	return r, nil
}

// tableBatch is one table's share of a batch: its name, column list and
// columns, in the list's order.
type tableBatch struct {
	table, columns string
	n              int
	cols           []any
}

// batches lists the tables this batch writes to, in a fixed order.
func (r *rows) batches() []tableBatch {
	all := []tableBatch{
		{TableMessages, messageColumns, len(r.messages.id), []any{r.messages.id, r.messages.tenant, r.messages.phone,
			r.messages.direction, r.messages.messageID, r.messages.providerID, r.messages.channel, r.messages.conversationID,
			r.messages.body, r.messages.queryType, r.messages.at, r.messages.ms, r.messages.providerAt, r.messages.providerAtMs, r.messages.replyID, r.messages.media}},
		{TableAuthEvents, authColumns, len(r.auth.id), []any{r.auth.id, r.auth.tenant, r.auth.phone,
			r.auth.profileID, r.auth.event, r.auth.attempt, r.auth.at, r.auth.ms}},
		{TableToolCalls, toolCallColumns, len(r.toolCalls.id), []any{r.toolCalls.id, r.toolCalls.tenant, r.toolCalls.phone,
			r.toolCalls.conversationID, r.toolCalls.tool, r.toolCalls.ok, r.toolCalls.latencyUs, r.toolCalls.err, r.toolCalls.at, r.toolCalls.ms}},
		{TableUsage, usageColumns, len(r.usage.id), []any{r.usage.id, r.usage.tenant, r.usage.phone,
			r.usage.metric, r.usage.value, r.usage.model, r.usage.at, r.usage.ms}},
		{TableDeliveries, deliveryColumns, len(r.deliveries.id), []any{r.deliveries.id, r.deliveries.tenant, r.deliveries.phone,
			r.deliveries.messageID, r.deliveries.providerID, r.deliveries.status, r.deliveries.errorCode, r.deliveries.channel, r.deliveries.at, r.deliveries.ms}},
		{TableConversations, conversationColumns, len(r.conversations.id), []any{r.conversations.id, r.conversations.tenant, r.conversations.phone,
			r.conversations.conversationID, r.conversations.change, r.conversations.status, r.conversations.aiEnabled,
			r.conversations.operator, r.conversations.summary, r.conversations.byCustomer, r.conversations.at, r.conversations.ms}},
	}
	out := all[:0]
	for _, b := range all {
		if b.n > 0 {
			out = append(out, b)
		}
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
		if err := s.insert(ctx, tb.table, tb.columns, tb.n, func(b driver.Batch) error { return appendColumns(b, tb.cols...) }); err != nil {
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
