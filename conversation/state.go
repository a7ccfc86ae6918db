package conversation

import (
	"time"
	"unsafe"
)

// Phase is where a session is in the sign-in flow.
type Phase uint8

const (
	// PhaseNew: nothing is known; the next customer message starts a
	// profile lookup. Also the phase after a failed sign-in (no profile,
	// access disabled, lookup failed) and after a session expired.
	PhaseNew Phase = iota
	// PhaseAwaitingLookup: LookupProfiles was emitted; waiting for
	// ProfilesFound or LookupFailed.
	PhaseAwaitingLookup
	// PhaseChoosingProfile: several profiles use this number; the
	// customer was asked which one they are.
	PhaseChoosingProfile
	// PhaseAwaitingCode: a profile is chosen; a code was sent (or refused
	// by the limits, or expired, or locked) and the customer must enter
	// it or ask for a new one.
	PhaseAwaitingCode
	// PhaseAuthenticated: the customer entered the right code. Whether the
	// session is still valid depends on the clock: see Authenticated.
	PhaseAuthenticated
)

var phaseNames = [...]string{"new", "awaiting_lookup", "choosing_profile", "awaiting_code", "authenticated"}

func (p Phase) String() string {
	if int(p) < len(phaseNames) {
		return phaseNames[p]
	}
	return "invalid"
}

// Status is the operator-facing status of the current conversation.
type Status uint8

const (
	// StatusActive is the zero value so that a fresh conversation needs no
	// initialisation.
	StatusActive Status = iota
	// StatusArchived: put aside by an operator; the customer's next
	// message reopens the same conversation.
	StatusArchived
	// StatusClosed: finished for good; the customer's next message starts
	// a new conversation with a new id.
	StatusClosed
)

var statusNames = [...]string{"active", "archived", "closed"}

func (s Status) String() string {
	if int(s) < len(statusNames) {
		return statusNames[s]
	}
	return "invalid"
}

func (s Status) valid() bool { return s <= StatusClosed }

// maxCandidates bounds the profiles offered for choice: a WhatsApp message
// listing more is unreadable, and the list lives in every choosing
// session's memory. Profiles beyond it are not offered.
const maxCandidates = 10

// candidate is a profile offered for choice. Only the masked email is kept:
// it is all the list shows, and the session state (which is replicated to
// the changelog) then holds no full address.
type candidate struct {
	id          string
	name        string
	maskedEmail string
	enabled     bool
}

// seenID is a remembered provider message id: 8 bytes of its FNV-1a hash
// and the unix second it arrived. Three uint32 keep it at 12 bytes (a
// uint64 beside a uint32 would pad to 16), which matters because the ring
// is the largest part of a chatty session. uint32 seconds last until 2106.
type seenID struct {
	lo, hi uint32
	at     uint32
}

// keyedResult is the remembered result of a command carried out with an
// idempotency key. Fingerprint and result are the shell's, opaque here;
// result is never modified once stored (clones share it).
type keyedResult struct {
	key         string
	fingerprint string
	result      []byte
	until       int64 // remembered while now < until
}

// deliveryRing is how many delivery reports a session remembers to drop
// their redeliveries: a message's few statuses and the previous ones'.
const deliveryRing = 8

// State is everything a session remembers between events, the whole of
// it: the actor shell keeps nothing else, so the encoding (MarshalBinary)
// is all a dormant or restored session needs. The zero value is a valid
// new session. All timestamps are unix seconds; the core works
// at one-second resolution (now is truncated), and every "valid until"
// check is now < deadline, so a deadline's own second is already expired.
//
// Fields are unexported so that only Step can change them and the
// invariants hold (for example, attempts never exceed MaxAttempts);
// MarshalBinary/UnmarshalBinary carry the state to the changelog and
// accessor methods expose what the shell needs.
type State struct {
	conversationID string
	profileID      string // chosen profile; set from selection until the session ends
	firstName      string

	candidates []candidate // only while PhaseChoosingProfile
	codesSent  []int64     // send times within the last 24h, ascending, for the limits
	seen       []seenID    // recent provider ids, oldest first, at most DedupeMax
	deliveries []uint64    // HashID of the latest delivery reports (id NUL status), oldest first, at most deliveryRing
	keyed      []keyedResult
	// memory is the brain's memory of the conversation, opaque to the
	// core (the shell's JSON). Never modified in place: SetMemory
	// replaces it, so clones share it safely.
	memory       []byte
	lastDelivery string // the latest delivery status reported

	// The current code, only as a salted hash: a leaked state (memory
	// dump, changelog) does not reveal it. All zero when there is none.
	codeHash   [32]byte
	codeSalt   [16]byte
	codeSentAt int64

	authAt      int64 // when the code was verified
	authUntil   int64 // authAt + SessionTTL, the absolute end
	lastInbound int64 // last accepted customer message; it is the "activity"
	// Deadlines derived from lastInbound with the policy of that moment,
	// stored so that Authenticated and WindowOpen need no Policy.
	idleUntil   int64
	windowUntil int64
	phaseAt     int64 // when the current phase began (lookup retry)

	phase    Phase
	status   Status
	attempts uint8  // wrong+right entries of the current code
	aiOff    bool   // zero value means AI on
	number   string // the business number last written to; "" the first
	optedOut bool   // the customer unsubscribed; cleared when they write
}

// Disposable reports whether the session holds nothing worth keeping: the
// customer never signed in, no code is waiting to be entered, no person
// took the conversation over or changed its status, they did not
// unsubscribe, and no API send's result is remembered. Such a session may
// be expired early (Expire's DisposableIdleBefore): what it loses is a
// dedupe ring and a window a new message reopens. A customer who signed in
// once keeps their conversation until the long retention.
func (s *State) Disposable() bool {
	return s.authAt == 0 && s.codeHash == [32]byte{} && !s.aiOff && s.status == StatusActive &&
		!s.optedOut && len(s.keyed) == 0
}

// Authenticated reports whether the customer is signed in at now: the
// code was verified, less than SessionTTL ago, and the customer wrote
// less than IdleTimeout ago.
func (s *State) Authenticated(now time.Time) bool {
	return s.authenticatedAt(now.Unix())
}

func (s *State) authenticatedAt(t int64) bool {
	return s.phase == PhaseAuthenticated && t < s.authUntil && t < s.idleUntil
}

// WindowOpen reports whether free text may be sent at now: the customer
// wrote less than WindowTTL ago (WhatsApp's 24-hour window).
func (s *State) WindowOpen(now time.Time) bool {
	return now.Unix() < s.windowUntil
}

// WindowUntil is when the messaging window closes (zero time if the
// customer never wrote).
func (s *State) WindowUntil() time.Time { return unixOrZero(s.windowUntil) }

// Phase is the sign-in phase.
func (s *State) Phase() Phase { return s.phase }

// Status is the current conversation's status.
func (s *State) Status() Status { return s.status }

// ConversationID is the current conversation, "" before the first message.
func (s *State) ConversationID() string { return s.conversationID }

// Number is the business's number the customer last wrote to ("" for the
// tenant's first): where replies leave from.
func (s *State) Number() string { return s.number }

// ProfileID is the chosen profile ("" before a profile is selected). It is
// not proof of sign-in: check Authenticated.
func (s *State) ProfileID() string { return s.profileID }

// FirstName is the chosen profile's first name.
func (s *State) FirstName() string { return s.firstName }

// AIEnabled reports whether automatic replies are on.
func (s *State) AIEnabled() bool { return !s.aiOff }

// LastInbound is when the customer last wrote (zero time if never).
func (s *State) LastInbound() time.Time { return unixOrZero(s.lastInbound) }

// AuthenticatedAt is when the code was verified (zero time if never).
func (s *State) AuthenticatedAt() time.Time { return unixOrZero(s.authAt) }

// Attempts is the number of entries of the current code.
func (s *State) Attempts() int { return int(s.attempts) }

// OptedOut reports whether the customer unsubscribed (OptOut) and has not
// written since: operator and API sends are refused.
func (s *State) OptedOut() bool { return s.optedOut }

// LastDelivery is the latest delivery status the provider reported for a
// message sent to the customer ("" if none).
func (s *State) LastDelivery() string { return s.lastDelivery }

// Memory is the brain's memory of the conversation as the shell stored it
// with SetMemory; nil when there is none (also after a step changed the
// profile or the conversation). The caller must not modify it.
func (s *State) Memory() []byte { return s.memory }

func (s *State) hasCode() bool { return s.codeHash != [32]byte{} }

func (s *State) clearCode() {
	s.codeHash = [32]byte{}
	s.codeSalt = [16]byte{}
	s.codeSentAt = 0
	s.attempts = 0
}

// clearProfile forgets the chosen profile and any choice in progress.
func (s *State) clearProfile() {
	s.profileID = ""
	s.firstName = ""
	s.candidates = nil
}

// Clone returns a deep copy: Step works on a clone so that the caller's
// state is never changed through shared slices.
func (s State) Clone() State {
	c := s
	c.candidates = cloneSlice(s.candidates)
	c.codesSent = cloneSlice(s.codesSent)
	c.seen = cloneSlice(s.seen)
	c.deliveries = cloneSlice(s.deliveries)
	c.keyed = cloneSlice(s.keyed) // the results themselves are never modified
	return c
}

func cloneSlice[T any](s []T) []T {
	if len(s) == 0 {
		return nil
	}
	return append([]T(nil), s...)
}

// Compact drops what has expired from the bounded lists (remembered
// message ids, code send times, idempotency results) and shrinks their
// storage. The shell calls it before keeping an idle session, so a
// dormant session holds only what still matters. It never changes
// behaviour: Step prunes the same way.
func (s *State) Compact(p Policy, now time.Time) {
	p = p.withDefaults()
	t := now.Unix()
	s.pruneSeen(t, secs(p.DedupeTTL))
	s.pruneCodesSent(t)
	s.pruneKeyed(t)
	s.seen = shrink(s.seen)
	s.codesSent = shrink(s.codesSent)
	s.deliveries = shrink(s.deliveries)
	s.keyed = shrink(s.keyed)
}

// shrink reallocates a slice whose capacity is far above its length: Go
// never gives back a slice's spare capacity by itself.
func shrink[T any](s []T) []T {
	if len(s) == 0 {
		return nil
	}
	if cap(s) > 2*len(s)+4 {
		return append(make([]T, 0, len(s)), s...)
	}
	return s
}

// ApproxSize is an estimate in bytes of the memory the state holds: the
// struct plus the arrays and strings it points to (not allocator
// rounding). The shell can use it for a gauge.
func (s *State) ApproxSize() int {
	n := int(unsafe.Sizeof(*s))
	n += len(s.conversationID) + len(s.profileID) + len(s.firstName) + len(s.number)
	n += cap(s.candidates) * int(unsafe.Sizeof(candidate{}))
	for _, c := range s.candidates {
		n += len(c.id) + len(c.name) + len(c.maskedEmail)
	}
	n += cap(s.codesSent) * 8
	n += cap(s.seen) * int(unsafe.Sizeof(seenID{}))
	n += cap(s.deliveries) * 8
	n += cap(s.keyed) * int(unsafe.Sizeof(keyedResult{}))
	for _, k := range s.keyed {
		n += len(k.key) + len(k.fingerprint) + cap(k.result)
	}
	n += cap(s.memory) + len(s.lastDelivery)
	return n
}

func unixOrZero(t int64) time.Time {
	if t == 0 {
		return time.Time{}
	}
	return time.Unix(t, 0)
}
