package clickhouse

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// MessageFilter selects conversation log entries.
type MessageFilter struct {
	Range Range
	// Phone, when set, is the one customer (E.164) to show.
	Phone string
	// Limit is the most entries returned, newest first.
	Limit int
}

// LogEntry is one message of the conversation log.
type LogEntry struct {
	At             time.Time `json:"at"`
	Phone          string    `json:"phone"`
	Direction      string    `json:"direction"`
	Body           string    `json:"body"`
	QueryType      string    `json:"query_type"`
	ConversationID string    `json:"conversation_id"`
	Channel        string    `json:"channel"`
	MessageID      string    `json:"message_id"`
	EventID        string    `json:"event_id"`
	// Media are the references of the files the customer sent, for
	// GET .../media?ref= (admin and agent keys).
	Media []string `json:"media,omitempty"`
}

// maxScan bounds the keys the log reads to fill one page despite
// duplicates.
const maxScan = 1 << 17

// Messages returns the newest log entries matching f, each event once.
//
// In two steps, because ordering by time reads every row of the range
// (18.16 cannot read the sorting key backwards) and the bodies are most of
// the bytes: first the keys (at, at_ms, event_id) of the newest rows,
// then the rows of those keys. Duplicates of an event share its key, so
// they are adjacent in key order and dropped there; if that leaves less
// than a page while more rows exist, the first step reads more.
func (s *Store) Messages(ctx context.Context, tenant string, f MessageFilter) ([]LogEntry, error) {
	if !f.Range.Valid() {
		return nil, fmt.Errorf("clickhouse: empty range")
	}
	where := "tenant = ? AND " + timeCond(f.Range)
	args := []any{tenant}
	if f.Phone != "" {
		where += " AND phone = ?"
		args = append(args, f.Phone)
	}
	var ids []string
	var minAt, maxAt uint32
	for n := f.Limit * 2; ; n *= 4 {
		n = min(n, maxScan)
		ids, minAt, maxAt = ids[:0], 0, 0
		raw := 0
		last := ""
		err := s.query(ctx, fmt.Sprintf(`SELECT toUInt32(at), at_ms, event_id FROM messages WHERE %s
			ORDER BY at DESC, at_ms DESC, event_id DESC LIMIT %d`, where, n), args, func(rows driver.Rows) error {
			for rows.Next() {
				var at uint32
				var ms uint16
				var id string
				if err := rows.Scan(&at, &ms, &id); err != nil {
					return err
				}
				raw++
				key := fmt.Sprint(at, ".", ms, ".", id)
				if key == last || len(ids) == f.Limit {
					continue
				}
				last = key
				ids = append(ids, id)
				if minAt == 0 || at < minAt {
					minAt = at
				}
				maxAt = max(maxAt, at)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		if len(ids) == f.Limit || raw < n || n == maxScan {
			break
		}
	}
	if len(ids) == 0 {
		return []LogEntry{}, nil
	}
	query := fmt.Sprintf(`SELECT event_id, phone, toString(direction), message_id, toString(channel), conversation_id, body, toString(query_type), toUInt64(at) * 1000 + at_ms, media
		FROM messages WHERE %s AND at >= toDateTime(%d) AND at <= toDateTime(%d) AND has(?, event_id)
		LIMIT 1 BY event_id`, where, minAt, maxAt)
	out := make([]LogEntry, 0, len(ids))
	err := s.query(ctx, query, append(args, ids), func(rows driver.Rows) error {
		for rows.Next() {
			var e LogEntry
			var ms uint64
			var media string
			if err := rows.Scan(&e.EventID, &e.Phone, &e.Direction, &e.MessageID, &e.Channel, &e.ConversationID, &e.Body, &e.QueryType, &ms, &media); err != nil {
				return err
			}
			if media != "" {
				e.Media = strings.Split(media, "\n")
			}
			e.At = time.UnixMilli(int64(ms)).UTC()
			out = append(out, e)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].At.Equal(out[j].At) {
			return out[i].At.After(out[j].At)
		}
		return out[i].EventID > out[j].EventID
	})
	return out, nil
}
