package conversation

import "testing"

// TestQuietNumberLogsAndAnswersNothing: with the tenant's number switched
// off (Policy.Quiet) a customer's message is logged and opens the window,
// but nothing is answered, looked up or sent, in any phase; switched on
// again, the next message is answered as before.
func TestQuietNumberLogsAndAnswersNothing(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(h *harness)
		text  string
	}{
		{"new customer", func(*harness) {}, "hi"},
		{"asking for help", func(*harness) {}, "help"},
		{"awaiting a code", func(h *harness) { h.toCode(jane) }, "123456"},
		{"signed in", func(h *harness) { h.signIn(jane) }, "what are my bookings?"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			tc.setup(h)
			phase, code := h.s.Phase(), h.code
			h.p.Quiet = true
			eff := h.say(tc.text)
			if _, ok := find[LogInbound](eff); !ok {
				t.Fatalf("not logged: %v", eff)
			}
			for _, e := range eff {
				switch e.(type) {
				case Reply, SendCode, LookupProfiles, AskBrain:
					t.Fatalf("a quiet number did %T: %v", e, eff)
				}
			}
			if h.s.Phase() != phase || !h.s.WindowOpen(h.now) {
				t.Fatalf("phase %v (was %v), window open %v", h.s.Phase(), phase, h.s.WindowOpen(h.now))
			}
			h.p.Quiet = false
			eff = h.say(tc.text)
			answered := false
			for _, e := range eff {
				switch e.(type) {
				case Reply, SendCode, LookupProfiles, AskBrain:
					answered = true
				}
			}
			if !answered {
				t.Fatalf("switched on again, nothing answered: %v (code %s)", eff, code)
			}
		})
	}
}
