package nlp

import (
	"reflect"
	"testing"
	"time"
)

func TestWords(t *testing.T) {
	cases := []struct {
		in   string
		want []string
	}{
		{"What's free on the 20th?", []string{"whats", "free", "on", "the", "20th"}},
		{"¿Qué hay el MIÉRCOLES por la mañana?", []string{"que", "hay", "el", "miercoles", "por", "la", "manana"}},
		{"cancel   my\tbooking!!", []string{"cancel", "my", "booking"}},
		{"", []string{}},
	}
	for _, c := range cases {
		if got := Words(c.in); !reflect.DeepEqual(got, c.want) {
			t.Errorf("Words(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestDistance(t *testing.T) {
	cases := []struct {
		a, b string
		max  int
		want int
	}{
		{"booking", "booking", 2, 0},
		{"bokings", "bookings", 2, 1},
		{"cancle", "cancel", 2, 1}, // swap
		{"wendesday", "wednesday", 2, 1},
		{"wensday", "wednesday", 2, 2},
		{"abc", "xyz", 1, 2}, // stops at max+1
		{"a", "abcdef", 2, 3},
	}
	for _, c := range cases {
		if got := Distance(c.a, c.b, c.max); got != c.want {
			t.Errorf("Distance(%q, %q, %d) = %d, want %d", c.a, c.b, c.max, got, c.want)
		}
	}
}

func TestLike(t *testing.T) {
	cases := []struct {
		word, keyword string
		want          bool
	}{
		{"bokings", "bookings", true},
		{"subscripton", "subscription", true},
		{"subcripton", "subscription", true},
		{"avialable", "available", true},
		{"hepl", "help", true},
		{"cancle", "cancel", true},
		{"ncancel", "cancel", false}, // a typo in the first letter is a different word
		{"sum", "sun", false},
		{"tile", "time", false},
		{"monday", "sunday", false},
		{"lookings", "bookings", false}, // first letter differs
		{"booking", "bookings", true},
	}
	for _, c := range cases {
		if got := Like(c.word, c.keyword); got != c.want {
			t.Errorf("Like(%q, %q) = %v, want %v", c.word, c.keyword, got, c.want)
		}
	}
}

func TestParseWhen(t *testing.T) {
	// Tuesday 10 March 2026, 10:00.
	now := time.Date(2026, 3, 10, 10, 0, 0, 0, time.UTC)
	day := func(m time.Month, d int) time.Time { return time.Date(2026, m, d, 0, 0, 0, 0, time.UTC) }
	cases := []struct {
		text string
		date time.Time
		part string
		week bool
	}{
		{"today", day(3, 10), "", false},
		{"tomorrow", day(3, 11), "", false},
		{"tommorow morning", day(3, 11), Morning, false},
		{"day after tomorrow", day(3, 12), "", false},
		{"Wednesday", day(3, 11), "", false},
		{"this wednesday", day(3, 11), "", false},
		{"next Wednesday", day(3, 18), "", false},
		{"next Monday", day(3, 16), "", false},
		{"Wednesday next week", day(3, 18), "", false},
		{"Tuesday", day(3, 10), "", false},
		{"next tuesday", day(3, 17), "", false},
		{"Friday afternoon", day(3, 13), Afternoon, false},
		{"on the 20th", day(3, 20), "", false},
		{"the 5th", day(4, 5), "", false},
		{"on the 10th", day(3, 10), "", false},
		{"20 March", day(3, 20), "", false},
		{"March 20", day(3, 20), "", false},
		{"3rd of April", day(4, 3), "", false},
		{"2026-03-16", day(3, 16), "", false},
		{"16/03", day(3, 16), "", false},
		{"1/2", time.Date(2027, 2, 1, 0, 0, 0, 0, time.UTC), "", false},
		{"31st", day(3, 31), "", false},
		{"wendesday evening", day(3, 11), Evening, false},
		{"tonight", day(3, 10), Evening, false},
		{"next week", day(3, 16), "", true},
		{"this weekend", day(3, 14), "", false},
		{"mañana", day(3, 11), "", false},
		{"mañana por la mañana", day(3, 11), Morning, false},
		{"pasado mañana", day(3, 12), "", false},
		{"esta tarde", day(3, 10), Afternoon, false},
		{"el próximo miércoles", day(3, 11), "", false},
		{"el miércoles que viene", day(3, 11), "", false},
		{"el viernes por la tarde", day(3, 13), Afternoon, false},
		{"el día 20", day(3, 20), "", false},
		{"20 de marzo", day(3, 20), "", false},
		{"la semana que viene", day(3, 16), "", true},
		// No day: numbers that are not days, modal "may".
		{"at 9", time.Time{}, "", false},
		{"may I see my bookings", time.Time{}, "", false},
		{"1 of 1 sessions", time.Time{}, "", false},
		{"in the morning", time.Time{}, Morning, false},
	}
	for _, c := range cases {
		got := ParseWhen(c.text, Words(c.text), now)
		if !got.Date.Equal(c.date) || got.PartOfDay != c.part || got.Week != c.week {
			t.Errorf("ParseWhen(%q) = %s %q week=%v, want %s %q week=%v", c.text,
				got.Date.Format("Mon 2006-01-02"), got.PartOfDay, got.Week, c.date.Format("Mon 2006-01-02"), c.part, c.week)
		}
	}
}

func TestParseDate(t *testing.T) {
	now := time.Date(2026, 3, 10, 22, 30, 0, 0, time.UTC)
	cases := []struct {
		in   string
		want string
		ok   bool
	}{
		{"2026-03-18", "2026-03-18", true},
		{"2026-03-18T09:00:00Z", "2026-03-18", true},
		{"tomorrow", "2026-03-11", true},
		{"next wednesday", "2026-03-18", true},
		{"soon", "", false},
		{"", "", false},
		{"2026-02-30", "", false},
	}
	for _, c := range cases {
		got, ok := ParseDate(c.in, now)
		if ok != c.ok || ok && got.Format("2006-01-02") != c.want {
			t.Errorf("ParseDate(%q) = %v %v, want %s %v", c.in, got, ok, c.want, c.ok)
		}
	}
}
