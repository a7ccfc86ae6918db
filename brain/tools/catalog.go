package tools

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/parleyhq/parley/backend"
	"github.com/parleyhq/parley/brain/internal/nlp"
)

// ServiceInfo is a service as the model reads it.
type ServiceInfo struct {
	ID              string `json:"id"`
	Name            string `json:"name"`
	DurationMinutes int    `json:"duration_minutes"`
	Price           string `json:"price,omitempty"`
	Description     string `json:"description,omitempty"`
}

// ServicesData is the result of list_services.
type ServicesData struct {
	Services  []ServiceInfo `json:"services"`
	HowToBook string        `json:"how_to_book"`
}

// Services runs list_services. It needs no sign-in.
func (k *Kit) Services(ctx context.Context, c Caller) Result {
	start := time.Now()
	list, err := k.Backend.Services(ctx)
	if err != nil {
		return k.backendFail(ListServices, start, err)
	}
	d := ServicesData{Services: make([]ServiceInfo, len(list)), HowToBook: k.howToBook()}
	for i, s := range list {
		d.Services[i] = serviceInfo(s)
	}
	return k.ok(ListServices, start, d)
}

func serviceInfo(s backend.Service) ServiceInfo {
	info := ServiceInfo{ID: s.ID, Name: s.Name, DurationMinutes: durationMin(s), Description: s.Description}
	if s.PricePence > 0 {
		info.Price = Money(s.PricePence, s.Currency)
	}
	return info
}

func durationMin(s backend.Service) int {
	if s.DurationMin > 0 {
		return s.DurationMin
	}
	return int(s.Duration / time.Minute)
}

// AvailabilityArgs are check_availability's arguments.
type AvailabilityArgs struct {
	// Service is a service name (partial names work: "deep clean") or id;
	// empty or generic ("clean") means every service.
	Service string `json:"service,omitempty"`
	// Date is the day to check: YYYY-MM-DD, "today", "tomorrow" or a
	// weekday. Empty means the next day with free times.
	Date string `json:"date,omitempty"`
	// PartOfDay narrows the times: morning, afternoon or evening.
	PartOfDay string `json:"part_of_day,omitempty"`
}

// ServiceSlots are the free start times of one service on a day.
type ServiceSlots struct {
	ServiceID       string   `json:"service_id"`
	Service         string   `json:"service"`
	DurationMinutes int      `json:"duration_minutes"`
	Times           []string `json:"times"`
}

// AvailabilityData is the result of check_availability.
type AvailabilityData struct {
	Date      string         `json:"date"`
	Weekday   string         `json:"weekday"`
	PartOfDay string         `json:"part_of_day,omitempty"`
	Services  []ServiceSlots `json:"services"`
	// Next is the first later day with free times, when the day asked for
	// has none.
	Next *AvailabilityData `json:"next_available,omitempty"`
	// Searched is set when no day was asked for and Date is the first
	// day with free times.
	Searched  bool   `json:"searched,omitempty"`
	HowToBook string `json:"how_to_book,omitempty"`
	// Day is Date as a time, for phrasing.
	Day time.Time `json:"-"`
}

// Empty reports whether no service has a free time that day.
func (d *AvailabilityData) Empty() bool {
	for _, s := range d.Services {
		if len(s.Times) > 0 {
			return false
		}
	}
	return true
}

// searchDays bounds the look-ahead for the next free day.
const searchDays = 14

// Availability runs check_availability. It needs no sign-in.
func (k *Kit) Availability(ctx context.Context, c Caller, a AvailabilityArgs) Result {
	start := time.Now()
	now := k.now(c)
	today := midnightOf(now)
	part := normalisePart(a.PartOfDay)
	all, err := k.Backend.Services(ctx)
	if err != nil {
		return k.backendFail(CheckAvailability, start, err)
	}
	services, specific := MatchServices(all, a.Service)
	if strings.TrimSpace(a.Service) != "" && !specific && !IsGeneric(a.Service) {
		names := make([]string, len(all))
		for i, s := range all {
			names[i] = s.Name
		}
		return k.fail(CheckAvailability, start, ErrUnknownSvc,
			"No service matches "+quote(a.Service)+". Services: "+strings.Join(names, ", ")+".")
	}
	searched := false
	var day time.Time
	if strings.TrimSpace(a.Date) == "" {
		searched = true
		day = today
	} else {
		d, ok := nlp.ParseDate(a.Date, now)
		if !ok {
			return k.fail(CheckAvailability, start, ErrBadArgs, "The date "+quote(a.Date)+" was not understood; use YYYY-MM-DD.")
		}
		if d.Before(today) {
			return k.fail(CheckAvailability, start, ErrPastDate, "That date has passed; today is "+today.Format("Monday 2006-01-02")+".")
		}
		day = d
	}
	d, err := k.dayAvailability(ctx, services, day, now, part)
	if err != nil {
		return k.backendFail(CheckAvailability, start, err)
	}
	if d.Empty() {
		// Look ahead for the next free day, so "nothing that day" always
		// comes with something the customer can use.
		for i := 1; i <= searchDays; i++ {
			nd, err := k.dayAvailability(ctx, services, day.AddDate(0, 0, i), now, part)
			if err != nil {
				return k.backendFail(CheckAvailability, start, err)
			}
			if !nd.Empty() {
				if searched {
					d = nd
				} else {
					d.Next = &nd
				}
				break
			}
		}
	}
	d.Searched = searched
	d.HowToBook = k.howToBook()
	return k.ok(CheckAvailability, start, d)
}

// dayAvailability asks the backend for each service's slots on day, keeping
// those that have not started and fall in the part of the day.
func (k *Kit) dayAvailability(ctx context.Context, services []backend.Service, day, now time.Time, part string) (AvailabilityData, error) {
	d := AvailabilityData{Date: day.Format("2006-01-02"), Weekday: day.Weekday().String(), PartOfDay: part, Day: day,
		Services: make([]ServiceSlots, 0, len(services))}
	for _, s := range services {
		slots, err := k.Backend.Availability(ctx, s.ID, day)
		if err != nil {
			return d, err
		}
		ss := ServiceSlots{ServiceID: s.ID, Service: s.Name, DurationMinutes: durationMin(s), Times: []string{}}
		for _, sl := range slots {
			st := sl.Start.In(k.loc())
			if !st.After(now) || !inPart(st, part) {
				continue
			}
			ss.Times = append(ss.Times, Clock(st))
		}
		d.Services = append(d.Services, ss)
	}
	return d, nil
}

func normalisePart(p string) string {
	switch strings.ToLower(strings.TrimSpace(p)) {
	case "morning", "am", "manana", "mañana":
		return nlp.Morning
	case "afternoon", "pm", "tarde":
		return nlp.Afternoon
	case "evening", "night", "noche":
		return nlp.Evening
	}
	return ""
}

func inPart(t time.Time, part string) bool {
	h := t.Hour()
	switch part {
	case nlp.Morning:
		return h < 12
	case nlp.Afternoon:
		return h >= 12 && h < 17
	case nlp.Evening:
		return h >= 17
	}
	return true
}

// genericServiceWords name the kind of service, not one service.
var genericServiceWords = map[string]bool{
	"clean": true, "cleans": true, "cleaning": true, "cleaner": true, "service": true, "services": true,
	"limpieza": true, "limpiezas": true, "servicio": true, "servicios": true, "a": true, "an": true, "the": true,
	"una": true, "un": true, "la": true, "el": true, "any": true, "all": true, "cualquier": true,
}

// serviceSynonyms lets customers name a service in Spanish or in a common
// paraphrase.
var serviceSynonyms = map[string]string{
	"profunda": "deep", "profundo": "deep", "thorough": "deep",
	"estandar": "standard", "normal": "standard", "regular": "standard", "basic": "standard", "basica": "standard", "basico": "standard",
	"prem": "premium",
}

// IsGeneric reports whether s names services in general ("a clean",
// "cleaning") rather than one of them.
func IsGeneric(s string) bool {
	words := nlp.Words(s)
	if len(words) == 0 {
		return true
	}
	for _, w := range words {
		if !genericServiceWords[w] {
			return false
		}
	}
	return true
}

// MatchServices picks the services a text names: an id, a full name, or a
// distinctive word of a name ("deep", "premium"; typos and Spanish words
// allowed). specific is false when nothing specific matched: then every
// service is returned, in the backend's order.
func MatchServices(all []backend.Service, text string) (matched []backend.Service, specific bool) {
	words := nlp.Words(text)
	for i, w := range words {
		if syn, ok := serviceSynonyms[w]; ok {
			words[i] = syn
		}
	}
	type hit struct {
		s     backend.Service
		score int
	}
	var hits []hit
	for _, s := range all {
		score := 0
		if s.ID != "" && strings.Contains(strings.ToLower(text), strings.ToLower(s.ID)) {
			score = 100
		}
		name := nlp.Words(s.Name)
		if score == 0 && len(name) > 0 && containsRun(words, name) {
			score = 50
		}
		if score == 0 {
			for _, nw := range name {
				if genericServiceWords[nw] || len(nw) < 4 {
					continue
				}
				for _, w := range words {
					if nlp.Like(w, nw) {
						score = 10
					}
				}
			}
		}
		if score > 0 {
			hits = append(hits, hit{s, score})
		}
	}
	if len(hits) == 0 {
		return all, false
	}
	sort.SliceStable(hits, func(i, j int) bool { return hits[i].score > hits[j].score })
	best := hits[0].score
	for _, h := range hits {
		if h.score == best {
			matched = append(matched, h.s)
		}
	}
	return matched, true
}

// containsRun reports whether name's words appear consecutively in words
// (each allowing a typo).
func containsRun(words, name []string) bool {
	return nlp.HasPhrase(words, strings.Join(name, " "))
}

// Money formats an amount in minor units: £70.00, €12.50, $5.00.
func Money(minor int64, currency string) string {
	sign := ""
	if minor < 0 {
		sign, minor = "-", -minor
	}
	amount := fmt.Sprintf("%d.%02d", minor/100, minor%100)
	switch strings.ToUpper(currency) {
	case "GBP", "":
		return sign + "£" + amount
	case "EUR":
		return sign + "€" + amount
	case "USD":
		return sign + "$" + amount
	}
	return sign + amount + " " + strings.ToUpper(currency)
}

// Clock formats a time of day as customers write it: 9:00, 14:00.
func Clock(t time.Time) string { return fmt.Sprintf("%d:%02d", t.Hour(), t.Minute()) }

func midnightOf(t time.Time) time.Time {
	y, m, d := t.Date()
	return time.Date(y, m, d, 0, 0, 0, 0, t.Location())
}

func quote(s string) string {
	if len(s) > 60 {
		s = s[:60]
	}
	return fmt.Sprintf("%q", s)
}

// NotOffered is what the assistant cannot do, for the model and for the
// rules brain's polite refusal.
const NotOffered = "The assistant cannot create new bookings."

func (k *Kit) howToBook() string {
	where := "the business's website dashboard"
	if k.DashboardURL != "" {
		where = "the web dashboard at " + k.DashboardURL
	}
	return "The assistant cannot make bookings; the customer books on " + where + "."
}
