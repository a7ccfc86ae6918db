package conversation

import (
	"bytes"
	"encoding/hex"
	"reflect"
	"testing"
)

// richState is a state with every field set (TestRichStateSetsEveryField
// keeps it so).
func richState(t testing.TB) State {
	s := richV1State(t)
	h := newHarness(t)
	h.s = s
	h.now = t0
	h.do(Inbound{ProviderID: "wamid.second", Text: "to the second number", Number: "+14155230002"})
	h.do(SetStatus{Status: StatusArchived}) // the message reopened it
	h.do(OptOut{})
	h.do(DeliveryStatus{ProviderID: "SM1", Status: "sent"})
	h.do(DeliveryStatus{ProviderID: "SM1", Status: "delivered"})
	h.do(SetMemory{Memory: []byte(`{"lang":"en","history":[{"r":"customer","t":"x"}]}`)})
	h.do(RememberResult{Key: "retry-me", Fingerprint: bytes.Repeat([]byte{7}, 16), Result: []byte("\x08\x01\x12\x05out-1")})
	h.do(RememberResult{Key: "other", Fingerprint: []byte{1, 2}, Result: []byte{3}})
	return h.s
}

// richV1State is a state with every field of encoding version 1 set.
func richV1State(t testing.TB) State {
	h := newHarness(t)
	h.signIn(jane)
	h.say("x")
	h.do(SetAI{Enabled: false})
	h.do(SetStatus{Status: StatusArchived})
	s := h.s.Clone()
	s.candidates = []candidate{{id: "a", name: "Ann", maskedEmail: "a***@x.y", enabled: true}, {id: "b", name: "Bo"}}
	s.codeHash = hashCode([16]byte{1}, "123456")
	s.codeSalt = [16]byte{1}
	s.codeSentAt = h.now.Unix()
	s.attempts = 2
	return s
}

func TestRichStateSetsEveryField(t *testing.T) {
	v := reflect.ValueOf(richState(t))
	for i := range v.NumField() {
		if v.Field(i).IsZero() {
			t.Errorf("richState leaves %s zero: the codec tests would not cover it", v.Type().Field(i).Name)
		}
	}
}

func TestCodecRoundTrip(t *testing.T) {
	only := func(f func(*State)) State { var s State; f(&s); return s }
	states := map[string]State{
		"zero":         {},
		"rich":         richState(t),
		"rich v1":      richV1State(t),
		"opted out":    only(func(s *State) { s.optedOut = true }),
		"status only":  only(func(s *State) { s.lastDelivery = "read" }),
		"ring only":    only(func(s *State) { s.deliveries = []uint64{1, 1 << 63} }),
		"memory only":  only(func(s *State) { s.memory = []byte("{}") }),
		"empty result": only(func(s *State) { s.keyed = []keyedResult{{key: "k", until: -1}} }),
	}
	for name, s := range states {
		t.Run(name, func(t *testing.T) {
			b, err := s.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			var got State
			if err := got.UnmarshalBinary(b); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, s) {
				t.Fatalf("round trip:\n got %+v\nwant %+v", got, s)
			}
			t.Logf("%s state: %d bytes encoded", name, len(b))
		})
	}
}

func TestCodecRejectsCorruptInput(t *testing.T) {
	rs := richState(t)
	b, _ := rs.MarshalBinary()
	orig := State{conversationID: "keep"}
	for n := range len(b) {
		s := orig
		if err := s.UnmarshalBinary(b[:n]); err == nil {
			t.Fatalf("truncated to %d bytes accepted", n)
		}
		if !reflect.DeepEqual(s, orig) {
			t.Fatal("failed decode changed the state")
		}
	}
	var s State
	if err := s.UnmarshalBinary(append(bytes.Clone(b), 0)); err == nil {
		t.Fatal("trailing byte accepted")
	}
	bad := bytes.Clone(b)
	bad[0] = 99
	if err := s.UnmarshalBinary(bad); err == nil {
		t.Fatal("unknown version accepted")
	}
	bad = bytes.Clone(b)
	bad[1] = 200 // phase
	if err := s.UnmarshalBinary(bad); err == nil {
		t.Fatal("invalid phase accepted")
	}
	// A huge count must fail without allocating it.
	if err := s.UnmarshalBinary([]byte{1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f}); err == nil {
		t.Fatal("huge count accepted")
	}
}

// v1Golden is a version-1 record of richV1State with two remembered ids,
// as release 1 wrote it.
const v1Golden = "010401020306636f6e762d3106702d6a616e65044a616e657286ec8e7337422666fd6859cf2471b18202963e07669a1cebd3b90be453573201000000000000000000000000000000a0a8f5fc0ca0a8f5fc0ca0eefffc0ca0a8f5fc0ce098f6fc0ca0eefffc0ca0a8f5fc0c02016103416e6e08612a2a2a40782e7901016202426f000001a0a8f5fc0c02f065c78a8792f7d790d4babe06096bc78a8795f7d790d4babe06"

// A version-1 record (from before the session's other fields moved into
// the core) still decodes: the old fields as they were, the new ones zero.
func TestCodecDecodesVersion1(t *testing.T) {
	b, err := hex.DecodeString(v1Golden)
	if err != nil {
		t.Fatal(err)
	}
	var got State
	if err := got.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	sec := t0.Unix()
	want := State{
		conversationID: "conv-1", profileID: "p-jane", firstName: "Jane",
		candidates: []candidate{{id: "a", name: "Ann", maskedEmail: "a***@x.y", enabled: true}, {id: "b", name: "Bo"}},
		codesSent:  []int64{sec},
		seen:       []seenID{{lo: 2328323568, hi: 3623326343, at: uint32(sec)}, {lo: 2328324873, hi: 3623327111, at: uint32(sec)}},
		codeHash:   hashCode([16]byte{1}, "123456"), codeSalt: [16]byte{1}, codeSentAt: sec,
		authAt: sec, authUntil: sec + 86400, lastInbound: sec, idleUntil: sec + 7200, windowUntil: sec + 86400, phaseAt: sec,
		phase: PhaseAuthenticated, status: StatusArchived, attempts: 2, aiOff: true,
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("version 1 decoded as\n%+v\nwant\n%+v", got, want)
	}
	// Re-encoded, it is a version-2 record of the same state.
	b2, _ := got.MarshalBinary()
	if b2[0] != codecVersion {
		t.Fatalf("re-encoded as version %d", b2[0])
	}
	var again State
	if err := again.UnmarshalBinary(b2); err != nil || !reflect.DeepEqual(again, want) {
		t.Fatalf("version 2 of a version-1 state: %v\n%+v", err, again)
	}
	// Version 1 has no opt-out (or other section) flags.
	for _, flag := range []byte{flagOptedOut, flagDeliveries, flagMemory, flagKeyed, 1 << 7} {
		bad := bytes.Clone(b)
		bad[4] |= flag
		if err := again.UnmarshalBinary(bad); err == nil {
			t.Errorf("version 1 with flag %#x accepted", flag)
		}
	}
}

// Every encoding is the only one of its state: a section flagged but
// empty, or a ring longer than the core keeps, is corrupt.
func TestCodecRejectsNonCanonicalSections(t *testing.T) {
	zero, _ := (&State{}).MarshalBinary()
	cases := map[string][]byte{
		"deliveries flagged, empty": append(flagged(zero, flagDeliveries), 0, 0),
		"memory flagged, empty":     append(flagged(zero, flagMemory), 0),
		"keyed flagged, empty":      append(flagged(zero, flagKeyed), 0),
		"ring of 9":                 append(append(flagged(zero, flagDeliveries), 0, 9), make([]byte, 9*8)...),
		"unknown flag":              flagged(zero, 1<<6),
	}
	for name, b := range cases {
		t.Run(name, func(t *testing.T) {
			var s State
			if err := s.UnmarshalBinary(b); err == nil {
				t.Fatalf("accepted: %+v", s)
			}
		})
	}
	ok := append(append(flagged(zero, flagDeliveries), 0, 8), make([]byte, 8*8)...)
	var s State
	if err := s.UnmarshalBinary(ok); err != nil || len(s.deliveries) != deliveryRing {
		t.Fatalf("a full ring: %v", err)
	}
}

func flagged(b []byte, flag byte) []byte {
	b = bytes.Clone(b)
	b[4] |= flag
	return b
}

func FuzzStateDecode(f *testing.F) {
	b, _ := (&State{}).MarshalBinary()
	f.Add(b)
	rich := richState(f)
	b, _ = rich.MarshalBinary()
	f.Add(b)
	v1, _ := hex.DecodeString(v1Golden)
	f.Add(v1)
	f.Fuzz(func(t *testing.T, data []byte) {
		var s State
		if s.UnmarshalBinary(data) != nil {
			return
		}
		// Whatever decodes must re-encode stably (the input may use
		// non-minimal varints, so compare encodings of the decoded form)
		// and be usable by Step.
		b, _ := s.MarshalBinary()
		var again State
		if err := again.UnmarshalBinary(b); err != nil {
			t.Fatalf("re-encoding does not decode: %v", err)
		}
		if b2, _ := again.MarshalBinary(); !bytes.Equal(b, b2) {
			t.Fatalf("re-encoding not stable")
		}
		if !reflect.DeepEqual(s, again) {
			t.Fatalf("re-encoding lost something:\n%+v\n%+v", s, again)
		}
		r := Rand{Code: "000000", ConversationID: "c"}
		for _, ev := range []Event{
			SendRequest{Text: "x"},
			DeliveryStatus{ProviderID: "SM1", Status: "read"},
			RememberResult{Key: "k", Result: []byte{1}},
			Inbound{ProviderID: "x", Text: "123456"},
			SetMemory{Memory: []byte("{}")},
		} {
			s.Apply(Policy{}, ev, t0, r)
		}
		s.Recall(DefaultPolicy(), "k", nil, t0)
		s.Compact(Policy{}, t0)
	})
}

// TestNumberIsWrittenOnlyForAnotherNumber: a customer of the tenant's
// first number (every single-number tenant's) is encoded without the
// number section, so a node of the release before reads it; one who
// wrote to another number keeps it across encoding.
func TestNumberIsWrittenOnlyForAnotherNumber(t *testing.T) {
	h := newHarness(t)
	h.say("hi")
	b, _ := h.s.MarshalBinary()
	if b[4]&flagNumber != 0 {
		t.Fatal("the first number's customer was encoded with a number")
	}
	h.do(Inbound{ProviderID: "wamid.2", Text: "hello", Number: "106540352242999"})
	b, _ = h.s.MarshalBinary()
	var back State
	if err := back.UnmarshalBinary(b); err != nil || b[4]&flagNumber == 0 || back.Number() != "106540352242999" {
		t.Fatalf("decoded number %q, err %v", back.Number(), err)
	}
	h.do(Inbound{ProviderID: "wamid.3", Text: "back to the first"})
	if h.s.Number() != "" {
		t.Fatalf("after writing to the first number: %q", h.s.Number())
	}
}
