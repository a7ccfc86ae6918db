package conversation

import (
	"bytes"
	"fmt"
	"testing"
	"time"
)

func TestDuplicates(t *testing.T) {
	tests := []struct {
		after time.Duration
		dup   bool
	}{
		{0, true},
		{time.Second, true},
		{47*time.Hour + 59*time.Minute + 59*time.Second, true},
		{48 * time.Hour, false},
		{72 * time.Hour, false},
	}
	for _, tc := range tests {
		t.Run(tc.after.String(), func(t *testing.T) {
			h := newHarness(t)
			h.signIn(jane)
			first := Inbound{ProviderID: "SM-dup", Text: "What time is it open?"}
			h.do(first)
			h.wait(tc.after)
			before, _ := h.s.MarshalBinary()
			eff := h.do(first)
			if !tc.dup {
				if _, ok := find[LogInbound](eff); !ok {
					t.Fatalf("redelivery after 48h not accepted: %v", eff)
				}
				return
			}
			eqEff(t, eff, Dropped{Reason: DropDuplicate, ProviderID: "SM-dup"})
			after, _ := h.s.MarshalBinary()
			if !bytes.Equal(before, after) {
				t.Fatal("a duplicate changed the session")
			}
		})
	}
}

func TestDuplicateOfCodeIsNotASecondAttempt(t *testing.T) {
	h := newHarness(t)
	h.toCode(jane)
	m := Inbound{ProviderID: "SM-1", Text: wrong(h.code)}
	h.do(m)
	h.do(m)
	h.do(m)
	if h.s.Attempts() != 1 {
		t.Fatalf("attempts %d", h.s.Attempts())
	}
}

func TestDedupeRingIsBounded(t *testing.T) {
	h := newHarness(t)
	h.p.DedupeMax = 8
	for i := range 9 {
		h.do(Inbound{ProviderID: fmt.Sprint("id-", i), Text: "x"})
	}
	if len(h.s.seen) != 8 {
		t.Fatalf("ring holds %d", len(h.s.seen))
	}
	// id-0 was forgotten to make room; id-1 is still known.
	if _, ok := find[Dropped](h.do(Inbound{ProviderID: "id-1"})); !ok {
		t.Fatal("id-1 forgotten")
	}
	if _, ok := find[Dropped](h.do(Inbound{ProviderID: "id-0"})); ok {
		t.Fatal("ring grew past DedupeMax")
	}
}

func TestEmptyProviderIDIsNeverDuplicate(t *testing.T) {
	h := newHarness(t)
	h.do(Inbound{Text: "a"})
	if _, ok := find[Dropped](h.do(Inbound{Text: "a"})); ok {
		t.Fatal("message without id dropped")
	}
	if len(h.s.seen) != 0 {
		t.Fatal("empty id remembered")
	}
}

func TestCompact(t *testing.T) {
	h := newHarness(t)
	for i := range 50 {
		h.do(Inbound{ProviderID: fmt.Sprint("id-", i), Text: "x"})
	}
	h.wait(48 * time.Hour)
	h.s.Compact(h.p, h.now)
	if h.s.seen != nil || h.s.codesSent != nil {
		t.Fatalf("expired entries kept: %d ids, %d codes", len(h.s.seen), len(h.s.codesSent))
	}
}

// TestGroupMessagesAreLoggedOnly: a message written in a group is logged
// and nothing else happens: no sign-in, no reply, no window or
// conversation of the one-to-one chat; a redelivery is still a duplicate.
func TestGroupMessagesAreLoggedOnly(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(h *harness)
	}{
		{"a stranger", func(*harness) {}},
		{"signed in", func(h *harness) { h.signIn(jane) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			tc.setup(h)
			h.wait(time.Hour)
			before := h.s.Clone()
			eff := h.do(Inbound{ProviderID: "wamid.group1", Text: "what time do you open?", Group: true})
			eqEff(t, eff, LogInbound{ProviderID: "wamid.group1", Group: true})
			if h.s.WindowOpen(h.now) != before.WindowOpen(h.now) || h.s.ConversationID() != before.ConversationID() || h.s.LastInbound() != before.LastInbound() {
				t.Fatal("a group message moved the one-to-one window or conversation")
			}
			eqEff(t, h.do(Inbound{ProviderID: "wamid.group1", Text: "what time do you open?", Group: true}), Dropped{Reason: DropDuplicate, ProviderID: "wamid.group1"})
		})
	}
}
