package conversation

import (
	"bytes"
	"fmt"
	"testing"
)

func TestDeliveryStatus(t *testing.T) {
	const (
		logged  = "logged"
		dup     = "duplicate"
		unknown = "unknown"
	)
	type report struct{ id, status, want string }
	tests := []struct {
		name    string
		reports []report
		last    string
	}{
		{"a message's statuses", []report{{"SM1", "sent", logged}, {"SM1", "delivered", logged}, {"SM1", "read", logged}}, "read"},
		{"redeliveries", []report{{"SM1", "sent", logged}, {"SM1", "delivered", logged}, {"SM1", "delivered", dup},
			{"SM1", "read", logged}, {"SM1", "delivered", dup}, {"SM1", "read", dup}}, "read"},
		{"same status of another message", []report{{"SM1", "delivered", logged}, {"SM2", "delivered", logged}}, "delivered"},
		{"a late report is the latest", []report{{"SM1", "read", logged}, {"SM1", "sent", logged}}, "sent"},
		{"Twilio's other documented words", []report{{"SM1", "queued", logged}, {"SM1", "undelivered", logged}, {"SM2", "partially_delivered", logged}}, "partially_delivered"},
		{"Meta's deleted", []report{{"wamid.1", "deleted", logged}}, "deleted"},
		// Words no provider documents are counted by the shell, never
		// stored: the session is as it was.
		{"an unknown word", []report{{"SM1", "sent", logged}, {"SM1", "teleported", unknown}}, "sent"},
		{"an empty status", []report{{"SM1", "", unknown}}, ""},
		{"case matters", []report{{"SM1", "Delivered", unknown}}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			for _, r := range tc.reports {
				before, _ := h.s.MarshalBinary()
				eff := h.do(DeliveryStatus{ProviderID: r.id, Status: r.status})
				switch r.want {
				case logged:
					eqEff(t, eff, LogDelivery{ProviderID: r.id, Status: r.status})
					continue
				case dup:
					eqEff(t, eff, Dropped{Reason: DropDuplicate, ProviderID: r.id})
				case unknown:
					eqEff(t, eff, Dropped{Reason: DropUnknownStatus, ProviderID: r.id})
				}
				if after, _ := h.s.MarshalBinary(); !bytes.Equal(before, after) {
					t.Fatalf("a %s report changed the session", r.want)
				}
			}
			if h.s.LastDelivery() != tc.last {
				t.Fatalf("LastDelivery = %q, want %q", h.s.LastDelivery(), tc.last)
			}
		})
	}
}

// The ring remembers the last deliveryRing reports: an older one comes
// through again, as it did when the ring lived in the actor.
func TestDeliveryRingIsBounded(t *testing.T) {
	h := newHarness(t)
	for i := range deliveryRing + 1 {
		h.do(DeliveryStatus{ProviderID: fmt.Sprint("SM", i), Status: "sent"})
	}
	if len(h.s.deliveries) != deliveryRing {
		t.Fatalf("ring holds %d", len(h.s.deliveries))
	}
	if _, ok := find[Dropped](h.do(DeliveryStatus{ProviderID: "SM1", Status: "sent"})); !ok {
		t.Fatal("SM1 forgotten")
	}
	if _, ok := find[LogDelivery](h.do(DeliveryStatus{ProviderID: "SM0", Status: "sent"})); !ok {
		t.Fatal("the ring grew past its size")
	}
	// Reports are no customer activity: the window stays shut.
	if h.s.WindowOpen(h.now) || h.s.ConversationID() != "" {
		t.Fatal("a delivery report opened the window or a conversation")
	}
}
