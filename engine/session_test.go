package engine

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"
)

var codeInText = regexp.MustCompile(`\b(\d{6})\b`)

// TestSignInWithProfileChoiceWrongAndRightCode walks the sign-in flow of the
// demo number with three profiles through signed Twilio webhooks, reading
// the code from the message the local Twilio server received.
func TestSignInWithProfileChoiceWrongAndRightCode(t *testing.T) {
	h := startHarness(t)
	const phone = "+447700900123"
	n := 0
	say := func(text string) string {
		t.Helper()
		n++
		h.sendWhatsApp(t, fmt.Sprintf("SM%032x", 0xabc000+n), phone, text)
		got := h.twilio.WaitFor(n, 30*time.Second)
		if len(got) < n {
			t.Fatalf("after %q: %d replies, want %d", text, len(got), n)
		}
		return got[n-1].Body
	}

	list := say("Hi")
	for _, want := range []string{"1. Jane Smith (j***@example.com)", "2. Test User (t***@example.com)", "3. John Doe (a***@example.com)"} {
		if !strings.Contains(list, want) {
			t.Fatalf("profile list %q lacks %q", list, want)
		}
	}
	if again := say("someone else"); !strings.Contains(again, "1. Jane Smith") {
		t.Fatalf("an unknown choice should re-ask, got %q", again)
	}
	codeMsg := say("jane")
	m := codeInText.FindStringSubmatch(codeMsg)
	if m == nil {
		t.Fatalf("no code in %q", codeMsg)
	}
	code := m[1]
	wrong := "000000"
	if code == wrong {
		wrong = "111111"
	}
	if r := say(wrong); !strings.Contains(r, "2 attempts left") {
		t.Fatalf("wrong code answered %q", r)
	}
	if r := say(code); !strings.Contains(r, "Hi Jane") {
		t.Fatalf("right code answered %q", r)
	}

	// Every step is in ClickHouse's auth_events, in order.
	want := []string{"profile_lookup", "profile_choice_asked", "profile_choice_asked", "profile_selected", "code_sent", "code_failed", "code_verified"}
	eventually(t, 30*time.Second, func() error {
		rows, err := h.engine.Store().Conn().Query(context.Background(), fmt.Sprintf(
			"SELECT event, profile_id FROM %s.auth_events FINAL WHERE tenant = 'acme' AND phone = '%s' ORDER BY at, at_ms, event_id", h.db, phone))
		if err != nil {
			return err
		}
		defer rows.Close()
		var got []string
		for rows.Next() {
			var ev, profile string
			if err := rows.Scan(&ev, &profile); err != nil {
				return err
			}
			if ev == "code_verified" && profile != "prof_jane" {
				return fmt.Errorf("verified profile %q", profile)
			}
			got = append(got, ev)
		}
		if strings.Join(got, ",") != strings.Join(want, ",") {
			return fmt.Errorf("auth events %v, want %v", got, want)
		}
		return nil
	})

	// The code itself is never in the message log: neither the message
	// that sent it nor the customer's reply with it.
	var leaks, entered uint64
	if err := h.engine.Store().Conn().QueryRow(context.Background(), fmt.Sprintf(
		"SELECT countIf(position(body, '%s') > 0), countIf(direction = 'in' AND body = '[verification code entered]') FROM %s.messages",
		code, h.db)).Scan(&leaks, &entered); err != nil {
		t.Fatal(err)
	}
	if leaks != 0 || entered == 0 {
		t.Fatalf("the code is in %d logged messages; %d typed codes logged as such", leaks, entered)
	}
}
