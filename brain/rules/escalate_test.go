package rules

import (
	"context"
	"errors"
	"testing"

	"github.com/parleyhq/parley/brain"
)

// never fails the test if it is asked: an escalated message must not reach
// the brain (or its tools).
type never struct{ t *testing.T }

func (n never) Answer(context.Context, brain.Request) (brain.Answer, error) {
	n.t.Error("the wrapped brain was asked")
	return brain.Answer{}, errors.New("asked")
}

type echo struct{}

func (echo) Answer(_ context.Context, r brain.Request) (brain.Answer, error) {
	return brain.Answer{Text: "echo: " + r.Text, QueryType: "echo"}, nil
}

func TestEscalate(t *testing.T) {
	for _, tc := range []struct {
		text, risk string
		lang       string
	}{
		{"Refund my last charge, I didn't authorize it", "payment_dispute", "en"},
		{"There's a charge I did not authorise on my card", "payment_dispute", "en"},
		{"I want to file a chargeback", "payment_dispute", "en"},
		{"No autoricé este cargo", "payment_dispute", "es"},
		{"Me cobraron dos veces este mes", "payment_dispute", "es"},
		{"My account was hacked", "account_takeover", "en"},
		{"Someone logged into my account, it was not me who booked this", "account_takeover", "en"},
		{"I'll have my lawyer contact you", "legal", "en"},
		{"Voy a poner una denuncia", "legal", "es"},
		{"I want to speak to the manager about a complaint", "tenant", "en"},
		// Not risks: the brain answers.
		{"What's my subscription?", "", ""},
		{"Cancel my booking on Friday", "", ""},
		{"Are you sure about the time?", "", ""}, // "sure" is not "sue"
		{"hola, qué servicios tenéis", "", ""},
	} {
		t.Run(tc.text, func(t *testing.T) {
			var next brain.Brain = echo{}
			if tc.risk != "" {
				next = never{t}
			}
			b := Escalate(next, []string{"complaint"})
			st := brain.State{Pending: &brain.PendingAction{Kind: brain.PendingCancel, BookingID: "bk_1"}}
			a, err := b.Answer(context.Background(), brain.Request{Text: tc.text, State: st})
			if err != nil {
				t.Fatal(err)
			}
			if tc.risk == "" {
				if a.QueryType != "echo" || a.Handoff != nil {
					t.Fatalf("answer %+v, want the brain's", a)
				}
				return
			}
			if a.QueryType != QueryEscalated || a.Handoff == nil || a.Handoff.Reason != HandoffRisk || a.State.Pending != nil {
				t.Fatalf("answer %+v", a)
			}
			if want := "Escalated (" + map[string]string{"payment_dispute": "payment dispute", "account_takeover": "account takeover", "legal": "legal", "tenant": "tenant"}[tc.risk] + ")"; a.Handoff.Summary[:len(want)] != want {
				t.Fatalf("summary %q, want it to start %q", a.Handoff.Summary, want)
			}
			spanishReply := a.Text[:2] == "He"
			if spanishReply != (tc.lang == "es") {
				t.Fatalf("reply %q for a %s message", a.Text, tc.lang)
			}
		})
	}
}
