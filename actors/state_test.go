package actors

import (
	"bytes"
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/parleyhq/parley/brain"
	"github.com/parleyhq/parley/conversation"
	"github.com/parleyhq/parley/internal/ids"
	"github.com/parleyhq/parley/tenants"
	"github.com/parleyhq/parley/wire"
)

// countingBrain counts its answers in the brain's memory, so a reply
// shows whether the memory came through.
type countingBrain struct{}

func (countingBrain) Answer(_ context.Context, r brain.Request) (brain.Answer, error) {
	st := r.State
	st.NotUnderstood++
	return brain.Answer{Text: fmt.Sprintf("answer %d", st.NotUnderstood), QueryType: "help", State: st}, nil
}

// brainSays is the brain's reply among a message's replies.
func brainSays(t *testing.T, replies []string) string {
	t.Helper()
	for _, r := range replies {
		if strings.HasPrefix(r, "answer ") {
			return r
		}
	}
	t.Fatalf("the brain did not answer: %q", replies)
	return ""
}

// status delivers a provider's delivery report.
func (s *sessions) status(t *testing.T, phone, providerID, status string) {
	t.Helper()
	s.offset++
	in := &wire.Inbound{Id: ids.New(), Tenant: "demo", Phone: phone, Channel: "twilio",
		Kind: &wire.Inbound_Status{Status: &wire.DeliveryStatus{ProviderId: providerID, Status: status}}}
	s.placement.Send(wire.ActorID("demo", phone), s.delivery(in))
	select {
	case <-s.acks:
	case <-time.After(10 * time.Second):
		t.Fatalf("status %s never acknowledged", status)
	}
}

// Everything a session remembers is in its encoded state: the brain's
// memory, the opt-out and the delivery reports survive passivation, and
// an erasure forgets all of it.
func TestWholeSessionSurvivesPassivation(t *testing.T) {
	s := startSessionsOf(t, 100*time.Millisecond, tenants.Tenant{ID: "demo", Name: "Demo", Sim: true}, countingBrain{})
	const phone = "+447700900123" // no profile: "help" always reaches the brain
	template := &wire.SendMessage{Template: &wire.Template{Name: "reminder", ContentSid: "HX1"}}
	send := func() *wire.CommandResult {
		t.Helper()
		s.command(t, phone, &wire.Command{Op: &wire.Command_Send{Send: template}, RequestId: "r"})
		return s.result(t)
	}
	if got := brainSays(t, s.say(t, phone, "help")); got != "answer 1" {
		t.Fatalf("first answer %q", got)
	}
	s.status(t, phone, "SM1", "delivered")
	s.command(t, phone, &wire.Command{Op: &wire.Command_OptOut{OptOut: &wire.OptOut{}}})
	s.waitDormant(t)

	// The opt-out held while dormant; the refusal is what it always was.
	want := &wire.CommandResult{RequestId: "r", ErrorCode: "opted_out",
		ErrorMessage: "the customer unsubscribed; they must write to you again before you can message them"}
	if r := send(); r.String() != want.String() {
		t.Fatalf("send to an opted-out customer: %v, want %v", r, want)
	}
	s.status(t, phone, "SM1", "delivered") // a redelivery: no second row
	s.status(t, phone, "SM1", "read")
	if got := brainSays(t, s.say(t, phone, "help")); got != "answer 2" {
		t.Fatalf("after passivation the brain said %q: its memory was lost", got)
	}
	if r := send(); !r.Ok {
		t.Fatalf("the customer wrote again, yet the send was refused: %v", r)
	}

	s.command(t, phone, &wire.Command{Op: &wire.Command_Forget{Forget: &wire.Forget{}}, RequestId: "f"})
	if r := s.result(t); !r.Ok {
		t.Fatalf("forget: %v", r)
	}
	if got := brainSays(t, s.say(t, phone, "help")); got != "answer 1" {
		t.Fatalf("after erasure the brain said %q: it remembered", got)
	}
	s.status(t, phone, "SM1", "read") // forgotten too: recorded again

	r := kafka.NewReader(kafka.ReaderConfig{Brokers: s.brokers, Topic: wire.TopicEvents, Partition: 0, MaxWait: 50 * time.Millisecond})
	defer r.Close()
	var got []string
	for _, ev := range drain(t, r, 500*time.Millisecond, func() *wire.Event { return &wire.Event{} }) {
		if d := ev.GetDelivery(); d != nil {
			got = append(got, d.Status)
		}
	}
	if strings.Join(got, ",") != "delivered,read,read" {
		t.Fatalf("delivery events %v, want delivered, read, and read again after the erasure", got)
	}
}

// A session's encoded state is all another node needs to carry on: a
// signed-in customer restored elsewhere is still signed in.
func TestRestoredSessionCarriesOn(t *testing.T) {
	const sam = "+447700900456"
	id := wire.ActorID("demo", sam)
	a := startSessions(t, 100*time.Millisecond)
	signInSam(t, a)
	a.waitDormant(t)
	enc, ok := a.placement.dormantState(id)
	if !ok {
		t.Fatal("no dormant state")
	}

	b := startSessions(t, 100*time.Millisecond)
	if !b.placement.Restore(id, enc) {
		t.Fatal("restore refused")
	}
	if live, dormant := b.placement.Counts(); live != 0 || dormant != 1 {
		t.Fatalf("restored: live %d, dormant %d", live, dormant)
	}
	if r := b.say(t, sam, "hello"); len(r) != 1 || !strings.Contains(r[0], "Hello Sam") {
		t.Fatalf("restored session replied %q", r)
	}
	// The live actor is the primary copy: a restore does not overwrite it.
	if b.placement.Restore(id, []byte{0xff}) {
		t.Fatal("restore over a live actor")
	}
	b.waitDormant(t)
	// A tombstone removes a dormant session.
	if !b.placement.Restore(id, nil) {
		t.Fatal("tombstone refused")
	}
	if live, dormant := b.placement.Counts(); live != 0 || dormant != 0 {
		t.Fatalf("after the tombstone: live %d, dormant %d", live, dormant)
	}
}

// signInSam signs Sam in with the code he was sent.
func signInSam(t *testing.T, s *sessions) {
	t.Helper()
	const sam = "+447700900456"
	r := s.say(t, sam, "hello")
	if len(r) != 1 {
		t.Fatalf("replies %q", r)
	}
	code := regexp.MustCompile(`\d{6}`).FindString(r[0])
	if code == "" {
		t.Fatalf("no code in %q", r[0])
	}
	if r := s.say(t, sam, code); len(r) != 1 || !strings.Contains(r[0], "Hi Sam") {
		t.Fatalf("verification replied %q", r)
	}
}

func TestEncodeStateIsExactAndComplete(t *testing.T) {
	now := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	s := &session{deps: &Deps{Now: func() time.Time { return now }}, tenant: &tenants.Tenant{ID: "demo"}, state: &conversation.State{}}
	for _, ev := range []conversation.Event{
		conversation.Inbound{ProviderID: "wamid.1", Text: "hi"},
		conversation.DeliveryStatus{ProviderID: "SM1", Status: "read"},
		conversation.SetMemory{Memory: encodeMemory(brain.State{Language: "es"})},
		conversation.RememberResult{Key: "k", Result: []byte{1}},
		conversation.OptOut{},
	} {
		s.state.Apply(conversation.Policy{}, ev, now, conversation.Rand{ConversationID: "c1"})
	}
	enc := s.encodeState()
	if len(enc) != cap(enc) {
		t.Fatalf("%d bytes in a buffer of %d", len(enc), cap(enc))
	}
	want, _ := s.state.MarshalBinary()
	if !bytes.Equal(enc, want) {
		t.Fatal("encodeState is not the state's encoding")
	}
	var back conversation.State
	if err := back.UnmarshalBinary(enc); err != nil {
		t.Fatal(err)
	}
	if !back.OptedOut() || back.LastDelivery() != "read" || decodeMemory(back.Memory()).Language != "es" || back.ConversationID() != "c1" {
		t.Fatalf("decoded %+v", back)
	}
	if again := s.encodeState(); !bytes.Equal(again, enc) || &again[0] == &enc[0] {
		t.Fatal("a second encoding differs or shares the first's bytes")
	}
}
