// Package conversation is the pure domain core of a Parley session: one
// customer phone number at one tenant. It decides everything about the
// session (sign-in with a one-time code, profile choice, the 24-hour
// WhatsApp window, conversation status, AI on/off, duplicate messages) and
// does nothing itself: no I/O, no clock, no randomness. That is what makes
// the rules testable by table, and what lets the session actor stay a thin
// shell.
//
// The whole core is one function:
//
//	func Step(p Policy, s State, ev Event, now time.Time, r Rand) (State, []Effect)
//
// (and (*State).Apply, the same in place). Given the tenant's Policy, the
// session State, an Event, the current time and fresh randomness, it
// returns the new state and the Effects to carry out.
//
// # How the shell uses it
//
// For every record the session actor receives:
//
//  1. Turn it into an Event: a customer message is Inbound; an operator
//     command is SetStatus or SetAI; an API send is SendRequest; the
//     provider's delivery callback is DeliveryStatus and its report that
//     the customer unsubscribed OptOut; a GDPR erasure is Forget; the
//     owner's erasure of a session idle past the retention is Expire.
//  2. Fill a Rand from crypto/rand: a 6-digit Code (uniform, e.g.
//     fmt.Sprintf("%06d", n) with n from rand.Int(rand.Reader, 1e6)), a
//     16-byte Salt and a new ConversationID. The core takes what it needs
//     (the events that never need any are listed at Rand).
//  3. Call Step (or Apply) with the tenant's Policy and the shell's clock.
//  4. Execute the effects in order: Reply and SendCode go to the customer
//     (never log SendCode's text: it contains the code), AskBrain goes to
//     the brain and its answer to the customer, AuthEvent,
//     ConversationStarted, StatusChanged, AIChanged and LogInbound become
//     analytics events, SendDecision tells the operator/API whether its
//     send may go, LogDelivery becomes the delivery report's analytics
//     event, Dropped is only counted. The brain's memory comes from
//     Memory and goes back with SetMemory after each answer.
//  5. LookupProfiles asks the tenant's backend for the profiles that use
//     the number. Feed the answer back as another event, ProfilesFound
//     (or LookupFailed on error or timeout), through Step again; its
//     effects are executed the same way. LookupProfiles is always the last
//     effect of a step, so the shell may do the lookup right there or
//     asynchronously and enqueue the result to the actor; the core ignores
//     a result it is not waiting for, and asks again if a lookup is lost.
//  6. Keep the new State: it is the whole session, and the shell keeps
//     nothing else. MarshalBinary/UnmarshalBinary carry it to the
//     changelog and back; Compact trims it before it is put to sleep.
//
// A command with an idempotency key is first looked up with Recall
// (repeat: answer with the remembered result; conflict: refuse), and once
// carried out its result is fed back as RememberResult.
//
// The state is small by design (see State): unix-second timestamps, the
// code kept only as a salted SHA-256, provider ids as 8-byte hashes in
// bounded rings, profile candidates only while the customer chooses, the
// brain's memory and the remembered results as the shell's opaque bytes.
//
// # Rules
//
// Sign-in: the first message of a session (or the first after it ended)
// emits LookupProfiles. No profile: the customer is told no account uses
// the number. One profile, or several that the customer chose from by
// number or name: a 6-digit code is sent in the conversation, unless that
// profile has WhatsApp access disabled. The code is valid while
// now < sent+CodeTTL (10 minutes: at 9:59 it works, at 10:00 it has
// expired), the MaxAttempts-th (3rd) wrong entry locks it, and it is
// deleted once verified, locked or expired. New codes ("new code",
// "resend", "nuevo código", ...) are limited per phone number to
// CodesPerHour in any rolling hour and CodesPerDay in any rolling 24
// hours. The right code signs the customer in for SessionTTL (24 hours)
// at most, ending earlier after IdleTimeout (2 hours) without a customer
// message; the next message after that starts sign-in again. A message
// that is not a code (six digits, spaces allowed) is not an attempt.
//
// The brain: once signed in, every message goes to the brain with the
// profile (AskBrain with Authenticated). During sign-in, a message that is
// clearly a help request ("help", "what can you do") goes to the brain
// unauthenticated, for general answers only; everything else continues
// the sign-in flow.
//
// Window: free text may be sent while now < last customer message +
// WindowTTL (24 hours), templates at any time.
//
// Status: a customer message reopens an archived conversation (same id);
// a closed conversation is final, and the next customer message starts a
// new one with a new id (and AI back on).
//
// AI off: customer messages are logged (and dedupe, window and status
// rules still apply) but nothing answers automatically: no brain, no
// sign-in replies. The sign-in flow stands still until AI is on again.
//
// Duplicates: a message whose provider id was seen within DedupeTTL (48
// hours, at most DedupeMax ids) is dropped with nothing else happening;
// so is a delivery report with the same provider id and status as one of
// the last 8.
//
// Opt-out: after OptOut every SendRequest, templates too, is refused
// (opted_out) until the customer writes again (a message that is not a
// duplicate).
//
// Idempotency: a result is remembered for IdempotencyTTL (24 hours); a
// key is a repeat only with the same fingerprint, and a conflict
// otherwise. A session keeps at most IdempotencyMax (64) of them: a new
// key past that is refused (KeyFull), never by forgetting one whose
// retry would then be carried out twice.
//
// The brain's memory is forgotten by any step that changes the chosen
// profile or the conversation, and Forget forgets everything.
//
// Every step of sign-in emits an AuthEvent (profile_lookup, no_profile,
// access_disabled, profile_choice_asked, profile_selected, code_sent,
// code_verified, code_failed, code_expired, code_locked, code_limit,
// session_expired). An AuthEvent precedes the effects of the step it
// names. A locking attempt emits code_failed and then code_locked.
//
// Time is handled in whole seconds (now is truncated) and every deadline
// is exclusive: valid while now < deadline.
package conversation
