package tools

import (
	"context"
	"strings"
	"time"

	"github.com/parleyhq/parley/brain"
)

// AccountData is the result of account_info. The email and phone are
// masked: the customer knows them, and the model need not.
type AccountData struct {
	Name        string `json:"name"`
	Email       string `json:"email,omitempty"`
	Phone       string `json:"phone,omitempty"`
	Address     string `json:"address,omitempty"`
	MemberSince string `json:"member_since,omitempty"`
	// Since is MemberSince as a time, for phrasing.
	Since time.Time `json:"-"`
}

// Account runs account_info for the signed-in customer.
func (k *Kit) Account(ctx context.Context, c Caller) Result {
	start := time.Now()
	if !c.signedIn() {
		return k.notSignedIn(AccountInfo, start)
	}
	a, err := k.Backend.Account(ctx, c.ProfileID)
	if err != nil {
		return k.backendFail(AccountInfo, start, err)
	}
	d := AccountData{Name: a.Name, Email: brain.Mask(a.Email), Phone: brain.Mask(a.Phone), Address: a.Address}
	if !a.MemberSince.IsZero() {
		d.Since = a.MemberSince.In(k.loc())
		d.MemberSince = d.Since.Format("2006-01-02")
	}
	return k.ok(AccountInfo, start, d)
}

// SubscriptionData is the result of subscription_info.
type SubscriptionData struct {
	Plan              string `json:"plan"`
	Status            string `json:"status"`
	Price             string `json:"price"`
	NextPaymentDate   string `json:"next_payment_date,omitempty"`
	NextPayment       string `json:"next_payment_amount,omitempty"`
	SessionsPerPeriod int    `json:"sessions_per_period"`
	SessionsRemaining int    `json:"sessions_remaining"`
	Period            string `json:"period,omitempty"`
	// NextPaymentDay is NextPaymentDate as a time, for phrasing.
	NextPaymentDay time.Time `json:"-"`
}

// Subscription runs subscription_info for the signed-in customer. A
// customer without a plan fails with ErrNotFound, which brains phrase as
// "you have no subscription".
func (k *Kit) Subscription(ctx context.Context, c Caller) Result {
	start := time.Now()
	if !c.signedIn() {
		return k.notSignedIn(SubscriptionInfo, start)
	}
	s, err := k.Backend.Subscription(ctx, c.ProfileID)
	if err != nil {
		return k.backendFail(SubscriptionInfo, start, err)
	}
	d := SubscriptionData{Plan: s.Plan, Status: s.Status, Price: Money(s.PricePence, s.Currency),
		SessionsPerPeriod: s.SessionsPerPeriod, SessionsRemaining: s.SessionsRemaining, Period: s.PeriodDescription}
	if !s.NextPaymentDate.IsZero() {
		d.NextPaymentDay = s.NextPaymentDate.In(k.loc())
		d.NextPaymentDate = d.NextPaymentDay.Format("2006-01-02")
		amount := s.NextPaymentPence
		if amount == 0 {
			amount = s.PricePence
		}
		d.NextPayment = Money(amount, s.Currency)
	}
	return k.ok(SubscriptionInfo, start, d)
}

// HelpData is the result of help.
type HelpData struct {
	Capabilities []string `json:"capabilities"`
	NotOffered   string   `json:"not_offered"`
	HowToBook    string   `json:"how_to_book"`
	SignedIn     bool     `json:"signed_in"`
}

// Capabilities are what the assistant does, in the order it offers them.
var Capabilities = []string{
	"list the services and prices",
	"check available times for a service and day",
	"show upcoming and past bookings (after sign-in)",
	"cancel a booking, after confirmation (after sign-in)",
	"show account details (after sign-in)",
	"show the subscription, sessions left and next payment (after sign-in)",
	"pass the conversation to a person from the team",
}

// Help runs help.
func (k *Kit) Help(_ context.Context, c Caller) Result {
	start := time.Now()
	return k.ok(Help, start, HelpData{Capabilities: Capabilities, NotOffered: NotOffered,
		HowToBook: k.howToBook(), SignedIn: c.signedIn()})
}

// HandoffArgs are handoff_to_human's arguments.
type HandoffArgs struct {
	// Summary tells the agent what the customer needs, in a sentence or
	// two.
	Summary string `json:"summary,omitempty"`
}

// HandoffData is the result of handoff_to_human.
type HandoffData struct {
	Status      string `json:"status"`
	Instruction string `json:"instruction"`
}

// maxSummary bounds a handoff summary: it is read by a person in a list.
const maxSummary = 500

// Handoff runs handoff_to_human: the conversation goes to a person.
func (k *Kit) Handoff(_ context.Context, c Caller, a HandoffArgs) Result {
	start := time.Now()
	summary := strings.TrimSpace(a.Summary)
	if summary == "" {
		summary = "The customer asked to talk to a person."
	}
	if c.FirstName != "" && c.signedIn() && !strings.Contains(summary, c.FirstName) {
		summary = c.FirstName + " (signed in): " + summary
	}
	r := k.ok(HandoffToHuman, start, HandoffData{Status: "handed_off",
		Instruction: "Tell the customer a person from the team will reply here soon."})
	r.Handoff = &brain.Handoff{Reason: brain.HandoffRequested, Summary: brain.Limit(brain.Mask(summary), maxSummary)}
	return r
}
