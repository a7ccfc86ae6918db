package brain

import (
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf16"
	"unicode/utf8"
)

func TestMask(t *testing.T) {
	cases := []struct{ in, want string }{
		{"Your email is sam@example.com.", "Your email is s***@example.com."},
		{"Write to jane.smith+work@mail.example.co.uk", "Write to j***@mail.example.co.uk"},
		{"Call +447700900456 today", "Call +44•••••••456 today"},
		{"Booking 3f2a9c1e-8d4b-4f7a-9e2c-1b5d6a7c8e9f is set", "Booking …8e9f is set"},
		{"ref cus_9fK2LmQ8xZr4Tb1 ok", "ref …4Tb1 ok"},
		// Kept: times, dates, prices, short ids, ordinary long words.
		{"9:00, 11:30 and 14:00 on 2026-03-13", "9:00, 11:30 and 14:00 on 2026-03-13"},
		{"£140.00 for a Deep Clean (bk_1001)", "£140.00 for a Deep Clean (bk_1001)"},
		{"internationalisation responsibilities", "internationalisation responsibilities"},
		{"at @ home", "at @ home"},
		{"", ""},
	}
	for _, c := range cases {
		if got := Mask(c.in); got != c.want {
			t.Errorf("Mask(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestLimit(t *testing.T) {
	line := strings.Repeat("• Standard Clean — Friday 13 March, 9:00–12:00\n", 200)
	cases := []struct {
		name string
		in   string
		n    int
	}{
		{"short", "hello", 4096},
		{"lines", line, 4096},
		{"one word", strings.Repeat("x", 5000), 4096},
		{"multibyte", strings.Repeat("ñá€ ", 2000), 4096},
		{"tiny", "hello world", 5},
	}
	for _, c := range cases {
		got := Limit(c.in, c.n)
		if n := utf8.RuneCountInString(got); n > c.n {
			t.Errorf("%s: %d runes, limit %d", c.name, n, c.n)
		}
		if !utf8.ValidString(got) {
			t.Errorf("%s: invalid UTF-8", c.name)
		}
		if utf8.RuneCountInString(c.in) > c.n && !strings.HasSuffix(got, "…") {
			t.Errorf("%s: cut not marked", c.name)
		}
		if c.name == "lines" && strings.Contains(got[len(got)-60:], "Friday 13 March, 9:00–12:00 •") {
			t.Errorf("lines: cut mid-line")
		}
	}
	if got := Finish("  " + line + line); utf8.RuneCountInString(got) > MaxReplyChars {
		t.Errorf("Finish: %d runes", utf8.RuneCountInString(got))
	}
}

func TestSplit(t *testing.T) {
	line := strings.Repeat("x", 47) + "\n" // 48 runes a line
	cases := []struct {
		name  string
		in    string
		n     int
		parts []int // rune counts of the parts
	}{
		{"fits", "hello world", 1600, []int{11}},
		{"exactly the limit", strings.Repeat("y", 1600), 1600, []int{1600}},
		{"blank", " \n ", 1600, nil},
		// 100 lines of 47 x's: 33 whole lines (33*48-1 runes) fit in 1600.
		{"lines cut at line ends", strings.Repeat(line, 100), 1600, []int{1583, 1583, 1583, 47}},
		{"one long word is cut hard", strings.Repeat("z", 5000), 1600, []int{1600, 1600, 1600, 200}},
		{"multibyte words", strings.Repeat("ñá€ ", 1000), 1600, []int{1599, 1599, 799}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := Split(c.in, c.n, nil)
			counts := make([]int, len(got))
			for i, p := range got {
				counts[i] = utf8.RuneCountInString(p)
			}
			if !slices.Equal(counts, c.parts) {
				t.Fatalf("parts of %v runes, want %v", counts, c.parts)
			}
			// Nothing but the white space at the cuts is lost.
			if squeeze(strings.Join(got, "")) != squeeze(c.in) {
				t.Fatal("text lost or reordered")
			}
		})
	}
	// Random texts: every part fits, none is blank, and the text survives.
	rng := rand.New(rand.NewPCG(3, 4))
	alphabet := []rune("ab c\nñ€😀  ")
	for i := range 500 {
		r := make([]rune, rng.IntN(3000))
		for j := range r {
			r[j] = alphabet[rng.IntN(len(alphabet))]
		}
		in, n := string(r), 2+rng.IntN(400)
		got := Split(in, n, utf16Width)
		for _, p := range got {
			if k := len(utf16.Encode([]rune(p))); k > n || strings.TrimSpace(p) == "" {
				t.Fatalf("case %d: part of %d UTF-16 units (limit %d) %q", i, k, n, p)
			}
		}
		if squeeze(strings.Join(got, "")) != squeeze(in) {
			t.Fatalf("case %d: text lost", i)
		}
	}
}

// utf16Width counts a rune in UTF-16 code units, as Twilio's limit is taken.
func utf16Width(r rune) int { return utf16.RuneLen(r) }

// An emoji is two UTF-16 units: 1,000 of them are 2,000 units, two parts
// within 1,600.
func TestSplitByWidth(t *testing.T) {
	got := Split(strings.Repeat("😀", 1000), 1600, utf16Width)
	if len(got) != 2 || utf8.RuneCountInString(got[0]) != 800 || utf8.RuneCountInString(got[1]) != 200 {
		t.Fatalf("%d parts", len(got))
	}
}

// squeeze drops all white space, which is all a split may remove.
func squeeze(s string) string { return strings.Join(strings.Fields(s), "") }

func TestRemember(t *testing.T) {
	var h []Turn
	for i := 0; i < 10; i++ {
		h = Remember(h, strings.Repeat("q", 1000), "a")
	}
	if len(h) != MaxHistoryTurns || h[0].Role != RoleCustomer || h[len(h)-1].Role != RoleAssistant {
		t.Fatalf("history %d turns, first %s", len(h), h[0].Role)
	}
	if n := utf8.RuneCountInString(h[0].Text); n != MaxTurnChars {
		t.Errorf("turn of %d runes, want %d", n, MaxTurnChars)
	}
	// The caller's slice is not modified: states may be shared.
	base := Remember(nil, "a", "b")
	_ = Remember(base, "c", "d")
	if len(base) != 2 || base[0].Text != "a" {
		t.Errorf("base changed: %+v", base)
	}
}

func TestPendingValidFor(t *testing.T) {
	now := time.Date(2026, 3, 10, 10, 0, 0, 0, time.UTC)
	p := &PendingAction{Kind: PendingCancel, ProfileID: "prof_sam", BookingID: "bk_1", Expires: now.Add(time.Minute)}
	cases := []struct {
		name    string
		p       *PendingAction
		profile string
		at      time.Time
		want    bool
	}{
		{"same profile in time", p, "prof_sam", now, true},
		{"other profile", p, "prof_jane", now, false},
		{"signed out", p, "", now, false},
		{"at expiry", p, "prof_sam", now.Add(time.Minute), false},
		{"none", nil, "prof_sam", now, false},
	}
	for _, c := range cases {
		if got := c.p.ValidFor(c.profile, c.at); got != c.want {
			t.Errorf("%s: %v", c.name, got)
		}
	}
}

// Split runs on every reply in the session actor; a reply that fits
// should cost a measurement and no copy.
func BenchmarkSplit(b *testing.B) {
	short := "Your Standard Clean is booked for Friday 13 March at 9:00. Reply CANCEL to cancel."
	long := strings.Repeat("Our Standard Clean covers every room, twice a week.\n", 70)
	for _, c := range []struct {
		name string
		text string
	}{{"fits", short}, {"3 parts", long}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_ = Split(c.text, 1600, utf16Width)
			}
		})
	}
}
