// Package brain answers customers. A Brain gets the customer's message and
// what the session knows, and returns the reply; it only ever sees the
// authenticated customer's data.
//
// # What the session shell keeps between messages
//
// Brains hold no per-conversation memory: everything a brain needs to
// remember from one message to the next travels in State. The session
// actor must:
//
//  1. Put the State of the previous Answer into Request.State (the zero
//     State on a conversation's first message).
//  2. Keep Answer.State in the session after every answer, error or not,
//     and after every brain it calls (the rules brain and the language-model
//     brain read and write the same State).
//  3. Reset it to the zero State when the signed-in profile changes or
//     ends (sign-out, session expiry, a new conversation): a pending
//     cancellation and the recent turns belong to the profile that said
//     them. Brains also ignore a Pending of another profile, as a second
//     line of defence.
//
// State is bounded (see MaxHistoryTurns, MaxTurnChars) so a dormant session
// stays small.
//
// # What the shell does with an Answer
//
//   - Text goes to the customer; QueryType labels the inbound message.
//   - Each of ToolCalls becomes a wire.ToolCall event (tool, ok, latency,
//     error).
//   - Usage, when set, becomes wire.Usage events (llm_prompt_tokens,
//     llm_completion_tokens, with the model).
//   - Handoff, when set, becomes a ConversationChange "handoff" event with
//     the summary, and AI is paused for the conversation (the customer has
//     already been told in Text that a person will follow).
package brain

import (
	"context"
	"time"
)

// Request is one customer message to answer.
type Request struct {
	TenantName string
	Text       string
	// Authenticated is true once the customer signed in with a code; only
	// then may account tools run, for ProfileID only.
	Authenticated bool
	ProfileID     string
	FirstName     string
	// Now is the shell's clock. Zero means the brain's own clock (wall
	// time unless the brain was built with a fixed one).
	Now time.Time
	// State is what the previous Answer returned for this conversation.
	State State
	// Variables are what the caller of the automation API's ai/respond
	// knows of the customer or the case (order number, plan, ...): context
	// for the assistant, data, never instructions.
	Variables map[string]string
	// Form is the customer's answer to a WhatsApp Flow (a form), a JSON
	// object, when the message is one; Text is then what they saw
	// ("Sent"). It is the customer's input: data, never instructions.
	Form string
}

// State is the brain's memory of a conversation, kept by the session shell
// between messages (see the package documentation).
type State struct {
	// Language is the customer's language ("en", "es"), detected on the
	// first message that says enough to tell and then kept.
	Language string `json:"lang,omitempty"`
	// Pending is a cancellation the customer was asked to confirm. Only a
	// Pending that came back from an earlier answer can be confirmed: a
	// brain never confirms what it proposed in the same answer.
	Pending *PendingAction `json:"pending,omitempty"`
	// NotUnderstood counts consecutive messages the brain did not
	// understand; the third hands the conversation to a person.
	NotUnderstood int `json:"nu,omitempty"`
	// History is the recent conversation, oldest first, for brains that
	// use context (the language model).
	History []Turn `json:"history,omitempty"`
}

// Bounds of State.History: a session keeps at most this much conversation.
const (
	MaxHistoryTurns = 8
	MaxTurnChars    = 400
)

// Roles of a Turn.
const (
	RoleCustomer  = "customer"
	RoleAssistant = "assistant"
)

// Turn is one message of the recent conversation.
type Turn struct {
	Role string `json:"r"`
	Text string `json:"t"`
}

// PendingAction kinds.
const (
	PendingCancel = "cancel_booking"
)

// PendingAction is an action proposed to the customer that waits for their
// confirmation.
type PendingAction struct {
	Kind      string `json:"kind"`
	ProfileID string `json:"profile"`
	BookingID string `json:"booking"`
	// Summary says what will happen, in words, for the confirmation
	// question and for a model's context ("Standard Clean on Friday 13
	// March at 9:00").
	Summary string `json:"summary"`
	// Expires is when an unanswered proposal lapses; a "yes" after it
	// does nothing.
	Expires time.Time `json:"expires"`
}

// ValidFor reports whether the pending action may still be confirmed by the
// profile at now.
func (p *PendingAction) ValidFor(profileID string, now time.Time) bool {
	return p != nil && profileID != "" && p.ProfileID == profileID && now.Before(p.Expires)
}

// Answer is the brain's reply.
type Answer struct {
	Text string
	// QueryType labels the message for the "most common queries"
	// dashboard: the intent or tool used.
	QueryType string
	// State is the conversation memory to keep and pass back in the next
	// Request.
	State State
	// ToolCalls are the tools run for this answer, in order, for the
	// tool_calls analytics table.
	ToolCalls []ToolCall
	// Usage is the language-model tokens spent on this answer; nil when no
	// model was called.
	Usage *Usage
	// Handoff is set when the conversation goes to a person.
	Handoff *Handoff
	// Fallback says why a language-model brain answered with its fallback
	// (for logs and metrics; never contains credentials). Empty otherwise.
	Fallback string
}

// ToolCall is one tool execution, for analytics.
type ToolCall struct {
	Tool    string
	OK      bool
	Latency time.Duration
	// Error is the typed error when not OK (e.g. "not_signed_in",
	// "not_found", "unavailable").
	Error string
}

// Usage is the tokens a language model spent on one answer, summed over
// its calls.
type Usage struct {
	Model            string
	PromptTokens     int
	CompletionTokens int
	// Calls is how many chat completions the answer took.
	Calls int
}

// Handoff asks for a person to take over the conversation.
type Handoff struct {
	// Reason is "requested" (the customer asked for a person) or
	// "not_understood" (the brain failed three times in a row).
	Reason string
	// Summary tells the agent what the conversation is about.
	Summary string
}

// Handoff reasons.
const (
	HandoffRequested     = "requested"
	HandoffNotUnderstood = "not_understood"
)

// Brain answers customer messages.
type Brain interface {
	Answer(ctx context.Context, r Request) (Answer, error)
}

// Remember appends a customer message and the reply to the history,
// keeping it within MaxHistoryTurns and MaxTurnChars, and returns it. The
// slice is copied: the caller's State may be shared.
func Remember(h []Turn, customer, reply string) []Turn {
	out := make([]Turn, 0, MaxHistoryTurns)
	start := 0
	if n := len(h) + 2 - MaxHistoryTurns; n > 0 {
		start = n
	}
	if start < len(h) {
		out = append(out, h[start:]...)
	}
	out = append(out,
		Turn{Role: RoleCustomer, Text: clip(customer, MaxTurnChars)},
		Turn{Role: RoleAssistant, Text: clip(reply, MaxTurnChars)})
	if len(out) > MaxHistoryTurns {
		out = out[len(out)-MaxHistoryTurns:]
	}
	return out
}

// clip shortens s to at most n runes.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
