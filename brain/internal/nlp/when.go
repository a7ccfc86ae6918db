package nlp

import (
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Parts of the day, as tools take them.
const (
	Morning   = "morning"   // before 12:00
	Afternoon = "afternoon" // 12:00 to 17:00
	Evening   = "evening"   // from 17:00
)

// When is a date expression found in a message.
type When struct {
	// Date is midnight of the day meant, in now's location; zero when the
	// message names no day.
	Date time.Time
	// PartOfDay is Morning, Afternoon, Evening or empty.
	PartOfDay string
	// Week is set when the message named a week ("next week", "la semana
	// que viene") rather than a day: Date is its first day from today.
	Week bool
}

// HasDate reports whether a day was named.
func (w When) HasDate() bool { return !w.Date.IsZero() }

var weekdayWords = []struct {
	day   time.Weekday
	names []string // full names match with typos, the rest exactly
	short []string
}{
	{time.Monday, []string{"monday", "lunes"}, []string{"mon"}},
	{time.Tuesday, []string{"tuesday", "martes"}, []string{"tue", "tues"}},
	{time.Wednesday, []string{"wednesday", "miercoles"}, []string{"wed", "weds", "wensday", "wendsday"}},
	{time.Thursday, []string{"thursday", "jueves"}, []string{"thu", "thur", "thurs"}},
	{time.Friday, []string{"friday", "viernes"}, []string{"fri"}},
	{time.Saturday, []string{"saturday", "sabado"}, []string{"sat"}},
	{time.Sunday, []string{"sunday", "domingo"}, []string{"sun"}},
}

var monthWords = map[string]time.Month{
	"january": 1, "jan": 1, "enero": 1,
	"february": 2, "feb": 2, "febrero": 2,
	"march": 3, "mar": 3, "marzo": 3,
	"april": 4, "apr": 4, "abril": 4,
	"may": 5, "mayo": 5,
	"june": 6, "jun": 6, "junio": 6,
	"july": 7, "jul": 7, "julio": 7,
	"august": 8, "aug": 8, "agosto": 8,
	"september": 9, "sep": 9, "sept": 9, "septiembre": 9, "setiembre": 9,
	"october": 10, "oct": 10, "octubre": 10,
	"november": 11, "nov": 11, "noviembre": 11,
	"december": 12, "dec": 12, "diciembre": 12,
}

var tomorrowWords = []string{"tomorrow", "tomorow", "tommorow", "tommorrow", "tmrw", "tmr", "tomoz"}

var (
	isoDate   = regexp.MustCompile(`\b(\d{4})-(\d{2})-(\d{2})\b`)
	slashDate = regexp.MustCompile(`\b(\d{1,2})/(\d{1,2})(?:/(\d{2,4}))?\b`)
)

// weekdayOf reads a word as a weekday.
func weekdayOf(w string) (time.Weekday, bool) {
	for _, d := range weekdayWords {
		for _, s := range d.short {
			if w == s {
				return d.day, true
			}
		}
		for _, n := range d.names {
			if Like(w, n) {
				return d.day, true
			}
		}
	}
	return 0, false
}

// WeekdayOf reads a single word as a weekday, typos allowed.
func WeekdayOf(w string) (time.Weekday, bool) { return weekdayOf(w) }

// dayOfMonth reads "20th", "1st", "2nd", "3rd" or a bare number 1..31.
func dayOfMonth(w string) (int, bool) {
	for _, suf := range []string{"st", "nd", "rd", "th"} {
		w = strings.TrimSuffix(w, suf)
	}
	if len(w) == 0 || len(w) > 2 {
		return 0, false
	}
	n, err := strconv.Atoi(w)
	if err != nil || n < 1 || n > 31 {
		return 0, false
	}
	return n, true
}

func isOrdinal(w string) bool {
	for _, suf := range []string{"st", "nd", "rd", "th"} {
		if strings.HasSuffix(w, suf) && len(w) > len(suf) && w[0] >= '0' && w[0] <= '9' {
			return true
		}
	}
	return false
}

// ParseWhen finds the day (and part of day) a message talks about. now is
// the current time in the business's time zone; dates are never in the
// past: a weekday is the next one (today if it is that day, unless "next"),
// a day of the month without a month is this month's or next month's.
func ParseWhen(text string, words []string, now time.Time) When {
	var w When
	today := midnight(now)
	set := func(d time.Time) {
		if w.Date.IsZero() {
			w.Date = d
		}
	}
	if m := isoDate.FindStringSubmatch(text); m != nil {
		y, _ := strconv.Atoi(m[1])
		mo, _ := strconv.Atoi(m[2])
		d, _ := strconv.Atoi(m[3])
		if t, ok := validDate(y, time.Month(mo), d, now.Location()); ok {
			set(t)
		}
	} else if m := slashDate.FindStringSubmatch(text); m != nil {
		// Day first, as written in the UK and Spain.
		d, _ := strconv.Atoi(m[1])
		mo, _ := strconv.Atoi(m[2])
		y := today.Year()
		if m[3] != "" {
			y, _ = strconv.Atoi(m[3])
			if y < 100 {
				y += 2000
			}
		}
		if t, ok := validDate(y, time.Month(mo), d, now.Location()); ok {
			if m[3] == "" && t.Before(today) {
				t, _ = validDate(y+1, time.Month(mo), d, now.Location())
			}
			set(t)
		}
	}
	for i, word := range words {
		prev := ""
		if i > 0 {
			prev = words[i-1]
		}
		next := ""
		if i+1 < len(words) {
			next = words[i+1]
		}
		switch {
		case word == "today" || word == "hoy" || word == "tonight":
			set(today)
			if word == "tonight" {
				w.PartOfDay = Evening
			}
		case word == "manana":
			// Spanish: "mañana" is tomorrow, "la mañana" the morning,
			// "pasado mañana" the day after tomorrow.
			switch {
			case prev == "la":
				w.PartOfDay = Morning
				if i >= 2 && words[i-2] == "esta" {
					set(today)
				}
			case prev == "pasado":
				set(today.AddDate(0, 0, 2))
			default:
				set(today.AddDate(0, 0, 1))
			}
		case word == "tarde" || word == "noche":
			if prev == "esta" {
				set(today)
			}
			if word == "tarde" {
				w.PartOfDay = Afternoon
			} else {
				w.PartOfDay = Evening
			}
		case HasExact([]string{word}, tomorrowWords...) || Like(word, "tomorrow"):
			if prev == "after" && i >= 2 && words[i-2] == "day" {
				set(today.AddDate(0, 0, 2))
			} else {
				set(today.AddDate(0, 0, 1))
			}
		case Like(word, "morning") || word == "mornings":
			w.PartOfDay = Morning
		case Like(word, "afternoon") || word == "noon" || word == "midday" || word == "mediodia" || word == "pm":
			w.PartOfDay = Afternoon
		case Like(word, "evening"):
			w.PartOfDay = Evening
		case word == "weekend" || word == "finde" || word == "fin" && next == "de" && i+2 < len(words) && words[i+2] == "semana":
			set(nextWeekday(today, time.Saturday, false))
		case word == "week" && (prev == "next" || prev == "following") ||
			word == "semana" && (prev == "proxima" || prev == "siguiente" || next == "que" && i+2 < len(words) && words[i+2] == "viene"):
			if w.Date.IsZero() {
				set(nextWeekday(today, time.Monday, true))
				w.Week = true
			}
		}
		if d, ok := weekdayOf(word); ok {
			switch {
			case prev == "next" || next == "next" && i+2 < len(words) && words[i+2] == "week":
				// English "next Wednesday" is the Wednesday of next week
				// (said on a Tuesday, not tomorrow). Replies name the
				// date, so a customer who meant otherwise can say so.
				set(nextWeekWeekday(today, d))
			case prev == "proximo" || prev == "siguiente" || next == "que" && i+2 < len(words) && words[i+2] == "viene":
				// Spanish "el próximo miércoles" is the next one to come.
				set(nextWeekday(today, d, true))
			default:
				set(nextWeekday(today, d, false))
			}
			continue
		}
		if n, ok := dayOfMonth(word); ok {
			// A bare number is a day only where a day is expected: after
			// "the", "on", "el", "dia", before or after a month, or as an
			// ordinal ("20th").
			mo, hasMonth := monthWords[next]
			if !hasMonth && next == "de" && i+2 < len(words) {
				mo, hasMonth = monthWords[words[i+2]]
			}
			if !hasMonth && (next == "of") && i+2 < len(words) {
				mo, hasMonth = monthWords[words[i+2]]
			}
			if !hasMonth {
				if pm, ok := monthWords[prev]; ok && prev != "may" && prev != "mar" {
					mo, hasMonth = pm, true
				}
			}
			dayContext := isOrdinal(word) || prev == "the" || prev == "on" || prev == "el" || prev == "dia"
			switch {
			case hasMonth:
				t, ok := validDate(today.Year(), mo, n, now.Location())
				if ok && t.Before(today) {
					t, ok = validDate(today.Year()+1, mo, n, now.Location())
				}
				if ok {
					set(t)
				}
			case dayContext:
				set(nextDayOfMonth(today, n))
			}
		}
	}
	return w
}

// ParseDate reads a date argument as a model writes it: ISO (2026-03-11),
// "today", "tomorrow", or any expression ParseWhen understands. It is
// lenient because models paraphrase.
func ParseDate(s string, now time.Time) (time.Time, bool) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, false
	}
	if t, err := time.ParseInLocation("2006-01-02", s, now.Location()); err == nil {
		return t, true
	}
	if len(s) > 10 {
		if t, err := time.Parse(time.RFC3339, s); err == nil {
			t = t.In(now.Location())
			return midnight(t), true
		}
	}
	w := ParseWhen(s, Words(s), now)
	return w.Date, w.HasDate()
}

func midnight(t time.Time) time.Time {
	y, m, d := t.Date()
	return time.Date(y, m, d, 0, 0, 0, 0, t.Location())
}

func validDate(y int, m time.Month, d int, loc *time.Location) (time.Time, bool) {
	if m < 1 || m > 12 || d < 1 || d > 31 {
		return time.Time{}, false
	}
	t := time.Date(y, m, d, 0, 0, 0, 0, loc)
	if t.Day() != d {
		return time.Time{}, false // 31 April and the like
	}
	return t, true
}

// nextWeekday is the next day that is d: today itself unless strict.
func nextWeekday(today time.Time, d time.Weekday, strict bool) time.Time {
	diff := (int(d) - int(today.Weekday()) + 7) % 7
	if diff == 0 && strict {
		diff = 7
	}
	return today.AddDate(0, 0, diff)
}

// nextWeekWeekday is day d of the week after today's (weeks start on
// Monday), or the next d if that comes first in a later week.
func nextWeekWeekday(today time.Time, d time.Weekday) time.Time {
	t := nextWeekday(today, d, true)
	if sameWeek(today, t) {
		t = t.AddDate(0, 0, 7)
	}
	return t
}

// sameWeek reports whether a and b fall in the same Monday-to-Sunday week.
func sameWeek(a, b time.Time) bool {
	monday := func(t time.Time) time.Time {
		off := (int(t.Weekday()) + 6) % 7
		return midnight(t).AddDate(0, 0, -off)
	}
	return monday(a).Equal(monday(b))
}

// nextDayOfMonth is the next date with day n: this month's if it has not
// passed, else the first month after that has one.
func nextDayOfMonth(today time.Time, n int) time.Time {
	y, m := today.Year(), today.Month()
	for i := 0; i < 13; i++ {
		if t, ok := validDate(y, m, n, today.Location()); ok && !t.Before(today) {
			return t
		}
		m++
		if m > 12 {
			m, y = 1, y+1
		}
	}
	return time.Time{}
}
