package clickhouse

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/parleyhq/parley/wire"
)

func TestWriteEventsStoresEveryField(t *testing.T) {
	s := openStore(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	evs := makeEvents("w", 30)
	if err := s.WriteEvents(ctx, evs); err != nil {
		t.Fatal(err)
	}
	if c := count(t, s); c.final != 30 || c.distinct != 30 {
		t.Fatalf("counts %+v, want 30", c)
	}

	// One message, field by field; the time is exact to the millisecond.
	var (
		tenant, phone, direction, messageID, providerID, channel, conv, body, qt, reply, media string
		at, providerAt                                                                         time.Time
		atMs, providerAtMs                                                                     uint16
		exactMs                                                                                uint64
	)
	err := s.Conn().QueryRow(ctx, `SELECT tenant, phone, direction, message_id, provider_id, channel, conversation_id,
		body, query_type, reply_id, media, at, at_ms, provider_at, provider_at_ms, toUInt64(at) * 1000 + at_ms
		FROM messages FINAL WHERE event_id = 'w-000001'`).Scan(&tenant, &phone, &direction, &messageID, &providerID,
		&channel, &conv, &body, &qt, &reply, &media, &at, &atMs, &providerAt, &providerAtMs, &exactMs)
	if err != nil {
		t.Fatal(err)
	}
	m := evs[1].GetMessage()
	if tenant != evs[1].Tenant || phone != evs[1].Phone || direction != m.Direction || messageID != m.MessageId ||
		providerID != m.ProviderId || channel != m.Channel || conv != m.ConversationId || body != m.Body || qt != m.QueryType ||
		reply != m.ReplyId || reply == "" || media != m.Media || media == "" {
		t.Fatalf("row differs from %v: %s %s %s %s %s %s %s %s %s %s", evs[1], tenant, phone, direction, messageID, providerID, channel, conv, body, qt, reply)
	}
	if int64(exactMs) != evs[1].AtMs || at.Unix()*1000+int64(atMs) != evs[1].AtMs ||
		providerAt.Unix()*1000+int64(providerAtMs) != m.ProviderAtMs {
		t.Fatalf("times: at %v+%dms (%d), provider_at %v+%dms; want %d and %d", at, atMs, exactMs, providerAt, providerAtMs, evs[1].AtMs, m.ProviderAtMs)
	}

	var event, profile string
	var attempt uint8
	if err := s.Conn().QueryRow(ctx, "SELECT event, profile_id, attempt FROM auth_events FINAL WHERE event_id = 'w-000002'").Scan(&event, &profile, &attempt); err != nil {
		t.Fatal(err)
	}
	if a := evs[2].GetAuth(); event != a.Event || profile != a.ProfileId || int32(attempt) != a.Attempt {
		t.Fatalf("auth row %s %s %d, want %v", event, profile, attempt, a)
	}

	// The events straddle midnight: two daily partitions.
	var parts uint64
	if err := s.Conn().QueryRow(ctx, "SELECT uniqExact(partition) FROM system.parts WHERE database = currentDatabase() AND table = 'messages' AND active").Scan(&parts); err != nil {
		t.Fatal(err)
	}
	if parts != 2 {
		t.Fatalf("%d partitions, want 2 (one per day)", parts)
	}
}

func TestReplayedEventsCollapse(t *testing.T) {
	s := openStore(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const n = 500
	evs := makeEvents("r", n)
	// The whole batch, then overlapping slices of it again, as a sink
	// re-reading uncommitted records would.
	for _, part := range [][]*wire.Event{evs, evs[:200], evs[100:], evs} {
		if err := s.WriteEvents(ctx, part); err != nil {
			t.Fatal(err)
		}
	}
	c := count(t, s)
	if c.final != n || c.distinct != n || c.raw < n {
		t.Fatalf("before merge: %+v, want final and distinct %d", c, n)
	}
	optimizedTo(t, s, n)
}

func TestWriteEventsRejectsInvalidBatchWhole(t *testing.T) {
	s := openStore(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	evs := makeEvents("x", 10)
	evs[5] = &wire.Event{Id: "bad", Kind: &wire.Event_Message{Message: &wire.MessageLog{Direction: "sideways"}}}
	if err := s.WriteEvents(ctx, evs); !errors.Is(err, ErrInvalidEvent) {
		t.Fatalf("err = %v, want ErrInvalidEvent", err)
	}
	if c := count(t, s); c.raw != 0 {
		t.Fatalf("%d rows written from a rejected batch", c.raw)
	}
	if err := s.WriteEvents(ctx, nil); err != nil {
		t.Fatalf("empty batch: %v", err)
	}
	if err := s.Ping(ctx); err != nil {
		t.Fatal(err)
	}
}
