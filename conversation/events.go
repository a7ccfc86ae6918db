package conversation

import "time"

// Event is an input to Step. The set is closed: only the types in this
// file implement it.
type Event interface{ isEvent() }

// Inbound is a customer message. ProviderID is the provider's message id
// (Twilio MessageSid, Meta wamid), used to drop redeliveries; an empty id
// is accepted and not remembered.
type Inbound struct {
	ProviderID string
	Text       string
	// Group: written in a WhatsApp group the business is in, not to the
	// business one to one. It is logged (LogInbound with Group) and
	// nothing else: no reply, no sign-in, and the one-to-one window and
	// conversation are left as they are.
	Group bool
	// Number is the business's number the customer wrote to, when the
	// tenant has several and it is not the first ("" for the first):
	// replies leave from it, on whichever node holds the session next.
	Number string
}

// Profile is one of the tenant's customer profiles that uses the phone
// number, as the backend returns it.
type Profile struct {
	ID              string
	Name            string
	Email           string
	WhatsAppEnabled bool
}

// ProfilesFound answers a LookupProfiles effect.
type ProfilesFound struct {
	Profiles []Profile
}

// LookupFailed answers a LookupProfiles effect when the backend could not
// be asked (error or timeout); the customer is told to try again.
type LookupFailed struct{}

// SetStatus is an operator archiving (StatusArchived), closing
// (StatusClosed) or reopening (StatusActive) the current conversation.
type SetStatus struct {
	Status Status
}

// SetAI switches automatic replies on or off (off: a human answers).
type SetAI struct {
	Enabled bool
}

// SendRequest is an operator or API send to the customer. The core only
// decides whether it may go (SendDecision); the shell sends it.
type SendRequest struct {
	Text string
	// Template marks a pre-approved WhatsApp template, which may be sent
	// outside the 24-hour window.
	Template bool
}

// OptOut is the provider reporting that the customer unsubscribed
// (replied STOP, blocked the business). Operator and API sends are
// refused (SendOptedOut) until the customer writes again: an Inbound
// that is not a duplicate clears it.
type OptOut struct{}

// DeliveryStatus is the provider's report on a message the session sent
// (queued, sent, delivered, read, failed, ...). Providers redeliver their
// callbacks: a report with the same ProviderID and Status as one of the
// last few is a duplicate (Dropped), anything else is LogDelivery and
// becomes the session's last delivery status.
type DeliveryStatus struct {
	ProviderID string
	Status     string
}

// RememberResult records the result of a command the shell carried out
// with an idempotency key, so that a repeat of it (a client retry) gets
// the same answer (see State.Recall) for Policy.IdempotencyTTL. The core
// does not interpret Fingerprint (what the command asked, as the shell
// identifies it) or Result (the answer, as the shell encodes it); it
// keeps copies. An empty Key is invalid.
type RememberResult struct {
	Key         string
	Fingerprint []byte
	Result      []byte
}

// SetMemory replaces the brain's memory of the conversation (language,
// pending confirmation, recent turns), which the core keeps as opaque
// bytes (empty means none) for the shell to hand to the next request. The
// core forgets it whenever a step changes the chosen profile or the
// conversation, so the brain never carries history or a pending action
// across to another customer or case.
type SetMemory struct {
	Memory []byte
}

// Forget is a GDPR erasure: the session forgets everything, as if the
// customer had never written.
type Forget struct{}

// Expire asks a session nobody wrote to since IdleBefore to forget
// everything (its owner erases sessions idle past a retention), and one
// that holds nothing worth keeping (Disposable) to do so once idle since
// DisposableIdleBefore, a much shorter bound: anyone can write from any
// number, and sessions that never signed in must not pile up. A session
// the customer wrote to since, or never wrote to, is kept (Dropped
// unchanged).
type Expire struct {
	IdleBefore           time.Time
	DisposableIdleBefore time.Time
}

func (Expire) isEvent()         {}
func (Inbound) isEvent()        {}
func (ProfilesFound) isEvent()  {}
func (LookupFailed) isEvent()   {}
func (SetStatus) isEvent()      {}
func (SetAI) isEvent()          {}
func (SendRequest) isEvent()    {}
func (OptOut) isEvent()         {}
func (DeliveryStatus) isEvent() {}
func (RememberResult) isEvent() {}
func (SetMemory) isEvent()      {}
func (Forget) isEvent()         {}

// Rand carries the randomness an event may need, because the core never
// draws any itself. The shell fills it from crypto/rand for every event
// that may need it; the core uses Code and Salt only when it sends a code
// and ConversationID only when it starts a conversation (so OptOut,
// DeliveryStatus, RememberResult, SetMemory, Forget and Expire never use it). Step panics if it needs a field that
// is malformed, since that is a bug in the shell, not a customer error.
type Rand struct {
	// Code is a fresh uniformly random 6-digit code, "000000".."999999".
	Code string
	// Salt is fresh random bytes hashed with the code.
	Salt [16]byte
	// ConversationID is a fresh unique id for a new conversation.
	ConversationID string
}
