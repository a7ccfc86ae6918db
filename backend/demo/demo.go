// Package demo is the in-memory demo business behind the `demo` tenant and
// every tenant configured with `backend: {kind: demo}`. Tests, the simulator
// and `parley dev` (which serves it over HTTP with package httpapi) rely on
// its fixed records.
//
// Records are laid out relative to "today" so the product's examples always
// read true ("Sam has two bookings coming up", "Jane's clean is tomorrow
// morning"): every call reads the clock and places the bookings from it.
// Times are wall-clock times in Europe/London (Location), the business's time
// zone; on the wire they carry London's UTC offset.
//
// The layout, for a clock reading now (today = now's London date):
//
//   - Availability: weekdays only, slots starting 09:00, 11:30 and 14:00; a
//     slot that has started, or whose start time a confirmed booking holds,
//     is not offered.
//   - Sam Patel: a Standard Clean at 09:00 on the first weekday at least 3
//     days after today and a Premium Clean at 11:30 on the first weekday at
//     least 10 days after today (both always more than two days ahead); a
//     completed Standard Clean at 09:00 on the last weekday at least 14 days
//     before today. Subscription "Standard Clean - Fortnightly", Active,
//     £70.00 due on the 1st of next month, 1 of 1 sessions remaining.
//   - Jane Smith: a Standard Clean at the first slot time (09:00, 11:30 or
//     14:00, any day) at least 2 hours after now, which always falls inside
//     the 24-hour cancellation window, so cancelling it is refused. It may
//     be on a weekend: the one exception to the weekday rule, because no
//     weekday slot lies within 24 hours of a Friday evening. Also a completed
//     Premium Clean and a Premium monthly plan with no sessions left.
//   - John Doe: a Deep Clean at 14:00 on the first weekday at least 14 days
//     after today; a paused Deep Clean monthly plan.
//   - Test User: no bookings, no subscription.
//   - Alex Morgan (WhatsApp disabled): one completed Deep Clean, no
//     subscription.
//
// Cancellation state is the only thing that changes; it is kept per booking
// id and guarded by a mutex, so the same Backend may serve many sessions.
package demo

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"
	// The business's time zone must not depend on the host's zoneinfo
	// files (slim containers have none).
	_ "time/tzdata"

	"github.com/parleyhq/parley/backend"
)

// Location is the demo business's time zone.
var Location = mustLoad("Europe/London")

func mustLoad(name string) *time.Location {
	loc, err := time.LoadLocation(name)
	if err != nil {
		panic(err) // unreachable: time/tzdata is linked in
	}
	return loc
}

// Phone numbers of the demo customers.
const (
	PhoneJane = "+447700900123" // Jane Smith, Test User and John Doe share it
	PhoneSam  = "+447700900456"
	PhoneAlex = "+447700900789"
)

// Profile ids of the demo customers.
const (
	ProfileJane = "prof_jane"
	ProfileTest = "prof_test"
	ProfileJohn = "prof_john"
	ProfileSam  = "prof_sam"
	ProfileAlex = "prof_alex"
)

// Service ids.
const (
	ServiceStandard = "svc_standard"
	ServicePremium  = "svc_premium"
	ServiceDeep     = "svc_deep"
)

// Booking ids.
const (
	BookingSamStandard = "bk_1001" // upcoming, cancellable
	BookingSamPremium  = "bk_1002" // upcoming, cancellable
	BookingSamPast     = "bk_0901" // completed
	BookingJaneSoon    = "bk_1003" // upcoming inside 24 hours: cancel refused
	BookingJanePast    = "bk_0902" // completed
	BookingJohnDeep    = "bk_1004" // upcoming, cancellable
	BookingAlexPast    = "bk_0903" // completed
)

// Cancellation policy.
const (
	// CancellationWindow is how long before its start a booking can still
	// be cancelled.
	CancellationWindow = 24 * time.Hour
	// Policy is the cancellation policy in words, returned with every
	// cancellation result.
	Policy = "Free cancellation up to 24 hours before the start of the booking."
)

// Slot start times of a working day, as hour and minute.
var slotTimes = [][2]int{{9, 0}, {11, 30}, {14, 0}}

var services = []backend.Service{
	{ID: ServiceStandard, Name: "Standard Clean", Duration: 3 * time.Hour, DurationMin: 180,
		PricePence: 7500, Currency: "GBP",
		Description: "Dusting, vacuuming, mopping, kitchen and bathroom surfaces."},
	{ID: ServicePremium, Name: "Premium Clean", Duration: 4 * time.Hour, DurationMin: 240,
		PricePence: 9500, Currency: "GBP",
		Description: "A Standard Clean plus inside the oven, fridge and windows."},
	{ID: ServiceDeep, Name: "Deep Clean", Duration: 5 * time.Hour, DurationMin: 300,
		PricePence: 14000, Currency: "GBP",
		Description: "Top to bottom, behind and under furniture; for moving in or out."},
}

// customer is a profile with what the account call returns.
type customer struct {
	profile     backend.Profile
	phone       string
	address     string
	memberSince time.Time
}

var customers = []customer{
	{profile: backend.Profile{ID: ProfileJane, Name: "Jane Smith", Email: "jane@example.com", WhatsAppEnabled: true},
		phone: PhoneJane, address: "8 Willow Close, London N1 4QT", memberSince: date(2022, 11, 2)},
	{profile: backend.Profile{ID: ProfileTest, Name: "Test User", Email: "test@example.com", WhatsAppEnabled: true},
		phone: PhoneJane, address: "1 Test Street, London E1 6AN", memberSince: date(2024, 1, 10)},
	{profile: backend.Profile{ID: ProfileJohn, Name: "John Doe", Email: "admin@example.com", WhatsAppEnabled: true},
		phone: PhoneJane, address: "3 Station Parade, London N1 9AA", memberSince: date(2021, 6, 21)},
	{profile: backend.Profile{ID: ProfileSam, Name: "Sam Patel", Email: "sam@example.com", WhatsAppEnabled: true},
		phone: PhoneSam, address: "42 Orchard Road, London SE15 3JD", memberSince: date(2023, 3, 14)},
	{profile: backend.Profile{ID: ProfileAlex, Name: "Alex Morgan", Email: "alex@example.com", WhatsAppEnabled: false},
		phone: PhoneAlex, address: "17 Harbour Lane, Brighton BN2 1AA", memberSince: date(2023, 9, 5)},
}

func date(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, Location) }

// seed is a booking whose start is placed relative to the clock.
type seed struct {
	id, profileID, serviceID string
	completed                bool // a past booking, status completed
	start                    func(now, today time.Time) time.Time
}

var seeds = []seed{
	{id: BookingSamStandard, profileID: ProfileSam, serviceID: ServiceStandard,
		start: func(_, today time.Time) time.Time { return at(weekdayFrom(today, 3, +1), 9, 0) }},
	{id: BookingSamPremium, profileID: ProfileSam, serviceID: ServicePremium,
		start: func(_, today time.Time) time.Time { return at(weekdayFrom(today, 10, +1), 11, 30) }},
	{id: BookingSamPast, profileID: ProfileSam, serviceID: ServiceStandard, completed: true,
		start: func(_, today time.Time) time.Time { return at(weekdayFrom(today, -14, -1), 9, 0) }},
	{id: BookingJaneSoon, profileID: ProfileJane, serviceID: ServiceStandard,
		start: func(now, today time.Time) time.Time { return nextSlotTime(now, today, 2*time.Hour) }},
	{id: BookingJanePast, profileID: ProfileJane, serviceID: ServicePremium, completed: true,
		start: func(_, today time.Time) time.Time { return at(weekdayFrom(today, -28, -1), 11, 30) }},
	{id: BookingJohnDeep, profileID: ProfileJohn, serviceID: ServiceDeep,
		start: func(_, today time.Time) time.Time { return at(weekdayFrom(today, 14, +1), 14, 0) }},
	{id: BookingAlexPast, profileID: ProfileAlex, serviceID: ServiceDeep, completed: true,
		start: func(_, today time.Time) time.Time { return at(weekdayFrom(today, -60, -1), 14, 0) }},
}

// plan is a subscription placed relative to the clock.
type plan struct {
	sub backend.Subscription
	// monthsToPayment: the next payment is on the 1st, this many months
	// after the current one.
	monthsToPayment int
}

var plans = map[string]plan{
	ProfileSam: {monthsToPayment: 1, sub: backend.Subscription{
		ProfileID: ProfileSam, Plan: "Standard Clean - Fortnightly", Status: "Active",
		PricePence: 7000, Currency: "GBP", NextPaymentPence: 7000,
		SessionsPerPeriod: 1, SessionsRemaining: 1, PeriodDescription: "fortnight"}},
	ProfileJane: {monthsToPayment: 1, sub: backend.Subscription{
		ProfileID: ProfileJane, Plan: "Premium Clean - Monthly", Status: "Active",
		PricePence: 9000, Currency: "GBP", NextPaymentPence: 9000,
		SessionsPerPeriod: 1, SessionsRemaining: 0, PeriodDescription: "month"}},
	// Paused: billing resumes a month later than it would have.
	ProfileJohn: {monthsToPayment: 2, sub: backend.Subscription{
		ProfileID: ProfileJohn, Plan: "Deep Clean - Monthly", Status: "Paused",
		PricePence: 14000, Currency: "GBP", NextPaymentPence: 14000,
		SessionsPerPeriod: 1, SessionsRemaining: 0, PeriodDescription: "month"}},
}

// Backend is the demo business. It is safe for concurrent use.
type Backend struct {
	now func() time.Time

	mu sync.Mutex
	// cancelled holds the ids of the bookings cancelled so far. Keyed by id
	// rather than stored on a booking because bookings are re-placed from
	// the clock on every call.
	cancelled map[string]bool
}

var _ backend.Backend = (*Backend)(nil)

// New returns the demo business on the wall clock.
func New() *Backend { return NewAt(time.Now) }

// NewAt returns the demo business on the given clock, for tests that need
// fixed dates.
func NewAt(now func() time.Time) *Backend {
	return &Backend{now: now, cancelled: map[string]bool{}}
}

// ProfilesByPhone implements backend.Backend. An unknown number has no
// profiles.
func (b *Backend) ProfilesByPhone(_ context.Context, phone string) ([]backend.Profile, error) {
	var out []backend.Profile
	for _, c := range customers {
		if c.phone == phone {
			out = append(out, c.profile)
		}
	}
	return out, nil
}

// Services implements backend.Backend.
func (b *Backend) Services(context.Context) ([]backend.Service, error) {
	return slices.Clone(services), nil
}

// Availability implements backend.Backend: weekday slots at 09:00, 11:30 and
// 14:00 London time that have not started and that no confirmed booking
// holds. The business runs one team per start time, so a booking takes its
// slot off for every service.
func (b *Backend) Availability(_ context.Context, serviceID string, day time.Time) ([]backend.Slot, error) {
	svc, ok := serviceByID(serviceID)
	if !ok {
		return nil, fmt.Errorf("demo: unknown service %q: %w", serviceID, backend.ErrInvalid)
	}
	if day.IsZero() {
		return nil, fmt.Errorf("demo: availability needs a date: %w", backend.ErrInvalid)
	}
	d := date(day.Year(), day.Month(), day.Day())
	slots := []backend.Slot{} // empty, not nil: JSON says [] for a closed day
	if isWeekend(d) {
		return slots, nil
	}
	now := b.now()
	b.mu.Lock()
	booked := b.bookingsLocked(now)
	b.mu.Unlock()
	for _, hm := range slotTimes {
		start := at(d, hm[0], hm[1])
		if !start.After(now) {
			continue
		}
		if slices.ContainsFunc(booked, func(bk backend.Booking) bool {
			return bk.Status == "confirmed" && bk.Start.Equal(start)
		}) {
			continue
		}
		slots = append(slots, backend.Slot{Start: start, End: start.Add(svc.Duration)})
	}
	return slots, nil
}

// Bookings implements backend.Backend. Upcoming is the confirmed bookings
// not yet started, soonest first; Past is every booking that has started,
// most recent first. A cancelled booking that had not started is in
// neither: it will not happen, and it has not happened.
func (b *Backend) Bookings(_ context.Context, profileID string, filter backend.BookingFilter) ([]backend.Booking, error) {
	if _, ok := customerByID(profileID); !ok {
		return nil, fmt.Errorf("demo: profile %q: %w", profileID, backend.ErrNotFound)
	}
	if filter != backend.Upcoming && filter != backend.Past {
		return nil, fmt.Errorf("demo: booking filter %q: %w", filter, backend.ErrInvalid)
	}
	now := b.now()
	b.mu.Lock()
	all := b.bookingsLocked(now)
	b.mu.Unlock()
	out := []backend.Booking{}
	for _, bk := range all {
		if bk.ProfileID != profileID {
			continue
		}
		started := !bk.Start.After(now)
		switch {
		case filter == backend.Upcoming && !started && bk.Status == "confirmed",
			filter == backend.Past && started:
			out = append(out, bk)
		}
	}
	slices.SortFunc(out, func(x, y backend.Booking) int {
		if filter == backend.Past {
			return y.Start.Compare(x.Start)
		}
		return x.Start.Compare(y.Start)
	})
	return out, nil
}

// CancelBooking implements backend.Backend under the policy "free
// cancellation up to 24 hours before the start". A booking that is not the
// profile's is ErrNotFound, worded as for a missing one so that a guessed id
// reveals nothing. Cancelling twice is not an error: the second result says
// AlreadyCancelled. A refusal by policy is a result with a Reason.
func (b *Backend) CancelBooking(_ context.Context, profileID, bookingID string) (backend.CancelResult, error) {
	now := b.now()
	// One critical section from lookup to update, so two concurrent
	// confirmations cancel once and the second sees AlreadyCancelled.
	b.mu.Lock()
	defer b.mu.Unlock()
	var bk backend.Booking
	found := false
	for _, x := range b.bookingsLocked(now) {
		if x.ID == bookingID && x.ProfileID == profileID {
			bk, found = x, true
			break
		}
	}
	if !found {
		return backend.CancelResult{}, fmt.Errorf("demo: booking %q of profile %q: %w", bookingID, profileID, backend.ErrNotFound)
	}
	res := backend.CancelResult{Booking: bk, Policy: Policy}
	switch until := bk.Start.Sub(now); {
	case bk.Status == "cancelled":
		res.Cancelled, res.AlreadyCancelled = true, true
	case until <= 0:
		res.Reason = "This booking has already started or taken place, so it can no longer be cancelled."
	case until < CancellationWindow:
		res.Reason = "This booking starts in less than 24 hours. Bookings can only be cancelled up to 24 hours before the start; please contact the team if you need to change it."
	default:
		b.cancelled[bk.ID] = true
		res.Cancelled = true
		res.Booking.Status = "cancelled"
	}
	return res, nil
}

// Account implements backend.Backend.
func (b *Backend) Account(_ context.Context, profileID string) (backend.Account, error) {
	c, ok := customerByID(profileID)
	if !ok {
		return backend.Account{}, fmt.Errorf("demo: profile %q: %w", profileID, backend.ErrNotFound)
	}
	return backend.Account{
		ProfileID: c.profile.ID, Name: c.profile.Name, Email: c.profile.Email,
		Phone: c.phone, Address: c.address, MemberSince: c.memberSince,
	}, nil
}

// Subscription implements backend.Backend. Profiles without a plan (Test
// User, Alex Morgan) are ErrNotFound.
func (b *Backend) Subscription(_ context.Context, profileID string) (backend.Subscription, error) {
	if _, ok := customerByID(profileID); !ok {
		return backend.Subscription{}, fmt.Errorf("demo: profile %q: %w", profileID, backend.ErrNotFound)
	}
	p, ok := plans[profileID]
	if !ok {
		return backend.Subscription{}, fmt.Errorf("demo: subscription of profile %q: %w", profileID, backend.ErrNotFound)
	}
	today := b.today()
	s := p.sub
	s.NextPaymentDate = time.Date(today.Year(), today.Month()+time.Month(p.monthsToPayment), 1, 0, 0, 0, 0, Location)
	return s, nil
}

// bookingsLocked places every booking for the clock reading now and applies
// the cancellations. b.mu must be held.
func (b *Backend) bookingsLocked(now time.Time) []backend.Booking {
	now = now.In(Location)
	today := date(now.Year(), now.Month(), now.Day())
	out := make([]backend.Booking, 0, len(seeds))
	for _, s := range seeds {
		svc, _ := serviceByID(s.serviceID)
		c, _ := customerByID(s.profileID)
		start := s.start(now, today)
		status := "confirmed"
		switch {
		case b.cancelled[s.id]:
			status = "cancelled"
		case s.completed:
			status = "completed"
		}
		out = append(out, backend.Booking{
			ID: s.id, ProfileID: s.profileID, ServiceID: svc.ID, ServiceName: svc.Name,
			Start: start, End: start.Add(svc.Duration), Status: status, Address: c.address,
		})
	}
	return out
}

func (b *Backend) today() time.Time {
	now := b.now().In(Location)
	return date(now.Year(), now.Month(), now.Day())
}

func serviceByID(id string) (backend.Service, bool) {
	i := slices.IndexFunc(services, func(s backend.Service) bool { return s.ID == id })
	if i < 0 {
		return backend.Service{}, false
	}
	return services[i], true
}

func customerByID(id string) (customer, bool) {
	i := slices.IndexFunc(customers, func(c customer) bool { return c.profile.ID == id })
	if i < 0 {
		return customer{}, false
	}
	return customers[i], true
}

// at is the given wall-clock time in London on day. Built with time.Date
// rather than by adding hours so that it stays right across DST changes.
func at(day time.Time, hour, minute int) time.Time {
	return time.Date(day.Year(), day.Month(), day.Day(), hour, minute, 0, 0, Location)
}

// weekdayFrom is the day offset days from today, moved by step (+1 later, -1
// earlier) until it is a weekday.
func weekdayFrom(today time.Time, offset, step int) time.Time {
	d := date(today.Year(), today.Month(), today.Day()+offset)
	for isWeekend(d) {
		d = date(d.Year(), d.Month(), d.Day()+step)
	}
	return d
}

// nextSlotTime is the first slot time of any day that starts at least lead
// after now. Slot times are never more than 19 hours apart (14:00 to 09:00
// the next day), so with a 2-hour lead it is always within 21 hours.
func nextSlotTime(now, today time.Time, lead time.Duration) time.Time {
	for day := 0; ; day++ {
		for _, hm := range slotTimes {
			t := at(date(today.Year(), today.Month(), today.Day()+day), hm[0], hm[1])
			if !t.Before(now.Add(lead)) {
				return t
			}
		}
	}
}

func isWeekend(d time.Time) bool {
	return d.Weekday() == time.Saturday || d.Weekday() == time.Sunday
}
