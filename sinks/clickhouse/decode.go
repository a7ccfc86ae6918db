package clickhouse

import (
	"errors"
	"fmt"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/parleyhq/parley/wire"
)

// The sink's own decoder of wire.Event records.
//
// proto.Unmarshal builds an Event, its oneof wrapper and the inner message
// (four or five allocations and reflection per record), which the writer
// then copies into columns. On a busy sink that, and the garbage it
// leaves, was a third of the process's CPU, on a machine whose other cores
// ClickHouse needs. decodeFlat reads the wire format directly into a flat
// value: the record's bytes are copied once into a string, and every text
// field is a substring of it (one allocation per record). It follows
// proto3's rules: unknown fields are skipped, a repeated field's last value
// wins, a oneof takes its last member, a repeated message merges, and text
// must be valid UTF-8. decode_test.go checks it against proto.Unmarshal on
// random and malformed records, and that it knows every field of Event.

// Event kinds, as flat.kind; the field numbers of Event's oneof.
const (
	kindNone         = 0
	kindMessage      = 10
	kindAuth         = 11
	kindToolCall     = 12
	kindUsage        = 13
	kindDelivery     = 14
	kindConversation = 15
)

// flat is one event with every field the tables take. Which of s, n and b
// hold what depends on kind (see decodeKind).
type flat struct {
	kind              uint8
	id, tenant, phone string
	atMs              int64
	s                 [9]string
	n                 [1]int64
	b                 [2]bool
}

var errDecode = errors.New("malformed record")

// decoder holds one copy of a record as a string; text fields are
// substrings of it, located by their offset in the record.
type decoder struct{ all string }

// text is the field whose bytes are v, found at offset off of the record.
func (d decoder) text(off int, v []byte) (string, error) {
	s := d.all[off : off+len(v)]
	if !utf8.ValidString(s) {
		return "", fmt.Errorf("%w: invalid UTF-8", errDecode)
	}
	return s, nil
}

// decodeFlat decodes a wire.Event record.
func decodeFlat(rec []byte) (flat, error) {
	var f flat
	d := decoder{all: string(rec)}
	b := rec
	for len(b) > 0 {
		// b is always a suffix of rec: its offset is what was consumed.
		at := len(rec) - len(b)
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return f, fmt.Errorf("%w: %v", errDecode, protowire.ParseError(n))
		}
		if !num.IsValid() {
			return f, fmt.Errorf("%w: field number %d", errDecode, num)
		}
		rest := b[n:]
		var err error
		switch {
		case typ == protowire.BytesType && (num >= 1 && num <= 3 || num >= kindMessage && num <= kindConversation):
			v, m := protowire.ConsumeBytes(rest)
			if m < 0 {
				return f, fmt.Errorf("%w: %v", errDecode, protowire.ParseError(m))
			}
			off := at + n + m - len(v)
			switch num {
			case 1:
				f.id, err = d.text(off, v)
			case 2:
				f.tenant, err = d.text(off, v)
			case 3:
				f.phone, err = d.text(off, v)
			default:
				if uint8(num) != f.kind {
					// A oneof takes its last member.
					f.kind, f.s, f.n, f.b = uint8(num), [len(f.s)]string{}, [1]int64{}, [2]bool{}
				}
				err = d.kind(&f, off, v)
			}
			n += m
		case typ == protowire.VarintType && num == 4:
			v, m := protowire.ConsumeVarint(rest)
			if m < 0 {
				return f, fmt.Errorf("%w: %v", errDecode, protowire.ParseError(m))
			}
			f.atMs = int64(v)
			n += m
		default:
			m := protowire.ConsumeFieldValue(num, typ, rest)
			if m < 0 {
				return f, fmt.Errorf("%w: %v", errDecode, protowire.ParseError(m))
			}
			n += m
		}
		if err != nil {
			return f, err
		}
		b = b[n:]
	}
	return f, nil
}

// slot is where flat keeps a field of a kind: string slot s[at], the
// integer n[at], or, for at < 0, the boolean b[-at-1].
type slot struct {
	typ protowire.Type
	at  int
	// int32: an int32 field (a varint of the sign-extended value).
	int32 bool
	known bool
}

// kindSlots is kindFields as arrays, for the decoder's inner loop (kinds
// and their fields are numbered below 16).
var kindSlots = func() (a [16][16]slot) {
	for k, fields := range kindFields {
		for n, sl := range fields {
			sl.known = true
			a[k][n] = sl
		}
	}
	return a
}()

// kindFields maps each kind's field numbers to their slots.

var kindFields = map[uint8]map[protowire.Number]slot{
	// MessageLog: direction, message_id, provider_id, channel, body,
	// conversation_id, query_type, reply_id, media; provider_at_ms.
	kindMessage: {1: {typ: protowire.BytesType, at: 0, int32: false}, 2: {typ: protowire.BytesType, at: 1, int32: false}, 3: {typ: protowire.BytesType, at: 2, int32: false},
		4: {typ: protowire.BytesType, at: 3, int32: false}, 5: {typ: protowire.BytesType, at: 4, int32: false}, 6: {typ: protowire.BytesType, at: 5, int32: false},
		7: {typ: protowire.BytesType, at: 6, int32: false}, 9: {typ: protowire.BytesType, at: 7, int32: false},
		10: {typ: protowire.BytesType, at: 8, int32: false}, 8: {typ: protowire.VarintType, at: 0, int32: false}},
	// AuthEvent: event, profile_id; attempt (int32).
	kindAuth: {1: {typ: protowire.BytesType, at: 0, int32: false}, 2: {typ: protowire.BytesType, at: 1, int32: false}, 3: {typ: protowire.VarintType, at: 0, int32: true}},
	// ToolCall: tool, error, conversation_id; ok; latency_us.
	kindToolCall: {1: {typ: protowire.BytesType, at: 0, int32: false}, 4: {typ: protowire.BytesType, at: 1, int32: false}, 5: {typ: protowire.BytesType, at: 2, int32: false},
		2: {typ: protowire.VarintType, at: -1, int32: false}, 3: {typ: protowire.VarintType, at: 0, int32: false}},
	// Usage: metric, model; value.
	kindUsage: {1: {typ: protowire.BytesType, at: 0, int32: false}, 3: {typ: protowire.BytesType, at: 1, int32: false}, 2: {typ: protowire.VarintType, at: 0, int32: false}},
	// DeliveryReport: message_id, provider_id, status, error_code, channel.
	kindDelivery: {1: {typ: protowire.BytesType, at: 0, int32: false}, 2: {typ: protowire.BytesType, at: 1, int32: false}, 3: {typ: protowire.BytesType, at: 2, int32: false},
		4: {typ: protowire.BytesType, at: 3, int32: false}, 5: {typ: protowire.BytesType, at: 4, int32: false}},
	// ConversationChange: conversation_id, change, status, operator,
	// summary; ai_enabled, by_customer.
	kindConversation: {1: {typ: protowire.BytesType, at: 0, int32: false}, 2: {typ: protowire.BytesType, at: 1, int32: false}, 3: {typ: protowire.BytesType, at: 2, int32: false},
		5: {typ: protowire.BytesType, at: 3, int32: false}, 6: {typ: protowire.BytesType, at: 4, int32: false},
		4: {typ: protowire.VarintType, at: -1, int32: false}, 7: {typ: protowire.VarintType, at: -2, int32: false}},
}

// kind decodes the inner message of f's kind, found at offset base of
// the record, into f.
func (d decoder) kind(f *flat, base int, b []byte) error {
	fields := &kindSlots[f.kind]
	end := base + len(b)
	for len(b) > 0 {
		at := end - len(b)
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return fmt.Errorf("%w: %v", errDecode, protowire.ParseError(n))
		}
		if !num.IsValid() {
			return fmt.Errorf("%w: field number %d", errDecode, num)
		}
		rest := b[n:]
		var sl slot
		if num < 16 {
			sl = fields[num]
		}
		known := sl.known
		switch {
		case known && sl.typ == protowire.BytesType && typ == protowire.BytesType:
			v, m := protowire.ConsumeBytes(rest)
			if m < 0 {
				return fmt.Errorf("%w: %v", errDecode, protowire.ParseError(m))
			}
			s, err := d.text(at+n+m-len(v), v)
			if err != nil {
				return err
			}
			f.s[sl.at] = s
			n += m
		case known && sl.typ == protowire.VarintType && typ == protowire.VarintType:
			v, m := protowire.ConsumeVarint(rest)
			if m < 0 {
				return fmt.Errorf("%w: %v", errDecode, protowire.ParseError(m))
			}
			switch {
			case sl.at < 0:
				f.b[-sl.at-1] = v != 0
			case sl.int32:
				f.n[sl.at] = int64(int32(v))
			default:
				f.n[sl.at] = int64(v)
			}
			n += m
		default:
			// Unknown, or a known field with another wire type: proto
			// treats the latter as unknown too.
			m := protowire.ConsumeFieldValue(num, typ, rest)
			if m < 0 {
				return fmt.Errorf("%w: %v", errDecode, protowire.ParseError(m))
			}
			n += m
		}
		b = b[n:]
	}
	return nil
}

// flatOf is the flat value of an Event (WriteEvents, tests).
func flatOf(ev *wire.Event) flat {
	f := flat{id: ev.Id, tenant: ev.Tenant, phone: ev.Phone, atMs: ev.AtMs}
	switch k := ev.Kind.(type) {
	case *wire.Event_Message:
		f.kind = kindMessage
		if m := k.Message; m != nil {
			f.s = [len(f.s)]string{m.Direction, m.MessageId, m.ProviderId, m.Channel, m.Body, m.ConversationId, m.QueryType, m.ReplyId, m.Media}
			f.n[0] = m.ProviderAtMs
		}
	case *wire.Event_Auth:
		f.kind = kindAuth
		if a := k.Auth; a != nil {
			f.s[0], f.s[1], f.n[0] = a.Event, a.ProfileId, int64(a.Attempt)
		}
	case *wire.Event_ToolCall:
		f.kind = kindToolCall
		if t := k.ToolCall; t != nil {
			f.s[0], f.s[1], f.s[2], f.b[0], f.n[0] = t.Tool, t.Error, t.ConversationId, t.Ok, t.LatencyUs
		}
	case *wire.Event_Usage:
		f.kind = kindUsage
		if u := k.Usage; u != nil {
			f.s[0], f.s[1], f.n[0] = u.Metric, u.Model, u.Value
		}
	case *wire.Event_Delivery:
		f.kind = kindDelivery
		if d := k.Delivery; d != nil {
			f.s[0], f.s[1], f.s[2], f.s[3], f.s[4] = d.MessageId, d.ProviderId, d.Status, d.ErrorCode, d.Channel
		}
	case *wire.Event_Conversation:
		f.kind = kindConversation
		if c := k.Conversation; c != nil {
			f.s[0], f.s[1], f.s[2], f.s[3], f.s[4] = c.ConversationId, c.Change, c.Status, c.Operator, c.Summary
			f.b[0], f.b[1] = c.AiEnabled, c.ByCustomer
		}
	}
	return f
}

// check is CheckEvent for a flat event.
func (f *flat) check() error {
	if f.id == "" {
		return fmt.Errorf("%w: no id", ErrInvalidEvent)
	}
	if f.atMs < 0 || f.atMs > maxDateTimeMs {
		return fmt.Errorf("%w %s: at_ms %d outside DateTime's range", ErrInvalidEvent, f.id, f.atMs)
	}
	switch f.kind {
	case kindMessage:
		if d := f.s[0]; d != "in" && d != "out" {
			return fmt.Errorf("%w %s: direction %q, want in or out", ErrInvalidEvent, f.id, d)
		}
		if p := f.n[0]; p < 0 || p > maxDateTimeMs {
			return fmt.Errorf("%w %s: provider_at_ms %d outside DateTime's range", ErrInvalidEvent, f.id, p)
		}
	case kindAuth, kindDelivery, kindConversation:
	case kindToolCall:
		if f.n[0] < 0 {
			return fmt.Errorf("%w %s: negative latency", ErrInvalidEvent, f.id)
		}
	case kindUsage:
		if f.s[0] == "" {
			return fmt.Errorf("%w %s: usage without a metric", ErrInvalidEvent, f.id)
		}
	default:
		return fmt.Errorf("%w %s: no kind", ErrInvalidEvent, f.id)
	}
	return nil
}
