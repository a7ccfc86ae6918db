package conversation

import (
	"bytes"
	"fmt"
	"testing"
)

func TestDeliveryStatus(t *testing.T) {
	type report struct {
		id, status string
		dup        bool
	}
	tests := []struct {
		name    string
		reports []report
		last    string
	}{
		{"a message's statuses", []report{{"SM1", "sent", false}, {"SM1", "delivered", false}, {"SM1", "read", false}}, "read"},
		{"redeliveries", []report{{"SM1", "sent", false}, {"SM1", "delivered", false}, {"SM1", "delivered", true},
			{"SM1", "read", false}, {"SM1", "delivered", true}, {"SM1", "read", true}}, "read"},
		{"same status of another message", []report{{"SM1", "delivered", false}, {"SM2", "delivered", false}}, "delivered"},
		{"a late report is the latest", []report{{"SM1", "read", false}, {"SM1", "sent", false}}, "sent"},
		{"id and status are not run together", []report{{"SM1", "0sent", false}, {"SM10", "sent", false}}, "sent"},
		{"an empty status", []report{{"SM1", "", false}, {"SM1", "", true}}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			for _, r := range tc.reports {
				before, _ := h.s.MarshalBinary()
				eff := h.do(DeliveryStatus{ProviderID: r.id, Status: r.status})
				if !r.dup {
					eqEff(t, eff, LogDelivery{ProviderID: r.id, Status: r.status})
					continue
				}
				eqEff(t, eff, Dropped{Reason: DropDuplicate, ProviderID: r.id})
				if after, _ := h.s.MarshalBinary(); !bytes.Equal(before, after) {
					t.Fatal("a redelivered report changed the session")
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
