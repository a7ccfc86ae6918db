// Package brain answers customers. A Brain gets the customer's message and
// what the session knows, and returns the reply; it only ever sees the
// authenticated customer's data.
package brain

import "context"

// Request is one customer message to answer.
type Request struct {
	TenantName string
	Text       string
	// Authenticated is true once the customer signed in with a code; only
	// then may account tools run, for ProfileID only.
	Authenticated bool
	ProfileID     string
	FirstName     string
}

// Answer is the brain's reply.
type Answer struct {
	Text string
	// QueryType labels the message for the "most common queries"
	// dashboard: the intent or tool used.
	QueryType string
}

// Brain answers customer messages.
type Brain interface {
	Answer(ctx context.Context, r Request) (Answer, error)
}
