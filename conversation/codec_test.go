package conversation

import (
	"bytes"
	"reflect"
	"testing"
)

// richState is a state with every field set.
func richState(t *testing.T) State {
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

func TestCodecRoundTrip(t *testing.T) {
	for name, s := range map[string]State{"zero": {}, "rich": richState(t)} {
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

func FuzzStateDecode(f *testing.F) {
	b, _ := (&State{}).MarshalBinary()
	f.Add(b)
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
		s.Apply(Policy{}, Inbound{ProviderID: "x", Text: "123456"}, t0, Rand{Code: "000000", ConversationID: "c"})
	})
}
