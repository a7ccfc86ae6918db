package conversation

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestFirstMessageLooksUpProfiles(t *testing.T) {
	h := newHarness(t)
	eff := h.say("Hello!")
	want := []Effect{
		ConversationStarted{ID: "conv-1"},
		LogInbound{ProviderID: "wamid.1"},
		AuthEvent{Name: AuthProfileLookup},
		LookupProfiles{},
	}
	if !reflect.DeepEqual(eff, want) {
		t.Fatalf("effects:\n got %#v\nwant %#v", eff, want)
	}
	if h.s.Phase() != PhaseAwaitingLookup {
		t.Fatalf("phase %v", h.s.Phase())
	}
}

func TestLookupResults(t *testing.T) {
	disabledJane := jane
	disabledJane.WhatsAppEnabled = false
	tests := []struct {
		name      string
		profiles  []Profile
		events    []AuthEvent
		phase     Phase
		reply     string // expected Reply text (empty: no Reply)
		code      bool   // a SendCode is expected
		profileID string // state's chosen profile afterwards
	}{
		{
			name:   "none",
			events: []AuthEvent{{Name: AuthNoProfile}},
			phase:  PhaseNew, reply: English.NoProfile,
		},
		{
			name:     "single disabled",
			profiles: []Profile{disabledJane},
			events:   []AuthEvent{{Name: AuthAccessDisabled, ProfileID: "p-jane"}},
			phase:    PhaseNew, reply: English.AccessDisabled,
		},
		{
			name:     "single enabled",
			profiles: []Profile{jane},
			events:   []AuthEvent{{Name: AuthProfileSelected, ProfileID: "p-jane"}, {Name: AuthCodeSent, ProfileID: "p-jane"}},
			phase:    PhaseAwaitingCode, code: true, profileID: "p-jane",
		},
		{
			name:     "several",
			profiles: []Profile{jane, testUser, bob},
			events:   []AuthEvent{{Name: AuthProfileChoiceAsked}},
			phase:    PhaseChoosingProfile,
			reply: "This number is used by more than one profile. Which one are you?\n" +
				"1. Jane Smith (j***@example.com)\n2. Test User (t***@example.org)\n3. Bob Jones (b***@example.net)\n" +
				"Reply with the number or the name.",
		},
		{
			name:     "several all disabled",
			profiles: []Profile{disabledJane, bob},
			events:   []AuthEvent{{Name: AuthAccessDisabled}},
			phase:    PhaseNew, reply: English.AccessDisabled,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			h.say("hi")
			eff := h.do(ProfilesFound{Profiles: tc.profiles})
			if got := authEvents(eff); !reflect.DeepEqual(got, tc.events) {
				t.Fatalf("auth events %v, want %v", got, tc.events)
			}
			if h.s.Phase() != tc.phase {
				t.Fatalf("phase %v, want %v", h.s.Phase(), tc.phase)
			}
			if tc.reply != "" && onlyReply(t, eff) != tc.reply {
				t.Fatalf("reply %q\nwant %q", onlyReply(t, eff), tc.reply)
			}
			if tc.reply == "" && len(replies(eff)) != 0 {
				t.Fatalf("unexpected replies %q", replies(eff))
			}
			sc, ok := find[SendCode](eff)
			if ok != tc.code {
				t.Fatalf("SendCode present %v, want %v", ok, tc.code)
			}
			if ok {
				if !validCode(sc.Code) || !strings.Contains(sc.Text, sc.Code) || !strings.Contains(sc.Text, "10 minutes") {
					t.Fatalf("bad code message %+v", sc)
				}
				if sc.Code != "778229" { // the harness's second Rand
					t.Fatalf("code %q is not the one the shell supplied", sc.Code)
				}
			}
			if h.s.ProfileID() != tc.profileID {
				t.Fatalf("profile %q, want %q", h.s.ProfileID(), tc.profileID)
			}
			if h.s.Authenticated(h.now) {
				t.Fatal("authenticated without a code")
			}
		})
	}
}

func TestProfileChoice(t *testing.T) {
	disabledAnn := Profile{ID: "p-ann", Name: "Ann Lee", Email: "ann@example.com"}
	tests := []struct {
		answer string
		want   string // chosen profile id; "" = asked again
	}{
		{"1", "p-jane"},
		{"2", "p-test"},
		{" 2. ", "p-test"},
		{"#1", "p-jane"},
		{"jane", "p-jane"},
		{"JANE", "p-jane"},
		{"Jane Smith", "p-jane"},
		{"jane smith", "p-jane"},
		{"test user", "p-test"},
		{"Test", "p-test"},
		{"jan", "p-jane"},
		{"Jane Sm", "p-jane"},
		{"smith", "p-jane"},
		{"it's Jane", "p-jane"},
		{"I am test user", "p-test"},
		{"3", "p-ann"}, // chosen but disabled: see below
		{"0", ""},
		{"4", ""},
		{"99", ""},
		{"bob", ""},
		{"j", ""},
		{"", ""},
		{"hello", ""},
		{"123456", ""},
		{"new code", ""},
	}
	for _, tc := range tests {
		t.Run(tc.answer, func(t *testing.T) {
			h := newHarness(t)
			h.say("hi")
			h.do(ProfilesFound{Profiles: []Profile{jane, testUser, disabledAnn}})
			eff := h.say(tc.answer)
			switch {
			case tc.want == "":
				eqNames(t, authNames(eff), AuthProfileChoiceAsked)
				if r := onlyReply(t, eff); !strings.HasPrefix(r, "Sorry, I couldn't tell which profile") || !strings.Contains(r, "2. Test User (t***@example.org)") {
					t.Fatalf("re-ask %q", r)
				}
				if h.s.Phase() != PhaseChoosingProfile {
					t.Fatalf("phase %v", h.s.Phase())
				}
			case tc.want == "p-ann":
				eqNames(t, authNames(eff), AuthAccessDisabled)
				if a := authEvents(eff)[0]; a.ProfileID != "p-ann" {
					t.Fatalf("profile %q", a.ProfileID)
				}
				if onlyReply(t, eff) != English.AccessDisabled || h.s.Phase() != PhaseNew || h.s.hasCode() {
					t.Fatalf("disabled choice: %v phase %v", eff, h.s.Phase())
				}
			default:
				eqNames(t, authNames(eff), AuthProfileSelected, AuthCodeSent)
				if h.s.ProfileID() != tc.want || h.s.Phase() != PhaseAwaitingCode {
					t.Fatalf("chose %q phase %v, want %q", h.s.ProfileID(), h.s.Phase(), tc.want)
				}
				if len(h.s.candidates) != 0 {
					t.Fatal("candidates kept after the choice")
				}
			}
		})
	}
}

func TestProfileChoiceAmbiguousAsksAgain(t *testing.T) {
	janeDoe := Profile{ID: "p-doe", Name: "Jane Doe", Email: "jd@example.com", WhatsAppEnabled: true}
	h := newHarness(t)
	h.say("hi")
	h.do(ProfilesFound{Profiles: []Profile{jane, janeDoe}})
	eqNames(t, authNames(h.say("jane")), AuthProfileChoiceAsked)
	eqNames(t, authNames(h.say("Jane D")), AuthProfileSelected, AuthCodeSent)
	if h.s.ProfileID() != "p-doe" {
		t.Fatalf("chose %q", h.s.ProfileID())
	}
}

func TestCodeExpiryBoundary(t *testing.T) {
	tests := []struct {
		after    time.Duration
		verified bool
	}{
		{0, true},
		{9*time.Minute + 59*time.Second, true},
		{9*time.Minute + 59*time.Second + 999*time.Millisecond, true}, // same second
		{10 * time.Minute, false},
		{10*time.Minute + time.Second, false},
		{time.Hour, false},
	}
	for _, tc := range tests {
		t.Run(tc.after.String(), func(t *testing.T) {
			h := newHarness(t)
			h.toCode(jane)
			h.wait(tc.after)
			eff := h.say(h.code)
			if h.s.Authenticated(h.now) != tc.verified {
				t.Fatalf("authenticated = %v after %v: %v", !tc.verified, tc.after, eff)
			}
			if tc.verified {
				eqNames(t, authNames(eff), AuthCodeVerified)
				return
			}
			eqNames(t, authNames(eff), AuthCodeExpired)
			if onlyReply(t, eff) != English.CodeExpired {
				t.Fatalf("reply %q", onlyReply(t, eff))
			}
			if h.s.hasCode() || h.s.Attempts() != 0 {
				t.Fatal("expired code not deleted")
			}
			// The expired code is gone: entering it again is not an
			// attempt and does not sign in.
			eff = h.say(h.code)
			eqNames(t, authNames(eff))
			if onlyReply(t, eff) != English.NoActiveCode || h.s.Authenticated(h.now) {
				t.Fatalf("after expiry: %v", eff)
			}
		})
	}
}

func TestCodeSentAtSubSecond(t *testing.T) {
	// Sent at :00.9 and entered at 10:00.1 later (9:59.2 of real time):
	// whole seconds make that exactly 10:00, expired. Documented rule.
	h := newHarness(t)
	h.now = t0.Add(900 * time.Millisecond)
	h.toCode(jane)
	h.now = t0.Add(10*time.Minute + 100*time.Millisecond)
	eqNames(t, authNames(h.say(h.code)), AuthCodeExpired)
}

func TestWrongAttempts(t *testing.T) {
	h := newHarness(t)
	h.toCode(jane)
	code := h.code

	eff := h.say(wrong(code))
	if got := authEvents(eff); !reflect.DeepEqual(got, []AuthEvent{{Name: AuthCodeFailed, ProfileID: "p-jane", Attempt: 1}}) {
		t.Fatalf("1st: %v", got)
	}
	if onlyReply(t, eff) != "That code isn't right. You have 2 attempts left." {
		t.Fatalf("1st reply %q", onlyReply(t, eff))
	}
	eff = h.say(wrong(wrong(code)))
	if onlyReply(t, eff) != "That code isn't right. You have 1 attempt left." || authEvents(eff)[0].Attempt != 2 {
		t.Fatalf("2nd: %v", eff)
	}
	eff = h.say(wrong(code))
	want := []AuthEvent{{Name: AuthCodeFailed, ProfileID: "p-jane", Attempt: 3}, {Name: AuthCodeLocked, ProfileID: "p-jane", Attempt: 3}}
	if got := authEvents(eff); !reflect.DeepEqual(got, want) {
		t.Fatalf("3rd: %v", got)
	}
	if onlyReply(t, eff) != English.CodeLocked || h.s.hasCode() {
		t.Fatalf("3rd reply %q", onlyReply(t, eff))
	}
	// Locked: even the right code no longer works, and is no attempt.
	eff = h.say(code)
	eqNames(t, authNames(eff))
	if h.s.Authenticated(h.now) || onlyReply(t, eff) != English.NoActiveCode || h.s.Attempts() != 0 {
		t.Fatalf("after lock: %v", eff)
	}
	// Asking for a new code gives three fresh attempts.
	eqNames(t, authNames(h.say("new code")), AuthCodeSent)
	if h.code == code {
		t.Fatal("same code resent")
	}
	eqNames(t, authNames(h.say(h.code)), AuthCodeVerified)
}

func TestRightCodeOnLastAttempt(t *testing.T) {
	h := newHarness(t)
	h.toCode(jane)
	h.say(wrong(h.code))
	h.say(wrong(h.code))
	eff := h.say(h.code)
	if got := authEvents(eff); !reflect.DeepEqual(got, []AuthEvent{{Name: AuthCodeVerified, ProfileID: "p-jane", Attempt: 3}}) {
		t.Fatalf("got %v", got)
	}
}

func TestNotACodeIsNoAttempt(t *testing.T) {
	for _, text := range []string{"hello", "12345", "1234567", "12345a", "my code", "", "١٢٣٤٥"} {
		t.Run(text, func(t *testing.T) {
			h := newHarness(t)
			h.toCode(jane)
			eff := h.say(text)
			eqNames(t, authNames(eff))
			if onlyReply(t, eff) != English.AskForCode || h.s.Attempts() != 0 {
				t.Fatalf("%q: %v attempts %d", text, eff, h.s.Attempts())
			}
		})
	}
}

func TestCodeFormats(t *testing.T) {
	spaced := func(c string) string { return c[:3] + " " + c[3:] }
	tests := []struct {
		name string
		f    func(string) string
	}{
		{"plain", func(c string) string { return c }},
		{"space", spaced},
		{"padded", func(c string) string { return "  " + spaced(c) + "\n" }},
		{"dash", func(c string) string { return c[:3] + "-" + c[3:] }},
		{"spread", func(c string) string { return strings.Join(strings.Split(c, ""), " ") }},
		{"arabic-indic", func(c string) string {
			return strings.Map(func(r rune) rune { return r - '0' + '\u0660' }, c)
		}},
		{"full-width", func(c string) string {
			return strings.Map(func(r rune) rune { return r - '0' + '\uff10' }, c)
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			h.toCode(jane)
			eff := h.say(tc.f(h.code))
			eqNames(t, authNames(eff), AuthCodeVerified)
		})
	}
}

func TestResendPhrases(t *testing.T) {
	for _, text := range []string{"new code", "NEW CODE", "resend", "Resend please", "send code again",
		"Can you send the code again?", "I didn't get it", "nuevo código", "Nuevo codigo", "reenviar", "otro código por favor"} {
		t.Run(text, func(t *testing.T) {
			h := newHarness(t)
			h.toCode(jane)
			old := h.code
			h.wait(time.Minute)
			eff := h.say(text)
			eqNames(t, authNames(eff), AuthCodeSent)
			if h.code == old || h.s.codeSentAt != h.now.Unix() {
				t.Fatal("no new code")
			}
			// The new code replaces the old one.
			eqNames(t, authNames(h.say(old)), AuthCodeFailed)
			eqNames(t, authNames(h.say(h.code)), AuthCodeVerified)
		})
	}
}

func TestHourlyCodeLimit(t *testing.T) {
	h := newHarness(t)
	h.toCode(jane) // 1st code at t0
	h.wait(5 * time.Minute)
	eqNames(t, authNames(h.say("new code")), AuthCodeSent) // 2nd at 0:05
	h.wait(5 * time.Minute)
	eqNames(t, authNames(h.say("new code")), AuthCodeSent) // 3rd at 0:10
	third := h.code
	h.wait(5 * time.Minute)
	eff := h.say("new code") // 4th at 0:15: refused
	eqNames(t, authNames(eff), AuthCodeLimit)
	if r := onlyReply(t, eff); r != "You've asked for too many codes. Please try again in 45 minutes." {
		t.Fatalf("limit reply %q", r)
	}
	if count[SendCode](eff) != 0 {
		t.Fatal("code sent over the limit")
	}
	h.now = t0.Add(59*time.Minute + 59*time.Second) // the first is still in the hour
	eff = h.say("resend")
	// The 3rd code ran out at 0:20; the message notices that first.
	eqNames(t, authNames(eff), AuthCodeExpired, AuthCodeLimit)
	if r := onlyReply(t, eff); !strings.HasSuffix(r, "try again in 1 minute.") {
		t.Fatalf("limit reply %q", r)
	}
	h.now = t0.Add(time.Hour) // the first left the hour
	eqNames(t, authNames(h.say("resend")), AuthCodeSent)
	if h.code == third {
		t.Fatal("no new code")
	}
	h.wait(time.Second)
	eqNames(t, authNames(h.say("resend")), AuthCodeLimit) // 0:05, 0:10, 1:00 in the hour
	h.now = t0.Add(time.Hour + 5*time.Minute)
	eqNames(t, authNames(h.say("resend")), AuthCodeSent)
	eqNames(t, authNames(h.say(h.code)), AuthCodeVerified)
}

func TestRefusedResendKeepsValidCode(t *testing.T) {
	h := newHarness(t)
	h.p.CodesPerHour = 1
	h.toCode(jane)
	h.wait(time.Minute)
	eqNames(t, authNames(h.say("new code")), AuthCodeLimit)
	eqNames(t, authNames(h.say(h.code)), AuthCodeVerified)
}

func TestDailyCodeLimit(t *testing.T) {
	h := newHarness(t)
	// 21 minutes apart never trips the hourly limit (3 per hour).
	h.toCode(jane)
	for i := 1; i < 10; i++ {
		h.wait(21 * time.Minute)
		// Each previous code ran out after 10 minutes.
		eqNames(t, authNames(h.say("new code")), AuthCodeExpired, AuthCodeSent)
	}
	h.wait(21 * time.Minute) // 3:30 after the first
	eff := h.say("new code")
	eqNames(t, authNames(eff), AuthCodeExpired, AuthCodeLimit)
	if r := onlyReply(t, eff); !strings.HasSuffix(r, "try again in 20 hours 30 minutes.") {
		t.Fatalf("limit reply %q", r)
	}

	// The limit is per phone across sessions: restarting sign-in does
	// not reset it. The first code leaves the day at t0+24h.
	h.now = t0.Add(24*time.Hour - time.Second)
	eff = h.say("hello") // idle: sign-in restarts
	eqNames(t, authNames(eff), AuthProfileLookup)
	eff = h.do(ProfilesFound{Profiles: []Profile{jane}})
	eqNames(t, authNames(eff), AuthProfileSelected, AuthCodeLimit)
	if r := onlyReply(t, eff); !strings.HasSuffix(r, "try again in 1 minute.") {
		t.Fatalf("limit reply %q", r)
	}
	h.now = t0.Add(24 * time.Hour)
	eqNames(t, authNames(h.say("new code")), AuthCodeSent)
	eqNames(t, authNames(h.say(h.code)), AuthCodeVerified)
}

func TestCodeRetryAt(t *testing.T) {
	p := DefaultPolicy().withDefaults()
	base := t0.Unix()
	m := int64(60)
	tests := []struct {
		name    string
		sent    []int64 // minutes after base
		now     int64   // minutes after base
		limited bool
		retry   int64 // minutes after base
	}{
		{"empty", nil, 0, false, 0},
		{"two in hour", []int64{0, 1}, 2, false, 0},
		{"three in hour", []int64{0, 1, 2}, 3, true, 60},
		{"three, first just out", []int64{0, 1, 2}, 60, false, 0},
		{"four in hour (policy lowered)", []int64{0, 1, 2, 3}, 4, true, 61},
		{"ten in day", []int64{0, 100, 200, 300, 400, 500, 600, 700, 800, 900}, 1000, true, 1440},
		{"ten in day, hour frees first", []int64{0, 100, 200, 300, 400, 500, 600, 1000, 1001, 1002}, 1003, true, 1440},
		{"ten in day, day frees first", []int64{0, 200, 400, 600, 800, 1000, 1200, 1400, 1410, 1420}, 1430, true, 1460},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := State{}
			for _, x := range tc.sent {
				s.codesSent = append(s.codesSent, base+x*m)
			}
			now := base + tc.now*m
			s.pruneCodesSent(now)
			retry, limited := s.codeRetryAt(now, p)
			if limited != tc.limited || (limited && retry != base+tc.retry*m) {
				t.Fatalf("got %v at +%dm, want %v at +%dm", limited, (retry-base)/m, tc.limited, tc.retry)
			}
		})
	}
}

func TestVerifiedGreetingAndBrain(t *testing.T) {
	h := newHarness(t)
	h.toCode(jane)
	eff := h.say(h.code)
	if r := onlyReply(t, eff); r != "Hi Jane, you're signed in. How can I help you today?" {
		t.Fatalf("greeting %q", r)
	}
	if count[AskBrain](eff) != 0 {
		t.Fatal("the code itself went to the brain")
	}
	eff = h.say("When is my next booking?")
	want := []Effect{LogInbound{ProviderID: "wamid.3"}, AskBrain{Text: "When is my next booking?", Authenticated: true, ProfileID: "p-jane", FirstName: "Jane"}}
	if !reflect.DeepEqual(eff, want) {
		t.Fatalf("got %#v", eff)
	}
	// Once signed in, "new code" and digits are just messages.
	for _, text := range []string{"new code", "123456", "help"} {
		if a, ok := find[AskBrain](h.say(text)); !ok || !a.Authenticated {
			t.Fatalf("%q not sent to the brain", text)
		}
	}
}

func TestSessionIdleExpiry(t *testing.T) {
	for _, tc := range []struct {
		gap     time.Duration
		expired bool
	}{
		{2*time.Hour - time.Second, false},
		{2 * time.Hour, true},
	} {
		t.Run(tc.gap.String(), func(t *testing.T) {
			h := newHarness(t)
			h.signIn(jane)
			h.wait(90 * time.Minute)
			h.say("still here") // activity moves the idle deadline
			h.wait(tc.gap)
			if h.s.Authenticated(h.now) == tc.expired {
				t.Fatalf("Authenticated at +%v = %v", tc.gap, !tc.expired)
			}
			eff := h.say("what's my balance?")
			if !tc.expired {
				eqNames(t, authNames(eff))
				if a, ok := find[AskBrain](eff); !ok || !a.Authenticated {
					t.Fatalf("not answered: %v", eff)
				}
				return
			}
			wantSessionExpired(t, h, eff)
		})
	}
}

func wantSessionExpired(t *testing.T, h *harness, eff []Effect) {
	t.Helper()
	want := []Effect{
		LogInbound{ProviderID: eff[0].(LogInbound).ProviderID},
		AuthEvent{Name: AuthSessionExpired, ProfileID: "p-jane"},
		Reply{Text: English.SessionExpired},
		AuthEvent{Name: AuthProfileLookup},
		LookupProfiles{},
	}
	if !reflect.DeepEqual(eff, want) {
		t.Fatalf("got  %#v\nwant %#v", eff, want)
	}
	if h.s.ProfileID() != "" || h.s.Authenticated(h.now) || h.s.Phase() != PhaseAwaitingLookup {
		t.Fatalf("session not reset: %+v", h.s)
	}
	// Sign-in starts over and works.
	h.do(ProfilesFound{Profiles: []Profile{jane}})
	eqNames(t, authNames(h.say(h.code)), AuthCodeVerified)
}

func TestSessionAbsoluteExpiry(t *testing.T) {
	for _, tc := range []struct {
		at      time.Duration // after verification
		expired bool
	}{
		{24*time.Hour - time.Second, false},
		{24 * time.Hour, true},
	} {
		t.Run(tc.at.String(), func(t *testing.T) {
			h := newHarness(t)
			h.signIn(jane)
			authAt := h.now
			// Chat every hour: never idle.
			for h.now.Add(time.Hour).Before(authAt.Add(tc.at)) {
				h.wait(time.Hour)
				if a, ok := find[AskBrain](h.say("ping")); !ok || !a.Authenticated {
					t.Fatalf("signed out early at %v", h.now.Sub(authAt))
				}
			}
			h.now = authAt.Add(tc.at)
			if h.s.Authenticated(h.now) == tc.expired {
				t.Fatalf("Authenticated at +%v = %v", tc.at, !tc.expired)
			}
			eff := h.say("and now?")
			if tc.expired {
				wantSessionExpired(t, h, eff)
			} else if a, ok := find[AskBrain](eff); !ok || !a.Authenticated {
				t.Fatalf("not answered: %v", eff)
			}
		})
	}
}

func TestHelpDuringSignIn(t *testing.T) {
	t.Run("first message", func(t *testing.T) {
		h := newHarness(t)
		eff := h.say("help")
		if a, ok := find[AskBrain](eff); !ok || a.Authenticated || a.ProfileID != "" {
			t.Fatalf("help not answered generally: %v", eff)
		}
		if _, last := eff[len(eff)-1].(LookupProfiles); !last {
			t.Fatalf("sign-in not started last: %v", eff)
		}
	})
	t.Run("awaiting code", func(t *testing.T) {
		h := newHarness(t)
		h.toCode(jane)
		eff := h.say("What can you do?")
		want := []Effect{LogInbound{ProviderID: "wamid.2"}, AskBrain{Text: "What can you do?"}}
		if !reflect.DeepEqual(eff, want) {
			t.Fatalf("got %#v", eff)
		}
		if h.s.Attempts() != 0 || !h.s.hasCode() {
			t.Fatal("help changed the code")
		}
		eqNames(t, authNames(h.say(h.code)), AuthCodeVerified)
	})
	t.Run("choosing", func(t *testing.T) {
		h := newHarness(t)
		h.say("hi")
		h.do(ProfilesFound{Profiles: []Profile{jane, testUser}})
		eff := h.say("HELP!")
		if a, ok := find[AskBrain](eff); !ok || a.Authenticated || a.ProfileID != "" || len(authEvents(eff)) != 0 {
			t.Fatalf("got %v", eff)
		}
		if h.s.Phase() != PhaseChoosingProfile {
			t.Fatal("help left the choice")
		}
	})
	t.Run("questions are not help", func(t *testing.T) {
		h := newHarness(t)
		h.toCode(jane)
		if count[AskBrain](h.say("what is my balance?")) != 0 {
			t.Fatal("account question answered before sign-in")
		}
	})
}

func TestAbandonedSignIn(t *testing.T) {
	t.Run("choosing for 2h", func(t *testing.T) {
		h := newHarness(t)
		h.say("hi")
		h.do(ProfilesFound{Profiles: []Profile{jane, testUser}})
		h.wait(2*time.Hour - time.Second)
		eqNames(t, authNames(h.say("hmm")), AuthProfileChoiceAsked)
		h.wait(2 * time.Hour)
		eqNames(t, authNames(h.say("1")), AuthProfileLookup)
		if len(h.s.candidates) != 0 {
			t.Fatal("stale candidates kept")
		}
	})
	t.Run("awaiting code for 2h", func(t *testing.T) {
		h := newHarness(t)
		h.toCode(jane)
		code := h.code
		h.wait(2 * time.Hour)
		eqNames(t, authNames(h.say(code)), AuthCodeExpired, AuthProfileLookup)
		eqNames(t, authNames(h.do(ProfilesFound{Profiles: []Profile{jane}})), AuthProfileSelected, AuthCodeSent)
	})
}

func TestLookupPending(t *testing.T) {
	h := newHarness(t)
	h.say("hi")
	h.wait(59 * time.Second)
	if eff := h.say("hello?"); len(eff) != 1 {
		t.Fatalf("a second message while looking up: %v", eff)
	}
	h.wait(time.Second) // a minute since the lookup: it is presumed lost
	eff := h.say("anyone?")
	eqNames(t, authNames(eff), AuthProfileLookup)
	if _, ok := eff[len(eff)-1].(LookupProfiles); !ok {
		t.Fatalf("lookup not asked again: %v", eff)
	}
	// The answer to the first lookup and to the second: only one counts.
	eqNames(t, authNames(h.do(ProfilesFound{Profiles: []Profile{jane}})), AuthProfileSelected, AuthCodeSent)
	code := h.code
	eff = h.do(ProfilesFound{Profiles: []Profile{jane}})
	if !reflect.DeepEqual(eff, []Effect{Dropped{Reason: DropUnexpected}}) || h.code != code {
		t.Fatalf("late answer not ignored: %v", eff)
	}
}

func TestLookupFailed(t *testing.T) {
	h := newHarness(t)
	h.say("hi")
	eff := h.do(LookupFailed{})
	if onlyReply(t, eff) != English.LookupFailed || h.s.Phase() != PhaseNew {
		t.Fatalf("got %v phase %v", eff, h.s.Phase())
	}
	eqNames(t, authNames(h.say("hi again")), AuthProfileLookup)
	if eff := h.do(LookupFailed{}); count[Reply](eff) != 1 {
		t.Fatal("second failure not answered")
	}
	if eff := h.do(LookupFailed{}); !reflect.DeepEqual(eff, []Effect{Dropped{Reason: DropUnexpected}}) {
		t.Fatalf("unexpected failure: %v", eff)
	}
}

func TestNoProfileRetriesNextMessage(t *testing.T) {
	h := newHarness(t)
	h.say("hi")
	h.do(ProfilesFound{})
	eqNames(t, authNames(h.say("I registered now")), AuthProfileLookup)
	eqNames(t, authNames(h.do(ProfilesFound{Profiles: []Profile{jane}})), AuthProfileSelected, AuthCodeSent)
}

func TestTooManyCandidatesAreCut(t *testing.T) {
	var ps []Profile
	for i := range 15 {
		ps = append(ps, Profile{ID: string(rune('a' + i)), Name: "P " + string(rune('a'+i)), WhatsAppEnabled: true})
	}
	h := newHarness(t)
	h.say("hi")
	eff := h.do(ProfilesFound{Profiles: ps})
	if len(h.s.candidates) != maxCandidates || !strings.Contains(onlyReply(t, eff), "\n10. P j\n") {
		t.Fatalf("list: %q", onlyReply(t, eff))
	}
}

// A code the customer types is flagged for the log, which must not keep
// it; nothing else is.
func TestLogInboundFlagsTypedCodes(t *testing.T) {
	cases := []struct {
		name  string
		setup func(h *harness)
		text  func(h *harness) string
		code  bool
	}{
		{"the right code", func(h *harness) { h.toCode(jane) }, func(h *harness) string { return h.code }, true},
		{"a wrong code", func(h *harness) { h.toCode(jane) }, func(h *harness) string { return wrong(h.code) }, true},
		{"a code written with spaces", func(h *harness) { h.toCode(jane) }, func(h *harness) string { return h.code[:3] + " " + h.code[3:] }, true},
		{"words while a code is awaited", func(h *harness) { h.toCode(jane) }, func(*harness) string { return "I did not get it" }, false},
		{"digits before any code was sent", func(*harness) {}, func(*harness) string { return "123456" }, false},
		{"digits once signed in", func(h *harness) { h.signIn(jane) }, func(*harness) string { return "123456" }, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			tc.setup(h)
			log, ok := find[LogInbound](h.say(tc.text(h)))
			if !ok || log.Code != tc.code {
				t.Fatalf("LogInbound %+v (found %v), want Code %v", log, ok, tc.code)
			}
		})
	}
}
