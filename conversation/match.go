package conversation

import (
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// maxMatchIn bounds the text examined for intents and names: a customer
// answering a question writes a few words, and a pasted novel must not
// cost time.
const maxMatchIn = 256

// normalize prepares text for matching: lower case, common Latin accents
// removed ("código" = "codigo"), anything not a letter or digit turned
// into a space, runs of spaces collapsed. "Test-User!" becomes "test user".
func normalize(text string) string {
	if len(text) > maxMatchIn {
		text = text[:maxMatchIn]
	}
	var b strings.Builder
	b.Grow(len(text))
	space := false
	for _, r := range text {
		r = fold(unicode.ToLower(r))
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			if space && b.Len() > 0 {
				b.WriteByte(' ')
			}
			space = false
			b.WriteRune(r)
			continue
		}
		space = true
	}
	return b.String()
}

// fold maps accented Latin letters to their base letter. A hand-made table
// because the core is stdlib only (golang.org/x/text has the full one);
// it covers Spanish, Portuguese, French and German customers' typing.
func fold(r rune) rune {
	switch r {
	case 'á', 'à', 'â', 'ä', 'ã', 'å':
		return 'a'
	case 'é', 'è', 'ê', 'ë':
		return 'e'
	case 'í', 'ì', 'î', 'ï':
		return 'i'
	case 'ó', 'ò', 'ô', 'ö', 'õ':
		return 'o'
	case 'ú', 'ù', 'û', 'ü':
		return 'u'
	case 'ñ':
		return 'n'
	case 'ç':
		return 'c'
	}
	return r
}

// isHelp reports whether normalized text is clearly a request for help:
// the whole message is one of the help phrases. Only then does a message
// during sign-in go to the brain instead of the flow, so a customer
// answering with a name or a code is never misread.
func isHelp(text string) bool {
	_, ok := helpPhrases[text]
	return ok
}

// isResend reports whether normalized text asks for a new code: it
// contains one of the resend phrases as whole words ("please resend it").
func isResend(text string) bool {
	padded := " " + text + " "
	for _, p := range resendPhrases {
		if strings.Contains(padded, " "+p+" ") {
			return true
		}
	}
	return false
}

// matchCandidate finds the profile a customer's answer names, by number
// ("2") or by name. Name matching goes through tiers, strictest first, and
// a tier decides only if exactly one profile matches it; two matches in a
// tier are ambiguous and the customer is asked again:
//  1. the whole name ("test user", "JANE SMITH");
//  2. the leading words of the name, each possibly cut short, the first
//     to no less than two letters ("jane", "jan", "jane sm", "jane s");
//  3. the profile sharing the most whole words with the answer ("smith",
//     "it's jane", "I am Jane Smith").
func matchCandidate(cands []candidate, answer string) (int, bool) {
	a := normalize(answer)
	if a == "" {
		return 0, false
	}
	if isDigits(a) {
		n, err := strconv.Atoi(a)
		if err != nil || n < 1 || n > len(cands) {
			return 0, false
		}
		return n - 1, true
	}
	aw := strings.Fields(a)
	names := make([][]string, len(cands))
	for i, c := range cands {
		names[i] = strings.Fields(normalize(c.name))
	}
	tiers := []func(nw []string) int{
		func(nw []string) int { return b2i(strings.Join(nw, " ") == a) },
		func(nw []string) int { return b2i(leadingPrefix(aw, nw)) },
		func(nw []string) int { return sharedWords(aw, nw) },
	}
	for _, score := range tiers {
		best, bestScore, ties := -1, 0, 0
		for i, nw := range names {
			switch sc := score(nw); {
			case sc > bestScore:
				best, bestScore, ties = i, sc, 1
			case sc == bestScore && sc > 0:
				ties++
			}
		}
		if bestScore > 0 {
			return best, ties == 1
		}
	}
	return 0, false
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// leadingPrefix: each answer word starts the name word in the same place.
// A shortened first word must keep at least two letters so that a stray
// "a" does not pick someone; later words may be initials ("Jane D").
func leadingPrefix(aw, nw []string) bool {
	if len(aw) == 0 || len(aw) > len(nw) {
		return false
	}
	for i, w := range aw {
		if w == nw[i] {
			continue
		}
		if (i == 0 && utf8.RuneCountInString(w) < 2) || !strings.HasPrefix(nw[i], w) {
			return false
		}
	}
	return true
}

// sharedWords counts answer words of two letters or more that are words of
// the name.
func sharedWords(aw, nw []string) int {
	n := 0
	for _, w := range aw {
		if utf8.RuneCountInString(w) < 2 {
			continue
		}
		for _, x := range nw {
			if w == x {
				n++
				break
			}
		}
	}
	return n
}

// firstName is the first word of a full name, as the greeting uses it.
func firstName(name string) string {
	f := strings.Fields(name)
	if len(f) == 0 {
		return ""
	}
	return f[0]
}

// MaskEmail shows just enough of an address for its owner to recognise
// it: the first character, "***" and the domain ("jane@example.com" →
// "j***@example.com"). Text without a domain becomes "***"; an empty
// address stays empty.
func MaskEmail(email string) string {
	email = strings.TrimSpace(email)
	if email == "" {
		return ""
	}
	at := strings.LastIndexByte(email, '@')
	if at < 0 || at == len(email)-1 {
		return "***"
	}
	local, domain := email[:at], email[at:]
	if local == "" {
		return "***" + domain
	}
	r, _ := utf8.DecodeRuneInString(local)
	return string(r) + "***" + domain
}
