package conversation

import (
	"testing"
	"time"
	"unsafe"
)

// TestMemory reports the footprint of a session: it matters because every
// customer who wrote in the last days has one (the goal is under 2 KB per
// idle session including the actor, see ARCHITECTURE.md).
func TestMemory(t *testing.T) {
	var zero State
	t.Logf("unsafe.Sizeof(State{}) = %d bytes", unsafe.Sizeof(State{}))
	t.Logf("new session: %d bytes", zero.ApproxSize())

	// A typical idle signed-in session: 20 messages over a day.
	h := newHarness(t)
	h.signIn(jane)
	for range 18 {
		h.wait(time.Hour)
		h.say("question")
	}
	h.s.Compact(h.p, h.now)
	typical := h.s.ApproxSize()
	enc, _ := h.s.MarshalBinary()
	t.Logf("signed-in session after 20 messages: %d bytes in memory, %d encoded", typical, len(enc))

	// The worst case the policy allows: a full dedupe ring.
	for range 300 {
		h.say("flood")
	}
	h.s.Compact(h.p, h.now)
	full := h.s.ApproxSize()
	t.Logf("with a full ring of %d ids: %d bytes", len(h.s.seen), full)

	// 344: the delivery ring, the idempotency results, the brain's memory
	// and the opt-out moved here from the actor, which shrank by more;
	// then the business number last written to (16 bytes, a string).
	if unsafe.Sizeof(State{}) > 344 {
		t.Errorf("State grew to %d bytes", unsafe.Sizeof(State{}))
	}
	if typical > 700 {
		t.Errorf("typical session %d bytes", typical)
	}
	if full > 3700 {
		t.Errorf("full session %d bytes", full)
	}
}
