// Package nlp is the small, deterministic language toolkit the brains
// share: text normalisation, typo-tolerant word matching and date
// expressions in English and Spanish. It has no state and no I/O.
package nlp

import (
	"strings"
	"unicode"
)

// fold maps accented letters to their plain form, so "miércoles",
// "mañana" and "suscripción" match what customers type without accents.
var fold = map[rune]rune{
	'á': 'a', 'à': 'a', 'â': 'a', 'ä': 'a', 'ã': 'a',
	'é': 'e', 'è': 'e', 'ê': 'e', 'ë': 'e',
	'í': 'i', 'ì': 'i', 'î': 'i', 'ï': 'i',
	'ó': 'o', 'ò': 'o', 'ô': 'o', 'ö': 'o', 'õ': 'o',
	'ú': 'u', 'ù': 'u', 'û': 'u', 'ü': 'u',
	'ñ': 'n', 'ç': 'c',
}

// Words lowercases s, folds accents and splits it into words of letters and
// digits. Apostrophes join ("what's" is "whats") so contractions stay one
// word; ordinals stay whole ("20th").
func Words(s string) []string {
	words := make([]string, 0, 12)
	var b strings.Builder
	flush := func() {
		if b.Len() > 0 {
			words = append(words, b.String())
			b.Reset()
		}
	}
	for _, r := range s {
		r = unicode.ToLower(r)
		if f, ok := fold[r]; ok {
			r = f
		}
		switch {
		case r == '\'' || r == '’':
			// joins: drop it
		case r < 128 && (r >= 'a' && r <= 'z' || r >= '0' && r <= '9'):
			b.WriteRune(r)
		case r >= 128 && unicode.IsLetter(r):
			b.WriteRune(r)
		default:
			flush()
		}
	}
	flush()
	return words
}

// Distance is the optimal-string-alignment edit distance between a and b
// (insertions, deletions, substitutions and swaps of neighbours each cost
// one), stopping early once it exceeds max: typos are short distances, so
// most comparisons end after a row or two.
func Distance(a, b string, max int) int {
	if a == b {
		return 0
	}
	la, lb := len(a), len(b)
	if d := la - lb; d > max || -d > max {
		return max + 1
	}
	// Three rolling rows; words here are short, so fixed arrays avoid
	// allocation on the hot path.
	var buf [3][40]int
	if lb+1 > len(buf[0]) {
		return max + 1
	}
	prev2, prev, cur := buf[0][:lb+1], buf[1][:lb+1], buf[2][:lb+1]
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= la; i++ {
		cur[0] = i
		rowMin := cur[0]
		for j := 1; j <= lb; j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			v := min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				v = min(v, prev2[j-2]+1)
			}
			cur[j] = v
			rowMin = min(rowMin, v)
		}
		if rowMin > max {
			return max + 1
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[lb]
}

// Like reports whether a typed word is the keyword, allowing one typo in
// words of five letters or more, two in words of nine or more, and a swap
// of two letters in four-letter words. Shorter keywords must match
// exactly: "sun" is not "sum".
func Like(word, keyword string) bool {
	if word == keyword {
		return true
	}
	n := len(keyword)
	switch {
	case n >= 9:
		return Distance(word, keyword, 2) <= 2
	case n >= 5:
		return Distance(word, keyword, 1) <= 1 &&
			(word[0] == keyword[0] || len(word) == n && swapped(word, keyword))
	case n == 4:
		// Four letters: only two neighbours swapped after the first
		// ("hepl"); anything looser turns "time" into "tile".
		return len(word) == 4 && word[0] == keyword[0] && swapped(word, keyword)
	}
	return false
}

// swapped reports whether a and b differ only by two neighbouring letters
// swapped (a first-letter swap such as "ybooking" still reads as a typo).
func swapped(a, b string) bool {
	for i := 0; i+1 < len(a); i++ {
		if a[i] != b[i] {
			return a[i] == b[i+1] && a[i+1] == b[i] && a[i+2:] == b[i+2:]
		}
	}
	return false
}

// HasAny reports whether any of words is like any of keywords.
func HasAny(words []string, keywords ...string) bool {
	for _, w := range words {
		for _, k := range keywords {
			if Like(w, k) {
				return true
			}
		}
	}
	return false
}

// HasExact reports whether any of words is exactly any of keywords.
func HasExact(words []string, keywords ...string) bool {
	for _, w := range words {
		for _, k := range keywords {
			if w == k {
				return true
			}
		}
	}
	return false
}

// HasPhrase reports whether the words contain phrase (space-separated
// words, each matched with Like) as consecutive words.
func HasPhrase(words []string, phrase string) bool {
	p := strings.Fields(phrase)
	if len(p) == 0 || len(p) > len(words) {
		return false
	}
outer:
	for i := 0; i+len(p) <= len(words); i++ {
		for j, k := range p {
			if !Like(words[i+j], k) {
				continue outer
			}
		}
		return true
	}
	return false
}
