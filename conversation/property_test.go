package conversation

import (
	"bytes"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"
)

// The sign-in properties, checked after every step of long random (or
// fuzzed) sequences of customer messages, lookup answers, operator
// actions and clock steps:
//
//   - a session becomes authenticated only on the step where the customer
//     sent exactly the last code the shell was asked to send, for the
//     profile that is now signed in, before that code's TTL ran out and
//     with fewer than MaxAttempts wrong entries of it;
//   - wrong entries per code never exceed MaxAttempts, and neither does
//     the state's attempt counter;
//   - only an authenticated session reaches the brain with an identity;
//   - AI off means no automatic output; a duplicate changes nothing;
//   - nothing is sent to a customer who opted out and has not written
//     since; the brain's memory never survives a change of profile or
//     conversation; the delivery ring and the idempotency results stay
//     bounded;
//   - Step does not modify its input, Apply does the same as Step, and the
//     binary encoding loses nothing (the run continues from the decoded
//     state).

// propRun is a shell driven by a test: it applies events, tracks what was
// sent, and checks the properties.
type propRun struct {
	t   testing.TB
	p   Policy
	s   State
	now time.Time
	seq uint64

	lastCode        string // last code handed to the customer
	lastCodeProfile string
	lastCodeAt      int64
	failsOnCode     int

	pendingLookup bool
	msg           int
	recentIDs     []string

	stats  map[string]int
	digest bool   // keep sum (costly: it prints every effect)
	sum    uint64 // running digest of all effects, for the determinism check
}

func newPropRun(t testing.TB, p Policy) *propRun {
	return &propRun{t: t, p: p, now: t0, stats: map[string]int{}, sum: 14695981039346656037}
}

// rnd is the shell's randomness, deterministic per run.
func (r *propRun) rnd() Rand {
	r.seq++
	x := splitmix(r.seq)
	var salt [16]byte
	for i := range salt {
		salt[i] = byte(x >> (i % 8 * 8))
	}
	return Rand{Code: fmt.Sprintf("%06d", x%1000000), Salt: salt, ConversationID: fmt.Sprint("c", r.seq)}
}

func splitmix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

func (r *propRun) apply(ev Event) []Effect {
	t := r.t
	t.Helper()
	rnd := r.rnd()
	before := r.s
	beforeBytes, _ := before.MarshalBinary()

	after, eff := Step(r.p, before, ev, r.now, rnd)

	if b, _ := before.MarshalBinary(); !bytes.Equal(b, beforeBytes) {
		t.Fatalf("Step modified its input state on %#v", ev)
	}
	inPlace := before.Clone()
	if eff2 := inPlace.Apply(r.p, ev, r.now, rnd); !reflect.DeepEqual(eff, eff2) {
		t.Fatalf("Apply and Step differ on %#v:\n%v\n%v", ev, eff, eff2)
	}
	afterBytes, _ := after.MarshalBinary()
	if b, _ := inPlace.MarshalBinary(); !bytes.Equal(b, afterBytes) {
		t.Fatalf("Apply and Step states differ on %#v", ev)
	}

	r.check(before, after, ev, eff, beforeBytes, afterBytes)

	var dec State
	if err := dec.UnmarshalBinary(afterBytes); err != nil {
		t.Fatalf("decode: %v", err)
	}
	if b, _ := dec.MarshalBinary(); !bytes.Equal(b, afterBytes) {
		t.Fatal("encoding round trip differs")
	}
	r.s = dec

	if r.digest {
		h := fnv.New64a()
		fmt.Fprintf(h, "%d%v", r.sum, eff)
		r.sum = h.Sum64()
	}
	return eff
}

func (r *propRun) check(before, after State, ev Event, eff []Effect, beforeBytes, afterBytes []byte) {
	t := r.t
	t.Helper()
	now := r.now.Unix()
	fail := func(format string, args ...any) {
		t.Helper()
		t.Fatalf("at %v after %#v -> %v:\n"+format, append([]any{r.now.Sub(t0), ev, eff}, args...)...)
	}
	p := r.p.withDefaults()

	if int(after.attempts) > p.MaxAttempts {
		fail("attempts %d > %d", after.attempts, p.MaxAttempts)
	}
	if len(after.seen) > p.DedupeMax {
		fail("dedupe ring %d > %d", len(after.seen), p.DedupeMax)
	}
	if len(after.codesSent) > p.CodesPerDay {
		fail("%d codes in a day", len(after.codesSent))
	}
	if after.Authenticated(r.now) && (after.phase != PhaseAuthenticated || after.profileID == "") {
		fail("authenticated without a profile")
	}
	if after.phase != PhaseChoosingProfile && len(after.candidates) != 0 {
		fail("candidates kept in phase %v", after.phase)
	}
	if after.phase != PhaseAwaitingCode && after.hasCode() {
		fail("code kept in phase %v", after.phase)
	}
	if len(after.deliveries) > deliveryRing || len(after.keyed) > p.IdempotencyMax {
		fail("%d delivery reports, %d results remembered", len(after.deliveries), len(after.keyed))
	}
	if (after.profileID != before.profileID || after.conversationID != before.conversationID) && after.memory != nil {
		fail("the brain's memory survived a change of profile or conversation")
	}
	switch ev.(type) {
	case OptOut:
		if !after.optedOut {
			fail("opt-out not kept")
		}
	case Inbound:
		if _, dup := find[Dropped](eff); !dup && after.optedOut {
			fail("the customer wrote, yet is still opted out")
		}
	}

	for i, e := range eff {
		switch e := e.(type) {
		case LookupProfiles:
			if i != len(eff)-1 {
				fail("LookupProfiles not last")
			}
			r.pendingLookup = true
		case SendDecision:
			if before.optedOut && (e.Allowed || e.Reason != SendOptedOut) {
				fail("a send to an opted-out customer: %+v", e)
			}
			if e.Reason == SendOptedOut {
				r.stats["opted out refused"]++
			}
		case SendCode:
			if !validCode(e.Code) || !strings.Contains(e.Text, e.Code) {
				fail("bad SendCode %+v", e)
			}
			if after.profileID == "" {
				fail("code sent without a chosen profile")
			}
			r.lastCode, r.lastCodeProfile, r.lastCodeAt, r.failsOnCode = e.Code, after.profileID, now, 0
			r.stats["code sent"]++
		case Reply:
			if r.lastCode != "" && strings.Contains(e.Text, r.lastCode) {
				fail("code leaked into a plain Reply")
			}
		case AuthEvent:
			r.stats[string(e.Name)]++
			if e.Name == AuthCodeFailed {
				r.failsOnCode++
				if r.failsOnCode > p.MaxAttempts {
					fail("%d wrong attempts on one code", r.failsOnCode)
				}
				if e.Attempt != r.failsOnCode {
					fail("attempt %d, counted %d", e.Attempt, r.failsOnCode)
				}
			}
		case AskBrain:
			if e.Authenticated {
				if !after.Authenticated(r.now) || e.ProfileID != after.profileID || e.ProfileID == "" {
					fail("authenticated AskBrain for a session that is not")
				}
				r.stats["brain auth"]++
			} else {
				if e.ProfileID != "" || e.FirstName != "" {
					fail("unauthenticated AskBrain carries an identity")
				}
				r.stats["brain general"]++
			}
		case Dropped:
			r.stats["dropped "+e.Reason]++
			if e.Reason == DropDuplicate && (len(eff) != 1 || !bytes.Equal(beforeBytes, afterBytes)) {
				fail("a duplicate did something")
			}
		}
	}

	if after.aiOff {
		if _, isIn := ev.(Inbound); isIn {
			for _, e := range eff {
				switch e.(type) {
				case Reply, SendCode, AskBrain, LookupProfiles, AuthEvent:
					fail("automatic output with AI off")
				}
			}
		}
	}

	newlyAuth := after.phase == PhaseAuthenticated && (before.phase != PhaseAuthenticated || after.authAt != before.authAt)
	if newlyAuth {
		in, ok := ev.(Inbound)
		if !ok {
			fail("authenticated by a non-message event")
		}
		code, isCode := parseCode(in.Text)
		switch {
		case !isCode || code != r.lastCode:
			fail("authenticated with %q; the code sent was %q", in.Text, r.lastCode)
		case after.profileID != r.lastCodeProfile:
			fail("authenticated as %q with a code sent for %q", after.profileID, r.lastCodeProfile)
		case now >= r.lastCodeAt+secs(p.CodeTTL):
			fail("authenticated with an expired code")
		case r.failsOnCode >= p.MaxAttempts:
			fail("authenticated with a locked code")
		}
		if a := authEvents(eff); len(a) != 1 || a[0].Name != AuthCodeVerified || a[0].ProfileID != after.profileID {
			fail("no code_verified event")
		}
		r.stats["signed in"]++
		// The code is used up: make sure a later "replay" would be caught.
		r.lastCode = ""
	}
}

// Random inputs.

var (
	propNames  = []string{"Jane Smith", "Jane Doe", "Test User", "Bob Jones", "Ana María López", "Li Wei"}
	propPhrase = []string{"hi", "hello", "help", "what can you do?", "new code", "resend", "nuevo código",
		"send code again", "What's my balance?", "1", "2", "3", "4", "jane", "Test User", "bob", "ana", "li wei",
		"smith", "ok", "", "12345", "1234567", "thanks 👍"}
	propSteps = []time.Duration{0, time.Second, 30 * time.Second, time.Minute, 5 * time.Minute,
		9*time.Minute + 59*time.Second, 10 * time.Minute, 30 * time.Minute, 59*time.Minute + 59*time.Second,
		time.Hour, 2*time.Hour - time.Second, 2 * time.Hour, 5 * time.Hour, 24 * time.Hour, 48 * time.Hour}
)

func (r *propRun) profiles(n int, enabled func(i int) bool) []Profile {
	ps := make([]Profile, n)
	for i := range ps {
		k := int(splitmix(uint64(i)+r.seq*7) % uint64(len(propNames)))
		ps[i] = Profile{ID: fmt.Sprint("p", k), Name: propNames[k], Email: strings.ToLower(strings.Fields(propNames[k])[0]) + "@example.com", WhatsAppEnabled: enabled(i)}
	}
	return ps
}

func (r *propRun) say(id, text string) {
	if id != "" {
		r.recentIDs = append(r.recentIDs, id)
		if len(r.recentIDs) > 20 {
			r.recentIDs = r.recentIDs[1:]
		}
	}
	r.apply(Inbound{ProviderID: id, Text: text})
}

func (r *propRun) newID() string {
	r.msg++
	return fmt.Sprint("wamid.", r.msg)
}

func (r *propRun) randomStep(rng *rand.Rand) {
	switch x := rng.IntN(100); {
	case x < 22:
		if rng.IntN(3) == 0 {
			r.now = r.now.Add(time.Duration(rng.IntN(3*3600)) * time.Second)
		} else {
			r.now = r.now.Add(propSteps[rng.IntN(len(propSteps))])
		}
	case x < 80:
		id := r.newID()
		switch y := rng.IntN(100); {
		case y < 5 && len(r.recentIDs) > 0:
			id = r.recentIDs[rng.IntN(len(r.recentIDs))]
		case y < 8:
			id = ""
		}
		var text string
		switch y := rng.IntN(100); {
		case y < 25 && r.lastCode != "":
			text = r.lastCode
			if rng.IntN(3) == 0 {
				text = text[:3] + " " + text[3:]
			}
		case y < 35:
			text = fmt.Sprintf("%06d", rng.IntN(1000000))
		case y < 40 && r.lastCode != "":
			text = wrong(r.lastCode)
		case y < 45:
			b := make([]rune, rng.IntN(8))
			for i := range b {
				b[i] = rune(rng.IntN(0x3000))
			}
			text = string(b)
		default:
			text = propPhrase[rng.IntN(len(propPhrase))]
		}
		r.say(id, text)
		if r.pendingLookup && rng.IntN(10) < 8 {
			r.answerLookup(rng)
		}
	case x < 88:
		if r.pendingLookup {
			r.answerLookup(rng)
		}
	case x < 92:
		r.apply(SetAI{Enabled: rng.IntN(3) > 0})
	case x < 96:
		r.apply(SetStatus{Status: Status(rng.IntN(4))})
	case x < 98:
		r.apply(SendRequest{Text: "hello", Template: rng.IntN(2) == 0})
	default:
		r.shellEvent(rng.IntN(40))
	}
}

var propDeliveries = []string{"sent", "delivered", "read", "failed"}

// shellEvent applies one of the events the shell feeds besides messages
// and operator commands; n picks it (Forget only for n == 0).
func (r *propRun) shellEvent(n int) {
	switch n % 4 {
	case 0:
		if n == 0 {
			r.apply(Forget{})
			return
		}
		r.apply(OptOut{})
	case 1:
		r.apply(DeliveryStatus{ProviderID: fmt.Sprint("SM", n%12), Status: propDeliveries[n/4%len(propDeliveries)]})
	case 2:
		r.apply(SetMemory{Memory: []byte(fmt.Sprint(`{"lang":"en","nu":`, n, "}"))})
	case 3:
		r.apply(RememberResult{Key: fmt.Sprint("k", n%20), Fingerprint: []byte{byte(n % 3)}, Result: []byte(fmt.Sprint("out-", n))})
	}
}

func (r *propRun) answerLookup(rng *rand.Rand) {
	r.pendingLookup = false
	if rng.IntN(20) == 0 {
		r.apply(LookupFailed{})
		return
	}
	n := []int{0, 1, 1, 1, 1, 2, 2, 3, 4}[rng.IntN(9)]
	r.apply(ProfilesFound{Profiles: r.profiles(n, func(int) bool { return rng.IntN(8) > 0 })})
}

func runProperty(t *testing.T, p Policy, seed uint64, steps int, digest bool) *propRun {
	rng := rand.New(rand.NewPCG(seed, seed^0x5eed))
	r := newPropRun(t, p)
	r.digest = digest
	for range steps {
		r.randomStep(rng)
	}
	return r
}

func TestPropertyNoAuthWithoutCode(t *testing.T) {
	small := DefaultPolicy()
	small.MaxAttempts, small.CodesPerHour, small.CodesPerDay = 5, 2, 4
	small.IdleTimeout, small.DedupeMax = 20*time.Minute, 16
	policies := map[string]Policy{"default": DefaultPolicy(), "zero (defaults)": {}, "small": small}
	total := map[string]int{}
	steps := 0
	for name, p := range policies {
		t.Run(name, func(t *testing.T) {
			for seed := range uint64(12) {
				r := runProperty(t, p, seed, 3000, false)
				steps += 3000
				for k, v := range r.stats {
					total[k] += v
				}
			}
		})
	}
	t.Logf("%d steps: %v", steps, total)
	// The run must actually have explored the flow, or it proves nothing.
	for _, k := range []string{"signed in", "code_failed", "code_locked", "code_expired", "code_limit",
		"session_expired", "profile_choice_asked", "access_disabled", "no_profile", "brain auth",
		"brain general", "dropped duplicate", "dropped ai_off", "dropped unchanged", "opted out refused"} {
		if total[k] == 0 {
			t.Errorf("the random run never produced %q", k)
		}
	}
}

func TestPropertyDeterministic(t *testing.T) {
	a := runProperty(t, DefaultPolicy(), 42, 2000, true)
	b := runProperty(t, DefaultPolicy(), 42, 2000, true)
	if a.sum != b.sum {
		t.Fatal("same inputs, different effects")
	}
	if ab, _ := a.s.MarshalBinary(); !bytes.Equal(ab, must(b.s.MarshalBinary())) {
		t.Fatal("same inputs, different state")
	}
}

func must(b []byte, _ error) []byte { return b }

// FuzzNoAuthWithoutCode lets the fuzzer choose the sequence: each byte
// picks an action and the following bytes its arguments (texts, profile
// sets, clock steps). The properties are those of propRun.check.
func FuzzNoAuthWithoutCode(f *testing.F) {
	f.Add([]byte{1, 3, 0, 2, 6, '1', '2', '3', '4', '5', '6'})
	f.Add([]byte{1, 3, 1, 1, 1, 1, 1, 2, 0, 6, 1})
	f.Add([]byte{1, 3, 2, 0, 1, 4, 0, 1, 0, 7, 2})
	f.Add([]byte{1, 3, 1, 2, 1, 0, 10, 1, 0, 0, 13, 1})
	f.Add([]byte{0, 255, 1, 5, 4, 4, 1, 3, 0, 0, 6})
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 600 {
			data = data[:600]
		}
		in := &fuzzIn{b: data}
		// A small ring keeps executions fast and reaches eviction.
		p := DefaultPolicy()
		p.DedupeMax = 32
		r := newPropRun(t, p)
		for ops := 0; in.more() && ops < 300; ops++ {
			switch in.next() % 8 {
			case 0: // clock
				r.now = r.now.Add(propSteps[int(in.next())%len(propSteps)])
			case 1: // a message from the phrase list
				r.say(r.newID(), propPhrase[int(in.next())%len(propPhrase)])
			case 2: // arbitrary text
				n := int(in.next() % 16)
				r.say(r.newID(), string(in.take(n)))
			case 3: // the profiles of the pending lookup
				n, bits := int(in.next()%5), in.next()
				r.pendingLookup = false
				r.apply(ProfilesFound{Profiles: r.profiles(n, func(i int) bool { return bits&(1<<i) == 0 })})
			case 4: // operator
				if b := in.next(); b%2 == 0 {
					r.apply(SetAI{Enabled: b%4 == 0})
				} else {
					r.apply(SetStatus{Status: Status(b / 2 % 4)})
				}
			case 5: // lookup failed, a send request, or another shell event
				switch b := in.next(); b % 3 {
				case 0:
					r.apply(LookupFailed{})
				case 1:
					r.apply(SendRequest{Text: "x"})
				default:
					r.shellEvent(int(b / 3))
				}
			case 6: // the real code, exactly as sent
				r.say(r.newID(), r.lastCode)
			case 7: // a redelivery of a recent message
				if len(r.recentIDs) > 0 {
					r.apply(Inbound{ProviderID: r.recentIDs[int(in.next())%len(r.recentIDs)], Text: "again"})
				}
			}
		}
	})
}

type fuzzIn struct{ b []byte }

func (f *fuzzIn) more() bool { return len(f.b) > 0 }

func (f *fuzzIn) next() byte {
	if len(f.b) == 0 {
		return 0
	}
	c := f.b[0]
	f.b = f.b[1:]
	return c
}

func (f *fuzzIn) take(n int) []byte {
	n = min(n, len(f.b))
	v := f.b[:n]
	f.b = f.b[n:]
	return v
}
