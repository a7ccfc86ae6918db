package conversation

import (
	"testing"
	"time"
)

func TestOptOut(t *testing.T) {
	windowUntil := t0.Add(24 * time.Hour).Local()
	refused := func(text string, template bool) Effect {
		return SendDecision{Reason: SendOptedOut, Text: text, Template: template, WindowUntil: windowUntil}
	}
	tests := []struct {
		name string
		// before runs after the customer wrote "hi" (wamid.1) at t0.
		before   []Event
		ev       Event
		want     []Effect // nil: only the state is checked
		optedOut bool
	}{
		{"opt out", nil, OptOut{}, []Effect{}, true},
		{"again", []Event{OptOut{}}, OptOut{}, []Effect{Dropped{Reason: DropUnchanged}}, true},
		{"free text refused inside the window", []Event{OptOut{}}, SendRequest{Text: "hello"}, []Effect{refused("hello", false)}, true},
		{"templates too", []Event{OptOut{}}, SendRequest{Text: "reminder", Template: true}, []Effect{refused("reminder", true)}, true},
		{"operators still work", []Event{OptOut{}}, SetStatus{Status: StatusArchived}, nil, true},
		{"delivery reports too", []Event{OptOut{}}, DeliveryStatus{ProviderID: "SM1", Status: "failed"}, []Effect{LogDelivery{ProviderID: "SM1", Status: "failed"}}, true},
		{"the customer writes again", []Event{OptOut{}}, Inbound{ProviderID: "wamid.2", Text: "hi again"}, nil, false},
		{"with AI off too", []Event{SetAI{Enabled: false}, OptOut{}}, Inbound{ProviderID: "wamid.2", Text: "hi again"}, nil, false},
		{"a message without a provider id", []Event{OptOut{}}, Inbound{Text: "hi again"}, nil, false},
		{"not a redelivery from before", []Event{OptOut{}}, Inbound{ProviderID: "wamid.1", Text: "hi"}, []Effect{Dropped{Reason: DropDuplicate, ProviderID: "wamid.1"}}, true},
		{"erasure", []Event{OptOut{}}, Forget{}, []Effect{}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			h.say("hi")
			for _, ev := range tc.before {
				h.do(ev)
			}
			eff := h.do(tc.ev)
			if tc.want != nil {
				eqEff(t, eff, tc.want...)
			}
			if h.s.OptedOut() != tc.optedOut {
				t.Fatalf("OptedOut = %v, want %v", h.s.OptedOut(), tc.optedOut)
			}
			if !tc.optedOut {
				if d, _ := find[SendDecision](h.do(SendRequest{Text: "hello", Template: true})); !d.Allowed {
					t.Fatalf("a template refused after the opt-out ended: %+v", d)
				}
			}
		})
	}
}
