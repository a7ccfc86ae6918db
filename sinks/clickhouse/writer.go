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

// messageRow and authRow are rows as the tables take them.
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

// rows are a batch of events split by table, with what was already
// written: a retry after a partial failure sends only the rest.
type rows struct {
	messages    []messageRow
	auth        []authRow
	messagesOK  bool
	authOK      bool
	totalEvents int
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
	default:
		return fmt.Errorf("%w %s: unknown kind %T", ErrInvalidEvent, ev.Id, ev.Kind)
	}
	return nil
}

// splitMs is a Unix millisecond time as DateTime second and millisecond.
func splitMs(ms int64) (time.Time, uint16) {
	return time.Unix(ms/1000, 0).UTC(), uint16(ms % 1000)
}

// toRows converts valid events; it fails on the first invalid one, before
// anything is written.
func toRows(events []*wire.Event) (*rows, error) {
	r := &rows{totalEvents: len(events)}
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
		}
	}
	r.messagesOK = len(r.messages) == 0
	r.authOK = len(r.auth) == 0
	return r, nil
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
// so a failure leaves a table either written or not; the other table's
// success is remembered for the retry.
func (s *Store) writeRows(ctx context.Context, r *rows) error {
	if !r.messagesOK {
		err := s.insert(ctx, TableMessages, messageColumns, len(r.messages), func(b driver.Batch) error {
			for _, m := range r.messages {
				if err := b.Append(m.eventID, m.tenant, m.phone, m.direction, m.messageID, m.providerID,
					m.channel, m.conversationID, m.body, m.queryType, m.at, m.atMs, m.providerAt, m.providerAtMs); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		r.messagesOK = true
	}
	if !r.authOK {
		err := s.insert(ctx, TableAuthEvents, authColumns, len(r.auth), func(b driver.Batch) error {
			for _, a := range r.auth {
				if err := b.Append(a.eventID, a.tenant, a.phone, a.profileID, a.event, a.attempt, a.at, a.atMs); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		r.authOK = true
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
