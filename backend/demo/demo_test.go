package demo

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parleyhq/parley/backend"
)

// London wall-clock time, for fixed clocks and expectations.
func london(y int, m time.Month, d, hh, mm int) time.Time {
	return time.Date(y, m, d, hh, mm, 0, 0, Location)
}

func fixed(t time.Time) func() time.Time { return func() time.Time { return t } }

var ctx = context.Background()

// Clocks the tests run on; the comments give what the rules make of them.
var (
	wednesday    = london(2025, 6, 11, 10, 0) // Jane at 14:00 today; Sam Mon 16 09:00 and Mon 23 11:30
	fridayEve    = london(2025, 6, 13, 18, 0) // Jane on Saturday 09:00; Sam Mon 16 09:00
	saturday     = london(2025, 6, 14, 12, 0)
	winter       = london(2025, 1, 15, 8, 0)  // GMT: 09:00 London is 09:00Z
	beforeSpring = london(2025, 3, 28, 18, 0) // Friday before the clocks go forward on Sunday 30 March
)

func TestProfilesByPhone(t *testing.T) {
	b := New()
	tests := []struct {
		phone string
		want  []string // "id name email whatsapp"
	}{
		{PhoneJane, []string{
			"prof_jane Jane Smith jane@example.com true",
			"prof_test Test User test@example.com true",
			"prof_john John Doe admin@example.com true",
		}},
		{PhoneSam, []string{"prof_sam Sam Patel sam@example.com true"}},
		{PhoneAlex, []string{"prof_alex Alex Morgan alex@example.com false"}},
		{"+447700900000", nil},
		{"", nil},
	}
	for _, tt := range tests {
		ps, err := b.ProfilesByPhone(ctx, tt.phone)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, p := range ps {
			got = append(got, fmt.Sprintf("%s %s %s %t", p.ID, p.Name, p.Email, p.WhatsAppEnabled))
		}
		if strings.Join(got, "|") != strings.Join(tt.want, "|") {
			t.Errorf("%q: got %q, want %q", tt.phone, got, tt.want)
		}
	}
}

func TestServices(t *testing.T) {
	svcs, err := New().Services(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		id, name string
		d        time.Duration
	}{
		{ServiceStandard, "Standard Clean", 3 * time.Hour},
		{ServicePremium, "Premium Clean", 4 * time.Hour},
		{ServiceDeep, "Deep Clean", 5 * time.Hour},
	}
	if len(svcs) != len(want) {
		t.Fatalf("got %d services", len(svcs))
	}
	for i, w := range want {
		s := svcs[i]
		if s.ID != w.id || s.Name != w.name || s.Duration != w.d || s.DurationMin != int(w.d/time.Minute) ||
			s.Currency != "GBP" || s.PricePence <= 0 {
			t.Errorf("service %d = %+v, want %s %s %s in GBP", i, s, w.id, w.name, w.d)
		}
	}
	svcs[0].Name = "changed"
	if again, _ := New().Services(ctx); again[0].Name != "Standard Clean" {
		t.Error("Services returns the shared slice")
	}
}

func TestAvailability(t *testing.T) {
	tests := []struct {
		name    string
		now     time.Time
		service string
		day     time.Time
		want    []time.Time // starts
	}{
		{"today: 09:00 has passed, Jane holds 14:00", wednesday, ServiceStandard,
			london(2025, 6, 11, 0, 0), []time.Time{london(2025, 6, 11, 11, 30)}},
		{"tomorrow: all three", wednesday, ServicePremium, london(2025, 6, 12, 0, 0),
			[]time.Time{london(2025, 6, 12, 9, 0), london(2025, 6, 12, 11, 30), london(2025, 6, 12, 14, 0)}},
		{"the date's time of day does not matter", wednesday, ServicePremium, london(2025, 6, 12, 23, 59),
			[]time.Time{london(2025, 6, 12, 9, 0), london(2025, 6, 12, 11, 30), london(2025, 6, 12, 14, 0)}},
		{"a UTC date means the same calendar day", wednesday, ServiceDeep, time.Date(2025, 6, 12, 0, 0, 0, 0, time.UTC),
			[]time.Time{london(2025, 6, 12, 9, 0), london(2025, 6, 12, 11, 30), london(2025, 6, 12, 14, 0)}},
		{"Saturday closed", wednesday, ServiceStandard, london(2025, 6, 14, 0, 0), nil},
		{"Sunday closed", wednesday, ServiceStandard, london(2025, 6, 15, 0, 0), nil},
		{"yesterday", wednesday, ServiceStandard, london(2025, 6, 10, 0, 0), nil},
		{"Monday: Sam holds 09:00", wednesday, ServiceStandard, london(2025, 6, 16, 0, 0),
			[]time.Time{london(2025, 6, 16, 11, 30), london(2025, 6, 16, 14, 0)}},
		{"Monday after next: Sam holds 11:30", wednesday, ServiceStandard, london(2025, 6, 23, 0, 0),
			[]time.Time{london(2025, 6, 23, 9, 0), london(2025, 6, 23, 14, 0)}},
		{"Friday evening: nothing left today", fridayEve, ServiceStandard, london(2025, 6, 13, 0, 0), nil},
		{"Friday evening: Saturday closed even with Jane's booking on it", fridayEve, ServiceStandard, london(2025, 6, 14, 0, 0), nil},
		{"Friday evening: next Monday, Sam holds 09:00", fridayEve, ServiceStandard, london(2025, 6, 16, 0, 0),
			[]time.Time{london(2025, 6, 16, 11, 30), london(2025, 6, 16, 14, 0)}},
		{"Saturday: Monday", saturday, ServiceDeep, london(2025, 6, 16, 0, 0),
			[]time.Time{london(2025, 6, 16, 9, 0), london(2025, 6, 16, 11, 30), london(2025, 6, 16, 14, 0)}},
		{"after the clocks change", beforeSpring, ServiceStandard, london(2025, 4, 1, 0, 0),
			[]time.Time{london(2025, 4, 1, 9, 0), london(2025, 4, 1, 11, 30), london(2025, 4, 1, 14, 0)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			slots, err := NewAt(fixed(tt.now)).Availability(ctx, tt.service, tt.day)
			if err != nil {
				t.Fatal(err)
			}
			if slots == nil {
				t.Error("nil slots; want an empty list")
			}
			svc, _ := serviceByID(tt.service)
			if len(slots) != len(tt.want) {
				t.Fatalf("got %v, want %v", slots, tt.want)
			}
			for i, s := range slots {
				if !s.Start.Equal(tt.want[i]) || !s.End.Equal(tt.want[i].Add(svc.Duration)) {
					t.Errorf("slot %d = %v–%v, want start %v and %s long", i, s.Start, s.End, tt.want[i], svc.Duration)
				}
			}
		})
	}

	t.Run("London time on the wire", func(t *testing.T) {
		b := NewAt(fixed(winter))
		slots, _ := b.Availability(ctx, ServiceStandard, london(2025, 1, 16, 0, 0))
		if got := slots[0].Start.UTC(); !got.Equal(time.Date(2025, 1, 16, 9, 0, 0, 0, time.UTC)) {
			t.Errorf("winter 09:00 London = %v UTC", got)
		}
		b = NewAt(fixed(wednesday))
		slots, _ = b.Availability(ctx, ServiceStandard, london(2025, 6, 12, 0, 0))
		if got := slots[0].Start.UTC(); !got.Equal(time.Date(2025, 6, 12, 8, 0, 0, 0, time.UTC)) {
			t.Errorf("summer 09:00 London = %v UTC", got)
		}
	})

	for _, tt := range []struct {
		name, service string
		day           time.Time
	}{
		{"unknown service", "svc_nope", london(2025, 6, 12, 0, 0)},
		{"no service", "", london(2025, 6, 12, 0, 0)},
		{"no date", ServiceStandard, time.Time{}},
	} {
		if _, err := NewAt(fixed(wednesday)).Availability(ctx, tt.service, tt.day); !errors.Is(err, backend.ErrInvalid) {
			t.Errorf("%s: err = %v, want ErrInvalid", tt.name, err)
		}
	}
}

func TestBookings(t *testing.T) {
	tests := []struct {
		name    string
		now     time.Time
		profile string
		filter  backend.BookingFilter
		want    []string // "id service start status"
	}{
		{"Sam upcoming", wednesday, ProfileSam, backend.Upcoming, []string{
			"bk_1001 Standard Clean 2025-06-16 09:00 confirmed",
			"bk_1002 Premium Clean 2025-06-23 11:30 confirmed",
		}},
		{"Sam past", wednesday, ProfileSam, backend.Past, []string{
			"bk_0901 Standard Clean 2025-05-28 09:00 completed",
		}},
		{"Sam upcoming from Friday evening", fridayEve, ProfileSam, backend.Upcoming, []string{
			"bk_1001 Standard Clean 2025-06-16 09:00 confirmed",
			"bk_1002 Premium Clean 2025-06-23 11:30 confirmed",
		}},
		{"Sam upcoming across the clock change", beforeSpring, ProfileSam, backend.Upcoming, []string{
			"bk_1001 Standard Clean 2025-03-31 09:00 confirmed",
			"bk_1002 Premium Clean 2025-04-07 11:30 confirmed",
		}},
		{"Jane upcoming today", wednesday, ProfileJane, backend.Upcoming, []string{
			"bk_1003 Standard Clean 2025-06-11 14:00 confirmed",
		}},
		{"Jane upcoming from Friday evening: Saturday", fridayEve, ProfileJane, backend.Upcoming, []string{
			"bk_1003 Standard Clean 2025-06-14 09:00 confirmed",
		}},
		{"Jane past", wednesday, ProfileJane, backend.Past, []string{
			"bk_0902 Premium Clean 2025-05-14 11:30 completed",
		}},
		{"John upcoming", wednesday, ProfileJohn, backend.Upcoming, []string{
			"bk_1004 Deep Clean 2025-06-25 14:00 confirmed",
		}},
		{"Test User has none", wednesday, ProfileTest, backend.Upcoming, nil},
		{"Alex past", wednesday, ProfileAlex, backend.Past, []string{
			"bk_0903 Deep Clean 2025-04-11 14:00 completed",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bks, err := NewAt(fixed(tt.now)).Bookings(ctx, tt.profile, tt.filter)
			if err != nil {
				t.Fatal(err)
			}
			if bks == nil {
				t.Error("nil bookings; want an empty list")
			}
			var got []string
			for _, bk := range bks {
				got = append(got, fmt.Sprintf("%s %s %s %s", bk.ID, bk.ServiceName, bk.Start.In(Location).Format("2006-01-02 15:04"), bk.Status))
				if bk.ProfileID != tt.profile {
					t.Errorf("%s belongs to %s", bk.ID, bk.ProfileID)
				}
				svc, _ := serviceByID(bk.ServiceID)
				if !bk.End.Equal(bk.Start.Add(svc.Duration)) || bk.Address == "" {
					t.Errorf("%s: end %v, address %q", bk.ID, bk.End, bk.Address)
				}
			}
			if strings.Join(got, "|") != strings.Join(tt.want, "|") {
				t.Errorf("got %q\nwant %q", got, tt.want)
			}
		})
	}

	b := NewAt(fixed(wednesday))
	if _, err := b.Bookings(ctx, "prof_nobody", backend.Upcoming); !errors.Is(err, backend.ErrNotFound) {
		t.Errorf("unknown profile: %v, want ErrNotFound", err)
	}
	if _, err := b.Bookings(ctx, ProfileSam, "soon"); !errors.Is(err, backend.ErrInvalid) {
		t.Errorf("bad filter: %v, want ErrInvalid", err)
	}
}

// TestRulesHoldAtEveryHour walks the clock through three weeks, an hour at
// a time, across a clock change, and checks the promises the product's
// examples rely on: Sam's two bookings more than two days ahead and
// cancellable, Jane's inside the 24-hour window and refused.
func TestRulesHoldAtEveryHour(t *testing.T) {
	start := london(2025, 3, 20, 0, 17)
	for now := start; now.Before(start.Add(21 * 24 * time.Hour)); now = now.Add(time.Hour) {
		b := NewAt(fixed(now))
		sam, _ := b.Bookings(ctx, ProfileSam, backend.Upcoming)
		if len(sam) != 2 || sam[0].ServiceID != ServiceStandard || sam[1].ServiceID != ServicePremium {
			t.Fatalf("%v: Sam's upcoming = %v", now, sam)
		}
		for _, bk := range sam {
			if bk.Start.Sub(now) <= 48*time.Hour || isWeekend(bk.Start) {
				t.Fatalf("%v: Sam's %s at %v", now, bk.ID, bk.Start)
			}
		}
		jane, _ := b.Bookings(ctx, ProfileJane, backend.Upcoming)
		if len(jane) != 1 {
			t.Fatalf("%v: Jane's upcoming = %v", now, jane)
		}
		if until := jane[0].Start.Sub(now); until < time.Hour || until >= CancellationWindow {
			t.Fatalf("%v: Jane's booking starts in %v", now, until)
		}
		res, err := b.CancelBooking(ctx, ProfileJane, BookingJaneSoon)
		if err != nil || res.Cancelled {
			t.Fatalf("%v: cancelling Jane's: %+v, %v", now, res, err)
		}
		res, err = b.CancelBooking(ctx, ProfileSam, BookingSamPremium)
		if err != nil || !res.Cancelled {
			t.Fatalf("%v: cancelling Sam's: %+v, %v", now, res, err)
		}
	}
}

func TestCancelBooking(t *testing.T) {
	b := NewAt(fixed(wednesday))

	t.Run("inside the 24-hour window is refused", func(t *testing.T) {
		res, err := b.CancelBooking(ctx, ProfileJane, BookingJaneSoon)
		if err != nil {
			t.Fatal(err)
		}
		if res.Cancelled || !strings.Contains(res.Reason, "24 hours") || res.Policy != Policy || res.Booking.ID != BookingJaneSoon || res.Booking.Status != "confirmed" {
			t.Errorf("got %+v", res)
		}
		if up, _ := b.Bookings(ctx, ProfileJane, backend.Upcoming); len(up) != 1 {
			t.Errorf("a refusal changed the bookings: %v", up)
		}
	})

	t.Run("another profile's booking is not found", func(t *testing.T) {
		for _, tt := range []struct{ profile, booking string }{
			{ProfileSam, BookingJaneSoon},
			{ProfileJane, BookingSamStandard},
			{ProfileTest, BookingJohnDeep}, // same phone number, still not hers
			{ProfileSam, "bk_9999"},
			{"prof_nobody", BookingSamStandard},
		} {
			if _, err := b.CancelBooking(ctx, tt.profile, tt.booking); !errors.Is(err, backend.ErrNotFound) {
				t.Errorf("%s cancels %s: %v, want ErrNotFound", tt.profile, tt.booking, err)
			}
		}
	})

	t.Run("a past booking is refused", func(t *testing.T) {
		res, err := b.CancelBooking(ctx, ProfileSam, BookingSamPast)
		if err != nil || res.Cancelled || res.Reason == "" {
			t.Errorf("got %+v, %v", res, err)
		}
	})

	t.Run("cancel, then again", func(t *testing.T) {
		monday := london(2025, 6, 16, 0, 0)
		res, err := b.CancelBooking(ctx, ProfileSam, BookingSamStandard)
		if err != nil || !res.Cancelled || res.AlreadyCancelled || res.Booking.Status != "cancelled" || res.Policy != Policy {
			t.Fatalf("got %+v, %v", res, err)
		}
		up, _ := b.Bookings(ctx, ProfileSam, backend.Upcoming)
		if len(up) != 1 || up[0].ID != BookingSamPremium {
			t.Errorf("upcoming after cancelling = %v", up)
		}
		if slots, _ := b.Availability(ctx, ServiceStandard, monday); len(slots) != 3 {
			t.Errorf("the cancelled slot is not free again: %v", slots)
		}
		res, err = b.CancelBooking(ctx, ProfileSam, BookingSamStandard)
		if err != nil || !res.Cancelled || !res.AlreadyCancelled || res.Booking.Status != "cancelled" {
			t.Errorf("second cancel: %+v, %v", res, err)
		}
		// Another Backend has its own state.
		if up, _ := NewAt(fixed(wednesday)).Bookings(ctx, ProfileSam, backend.Upcoming); len(up) != 2 {
			t.Errorf("state leaked between backends: %v", up)
		}
	})

	t.Run("concurrent confirmations cancel once", func(t *testing.T) {
		var wg sync.WaitGroup
		var mu sync.Mutex
		first := 0
		for range 32 {
			wg.Go(func() {
				res, err := b.CancelBooking(ctx, ProfileSam, BookingSamPremium)
				if err != nil || !res.Cancelled {
					t.Errorf("got %+v, %v", res, err)
				}
				if !res.AlreadyCancelled {
					mu.Lock()
					first++
					mu.Unlock()
				}
			})
			wg.Go(func() { _, _ = b.Bookings(ctx, ProfileSam, backend.Upcoming) })
		}
		wg.Wait()
		if first != 1 {
			t.Errorf("%d requests cancelled it, want 1", first)
		}
	})
}

func TestSubscription(t *testing.T) {
	tests := []struct {
		name    string
		now     time.Time
		profile string
		want    backend.Subscription
	}{
		{"Sam", wednesday, ProfileSam, backend.Subscription{
			ProfileID: ProfileSam, Plan: "Standard Clean - Fortnightly", Status: "Active",
			PricePence: 7000, Currency: "GBP", NextPaymentDate: london(2025, 7, 1, 0, 0), NextPaymentPence: 7000,
			SessionsPerPeriod: 1, SessionsRemaining: 1, PeriodDescription: "fortnight"}},
		{"Sam in December: next year", london(2025, 12, 15, 9, 0), ProfileSam, backend.Subscription{
			ProfileID: ProfileSam, Plan: "Standard Clean - Fortnightly", Status: "Active",
			PricePence: 7000, Currency: "GBP", NextPaymentDate: london(2026, 1, 1, 0, 0), NextPaymentPence: 7000,
			SessionsPerPeriod: 1, SessionsRemaining: 1, PeriodDescription: "fortnight"}},
		{"Sam late on the last day of the month, in UTC", time.Date(2025, 6, 30, 23, 30, 0, 0, time.UTC), ProfileSam, backend.Subscription{
			// 00:30 on 1 July in London: the payment due is August's.
			ProfileID: ProfileSam, Plan: "Standard Clean - Fortnightly", Status: "Active",
			PricePence: 7000, Currency: "GBP", NextPaymentDate: london(2025, 8, 1, 0, 0), NextPaymentPence: 7000,
			SessionsPerPeriod: 1, SessionsRemaining: 1, PeriodDescription: "fortnight"}},
		{"John, paused", wednesday, ProfileJohn, backend.Subscription{
			ProfileID: ProfileJohn, Plan: "Deep Clean - Monthly", Status: "Paused",
			PricePence: 14000, Currency: "GBP", NextPaymentDate: london(2025, 8, 1, 0, 0), NextPaymentPence: 14000,
			SessionsPerPeriod: 1, SessionsRemaining: 0, PeriodDescription: "month"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := NewAt(fixed(tt.now)).Subscription(ctx, tt.profile)
			if err != nil {
				t.Fatal(err)
			}
			if !got.NextPaymentDate.Equal(tt.want.NextPaymentDate) {
				t.Errorf("next payment %v, want %v", got.NextPaymentDate, tt.want.NextPaymentDate)
			}
			got.NextPaymentDate, tt.want.NextPaymentDate = time.Time{}, time.Time{}
			if got != tt.want {
				t.Errorf("got %+v\nwant %+v", got, tt.want)
			}
		})
	}
	for _, p := range []string{ProfileTest, ProfileAlex, "prof_nobody"} {
		if _, err := NewAt(fixed(wednesday)).Subscription(ctx, p); !errors.Is(err, backend.ErrNotFound) {
			t.Errorf("%s: %v, want ErrNotFound", p, err)
		}
	}
}

func TestAccount(t *testing.T) {
	b := New()
	a, err := b.Account(ctx, ProfileSam)
	if err != nil {
		t.Fatal(err)
	}
	if a.ProfileID != ProfileSam || a.Name != "Sam Patel" || a.Email != "sam@example.com" || a.Phone != PhoneSam ||
		a.Address == "" || a.MemberSince.IsZero() {
		t.Errorf("got %+v", a)
	}
	for _, c := range customers {
		if a, err := b.Account(ctx, c.profile.ID); err != nil || a.Phone != c.phone {
			t.Errorf("%s: %+v, %v", c.profile.ID, a, err)
		}
	}
	if _, err := b.Account(ctx, "prof_nobody"); !errors.Is(err, backend.ErrNotFound) {
		t.Errorf("unknown profile: %v", err)
	}
}
