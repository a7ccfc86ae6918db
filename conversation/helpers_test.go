package conversation

import (
	"fmt"
	"reflect"
	"testing"
	"time"
)

// t0 is an ordinary moment; tests move the clock from it.
var t0 = time.Date(2025, 3, 10, 9, 0, 0, 0, time.UTC)

var (
	jane     = Profile{ID: "p-jane", Name: "Jane Smith", Email: "jane@example.com", WhatsAppEnabled: true}
	testUser = Profile{ID: "p-test", Name: "Test User", Email: "test.user@example.org", WhatsAppEnabled: true}
	bob      = Profile{ID: "p-bob", Name: "Bob Jones", Email: "bob@example.net", WhatsAppEnabled: false}
)

// harness plays the shell: it feeds events through Step with a test clock
// and deterministic "randomness", and remembers the last code sent.
type harness struct {
	t    testing.TB
	p    Policy
	s    State
	now  time.Time
	seq  int    // Rand counter
	msg  int    // provider id counter
	code string // last code sent to the customer
	eff  []Effect
}

func newHarness(t testing.TB) *harness {
	return &harness{t: t, p: DefaultPolicy(), now: t0}
}

func (h *harness) rnd() Rand {
	h.seq++
	return Rand{
		Code:           fmt.Sprintf("%06d", (h.seq*389111+7)%1000000),
		Salt:           [16]byte{byte(h.seq), byte(h.seq >> 8), 0xAB},
		ConversationID: fmt.Sprintf("conv-%d", h.seq),
	}
}

func (h *harness) do(ev Event) []Effect {
	h.t.Helper()
	s, eff := Step(h.p, h.s, ev, h.now, h.rnd())
	h.s, h.eff = s, eff
	if sc, ok := find[SendCode](eff); ok {
		h.code = sc.Code
	}
	return eff
}

// say sends a customer message with a fresh provider id.
func (h *harness) say(text string) []Effect {
	h.t.Helper()
	h.msg++
	return h.do(Inbound{ProviderID: fmt.Sprintf("wamid.%d", h.msg), Text: text})
}

func (h *harness) wait(d time.Duration) { h.now = h.now.Add(d) }

// toCode runs the flow up to "code sent" for a single profile.
func (h *harness) toCode(p Profile) {
	h.t.Helper()
	h.say("hi")
	h.do(ProfilesFound{Profiles: []Profile{p}})
	if h.s.Phase() != PhaseAwaitingCode || !h.s.hasCode() {
		h.t.Fatalf("no code sent: phase %v effects %v", h.s.Phase(), h.eff)
	}
}

// signIn runs the flow up to authenticated as p.
func (h *harness) signIn(p Profile) {
	h.t.Helper()
	h.toCode(p)
	h.say(h.code)
	if !h.s.Authenticated(h.now) {
		h.t.Fatalf("not signed in: %v", h.eff)
	}
}

// wrong returns a code that is not c.
func wrong(c string) string {
	b := []byte(c)
	b[0] = '0' + (b[0]-'0'+1)%10
	return string(b)
}

func find[T Effect](eff []Effect) (T, bool) {
	for _, e := range eff {
		if v, ok := e.(T); ok {
			return v, true
		}
	}
	var zero T
	return zero, false
}

func count[T Effect](eff []Effect) int {
	n := 0
	for _, e := range eff {
		if _, ok := e.(T); ok {
			n++
		}
	}
	return n
}

func authEvents(eff []Effect) []AuthEvent {
	var out []AuthEvent
	for _, e := range eff {
		if a, ok := e.(AuthEvent); ok {
			out = append(out, a)
		}
	}
	return out
}

func authNames(eff []Effect) []AuthName {
	var out []AuthName
	for _, a := range authEvents(eff) {
		out = append(out, a.Name)
	}
	return out
}

func replies(eff []Effect) []string {
	var out []string
	for _, e := range eff {
		if r, ok := e.(Reply); ok {
			out = append(out, r.Text)
		}
	}
	return out
}

// only reports the text of the single Reply in eff.
func onlyReply(t testing.TB, eff []Effect) string {
	t.Helper()
	r := replies(eff)
	if len(r) != 1 {
		t.Fatalf("want exactly one reply, got %q in %v", r, eff)
	}
	return r[0]
}

func eqNames(t testing.TB, got []AuthName, want ...AuthName) {
	t.Helper()
	if len(got) == 0 && len(want) == 0 {
		return
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("auth events = %v, want %v", got, want)
	}
}
