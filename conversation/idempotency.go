package conversation

import "time"

// Idempotency keys. An API client that retries a send after a timeout or
// a dropped connection, with the same Idempotency-Key, must not message
// the customer twice. Every command for a customer reaches that
// customer's session, in order, so the session is where a repeat is
// recognised: the shell asks Recall before carrying out a keyed command,
// answers a repeat with the remembered result and does nothing else,
// refuses the key's reuse for a different request, and records the
// result of a new one with RememberResult.

// KeyStatus is what a session knows of a command's idempotency key.
type KeyStatus uint8

const (
	KeyNew      KeyStatus = iota // not seen (or no key, or forgotten): carry the command out
	KeyRepeat                    // the same request again: answer with the remembered result
	KeyConflict                  // the key was used for another request
	// KeyFull: a new key, but the session already keeps IdempotencyMax
	// results of the last IdempotencyTTL. Forgetting one would break
	// the promise that a retry within the TTL sends nothing, so the
	// command is refused instead (the API answers 429).
	KeyFull
)

var keyStatusNames = [...]string{"new", "repeat", "conflict", "full"}

func (k KeyStatus) String() string {
	if int(k) < len(keyStatusNames) {
		return keyStatusNames[k]
	}
	return "invalid"
}

// Recall looks an idempotency key up at now. For a repeat (the key was
// remembered with the same fingerprint less than IdempotencyTTL ago) it
// returns the remembered result, which the caller must not modify. An
// empty key is always new.
//
// A new key when the session already keeps p's IdempotencyMax unexpired
// results is KeyFull.
func (s *State) Recall(p Policy, key string, fingerprint []byte, now time.Time) (KeyStatus, []byte) {
	if key == "" {
		return KeyNew, nil
	}
	t := now.Unix()
	live := 0
	for i := range s.keyed {
		k := &s.keyed[i]
		if t >= k.until {
			continue
		}
		live++
		if k.key != key {
			continue
		}
		if k.fingerprint != string(fingerprint) {
			return KeyConflict, nil
		}
		return KeyRepeat, k.result
	}
	if live >= p.withDefaults().IdempotencyMax {
		return KeyFull, nil
	}
	return KeyNew, nil
}

// rememberResult keeps a keyed command's result. The shell asks Recall
// first, which refuses a new key past IdempotencyMax; the oldest is
// forgotten here only for a shell that did not.
func (c *step) rememberResult(e RememberResult) {
	s := c.s
	if e.Key == "" {
		c.emit(Dropped{Reason: DropInvalid})
		return
	}
	s.pruneKeyed(c.t)
	// A key is remembered once: the latest result replaces an older one.
	s.keyed = deleteFunc(s.keyed, func(k keyedResult) bool { return k.key == e.Key })
	if len(s.keyed) >= c.p.IdempotencyMax {
		s.keyed = append(s.keyed[:0], s.keyed[len(s.keyed)-c.p.IdempotencyMax+1:]...)
	}
	s.keyed = append(s.keyed, keyedResult{
		key:         e.Key,
		fingerprint: string(e.Fingerprint),
		result:      cloneSlice(e.Result),
		until:       c.t + secs(c.p.IdempotencyTTL),
	})
}

// pruneKeyed forgets the results remembered until t or earlier.
func (s *State) pruneKeyed(t int64) {
	s.keyed = deleteFunc(s.keyed, func(k keyedResult) bool { return t >= k.until })
}

// deleteFunc is slices.DeleteFunc returning nil for an empty result, as
// the other lists of the state are nil when empty (a decoded state is).
// It compacts in place, which is safe because Step works on a clone.
func deleteFunc[T any](s []T, del func(T) bool) []T {
	keep := s[:0]
	for _, v := range s {
		if !del(v) {
			keep = append(keep, v)
		}
	}
	clear(s[len(keep):])
	if len(keep) == 0 {
		return nil
	}
	return keep
}
