package actors

import (
	"bytes"
	"crypto/sha256"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/parleyhq/parley/wire"
)

// Idempotency keys. An API client that retries a send after a timeout or
// a dropped connection, with the same Idempotency-Key, must not message
// the customer twice. Every command for a customer reaches that
// customer's session, in order, so the session is where a repeat is
// recognised: it remembers the result of each keyed command it carried
// out, answers a repeat with that result (Replayed) and does nothing
// else, and refuses the key's reuse for a different request.
const (
	// idempotencyTTL is how long a key is remembered: the usual window of
	// payment APIs, well past any sane client retry.
	idempotencyTTL = 24 * time.Hour
	// idempotencyMax bounds what one session remembers; the oldest go.
	idempotencyMax = 16
)

// keyStatus is what a session knows of a command's idempotency key.
type keyStatus int

const (
	keyNew      keyStatus = iota // not seen (or no key): carry it out
	keyRepeat                    // the same request again: answer with the first result
	keyConflict                  // the key was used for another request
)

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

// idempotentResults are the results a session remembers, oldest first.
type idempotentResults []*wire.IdempotentResult

// expire drops what is older than the TTL at now.
func (r idempotentResults) expire(now time.Time) idempotentResults {
	cut := now.Add(-idempotencyTTL).UnixMilli()
	i := 0
	for i < len(r) && r[i].AtMs < cut {
		i++
	}
	if i == len(r) {
		return nil
	}
	return r[i:]
}

// find looks c's key up. For a repeat it returns the first result,
// marked as replayed and addressed to c's caller.
func (r idempotentResults) find(c *wire.Command, now time.Time) (keyStatus, *wire.CommandResult) {
	if c.IdempotencyKey == "" {
		return keyNew, nil
	}
	cut := now.Add(-idempotencyTTL).UnixMilli()
	for _, it := range r {
		if it.Key != c.IdempotencyKey || it.AtMs < cut {
			continue
		}
		if !bytes.Equal(it.Fingerprint, commandFingerprint(c)) {
			return keyConflict, &wire.CommandResult{RequestId: c.RequestId, ErrorCode: "idempotency_key_reused",
				ErrorMessage: "this Idempotency-Key was used for a different request in the last 24 hours"}
		}
		res := proto.Clone(it.Result).(*wire.CommandResult)
		res.RequestId, res.Replayed = c.RequestId, true
		return keyRepeat, res
	}
	return keyNew, nil
}

// remember records the result of keyed command c at now.
func (r idempotentResults) remember(c *wire.Command, res *wire.CommandResult, now time.Time) idempotentResults {
	if c.IdempotencyKey == "" {
		return r
	}
	kept := proto.Clone(res).(*wire.CommandResult)
	kept.RequestId = ""
	r = append(r.expire(now), &wire.IdempotentResult{Key: c.IdempotencyKey, Fingerprint: commandFingerprint(c), Result: kept, AtMs: now.UnixMilli()})
	if len(r) > idempotencyMax {
		r = r[len(r)-idempotencyMax:]
	}
	return r
}

// marshal encodes what is still remembered at now for a dormant session
// (nil when nothing is).
func (r idempotentResults) marshal(now time.Time) []byte {
	r = r.expire(now)
	if len(r) == 0 {
		return nil
	}
	b, err := proto.Marshal(&wire.IdempotentResults{Items: r})
	if err != nil {
		return nil
	}
	return b
}

// unmarshalIdempotent decodes marshal's output.
func unmarshalIdempotent(b []byte) (idempotentResults, error) {
	if len(b) == 0 {
		return nil, nil
	}
	var m wire.IdempotentResults
	if err := proto.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	return m.Items, nil
}
