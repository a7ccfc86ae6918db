package conversation

import (
	"crypto/sha256"
	"crypto/subtle"
	"time"
)

const (
	codeLen   = 6
	hourSecs  = int64(time.Hour / time.Second)
	daySecs   = 24 * hourSecs
	maxCodeIn = 64 // longest message still examined as a code (cheap bound)
)

// hashCode is SHA-256(salt || code). The salt is per code so equal codes
// never hash alike, and a state dump cannot be checked against a
// precomputed table of all million codes.
func hashCode(salt [16]byte, code string) [32]byte {
	h := sha256.New()
	h.Write(salt[:])
	h.Write([]byte(code))
	var out [32]byte
	h.Sum(out[:0])
	return out
}

// checkCode compares in constant time so response timing says nothing
// about how close a guess was.
func checkCode(salt [16]byte, want [32]byte, code string) bool {
	got := hashCode(salt, code)
	return subtle.ConstantTimeCompare(got[:], want[:]) == 1
}

// parseCode reads a message as a code: exactly six digits once spaces,
// dashes and dots are removed ("123 456", "123-456"). Arabic-Indic,
// Persian and full-width digits count too: phone keyboards in those
// locales type them.
func parseCode(text string) (string, bool) {
	if len(text) > maxCodeIn {
		return "", false
	}
	var b [codeLen]byte
	n := 0
	for _, r := range text {
		switch {
		case r == ' ' || r == '\t' || r == '\n' || r == '\r' || r == '\u00a0' || r == '-' || r == '.':
			continue
		}
		d, ok := digitValue(r)
		if !ok || n == codeLen {
			return "", false
		}
		b[n] = '0' + d
		n++
	}
	if n != codeLen {
		return "", false
	}
	return string(b[:]), true
}

func digitValue(r rune) (byte, bool) {
	for _, zero := range [...]rune{'0', '\u0660', '\u06f0', '\uff10'} {
		if r >= zero && r <= zero+9 {
			return byte(r - zero), true
		}
	}
	return 0, false
}

func validCode(code string) bool {
	if len(code) != codeLen {
		return false
	}
	for i := 0; i < len(code); i++ {
		if code[i] < '0' || code[i] > '9' {
			return false
		}
	}
	return true
}

func (r Rand) mustCode() string {
	if !validCode(r.Code) {
		panic("conversation: Rand.Code must be 6 ASCII digits")
	}
	return r.Code
}

func (r Rand) mustConversationID() string {
	if r.ConversationID == "" {
		panic("conversation: Rand.ConversationID must not be empty")
	}
	return r.ConversationID
}

// pruneCodesSent forgets send times older than the longest limit window.
func (s *State) pruneCodesSent(t int64) {
	i := 0
	for i < len(s.codesSent) && t >= s.codesSent[i]+daySecs {
		i++
	}
	if i > 0 {
		s.codesSent = append(s.codesSent[:0], s.codesSent[i:]...)
	}
	if len(s.codesSent) == 0 {
		s.codesSent = nil
	}
}

// recordCodeSent keeps codesSent ascending even if the clock stepped back.
func (s *State) recordCodeSent(t int64) {
	i := len(s.codesSent)
	s.codesSent = append(s.codesSent, t)
	for i > 0 && s.codesSent[i-1] > t {
		s.codesSent[i] = s.codesSent[i-1]
		i--
	}
	s.codesSent[i] = t
}

// codeRetryAt reports whether a code sent at t would break a limit and, if
// so, the first second at which it would not. A send at T counts against
// the hour while t < T+1h, the same "now < deadline" rule as everywhere.
// codesSent must be pruned to the last day.
func (s *State) codeRetryAt(t int64, p Policy) (int64, bool) {
	sent := s.codesSent
	var retry int64
	limited := false
	// Sends in the last hour are a suffix of the ascending list.
	h := len(sent)
	for h > 0 && t < sent[h-1]+hourSecs {
		h--
	}
	inHour := sent[h:]
	if len(inHour) >= p.CodesPerHour {
		// Allowed again when all but CodesPerHour-1 of them have left the
		// hour: when the (len-limit)-th oldest leaves.
		limited = true
		retry = inHour[len(inHour)-p.CodesPerHour] + hourSecs
	}
	if len(sent) >= p.CodesPerDay {
		limited = true
		retry = max(retry, sent[len(sent)-p.CodesPerDay]+daySecs)
	}
	return retry, limited
}

func durationSecs(n int64) time.Duration { return time.Duration(n) * time.Second }
