package actors

import (
	"crypto/sha256"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/parleyhq/parley/conversation"
	"github.com/parleyhq/parley/wire"
)

// Idempotency keys. An API client that retries a send after a timeout or
// a dropped connection, with the same Idempotency-Key, must not message
// the customer twice. The session's core remembers the result of each
// keyed command the session carried out (conversation.RememberResult,
// for 24 hours, at most 64, a new key past them refused) and recognises a repeat (State.Recall); the
// shell identifies what a command asks (its fingerprint) and keeps the
// result as the encoded wire.CommandResult.

// IdempotencyKeysExhausted is the error code of a keyed command refused
// because its session keeps as many results as it may (KeyFull).
const IdempotencyKeysExhausted = "idempotency_keys_exhausted"

// commandFingerprint identifies what a command asks, apart from who asked
// and how it is tracked: the first 16 bytes of SHA-256 of its operation.
func commandFingerprint(c *wire.Command) []byte {
	op := proto.Clone(c).(*wire.Command)
	op.RequestId, op.IdempotencyKey, op.Operator = "", "", ""
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(op)
	if err != nil {
		return nil
	}
	sum := sha256.Sum256(b)
	return sum[:16]
}

// recall looks c's idempotency key up in the session's state; fingerprint
// is commandFingerprint(c). For a repeat it returns the first result,
// marked as replayed and addressed to c's caller; for a conflict, the
// refusal.
func recall(st *conversation.State, p conversation.Policy, c *wire.Command, fingerprint []byte, now time.Time) (conversation.KeyStatus, *wire.CommandResult) {
	status, prior := st.Recall(p, c.IdempotencyKey, fingerprint, now)
	switch status {
	case conversation.KeyFull:
		return status, &wire.CommandResult{RequestId: c.RequestId, ErrorCode: IdempotencyKeysExhausted,
			ErrorMessage: "this customer has had too many sends with an Idempotency-Key in the last 24 hours; retry later or send without one"}
	case conversation.KeyConflict:
		return status, &wire.CommandResult{RequestId: c.RequestId, ErrorCode: "idempotency_key_reused",
			ErrorMessage: "this Idempotency-Key was used for a different request in the last 24 hours"}
	case conversation.KeyRepeat:
		res := &wire.CommandResult{}
		if err := proto.Unmarshal(prior, res); err != nil {
			// Never carry out a repeat again, even when its result is
			// lost: the customer would get the message twice.
			res = &wire.CommandResult{ErrorCode: "invalid", ErrorMessage: "the result of this Idempotency-Key is unreadable"}
		}
		res.RequestId, res.Replayed = c.RequestId, true
		return status, res
	}
	return conversation.KeyNew, nil
}

// remembered is the event that records res, the result of keyed command c
// (fingerprint is commandFingerprint(c)), for its repeats.
func remembered(c *wire.Command, fingerprint []byte, res *wire.CommandResult) conversation.RememberResult {
	kept := proto.Clone(res).(*wire.CommandResult)
	kept.RequestId = ""
	b, err := proto.Marshal(kept)
	if err != nil {
		panic(err) // only a programming error makes our own message unencodable
	}
	return conversation.RememberResult{Key: c.IdempotencyKey, Fingerprint: fingerprint, Result: b}
}
