package conversation

import "time"

// Effect is an output of Step for the shell to carry out. Effects come in
// the order they must be executed. The set is closed: only the types in
// this file implement it.
type Effect interface{ isEffect() }

// ConversationStarted: a conversation with this id begins (the session's
// first message, or the first after the previous one was closed).
type ConversationStarted struct {
	ID         string
	PreviousID string // the closed conversation it replaces, if any
}

// StatusChanged: the conversation's status changed, by an operator
// (SetStatus) or by the customer writing into an archived conversation.
type StatusChanged struct {
	ConversationID string
	From, To       Status
	ByCustomer     bool
}

// LogInbound: record the customer message in the message log of the
// state's current conversation. Human is true when AI is off, so the
// message is waiting for an operator and nothing will answer it
// automatically. Code is true when the message is a verification code
// typed while one is awaited: the log must not keep it, as it would not
// keep the code sent.
type LogInbound struct {
	ProviderID string
	Human      bool
	Code       bool
	Group      bool // a group message (Inbound.Group): logged only
}

// Dropped: the event had no effect, for the reason given (one of the
// Drop* constants). For a duplicate message it is the only effect.
type Dropped struct {
	Reason     string
	ProviderID string
}

// Reasons in Dropped.
const (
	DropDuplicate      = "duplicate"           // provider id seen within DedupeTTL, or a delivery report seen
	DropUnexpected     = "unexpected"          // a lookup result nobody is waiting for
	DropAIOff          = "ai_off"              // a lookup result arrived after AI was switched off
	DropNoConversation = "no_conversation"     // status change before the first message
	DropClosed         = "conversation_closed" // closed conversations are final
	DropUnchanged      = "unchanged"           // status, AI or opt-out already as requested
	DropInvalid        = "invalid"             // unknown status value or event type, result without a key
	DropUnknownStatus  = "unknown_status"      // a delivery report with a status no provider documents
)

// LookupProfiles: ask the tenant's backend for the profiles using the
// session's phone number, then feed the answer back as ProfilesFound, or
// LookupFailed if the backend could not answer. When present it is the
// last effect of its step, so the shell may do the lookup right away.
type LookupProfiles struct{}

// Reply: send this free text to the customer.
type Reply struct {
	Text string
}

// SendCode: send Text, which contains the verification code, to the
// customer. It is a Reply whose text is secret: the shell must not write
// Code or Text into logs or analytics (record that a code was sent, not
// the message body).
type SendCode struct {
	Code string
	Text string
}

// AuthName is the name of a sign-in event, as analytics stores it.
type AuthName string

// The sign-in events. Every step of the flow emits one or more.
const (
	AuthProfileLookup      AuthName = "profile_lookup"       // a lookup is requested
	AuthNoProfile          AuthName = "no_profile"           // no profile uses this number
	AuthAccessDisabled     AuthName = "access_disabled"      // the profile(s) have WhatsApp disabled
	AuthProfileChoiceAsked AuthName = "profile_choice_asked" // the customer is asked (again) to choose
	AuthProfileSelected    AuthName = "profile_selected"     // a profile is chosen (or the only one taken)
	AuthCodeSent           AuthName = "code_sent"            // a code was sent
	AuthCodeVerified       AuthName = "code_verified"        // the right code was entered
	AuthCodeFailed         AuthName = "code_failed"          // a wrong code was entered (every wrong attempt)
	AuthCodeExpired        AuthName = "code_expired"         // the code ran out before it was entered
	AuthCodeLocked         AuthName = "code_locked"          // the last allowed wrong attempt locked the code
	AuthCodeLimit          AuthName = "code_limit"           // a code was refused by the hourly/daily limit
	AuthSessionExpired     AuthName = "session_expired"      // a signed-in session ran out
)

// AuthEvent: record a sign-in event. ProfileID is the profile concerned
// when there is one. Attempt is the attempt number for code_failed,
// code_locked and code_verified (1-based), and 0 otherwise.
type AuthEvent struct {
	Name      AuthName
	ProfileID string
	Attempt   int
}

// AskBrain: have the AI answer Text. Only when Authenticated is true do
// ProfileID and FirstName identify the customer, and only then may the
// brain use account tools; unauthenticated requests (the customer asked
// for help during sign-in) may be answered with general information only.
type AskBrain struct {
	Text          string
	Authenticated bool
	ProfileID     string
	FirstName     string
}

// SendDecision answers a SendRequest: whether it may be sent, and why.
type SendDecision struct {
	Allowed  bool
	Reason   string // one of the Send* constants
	Template bool
	Text     string
	// WindowUntil is when the window closes (zero if the customer never
	// wrote); the operator UI can show it.
	WindowUntil time.Time
}

// Reasons in SendDecision.
const (
	SendWindowOpen    = "window_open"    // free text inside the 24h window
	SendTemplate      = "template"       // templates may always be sent
	SendOutsideWindow = "outside_window" // free text refused: use a template
	SendOptedOut      = "opted_out"      // the customer unsubscribed: nothing may be sent until they write
)

// LogDelivery: record the provider's delivery report (the first time this
// status of this message is reported).
type LogDelivery struct {
	ProviderID string
	Status     string
}

// AIChanged: automatic replies were switched on or off.
type AIChanged struct {
	Enabled bool
}

func (ConversationStarted) isEffect() {}
func (StatusChanged) isEffect()       {}
func (LogInbound) isEffect()          {}
func (Dropped) isEffect()             {}
func (LookupProfiles) isEffect()      {}
func (Reply) isEffect()               {}
func (SendCode) isEffect()            {}
func (AuthEvent) isEffect()           {}
func (AskBrain) isEffect()            {}
func (SendDecision) isEffect()        {}
func (AIChanged) isEffect()           {}
func (LogDelivery) isEffect()         {}
