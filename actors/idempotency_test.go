package actors

import (
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/parleyhq/parley/conversation"
	"github.com/parleyhq/parley/wire"
)

func keyedSend(key, text string) *wire.Command {
	return &wire.Command{Op: &wire.Command_Send{Send: &wire.SendMessage{Text: text}}, IdempotencyKey: key, RequestId: "r-" + text}
}

// The shell's side of idempotency over the core's memory: the
// fingerprint, the result kept as bytes and given back to the caller of a
// repeat. The core's rules (TTL, bound) are conversation's table tests.
func TestIdempotentResults(t *testing.T) {
	t0 := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	first := &wire.CommandResult{RequestId: "r-hello", Ok: true, OutboundId: "out-1", WindowUntilMs: 1234}
	var st conversation.State
	remember(t, &st, keyedSend("k1", "hello"), first, t0)
	const ttl = 24 * time.Hour
	cases := []struct {
		name     string
		c        *wire.Command
		at       time.Time
		want     conversation.KeyStatus
		outbound string
	}{
		{"no key", keyedSend("", "hello"), t0, conversation.KeyNew, ""},
		{"repeat", keyedSend("k1", "hello"), t0.Add(time.Minute), conversation.KeyRepeat, "out-1"},
		{"repeat, another operator and request id", &wire.Command{Op: &wire.Command_Send{Send: &wire.SendMessage{Text: "hello"}}, IdempotencyKey: "k1", RequestId: "x", Operator: "other"}, t0.Add(time.Hour), conversation.KeyRepeat, "out-1"},
		{"same key, other text", keyedSend("k1", "bye"), t0.Add(time.Minute), conversation.KeyConflict, ""},
		{"same key, a template", &wire.Command{Op: &wire.Command_Send{Send: &wire.SendMessage{Template: &wire.Template{Name: "hello"}}}, IdempotencyKey: "k1"}, t0, conversation.KeyConflict, ""},
		{"other key", keyedSend("k2", "hello"), t0.Add(time.Minute), conversation.KeyNew, ""},
		{"just before expiry", keyedSend("k1", "hello"), t0.Add(ttl - time.Second), conversation.KeyRepeat, "out-1"},
		{"expired", keyedSend("k1", "hello"), t0.Add(ttl), conversation.KeyNew, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, res := recall(&st, conversation.Policy{}, tc.c, commandFingerprint(tc.c), tc.at)
			if status != tc.want {
				t.Fatalf("status %v, want %v", status, tc.want)
			}
			switch status {
			case conversation.KeyRepeat:
				want := proto.Clone(first).(*wire.CommandResult)
				want.RequestId, want.Replayed = tc.c.RequestId, true
				if !proto.Equal(res, want) || res.OutboundId != tc.outbound {
					t.Fatalf("result %v, want %v", res, want)
				}
			case conversation.KeyConflict:
				if res.Ok || res.ErrorCode != "idempotency_key_reused" || res.RequestId != tc.c.RequestId {
					t.Fatalf("result %v", res)
				}
			default:
				if res != nil {
					t.Fatalf("result %v for a new key", res)
				}
			}
		})
	}
	if first.Replayed || first.RequestId != "r-hello" {
		t.Fatalf("the remembered result was changed in place: %v", first)
	}
}

// remember records res as the result of c at now, as the session does.
func remember(t *testing.T, st *conversation.State, c *wire.Command, res *wire.CommandResult, now time.Time) {
	t.Helper()
	if eff := st.Apply(conversation.Policy{}, remembered(c, commandFingerprint(c), res), now, conversation.Rand{}); len(eff) != 0 {
		t.Fatalf("remembering: %v", eff)
	}
}

// The results survive the state's encoding (a dormant or restored
// session), bounded by the core.
func TestIdempotentResultsBoundedAndEncoded(t *testing.T) {
	t0 := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	var st conversation.State
	max := conversation.DefaultPolicy().IdempotencyMax
	n := max + 5
	for i := range n {
		c := keyedSend(string(rune('a'+i)), "hello")
		remember(t, &st, c, &wire.CommandResult{Ok: true, OutboundId: c.IdempotencyKey}, t0.Add(time.Duration(i)*time.Minute))
	}
	enc, _ := st.MarshalBinary()
	var back conversation.State
	if err := back.UnmarshalBinary(enc); err != nil {
		t.Fatal(err)
	}
	now := t0.Add(time.Hour)
	for i := range n {
		c := keyedSend(string(rune('a'+i)), "hello")
		status, res := recall(&back, conversation.Policy{}, c, commandFingerprint(c), now)
		if kept := i >= n-max; kept != (status == conversation.KeyRepeat) {
			t.Fatalf("key %s: %v (the %d newest are kept)", c.IdempotencyKey, status, max)
		}
		// The others are refused, not carried out again: the session is
		// full of live results.
		if status != conversation.KeyRepeat && (status != conversation.KeyFull || res.ErrorCode != IdempotencyKeysExhausted) {
			t.Fatalf("key %s: %v %v", c.IdempotencyKey, status, res)
		}
		if status == conversation.KeyRepeat && res.OutboundId != c.IdempotencyKey {
			t.Fatalf("key %s: result %v", c.IdempotencyKey, res)
		}
	}
	back.Compact(conversation.Policy{}, t0.Add(48*time.Hour))
	all, _ := back.MarshalBinary()
	var empty conversation.State
	if zero, _ := empty.MarshalBinary(); len(all) != len(zero) {
		t.Fatalf("all expired, yet %d bytes against %d", len(all), len(zero))
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
