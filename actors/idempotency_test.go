package actors

import (
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/parleyhq/parley/wire"
)

func keyedSend(key, text string) *wire.Command {
	return &wire.Command{Op: &wire.Command_Send{Send: &wire.SendMessage{Text: text}}, IdempotencyKey: key, RequestId: "r-" + text}
}

func TestIdempotentResults(t *testing.T) {
	t0 := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	first := &wire.CommandResult{RequestId: "r-hello", Ok: true, OutboundId: "out-1"}
	var r idempotentResults
	r = r.remember(keyedSend("k1", "hello"), first, t0)
	cases := []struct {
		name     string
		c        *wire.Command
		at       time.Time
		want     keyStatus
		outbound string
	}{
		{"no key", keyedSend("", "hello"), t0, keyNew, ""},
		{"repeat", keyedSend("k1", "hello"), t0.Add(time.Minute), keyRepeat, "out-1"},
		{"repeat, another operator and request id", &wire.Command{Op: &wire.Command_Send{Send: &wire.SendMessage{Text: "hello"}}, IdempotencyKey: "k1", RequestId: "x", Operator: "other"}, t0.Add(time.Hour), keyRepeat, "out-1"},
		{"same key, other text", keyedSend("k1", "bye"), t0.Add(time.Minute), keyConflict, ""},
		{"other key", keyedSend("k2", "hello"), t0.Add(time.Minute), keyNew, ""},
		{"just before expiry", keyedSend("k1", "hello"), t0.Add(idempotencyTTL), keyRepeat, "out-1"},
		{"expired", keyedSend("k1", "hello"), t0.Add(idempotencyTTL + time.Millisecond), keyNew, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, res := r.find(tc.c, tc.at)
			if status != tc.want {
				t.Fatalf("status %d, want %d", status, tc.want)
			}
			switch status {
			case keyRepeat:
				if !res.Ok || !res.Replayed || res.OutboundId != tc.outbound || res.RequestId != tc.c.RequestId {
					t.Fatalf("result %v", res)
				}
			case keyConflict:
				if res.Ok || res.ErrorCode != "idempotency_key_reused" {
					t.Fatalf("result %v", res)
				}
			}
		})
	}
	if first.Replayed || first.RequestId != "r-hello" {
		t.Fatalf("the remembered result was changed in place: %v", first)
	}
}

func TestIdempotentResultsBoundedAndEncoded(t *testing.T) {
	t0 := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	var r idempotentResults
	for i := range idempotencyMax + 5 {
		c := keyedSend(string(rune('a'+i)), "hello")
		r = r.remember(c, &wire.CommandResult{Ok: true, OutboundId: c.IdempotencyKey}, t0.Add(time.Duration(i)*time.Minute))
	}
	if len(r) != idempotencyMax {
		t.Fatalf("%d remembered, want %d", len(r), idempotencyMax)
	}
	if st, _ := r.find(keyedSend("a", "hello"), t0.Add(time.Hour)); st != keyNew {
		t.Fatal("the oldest key is still remembered")
	}
	back, err := unmarshalIdempotent(r.marshal(t0.Add(time.Hour)))
	if err != nil {
		t.Fatal(err)
	}
	if len(back) != len(r) || !proto.Equal(back[0], r[0]) {
		t.Fatalf("round trip: %d items", len(back))
	}
	if b := r.marshal(t0.Add(48 * time.Hour)); b != nil {
		t.Fatalf("all expired, yet %d bytes", len(b))
	}
}

// A keyed API send repeated (a client retry) reaches the customer once,
// also after the session was passivated in between; the key reused for
// another message is refused.
func TestKeyedSendReachesTheCustomerOnce(t *testing.T) {
	s := startSessions(t, 100*time.Millisecond)
	const phone = "+447700900456"
	tpl := &wire.Template{Name: "reminder", ContentSid: "HX1"}
	send := func(key string, tpl *wire.Template) *wire.CommandResult {
		t.Helper()
		s.command(t, phone, &wire.Command{Op: &wire.Command_Send{Send: &wire.SendMessage{Template: tpl}}, RequestId: "r", IdempotencyKey: key})
		return s.result(t)
	}
	first := send("retry-me", tpl)
	if !first.Ok || first.Replayed || first.OutboundId == "" {
		t.Fatalf("first send: %v", first)
	}
	again := send("retry-me", tpl)
	if !again.Ok || !again.Replayed || again.OutboundId != first.OutboundId {
		t.Fatalf("repeat: %v, want the first result replayed", again)
	}
	// Passivated and resumed, the session still knows the key.
	s.waitDormant(t)
	if r := send("retry-me", tpl); !r.Replayed || r.OutboundId != first.OutboundId {
		t.Fatalf("repeat after passivation: %v", r)
	}
	if r := send("retry-me", &wire.Template{Name: "other", ContentSid: "HX2"}); r.Ok || r.ErrorCode != "idempotency_key_reused" {
		t.Fatalf("key reused for another template: %v", r)
	}
	second := send("another-key", tpl)
	if !second.Ok || second.Replayed || second.OutboundId == first.OutboundId {
		t.Fatalf("another key: %v", second)
	}
	// What reached parley.outbound: the two distinct sends, once each.
	seen := map[string]int{}
	for _, out := range drain(t, s.reader, 500*time.Millisecond, func() *wire.Outbound { return &wire.Outbound{} }) {
		seen[out.Id]++
	}
	if len(seen) != 2 || seen[first.OutboundId] != 1 || seen[second.OutboundId] != 1 {
		t.Fatalf("outbound records %v, want %s and %s once each", seen, first.OutboundId, second.OutboundId)
	}
}
