package conversation

import (
	"reflect"
	"testing"
	"time"
)

// The brain's memory is the shell's, opaque to the core; the core only
// forgets it when the customer or the case changes.
func TestBrainMemory(t *testing.T) {
	mem := []byte(`{"lang":"es"}`)
	tests := []struct {
		name   string
		before func(h *harness) // after sign-in and SetMemory
		ev     Event
		kept   bool
	}{
		{"another message", nil, Inbound{ProviderID: "m", Text: "and tomorrow?"}, true},
		{"a redelivery (of the code, wamid.2)", nil, Inbound{ProviderID: "wamid.2", Text: "123456"}, true},
		{"AI off", nil, SetAI{Enabled: false}, true},
		{"archived", nil, SetStatus{Status: StatusArchived}, true},
		{"reopened by the customer", func(h *harness) { h.do(SetStatus{Status: StatusArchived}) }, Inbound{ProviderID: "m", Text: "back"}, true},
		{"closed: kept until the next message", nil, SetStatus{Status: StatusClosed}, true},
		{"a new conversation", func(h *harness) { h.do(SetStatus{Status: StatusClosed}) }, Inbound{ProviderID: "m", Text: "hello"}, false},
		{"session expired: the profile is forgotten", func(h *harness) { h.wait(25 * time.Hour) }, Inbound{ProviderID: "m", Text: "hello"}, false},
		{"delivery report", nil, DeliveryStatus{ProviderID: "SM1", Status: "read"}, true},
		{"opt-out", nil, OptOut{}, true},
		{"replaced", nil, SetMemory{Memory: mem}, true},
		{"emptied", nil, SetMemory{Memory: []byte{}}, false},
		{"erasure", nil, Forget{}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			h.signIn(jane)
			buf := []byte(`{"lang":"es"}`)
			h.do(SetMemory{Memory: buf})
			buf[2] = 'X' // the core keeps its own copy
			if tc.before != nil {
				tc.before(h)
			}
			h.do(tc.ev)
			got := h.s.Memory()
			if tc.kept != reflect.DeepEqual(got, mem) || !tc.kept && got != nil {
				t.Fatalf("memory %q, kept %v", got, tc.kept)
			}
		})
	}
}

func TestForget(t *testing.T) {
	for name, s := range map[string]State{"rich": richState(t), "signed in": signedIn(t), "zero": {}} {
		t.Run(name, func(t *testing.T) {
			after, eff := Step(DefaultPolicy(), s, Forget{}, t0, Rand{})
			eqEff(t, eff)
			if !reflect.DeepEqual(after, State{}) {
				t.Fatalf("after erasure: %+v", after)
			}
			// The next message is a stranger's first.
			eff = after.Apply(DefaultPolicy(), Inbound{ProviderID: "wamid.1", Text: "hi"}, t0.Add(time.Minute), Rand{ConversationID: "new"})
			if _, ok := find[ConversationStarted](eff); !ok {
				t.Fatalf("effects after erasure %v", eff)
			}
			eqNames(t, authNames(eff), AuthProfileLookup)
		})
	}
}

func signedIn(t *testing.T) State {
	h := newHarness(t)
	h.signIn(jane)
	return h.s
}

func TestExpire(t *testing.T) {
	wrote := signedIn(t) // last wrote at about t0
	cases := []struct {
		name   string
		s      State
		before time.Time
		erased bool
	}{
		{"idle since before the cutoff", wrote, t0.Add(31 * 24 * time.Hour), true},
		{"wrote after the cutoff", wrote, t0.Add(-time.Hour), false},
		{"never wrote", State{}, t0.Add(time.Hour), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			after, eff := Step(DefaultPolicy(), tc.s, Expire{IdleBefore: tc.before}, t0.Add(32*24*time.Hour), Rand{})
			if tc.erased {
				eqEff(t, eff)
				if !reflect.DeepEqual(after, State{}) {
					t.Fatalf("after expiry: %+v", after)
				}
				return
			}
			if d, ok := find[Dropped](eff); !ok || d.Reason != DropUnchanged {
				t.Fatalf("effects %v, want Dropped unchanged", eff)
			}
			if !reflect.DeepEqual(after, tc.s) {
				t.Fatal("a session not idle past the cutoff changed")
			}
		})
	}
}

// TestExpireDisposable: a session that holds nothing worth keeping (the
// customer never signed in) is erased once idle past the short bound; one
// that signed in once, waits for a code or was taken over by a person is
// kept until the long one.
func TestExpireDisposable(t *testing.T) {
	stranger := func() State { // wrote from a number no profile has
		h := newHarness(t)
		h.say("hi")
		h.do(ProfilesFound{})
		return h.s
	}
	waiting := func() State { h := newHarness(t); h.toCode(jane); return h.s }
	aiOff := func() State {
		h := newHarness(t)
		h.say("hi")
		h.do(ProfilesFound{})
		h.do(SetAI{Enabled: false})
		return h.s
	}
	cases := []struct {
		name   string
		s      State
		now    time.Duration // after t0
		erased bool
	}{
		{"a stranger idle past the short bound", stranger(), 2 * time.Hour, true},
		{"a stranger who wrote since", stranger(), 30 * time.Minute, false},
		{"signed in", signedIn(t), 2 * time.Hour, false},
		{"signed in once, the sign-in long over", signedIn(t), 10 * 24 * time.Hour, false},
		{"a code waiting to be entered", waiting(), 2 * time.Hour, false},
		{"taken over by a person", aiOff(), 2 * time.Hour, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			now := t0.Add(tc.now)
			ev := Expire{IdleBefore: t0.Add(-30 * 24 * time.Hour), DisposableIdleBefore: now.Add(-time.Hour)}
			after, eff := Step(DefaultPolicy(), tc.s, ev, now, Rand{})
			if erased := reflect.DeepEqual(after, State{}); erased != tc.erased {
				t.Fatalf("erased = %v, want %v (effects %v)", erased, tc.erased, eff)
			}
			if !tc.erased && !reflect.DeepEqual(after, tc.s) {
				t.Fatal("a kept session changed")
			}
		})
	}
}
