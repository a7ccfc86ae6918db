package conversation

import (
	"reflect"
	"testing"
	"time"
)

func TestArchivedReopensSameConversation(t *testing.T) {
	h := newHarness(t)
	h.signIn(jane)
	id := h.s.ConversationID()
	eff := h.do(SetStatus{Status: StatusArchived})
	if !reflect.DeepEqual(eff, []Effect{StatusChanged{ConversationID: id, From: StatusActive, To: StatusArchived}}) {
		t.Fatalf("archive: %v", eff)
	}
	h.wait(time.Minute)
	eff = h.say("one more question")
	if eff[0] != (StatusChanged{ConversationID: id, From: StatusArchived, To: StatusActive, ByCustomer: true}) {
		t.Fatalf("reopen: %v", eff)
	}
	if h.s.ConversationID() != id || h.s.Status() != StatusActive {
		t.Fatalf("conversation %q %v", h.s.ConversationID(), h.s.Status())
	}
	if a, ok := find[AskBrain](eff); !ok || !a.Authenticated {
		t.Fatal("message after reopening not answered")
	}
}

func TestClosedStartsNewConversation(t *testing.T) {
	h := newHarness(t)
	h.signIn(jane)
	id := h.s.ConversationID()
	h.do(SetAI{Enabled: false})
	eqEff(t, h.do(SetStatus{Status: StatusClosed}), StatusChanged{ConversationID: id, From: StatusActive, To: StatusClosed})
	// Closed is final for operators too.
	for _, st := range []Status{StatusActive, StatusArchived, StatusClosed} {
		eqEff(t, h.do(SetStatus{Status: st}), Dropped{Reason: DropClosed})
	}
	eff := h.say("hello again")
	started, ok := eff[0].(ConversationStarted)
	if !ok || started.PreviousID != id || started.ID == id || started.ID != h.s.ConversationID() || started.ID == "" {
		t.Fatalf("no new conversation: %v", eff)
	}
	if h.s.Status() != StatusActive || !h.s.AIEnabled() {
		t.Fatal("new conversation not active with AI on")
	}
	// Sign-in belongs to the phone number, not the conversation.
	if a, ok := find[AskBrain](eff); !ok || !a.Authenticated {
		t.Fatalf("not answered: %v", eff)
	}
}

func TestSetStatus(t *testing.T) {
	tests := []struct {
		from, to Status
		want     Effect
	}{
		{StatusActive, StatusArchived, StatusChanged{From: StatusActive, To: StatusArchived}},
		{StatusActive, StatusClosed, StatusChanged{From: StatusActive, To: StatusClosed}},
		{StatusArchived, StatusActive, StatusChanged{From: StatusArchived, To: StatusActive}},
		{StatusArchived, StatusClosed, StatusChanged{From: StatusArchived, To: StatusClosed}},
		{StatusActive, StatusActive, Dropped{Reason: DropUnchanged}},
		{StatusArchived, StatusArchived, Dropped{Reason: DropUnchanged}},
		{StatusClosed, StatusActive, Dropped{Reason: DropClosed}},
		{StatusActive, Status(9), Dropped{Reason: DropInvalid}},
	}
	for _, tc := range tests {
		t.Run(tc.from.String()+"->"+tc.to.String(), func(t *testing.T) {
			h := newHarness(t)
			h.say("hi")
			h.s.status = tc.from
			want := tc.want
			if sc, ok := want.(StatusChanged); ok {
				sc.ConversationID = h.s.ConversationID()
				want = sc
			}
			eqEff(t, h.do(SetStatus{Status: tc.to}), want)
		})
	}
	h := newHarness(t)
	eqEff(t, h.do(SetStatus{Status: StatusClosed}), Dropped{Reason: DropNoConversation})
}

func TestAIOff(t *testing.T) {
	t.Run("first message", func(t *testing.T) {
		h := newHarness(t)
		eqEff(t, h.do(SetAI{Enabled: false}), AIChanged{Enabled: false})
		eqEff(t, h.do(SetAI{Enabled: false}), Dropped{Reason: DropUnchanged})
		eff := h.say("hi")
		eqEff(t, eff, ConversationStarted{ID: "conv-3"}, LogInbound{ProviderID: "wamid.1", Human: true})
		if h.s.Phase() != PhaseNew {
			t.Fatal("sign-in moved with AI off")
		}
		eqEff(t, h.do(SetAI{Enabled: true}), AIChanged{Enabled: true})
		eqNames(t, authNames(h.say("hi")), AuthProfileLookup)
	})
	t.Run("signed in", func(t *testing.T) {
		h := newHarness(t)
		h.signIn(jane)
		h.do(SetAI{Enabled: false})
		eqEff(t, h.say("I want a human"), LogInbound{ProviderID: "wamid.3", Human: true})
	})
	t.Run("awaiting code", func(t *testing.T) {
		h := newHarness(t)
		h.toCode(jane)
		h.do(SetAI{Enabled: false})
		for _, text := range []string{h.code, "new code", "help", wrong(h.code)} {
			if eff := h.say(text); len(eff) != 1 {
				t.Fatalf("%q with AI off: %v", text, eff)
			}
		}
		if h.s.Authenticated(h.now) || h.s.Attempts() != 0 {
			t.Fatal("code checked with AI off")
		}
		h.do(SetAI{Enabled: true})
		eqNames(t, authNames(h.say(h.code)), AuthCodeVerified)
	})
	t.Run("lookup answered after AI went off", func(t *testing.T) {
		h := newHarness(t)
		h.say("hi")
		h.do(SetAI{Enabled: false})
		eqEff(t, h.do(ProfilesFound{Profiles: []Profile{jane}}), Dropped{Reason: DropAIOff})
		h.do(SetAI{Enabled: true})
		eqNames(t, authNames(h.say("hi")), AuthProfileLookup)
	})
	t.Run("session still expires", func(t *testing.T) {
		h := newHarness(t)
		h.signIn(jane)
		h.do(SetAI{Enabled: false})
		h.wait(3 * time.Hour)
		h.say("hello?") // a human is talking to the customer
		h.do(SetAI{Enabled: true})
		h.wait(24 * time.Hour)
		eqNames(t, authNames(h.say("back")), AuthSessionExpired, AuthProfileLookup)
	})
}

// eqEff checks the effects of a step; no effects and an empty list are
// the same.
func eqEff(t testing.TB, got []Effect, want ...Effect) {
	t.Helper()
	if (len(got) != 0 || len(want) != 0) && !reflect.DeepEqual(got, want) {
		t.Fatalf("effects:\n got %#v\nwant %#v", got, want)
	}
}
