package conversation

import (
	"reflect"
	"testing"
	"time"
)

func TestWindow(t *testing.T) {
	tests := []struct {
		name     string
		after    time.Duration // since the last customer message
		template bool
		allowed  bool
		reason   string
	}{
		{"just after", 0, false, true, SendWindowOpen},
		{"23:59:59", 24*time.Hour - time.Second, false, true, SendWindowOpen},
		{"24:00:00", 24 * time.Hour, false, false, SendOutsideWindow},
		{"a week", 7 * 24 * time.Hour, false, false, SendOutsideWindow},
		{"template inside", time.Hour, true, true, SendTemplate},
		{"template outside", 48 * time.Hour, true, true, SendTemplate},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			h.say("hi")
			last := h.now
			h.wait(tc.after)
			if got := h.s.WindowOpen(h.now); got != (tc.after < 24*time.Hour) {
				t.Fatalf("WindowOpen = %v", got)
			}
			before := h.s
			eff := h.do(SendRequest{Text: "Your booking is confirmed", Template: tc.template})
			want := []Effect{SendDecision{Allowed: tc.allowed, Reason: tc.reason, Template: tc.template,
				Text: "Your booking is confirmed", WindowUntil: last.Add(24 * time.Hour).Local()}}
			if !reflect.DeepEqual(eff, want) {
				t.Fatalf("got  %#v\nwant %#v", eff, want)
			}
			if !reflect.DeepEqual(before, h.s) {
				t.Fatal("a send changed the session")
			}
		})
	}
}

func TestWindowMovesWithEachCustomerMessage(t *testing.T) {
	h := newHarness(t)
	if h.s.WindowOpen(h.now) {
		t.Fatal("window open before any message")
	}
	if d, _ := find[SendDecision](h.do(SendRequest{Text: "hi"})); d.Allowed || !d.WindowUntil.IsZero() {
		t.Fatalf("never-written customer: %+v", d)
	}
	h.say("hi")
	h.wait(20 * time.Hour)
	h.say("again")
	h.wait(20 * time.Hour) // 40h after the first, 20h after the last
	if d, _ := find[SendDecision](h.do(SendRequest{Text: "x"})); !d.Allowed {
		t.Fatal("window measured from the first message")
	}
	// Operator sends do not extend it.
	h.wait(4*time.Hour - time.Second)
	h.do(SendRequest{Text: "x"})
	h.wait(time.Second)
	if d, _ := find[SendDecision](h.do(SendRequest{Text: "x"})); d.Allowed {
		t.Fatal("window extended by our own sends")
	}
}

func TestWindowCountsMessagesWithAIOff(t *testing.T) {
	h := newHarness(t)
	h.do(SetAI{Enabled: false})
	h.say("is anyone there?")
	if !h.s.WindowOpen(h.now) {
		t.Fatal("a customer message with AI off did not open the window")
	}
}
