// Package tools is what a brain may do on the tenant's business system:
// list services, check availability, list and cancel the customer's
// bookings, read the account and subscription, explain what the assistant
// can do, and hand over to a person. Both brains run the same tools, so a
// model and the offline rules answer from the same facts under the same
// rules:
//
//   - The customer's profile id comes from the session (Caller), never
//     from a tool's arguments; arguments have no profile field, and one
//     sent anyway is ignored.
//   - Account tools refuse when the customer has not signed in.
//   - A booking id that is not among the customer's bookings is refused,
//     without saying whether it exists for someone else.
//   - Cancelling is two-step: the first call only states what would be
//     cancelled and sets a pending confirmation; only a confirmation on a
//     later message, matching that pending booking, cancels.
//   - Creating bookings is not offered (see NotOffered).
//
// Every call returns a Result: structured data for the model (and for the
// rules brain's phrasing) and a brain.ToolCall record for analytics.
package tools

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/parleyhq/parley/backend"
	"github.com/parleyhq/parley/brain"
)

// Tool names, as the model sees them and as query types.
const (
	ListServices      = "list_services"
	CheckAvailability = "check_availability"
	ListBookings      = "list_bookings"
	CancelBooking     = "cancel_booking"
	AccountInfo       = "account_info"
	SubscriptionInfo  = "subscription_info"
	Help              = "help"
	HandoffToHuman    = "handoff_to_human"
)

// Error codes of a failed tool call: typed, so a brain can explain each one
// and analytics can count them.
const (
	ErrNotSignedIn = "not_signed_in" // an account tool before sign-in
	ErrNotFound    = "not_found"     // no such booking among the customer's, or no subscription
	ErrInvalid     = "invalid"       // the backend refused the request
	ErrBadArgs     = "bad_arguments" // arguments that do not parse or make sense
	ErrUnknownTool = "unknown_tool"
	ErrUnknownSvc  = "unknown_service"
	ErrPastDate    = "past_date"
	ErrUnavailable = "unavailable"  // backend unreachable, failing or timed out
	ErrBackendAuth = "unauthorized" // the backend refused Parley's credentials
)

// DefaultPendingTTL is how long a proposed cancellation waits for the
// customer's "yes".
const DefaultPendingTTL = 15 * time.Minute

// Kit runs the tools against one tenant's backend. It is safe for
// concurrent use.
type Kit struct {
	Backend backend.Backend
	// Location is the business's time zone: "today", dates and times are
	// read and shown in it. Nil means UTC.
	Location *time.Location
	// DashboardURL is where customers manage bookings themselves; it is
	// offered when they ask to book. Empty: "our website".
	DashboardURL string
	// PendingTTL overrides DefaultPendingTTL.
	PendingTTL time.Duration
}

// Caller is who is asking, from the session: never from the model.
type Caller struct {
	Authenticated bool
	ProfileID     string
	FirstName     string
	Now           time.Time
	// Pending is the proposal carried over from an earlier answer; it is
	// the only thing a cancellation confirmation may apply.
	Pending *brain.PendingAction
}

// signedIn reports whether account tools may run for the caller.
func (c Caller) signedIn() bool { return c.Authenticated && c.ProfileID != "" }

// Result is the outcome of one tool call.
type Result struct {
	Tool string
	OK   bool
	// Code is the typed error when not OK (one of the Err* constants).
	Code string
	// Data is the tool's structured answer: one of the *Data types of this
	// package, or ErrorData when not OK. It is what the model reads (as
	// JSON) and what the rules brain phrases.
	Data any
	// SetPending is a new proposal to keep in the conversation State.
	SetPending *brain.PendingAction
	// ClearPending drops the conversation's pending proposal.
	ClearPending bool
	// Handoff is set by handoff_to_human.
	Handoff *brain.Handoff
	// Call is the analytics record of this call.
	Call brain.ToolCall
}

// JSON is the result as the model reads it.
func (r Result) JSON() string {
	b, err := json.Marshal(r.Data)
	if err != nil {
		return `{"error":"internal","message":"the result could not be encoded"}`
	}
	return string(b)
}

// ErrorData is the Data of a failed call.
type ErrorData struct {
	Error   string `json:"error"`
	Message string `json:"message"`
}

// Call runs a tool by name with JSON arguments, as a model asks for it.
// Unknown fields in args are ignored (a "profile_id" among them has no
// effect).
func (k *Kit) Call(ctx context.Context, c Caller, name string, args string) Result {
	decode := func(v any) bool {
		if args == "" || args == "null" {
			return true
		}
		return json.Unmarshal([]byte(args), v) == nil
	}
	bad := func() Result {
		start := time.Now()
		return k.fail(name, start, ErrBadArgs, "The arguments were not valid JSON for this tool.")
	}
	switch name {
	case ListServices:
		return k.Services(ctx, c)
	case CheckAvailability:
		var a AvailabilityArgs
		if !decode(&a) {
			return bad()
		}
		return k.Availability(ctx, c, a)
	case ListBookings:
		var a BookingsArgs
		if !decode(&a) {
			return bad()
		}
		return k.Bookings(ctx, c, a)
	case CancelBooking:
		var a CancelArgs
		if !decode(&a) {
			return bad()
		}
		return k.Cancel(ctx, c, a)
	case AccountInfo:
		return k.Account(ctx, c)
	case SubscriptionInfo:
		return k.Subscription(ctx, c)
	case Help:
		return k.Help(ctx, c)
	case HandoffToHuman:
		var a HandoffArgs
		if !decode(&a) {
			return bad()
		}
		return k.Handoff(ctx, c, a)
	}
	return k.fail(name, time.Now(), ErrUnknownTool, "There is no tool with that name.")
}

// ok finishes a successful call.
func (k *Kit) ok(tool string, start time.Time, data any) Result {
	return Result{Tool: tool, OK: true, Data: data,
		Call: brain.ToolCall{Tool: tool, OK: true, Latency: time.Since(start)}}
}

// fail finishes a failed call.
func (k *Kit) fail(tool string, start time.Time, code, msg string) Result {
	return Result{Tool: tool, Code: code, Data: ErrorData{Error: code, Message: msg},
		Call: brain.ToolCall{Tool: tool, Latency: time.Since(start), Error: code}}
}

// backendFail turns a backend error into a failed call the brain can
// explain.
func (k *Kit) backendFail(tool string, start time.Time, err error) Result {
	switch {
	case errors.Is(err, backend.ErrNotFound):
		return k.fail(tool, start, ErrNotFound, "No such record for this customer.")
	case errors.Is(err, backend.ErrInvalid):
		return k.fail(tool, start, ErrInvalid, "The business system refused the request as invalid.")
	case errors.Is(err, backend.ErrUnauthorized):
		return k.fail(tool, start, ErrBackendAuth, "The business system is not accepting requests from the assistant right now.")
	default:
		// Timeouts, cancellations and anything untyped: the customer can
		// try again later.
		return k.fail(tool, start, ErrUnavailable, "The business system could not be reached. Suggest trying again in a few minutes.")
	}
}

func (k *Kit) notSignedIn(tool string, start time.Time) Result {
	return k.fail(tool, start, ErrNotSignedIn, "The customer has not signed in; account details need the sign-in code sent on WhatsApp.")
}

func (k *Kit) loc() *time.Location {
	if k.Location == nil {
		return time.UTC
	}
	return k.Location
}

func (k *Kit) pendingTTL() time.Duration {
	if k.PendingTTL > 0 {
		return k.PendingTTL
	}
	return DefaultPendingTTL
}

// now is the caller's clock in the business's time zone.
func (k *Kit) now(c Caller) time.Time {
	if c.Now.IsZero() {
		return time.Now().In(k.loc())
	}
	return c.Now.In(k.loc())
}
