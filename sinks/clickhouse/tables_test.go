package clickhouse

import (
	"context"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/parleyhq/parley/wire"
)

// kindEvents makes one event of every kind for tenant and phone at atMs,
// ids "<prefix>-<kind>".
func kindEvents(prefix, tenant, phone string, atMs int64) []*wire.Event {
	ev := func(kind string, k any) *wire.Event {
		e := &wire.Event{Id: prefix + "-" + kind, Tenant: tenant, Phone: phone, AtMs: atMs}
		switch k := k.(type) {
		case *wire.MessageLog:
			e.Kind = &wire.Event_Message{Message: k}
		case *wire.AuthEvent:
			e.Kind = &wire.Event_Auth{Auth: k}
		case *wire.ToolCall:
			e.Kind = &wire.Event_ToolCall{ToolCall: k}
		case *wire.Usage:
			e.Kind = &wire.Event_Usage{Usage: k}
		case *wire.DeliveryReport:
			e.Kind = &wire.Event_Delivery{Delivery: k}
		case *wire.ConversationChange:
			e.Kind = &wire.Event_Conversation{Conversation: k}
		}
		return e
	}
	conv := "c-" + prefix
	return []*wire.Event{
		ev("in", &wire.MessageLog{Direction: "in", MessageId: prefix + "-in", ProviderId: "SM" + prefix, Channel: "twilio", Body: "book me", ConversationId: conv, QueryType: "booking", ProviderAtMs: atMs - 40}),
		ev("out", &wire.MessageLog{Direction: "out", MessageId: prefix + "-out", Channel: "twilio", Body: "done", ConversationId: conv, QueryType: "booking"}),
		ev("auth", &wire.AuthEvent{Event: "code_sent", ProfileId: "p1", Attempt: 0}),
		ev("tool", &wire.ToolCall{Tool: "create_booking", Ok: true, LatencyUs: 1234, ConversationId: conv}),
		ev("usage", &wire.Usage{Metric: "llm_prompt_tokens", Value: 321, Model: "gpt-x"}),
		ev("delivery", &wire.DeliveryReport{MessageId: prefix + "-out", ProviderId: "SMout" + prefix, Status: "failed", ErrorCode: "63016", Channel: "twilio"}),
		ev("conv", &wire.ConversationChange{ConversationId: conv, Change: "handoff", Status: "active", AiEnabled: false, Operator: "ops@x", Summary: "wants a human", ByCustomer: true}),
	}
}

func TestWriteEventsStoresEveryKind(t *testing.T) {
	s := openStore(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const at = baseMs + 5_000
	evs := kindEvents("k", "acme", "+447700900001", at)
	// Twice: the second write is a replay and must collapse.
	for range 2 {
		if err := s.WriteEvents(ctx, evs); err != nil {
			t.Fatal(err)
		}
	}
	for _, table := range EventTables {
		var final, distinct uint64
		if err := s.Conn().QueryRow(ctx, "SELECT count() FROM "+table+" FINAL").Scan(&final); err != nil {
			t.Fatal(err)
		}
		if err := s.Conn().QueryRow(ctx, "SELECT uniqExact(event_id) FROM "+table).Scan(&distinct); err != nil {
			t.Fatal(err)
		}
		want := uint64(1)
		if table == TableMessages {
			want = 2
		}
		if final != want || distinct != want {
			t.Errorf("%s: final %d, distinct %d, want %d", table, final, distinct, want)
		}
	}

	var (
		tool, toolErr, conv string
		ok                  uint8
		latency             uint64
		exact               uint64
	)
	if err := s.Conn().QueryRow(ctx, "SELECT tool, ok, latency_us, error, conversation_id, toUInt64(at) * 1000 + at_ms FROM tool_calls FINAL").Scan(&tool, &ok, &latency, &toolErr, &conv, &exact); err != nil {
		t.Fatal(err)
	}
	if tool != "create_booking" || ok != 1 || latency != 1234 || toolErr != "" || conv != "c-k" || exact != at {
		t.Errorf("tool_calls row: %s %d %d %q %s %d", tool, ok, latency, toolErr, conv, exact)
	}
	var metric, model string
	var value int64
	if err := s.Conn().QueryRow(ctx, "SELECT metric, value, model FROM usage FINAL").Scan(&metric, &value, &model); err != nil {
		t.Fatal(err)
	}
	if metric != "llm_prompt_tokens" || value != 321 || model != "gpt-x" {
		t.Errorf("usage row: %s %d %s", metric, value, model)
	}
	var msgID, provID, status, code, channel string
	if err := s.Conn().QueryRow(ctx, "SELECT message_id, provider_id, status, error_code, channel FROM deliveries FINAL").Scan(&msgID, &provID, &status, &code, &channel); err != nil {
		t.Fatal(err)
	}
	if msgID != "k-out" || provID != "SMoutk" || status != "failed" || code != "63016" || channel != "twilio" {
		t.Errorf("deliveries row: %s %s %s %s %s", msgID, provID, status, code, channel)
	}
	var change, cstatus, operator, summary string
	var ai, byCustomer uint8
	if err := s.Conn().QueryRow(ctx, "SELECT conversation_id, change, status, ai_enabled, operator, summary, by_customer FROM conversations FINAL").Scan(&conv, &change, &cstatus, &ai, &operator, &summary, &byCustomer); err != nil {
		t.Fatal(err)
	}
	if conv != "c-k" || change != "handoff" || cstatus != "active" || ai != 0 || operator != "ops@x" || summary != "wants a human" || byCustomer != 1 {
		t.Errorf("conversations row: %s %s %s %d %s %s %d", conv, change, cstatus, ai, operator, summary, byCustomer)
	}

	// The rollup: first customer message counted from the ingress
	// (provider_at), first reply from its log time; written twice, still
	// the same minimum. kindEvents' conversation change is a handoff, not
	// a start: no start.
	var started, firstIn, firstOut uint64
	if err := s.Conn().QueryRow(ctx, "SELECT min(started_ms), min(first_in_ms), min(first_out_ms) FROM conversation_firsts WHERE tenant = 'acme' AND conversation_id = 'c-k'").Scan(&started, &firstIn, &firstOut); err != nil {
		t.Fatal(err)
	}
	if firstIn != at-40 || firstOut != at || started != math.MaxUint64 {
		t.Errorf("conversation_firsts: started %d, first in %d, first out %d; want none, %d and %d", started, firstIn, firstOut, at-40, at)
	}
	start := &wire.Event{Id: "k-start", Tenant: "acme", Phone: "+447700900001", AtMs: at - 10,
		Kind: &wire.Event_Conversation{Conversation: &wire.ConversationChange{ConversationId: "c-k", Change: "started"}}}
	if err := s.WriteEvents(ctx, []*wire.Event{start}); err != nil {
		t.Fatal(err)
	}
	if err := s.Conn().QueryRow(ctx, "SELECT min(started_ms) FROM conversation_firsts WHERE tenant = 'acme' AND conversation_id = 'c-k'").Scan(&started); err != nil {
		t.Fatal(err)
	}
	if started != at-10 {
		t.Errorf("conversation_firsts: started %d, want %d", started, at-10)
	}
}

func TestConversationFirstsBackfillIsIdempotent(t *testing.T) {
	s := openStore(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var evs []*wire.Event
	for i := range 20 {
		evs = append(evs, kindEvents(fmt.Sprintf("b%d", i), "acme", fmt.Sprintf("+4477009%05d", i), baseMs+int64(i)*1000)...)
	}
	if err := s.WriteEvents(ctx, evs); err != nil {
		t.Fatal(err)
	}
	read := func() string {
		var got string
		if err := s.Conn().QueryRow(ctx, `SELECT arrayStringConcat(groupArray(toString(x)), ',') FROM (SELECT concat(conversation_id, ':', toString(min(started_ms)), ':', toString(min(first_in_ms)), ':', toString(min(first_out_ms))) AS x
			FROM conversation_firsts GROUP BY conversation_id ORDER BY conversation_id)`).Scan(&got); err != nil {
			t.Fatal(err)
		}
		return got
	}
	before := read()
	// The migration's backfills run again over what the views already
	// rolled up: nothing changes.
	for _, stmt := range conversationFirstsBackfills {
		if err := s.Conn().Exec(ctx, stmt); err != nil {
			t.Fatal(err)
		}
	}
	if after := read(); after != before || before == "" {
		t.Fatalf("backfill changed the rollup:\n%s\n%s", before, after)
	}
}
