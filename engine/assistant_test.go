package engine

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestAssistantForSamPatel signs in as the demo customer Sam Patel through
// signed Twilio webhooks and asks what customers ask.
func TestAssistantForSamPatel(t *testing.T) {
	h := startHarness(t)
	const phone = "+447700900456"
	n := 0
	say := func(text string) string {
		t.Helper()
		n++
		h.sendWhatsApp(t, fmt.Sprintf("SM%032x", 0x5a3000+n), phone, text)
		got := h.twilio.WaitFor(n, 30*time.Second)
		if len(got) < n {
			t.Fatalf("after %q: %d replies, want %d", text, len(got), n)
		}
		return got[n-1].Body
	}
	expect := func(reply string, words ...string) {
		t.Helper()
		for _, w := range words {
			if !strings.Contains(strings.ToLower(reply), strings.ToLower(w)) {
				t.Fatalf("reply %q lacks %q", reply, w)
			}
		}
	}

	code := codeInText.FindString(say("Hi"))
	if code == "" {
		t.Fatal("no code sent")
	}
	expect(say(code), "Hi Sam")

	bookings := say("Show me my upcoming bookings")
	expect(bookings, "Standard Clean", "Premium Clean")
	expect(say("What's my current subscription?"), "Standard Clean - Fortnightly", "£70.00")
	expect(say("What times are available for a clean next Wednesday?"), "9:00", "11:30", "14:00")

	// Cancelling takes a confirmation: first what would be cancelled, then
	// the cancellation itself.
	proposal := say("Cancel my Standard Clean")
	expect(proposal, "Standard Clean")
	if strings.Contains(strings.ToLower(proposal), "cancelled") && !strings.Contains(strings.ToLower(proposal), "?") {
		t.Fatalf("cancelled without confirmation: %q", proposal)
	}
	expect(say("yes"), "cancelled")
	after := say("Show me my upcoming bookings")
	if strings.Contains(after, "Standard Clean") {
		t.Fatalf("the cancelled booking is still listed: %q", after)
	}

	// Every message is labelled for the most-common-queries dashboard and
	// tool calls are in ClickHouse.
	eventually(t, 30*time.Second, func() error {
		var tools uint64
		if err := h.engine.Store().Conn().QueryRow(context.Background(), fmt.Sprintf(
			"SELECT count() FROM %s.tool_calls FINAL WHERE tenant = 'acme' AND phone = '%s' AND ok", h.db, phone)).Scan(&tools); err != nil {
			return err
		}
		if tools < 4 {
			return fmt.Errorf("%d successful tool calls in ClickHouse, want at least 4", tools)
		}
		var unlabelled uint64
		if err := h.engine.Store().Conn().QueryRow(context.Background(), fmt.Sprintf(
			"SELECT count() FROM %s.messages FINAL WHERE tenant = 'acme' AND direction = 'in' AND query_type = ''", h.db)).Scan(&unlabelled); err != nil {
			return err
		}
		if unlabelled != 0 {
			return fmt.Errorf("%d inbound messages without a query type", unlabelled)
		}
		return nil
	})
}

// TestRiskGoesToAPerson: "Refund my last charge, I didn't authorize it" from
// a signed-in customer goes to a person at once (the assistant stops), not
// to a tool that answers with subscription details.
func TestRiskGoesToAPerson(t *testing.T) {
	h := startHarness(t)
	const phone = "+447700900456"
	n := 0
	say := func(text string) string {
		t.Helper()
		n++
		h.sendWhatsApp(t, fmt.Sprintf("SM%032x", 0x7e5000+n), phone, text)
		got := h.twilio.WaitFor(n, 30*time.Second)
		if len(got) < n {
			t.Fatalf("after %q: %d replies, want %d", text, len(got), n)
		}
		return got[n-1].Body
	}
	code := codeInText.FindString(say("Hi"))
	if code == "" {
		t.Fatal("no code sent")
	}
	say(code)
	reply := say("Refund my last charge, I didn't authorize it")
	if !strings.Contains(reply, "person from the team") || strings.Contains(reply, "£") {
		t.Fatalf("reply %q", reply)
	}
	// A person has it now: the next message gets no automatic reply.
	h.sendWhatsApp(t, fmt.Sprintf("SM%032x", 0x7e5fff), phone, "hello?")
	time.Sleep(2 * time.Second)
	if got := len(h.twilio.Messages()); got != n {
		t.Fatalf("%d replies after the handoff, want %d", got, n)
	}
}
