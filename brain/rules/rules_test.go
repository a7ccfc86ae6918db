package rules_test

import (
	"context"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/parleyhq/parley/backend/demo"
	"github.com/parleyhq/parley/brain"
	"github.com/parleyhq/parley/brain/rules"
	"github.com/parleyhq/parley/brain/tools"
)

var now = time.Date(2026, 3, 10, 10, 0, 0, 0, demo.Location)

func newBrain() (*rules.Brain, *demo.Backend) {
	clock := func() time.Time { return now }
	be := demo.NewAt(clock)
	return rules.New(rules.WithBackend(be), rules.WithLocation(demo.Location), rules.WithClock(clock),
		rules.WithDashboardURL("https://sparkle.example/book")), be
}

// conversation plays messages through one brain the way the session shell
// does: each answer's State goes into the next request.
type conversation struct {
	t       *testing.T
	b       *rules.Brain
	req     brain.Request
	answers []brain.Answer
}

func (c *conversation) say(text string) brain.Answer {
	c.t.Helper()
	r := c.req
	r.Text = text
	if n := len(c.answers); n > 0 {
		r.State = c.answers[n-1].State
	}
	a, err := c.b.Answer(context.Background(), r)
	if err != nil {
		c.t.Fatal(err)
	}
	c.answers = append(c.answers, a)
	return a
}

func samConversation(t *testing.T, b *rules.Brain) *conversation {
	return &conversation{t: t, b: b, req: brain.Request{TenantName: "Sparkle Cleaning", Authenticated: true,
		ProfileID: demo.ProfileSam, FirstName: "Sam"}}
}

// TestCancelConversation is the product's cancellation: proposed,
// confirmed on the next message, applied once.
func TestCancelConversation(t *testing.T) {
	steps := []struct {
		say       string
		contains  string
		queryType string
		pending   bool
		cancelled bool
	}{
		{"Cancel my appointment on Friday", "shall I cancel your Standard Clean on Friday 13 March at 9:00", tools.CancelBooking, true, false},
		{"yes", "is cancelled", tools.CancelBooking, false, true},
		{"Show me my upcoming bookings", "1 upcoming booking", tools.ListBookings, false, true},
	}
	b, be := newBrain()
	c := samConversation(t, b)
	for _, s := range steps {
		a := c.say(s.say)
		if !strings.Contains(a.Text, s.contains) || a.QueryType != s.queryType || (a.State.Pending != nil) != s.pending {
			t.Fatalf("%q: %+v", s.say, a)
		}
		if got := !upcoming(t, be, demo.BookingSamStandard); got != s.cancelled {
			t.Fatalf("%q: cancelled %v", s.say, got)
		}
	}
}

// TestPendingLapses: anything but a yes drops the proposal, so a later,
// unrelated "yes" cancels nothing.
func TestPendingLapses(t *testing.T) {
	cases := []struct {
		name    string
		between []string
		expired bool
	}{
		{"another question", []string{"What's my current subscription?"}, false},
		{"ok and another question", []string{"ok, and how many bookings do I have left?"}, false},
		{"no", []string{"no"}, false},
		{"expired", nil, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b, be := newBrain()
			c := samConversation(t, b)
			a := c.say("cancel my premium clean")
			if a.State.Pending == nil {
				t.Fatalf("no proposal: %+v", a)
			}
			for _, m := range tc.between {
				if a = c.say(m); a.State.Pending != nil {
					t.Fatalf("%q kept the proposal", m)
				}
			}
			if tc.expired {
				c.req.Now = a.State.Pending.Expires
			}
			a = c.say("yes")
			if !upcoming(t, be, demo.BookingSamPremium) {
				t.Fatalf("cancelled by a stray yes: %q", a.Text)
			}
		})
	}
}

// TestPendingOfAnotherProfile: a proposal left in the state by another
// profile (a shell that forgot to reset it) is never confirmed.
func TestPendingOfAnotherProfile(t *testing.T) {
	b, be := newBrain()
	r := brain.Request{Text: "yes", Authenticated: true, ProfileID: demo.ProfileJohn, FirstName: "John",
		State: brain.State{Pending: &brain.PendingAction{Kind: brain.PendingCancel, ProfileID: demo.ProfileSam,
			BookingID: demo.BookingSamStandard, Expires: now.Add(time.Hour)}}}
	a, _ := b.Answer(context.Background(), r)
	if a.State.Pending != nil || !upcoming(t, be, demo.BookingSamStandard) {
		t.Errorf("%+v", a)
	}
}

// TestEscalation: three misunderstood messages in a row, or asking for a
// person, hand the conversation over with a summary; an understood message
// resets the count.
func TestEscalation(t *testing.T) {
	b, _ := newBrain()
	c := samConversation(t, b)
	script := []struct {
		say     string
		count   int
		handoff string
	}{
		{"blorp", 1, ""},
		{"zzzq", 2, ""},
		{"hello", 0, ""},
		{"wibble", 1, ""},
		{"flarp", 2, ""},
		{"grommet", 0, brain.HandoffNotUnderstood},
		{"I want to talk to a human", 0, brain.HandoffRequested},
	}
	for _, s := range script {
		a := c.say(s.say)
		if a.State.NotUnderstood != s.count {
			t.Errorf("%q: count %d, want %d", s.say, a.State.NotUnderstood, s.count)
		}
		switch {
		case s.handoff == "" && a.Handoff != nil:
			t.Errorf("%q: unexpected handoff", s.say)
		case s.handoff != "":
			if a.Handoff == nil || a.Handoff.Reason != s.handoff || a.QueryType != tools.HandoffToHuman {
				t.Fatalf("%q: %+v", s.say, a)
			}
			if !strings.Contains(a.Text, "person from the team") || !strings.Contains(a.Handoff.Summary, s.say) {
				t.Errorf("%q: text %q summary %q", s.say, a.Text, a.Handoff.Summary)
			}
			if len(a.ToolCalls) != 1 || a.ToolCalls[0].Tool != tools.HandoffToHuman {
				t.Errorf("%q: tool calls %+v", s.say, a.ToolCalls)
			}
		}
	}
	if s := c.answers[5].Handoff.Summary; !strings.Contains(s, "wibble") || !strings.Contains(s, "3 messages") {
		t.Errorf("summary %q", s)
	}
}

// TestLanguageKept: the language is detected once and kept; a message that
// does not tell leaves it open.
func TestLanguageKept(t *testing.T) {
	b, _ := newBrain()
	c := samConversation(t, b)
	steps := []struct{ say, lang, contains string }{
		{"ok", "", "welcome"},
		{"Hola", "es", "¡Hola Sam!"},
		{"Show me my upcoming bookings", "es", "Tienes 2 reservas próximas"},
		{"9:00?", "es", "no te he entendido"},
	}
	for _, s := range steps {
		a := c.say(s.say)
		if a.State.Language != s.lang || !strings.Contains(a.Text, s.contains) {
			t.Errorf("%q: lang %q, text %q", s.say, a.State.Language, a.Text)
		}
	}
	if n := len(c.answers[len(c.answers)-1].State.History); n != 8 {
		t.Errorf("history of %d turns", n)
	}
}

// TestNoBackend: a brain without a backend (or with one that is down)
// still answers, with the next best step.
func TestNoBackend(t *testing.T) {
	b := rules.New()
	cases := []struct{ text, contains string }{
		{"Show me my upcoming bookings", "can't reach our booking system"},
		{"What times are available tomorrow?", "try again in a few minutes"},
		{"What can you help me with?", "Passing you to a person"},
		{"hello", "Hello Sam"},
	}
	for _, c := range cases {
		a, err := b.Answer(context.Background(), brain.Request{Text: c.text, Authenticated: true, ProfileID: "p", FirstName: "Sam"})
		if err != nil || !strings.Contains(a.Text, c.contains) {
			t.Errorf("%q: %q %v", c.text, a.Text, err)
		}
		for _, tc := range a.ToolCalls {
			if tc.OK && tc.Tool != tools.Help { // help needs no backend
				t.Errorf("%q: %+v", c.text, tc)
			}
		}
	}
}

// TestRepliesAreSafe: whatever is asked, replies stay under WhatsApp's
// limit and never show a full email address or phone number.
func TestRepliesAreSafe(t *testing.T) {
	b, _ := newBrain()
	texts := []string{"account details", "what's my email", strings.Repeat("bookings ", 3000), "hello " + strings.Repeat("ñ", 9000)}
	for _, text := range texts {
		a, _ := b.Answer(context.Background(), brain.Request{Text: text, Authenticated: true, ProfileID: demo.ProfileSam, FirstName: "Sam"})
		if utf8.RuneCountInString(a.Text) > brain.MaxReplyChars || strings.Contains(a.Text, "sam@example.com") || strings.Contains(a.Text, demo.PhoneSam) {
			t.Errorf("%.30q: %d runes: %.200q", text, utf8.RuneCountInString(a.Text), a.Text)
		}
		for _, turn := range a.State.History {
			if utf8.RuneCountInString(turn.Text) > brain.MaxTurnChars {
				t.Errorf("history turn of %d runes", utf8.RuneCountInString(turn.Text))
			}
		}
	}
}

// TestDashboard: the configured dashboard is offered where customers are
// told to book.
func TestDashboard(t *testing.T) {
	b, _ := newBrain()
	a, _ := b.Answer(context.Background(), brain.Request{Text: "I want to make a booking"})
	if !strings.Contains(a.Text, "https://sparkle.example/book") || a.QueryType != rules.IntentBookingRequest {
		t.Errorf("%+v", a)
	}
}

func TestDetectLanguage(t *testing.T) {
	cases := []struct {
		text string
		lang string
		sure bool
	}{
		{"Show me my upcoming bookings", "en", true},
		{"¿Cuántas sesiones me quedan?", "es", true},
		{"hola", "es", true},
		{"hi", "en", true},
		{"ok", "en", false},
		{"9:00", "en", false},
		{"Premium Clean", "en", false},
	}
	for _, c := range cases {
		lang, sure := rules.DetectLanguage(c.text)
		if lang != c.lang || sure != c.sure {
			t.Errorf("DetectLanguage(%q) = %s %v", c.text, lang, sure)
		}
	}
}

func upcoming(t *testing.T, be *demo.Backend, id string) bool {
	t.Helper()
	for _, p := range []string{demo.ProfileSam, demo.ProfileJane, demo.ProfileJohn} {
		list, err := be.Bookings(context.Background(), p, "upcoming")
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range list {
			if b.ID == id {
				return true
			}
		}
	}
	return false
}
