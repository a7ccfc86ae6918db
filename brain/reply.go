package brain

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxReplyChars is WhatsApp's limit on a text message body.
const MaxReplyChars = 4096

// Finish makes a reply safe to send: masked (see Mask) and within
// MaxReplyChars. Every brain passes its final text through it, so a model
// that echoes an email address or an internal id does not leak it.
func Finish(s string) string {
	return Limit(Mask(strings.TrimSpace(s)), MaxReplyChars)
}

// Limit shortens s to at most n characters (runes), cutting at a line or
// word boundary where one is near and marking the cut with "…".
func Limit(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)[:n-1]
	return strings.TrimRight(string(r[:boundary(r)]), " \n") + "…"
}

// Split cuts s into parts of at most n units, at a line or word boundary
// where one is near the end of a part, so that a reply longer than a
// channel takes in one message (Twilio: 1,600) arrives whole, in order.
// width is how many units a rune counts for (nil: one, so n counts
// runes). A reply that fits is one part; blank text is none.
func Split(s string, n int, width func(rune) int) []string {
	if width == nil {
		width = func(rune) int { return 1 }
	}
	s = strings.TrimSpace(s)
	if s == "" {
		return nil
	}
	// Nearly every reply fits: measure it without copying it to runes.
	w := 0
	for _, c := range s {
		if w += width(c); w > n {
			break
		}
	}
	if w <= n {
		return []string{s}
	}
	var parts []string
	r := []rune(s)
	for {
		// k: the longest prefix of r within n units.
		k, w := 0, 0
		for k < len(r) && w+width(r[k]) <= n {
			w += width(r[k])
			k++
		}
		if k == len(r) {
			break
		}
		cut := boundary(r[:max(k, 1)])
		if part := strings.TrimRight(string(r[:cut]), " \n"); part != "" {
			parts = append(parts, part)
		}
		r = r[cut:]
		for len(r) > 0 && (r[0] == ' ' || r[0] == '\n') {
			r = r[1:]
		}
	}
	if len(r) > 0 {
		parts = append(parts, string(r))
	}
	return parts
}

// boundary is where to cut r so that the cut falls on a line break, or
// failing that a space, in r's last fifth; len(r) when there is none.
func boundary(r []rune) int {
	floor := len(r) * 4 / 5
	for _, sep := range []rune{'\n', ' '} {
		for i := len(r) - 1; i > floor; i-- {
			if r[i] == sep {
				return i
			}
		}
	}
	return len(r)
}

// Mask hides what a reply need not show: email addresses keep their first
// letter and domain (s***@example.com), identifiers of 16 or more
// characters that mix letters and digits keep their last four (…c9d2), and
// runs of 9 or more digits (phone, card and account numbers) keep their
// first and last three.
func Mask(s string) string {
	if !needsMask(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	i := 0
	for i < len(s) {
		j := i
		for j < len(s) && isTokenByte(s[j]) {
			j++
		}
		if j == i {
			_, size := utf8.DecodeRuneInString(s[i:])
			b.WriteString(s[i : i+size])
			i += size
			continue
		}
		b.WriteString(maskToken(s[i:j]))
		i = j
	}
	return b.String()
}

// needsMask is a cheap pre-check: most replies have nothing to mask.
func needsMask(s string) bool {
	run, digits := 0, 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '@' {
			return true
		}
		if isTokenByte(c) {
			run++
			if run >= 16 {
				return true
			}
		} else {
			run = 0
		}
		if c >= '0' && c <= '9' {
			digits++
			if digits >= 9 {
				return true
			}
		} else if c != ' ' && c != '-' {
			digits = 0
		}
	}
	return false
}

// isTokenByte is a byte that may be part of an email or identifier.
func isTokenByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		c == '_' || c == '-' || c == '.' || c == '@' || c == '+'
}

func maskToken(t string) string {
	// Trailing dots end sentences, not tokens.
	trail := ""
	for strings.HasSuffix(t, ".") {
		t, trail = t[:len(t)-1], trail+"."
	}
	if at := strings.IndexByte(t, '@'); at > 0 && at < len(t)-1 && strings.Contains(t[at+1:], ".") {
		local, domain := t[:at], t[at+1:]
		first, _ := utf8.DecodeRuneInString(local)
		return string(first) + "***@" + domain + trail
	}
	if d := countDigits(t); d >= 9 && d*10 >= len(t)*8 {
		// A number (phone, card, account): keep the ends so the customer
		// can still recognise it.
		return t[:3] + strings.Repeat("•", len(t)-6) + t[len(t)-3:] + trail
	}
	if len(t) >= 16 && hasLetter(t) && countDigits(t) > 0 {
		return "…" + t[len(t)-4:] + trail
	}
	return t + trail
}

func countDigits(s string) int {
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] >= '0' && s[i] <= '9' {
			n++
		}
	}
	return n
}

func hasLetter(s string) bool {
	for _, r := range s {
		if unicode.IsLetter(r) {
			return true
		}
	}
	return false
}
