package tools

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/parleyhq/parley/backend"
	"github.com/parleyhq/parley/backend/demo"
	"github.com/parleyhq/parley/brain"
)

// now is Tuesday 10 March 2026, 10:00 London. The demo then has Sam's
// Standard Clean on Friday 13 March at 9:00 (bk_1001), his Premium Clean
// on Friday 20 March at 11:30 (bk_1002), and Jane's Standard Clean today at
// 14:00 (bk_1003, inside the cancellation window).
var now = time.Date(2026, 3, 10, 10, 0, 0, 0, demo.Location)

func newKit() (*Kit, *demo.Backend) {
	be := demo.NewAt(func() time.Time { return now })
	return &Kit{Backend: be, Location: demo.Location}, be
}

var (
	sam      = Caller{Authenticated: true, ProfileID: demo.ProfileSam, FirstName: "Sam", Now: now}
	jane     = Caller{Authenticated: true, ProfileID: demo.ProfileJane, FirstName: "Jane", Now: now}
	stranger = Caller{Now: now}
	// signedOut has a profile id but no sign-in: the id must not be enough.
	signedOut = Caller{ProfileID: demo.ProfileSam, Now: now}
)

func TestAccountToolsNeedSignIn(t *testing.T) {
	k, _ := newKit()
	ctx := context.Background()
	for _, c := range []Caller{stranger, signedOut} {
		results := []Result{
			k.Bookings(ctx, c, BookingsArgs{}),
			k.Cancel(ctx, c, CancelArgs{BookingID: demo.BookingSamStandard, Confirm: true}),
			k.Account(ctx, c),
			k.Subscription(ctx, c),
		}
		for _, r := range results {
			if r.OK || r.Code != ErrNotSignedIn || r.Call.OK || r.Call.Error != ErrNotSignedIn || r.SetPending != nil {
				t.Errorf("%s for %+v: %+v", r.Tool, c, r)
			}
		}
	}
	// Public tools work without sign-in.
	for _, r := range []Result{k.Services(ctx, stranger), k.Availability(ctx, stranger, AvailabilityArgs{Date: "tomorrow"}), k.Help(ctx, stranger)} {
		if !r.OK {
			t.Errorf("%s without sign-in: %+v", r.Tool, r)
		}
	}
}

// TestCallIgnoresProfileArguments: the profile comes from the session;
// a profile id in the model's arguments changes nothing.
func TestCallIgnoresProfileArguments(t *testing.T) {
	k, _ := newKit()
	r := k.Call(context.Background(), sam, ListBookings, `{"profile_id":"prof_jane","when":"upcoming"}`)
	if !r.OK {
		t.Fatalf("%+v", r)
	}
	js := r.JSON()
	if strings.Contains(js, demo.BookingJaneSoon) || !strings.Contains(js, demo.BookingSamStandard) {
		t.Errorf("list_bookings: %s", js)
	}
	r = k.Call(context.Background(), sam, AccountInfo, `{"profile_id":"prof_jane"}`)
	if d, ok := r.Data.(AccountData); !ok || d.Name != "Sam Patel" {
		t.Errorf("account_info: %+v", r.Data)
	}
}

func TestCancelTwoStep(t *testing.T) {
	ctx := context.Background()
	t.Run("propose then confirm", func(t *testing.T) {
		k, be := newKit()
		r := k.Cancel(ctx, sam, CancelArgs{Date: "2026-03-13"})
		d := r.Data.(CancelData)
		if !r.OK || d.Stage != CancelConfirmNeeded || d.Booking.ID != demo.BookingSamStandard || r.SetPending == nil {
			t.Fatalf("proposal %+v", r)
		}
		if p := r.SetPending; p.ProfileID != demo.ProfileSam || p.BookingID != demo.BookingSamStandard || !p.Expires.Equal(now.Add(DefaultPendingTTL)) ||
			!strings.Contains(p.Summary, "Standard Clean on Friday 2026-03-13 at 9:00") {
			t.Errorf("pending %+v", p)
		}
		if !isUpcoming(t, be, demo.ProfileSam, demo.BookingSamStandard) {
			t.Fatal("the proposal cancelled")
		}
		c := sam
		c.Pending = r.SetPending
		r = k.Cancel(ctx, c, CancelArgs{Confirm: true})
		if !r.OK || r.Data.(CancelData).Stage != CancelDone || !r.ClearPending {
			t.Fatalf("confirmation %+v", r)
		}
		if isUpcoming(t, be, demo.ProfileSam, demo.BookingSamStandard) {
			t.Error("not cancelled")
		}
		// A repeated "yes" (a redelivered message) is not an error.
		r = k.Cancel(ctx, c, CancelArgs{Confirm: true})
		if r.OK && r.Data.(CancelData).Stage != CancelAlreadyCancelled || !r.OK && r.Code != ErrNotFound {
			t.Errorf("repeat %+v", r)
		}
	})

	cases := []struct {
		name    string
		caller  func() Caller
		args    CancelArgs
		code    string // failure code, or "" for a successful call
		stage   string
		pending bool
	}{
		{"confirm without a proposal only proposes", func() Caller { return sam },
			CancelArgs{BookingID: demo.BookingSamPremium, Confirm: true}, "", CancelConfirmNeeded, true},
		{"another customer's booking", func() Caller { return sam },
			CancelArgs{BookingID: demo.BookingJaneSoon, Confirm: true}, ErrNotFound, "", false},
		{"a past booking", func() Caller { return sam },
			CancelArgs{BookingID: demo.BookingSamPast}, ErrNotFound, "", false},
		{"a made-up id", func() Caller { return sam },
			CancelArgs{BookingID: "bk_9999"}, ErrNotFound, "", false},
		{"a proposal of another profile is not confirmable", func() Caller {
			c := jane
			c.Pending = &brain.PendingAction{Kind: brain.PendingCancel, ProfileID: demo.ProfileSam, BookingID: demo.BookingSamStandard, Expires: now.Add(time.Minute)}
			return c
		}, CancelArgs{Confirm: true}, "", CancelConfirmNeeded, true},
		{"an expired proposal is not confirmable", func() Caller {
			c := sam
			c.Pending = &brain.PendingAction{Kind: brain.PendingCancel, ProfileID: demo.ProfileSam, BookingID: demo.BookingSamStandard, Expires: now}
			return c
		}, CancelArgs{Confirm: true}, "", CancelChoose, false},
		{"confirming a different booking than proposed only proposes it", func() Caller {
			c := sam
			c.Pending = &brain.PendingAction{Kind: brain.PendingCancel, ProfileID: demo.ProfileSam, BookingID: demo.BookingSamStandard, Expires: now.Add(time.Minute)}
			return c
		}, CancelArgs{BookingID: demo.BookingSamPremium, Confirm: true}, "", CancelConfirmNeeded, true},
		{"several bookings: choose", func() Caller { return sam }, CancelArgs{}, "", CancelChoose, false},
		{"service narrows", func() Caller { return sam }, CancelArgs{Service: "the premium one"}, "", CancelConfirmNeeded, true},
		{"nothing that day", func() Caller { return sam }, CancelArgs{Date: "2026-03-16"}, "", CancelNone, false},
		{"bad date", func() Caller { return sam }, CancelArgs{Date: "someday"}, ErrBadArgs, "", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			k, be := newKit()
			r := k.Cancel(ctx, c.caller(), c.args)
			if c.code != "" {
				if r.OK || r.Code != c.code {
					t.Fatalf("got %+v, want %s", r, c.code)
				}
			} else if !r.OK || r.Data.(CancelData).Stage != c.stage {
				t.Fatalf("got %+v, want stage %s", r, c.stage)
			}
			if (r.SetPending != nil) != c.pending {
				t.Errorf("pending %+v", r.SetPending)
			}
			for _, id := range []string{demo.BookingSamStandard, demo.BookingSamPremium} {
				if !isUpcoming(t, be, demo.ProfileSam, id) {
					t.Errorf("%s cancelled", id)
				}
			}
			if !isUpcoming(t, be, demo.ProfileJane, demo.BookingJaneSoon) {
				t.Error("Jane's booking cancelled")
			}
		})
	}
}

func TestCancelRefusedByPolicy(t *testing.T) {
	k, be := newKit()
	ctx := context.Background()
	r := k.Cancel(ctx, jane, CancelArgs{})
	if r.SetPending == nil {
		t.Fatalf("proposal %+v", r)
	}
	c := jane
	c.Pending = r.SetPending
	r = k.Cancel(ctx, c, CancelArgs{Confirm: true})
	d, _ := r.Data.(CancelData)
	if !r.OK || d.Stage != CancelRefused || d.Policy == "" || d.Reason == "" || !r.ClearPending {
		t.Fatalf("%+v", r)
	}
	if !isUpcoming(t, be, demo.ProfileJane, demo.BookingJaneSoon) {
		t.Error("cancelled inside the window")
	}
}

func TestAvailability(t *testing.T) {
	k, _ := newKit()
	cases := []struct {
		name     string
		args     AvailabilityArgs
		code     string
		date     string
		times    map[string]string // service id → times joined by space
		next     string
		searched bool
	}{
		{"tomorrow, every service", AvailabilityArgs{Date: "2026-03-11"}, "", "2026-03-11",
			map[string]string{demo.ServiceStandard: "9:00 11:30 14:00", demo.ServiceDeep: "9:00 11:30 14:00"}, "", false},
		{"today drops started and held slots", AvailabilityArgs{Date: "today"}, "", "2026-03-10",
			map[string]string{demo.ServiceStandard: "11:30"}, "", false},
		{"friday afternoon", AvailabilityArgs{Date: "2026-03-13", PartOfDay: "afternoon"}, "", "2026-03-13",
			map[string]string{demo.ServicePremium: "14:00"}, "", false},
		{"friday morning, by partial name", AvailabilityArgs{Service: "deep", Date: "friday", PartOfDay: "morning"}, "", "2026-03-13",
			map[string]string{demo.ServiceDeep: "11:30"}, "", false},
		{"spanish service name", AvailabilityArgs{Service: "limpieza profunda", Date: "2026-03-11"}, "", "2026-03-11",
			map[string]string{demo.ServiceDeep: "9:00 11:30 14:00"}, "", false},
		{"saturday has none: next day", AvailabilityArgs{Date: "2026-03-14"}, "", "2026-03-14", nil, "2026-03-16", false},
		{"no date: first free day", AvailabilityArgs{Service: "Premium Clean"}, "", "2026-03-10",
			map[string]string{demo.ServicePremium: "11:30"}, "", true},
		{"past date", AvailabilityArgs{Date: "2026-03-09"}, ErrPastDate, "", nil, "", false},
		{"unknown service", AvailabilityArgs{Service: "window washing", Date: "2026-03-11"}, ErrUnknownSvc, "", nil, "", false},
		{"bad date", AvailabilityArgs{Date: "whenever"}, ErrBadArgs, "", nil, "", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := k.Availability(context.Background(), stranger, c.args)
			if c.code != "" {
				if r.OK || r.Code != c.code {
					t.Fatalf("got %+v, want %s", r, c.code)
				}
				return
			}
			if !r.OK {
				t.Fatalf("%+v", r)
			}
			d := r.Data.(AvailabilityData)
			if d.Date != c.date || d.Searched != c.searched {
				t.Errorf("date %s searched %v", d.Date, d.Searched)
			}
			for id, want := range c.times {
				found := false
				for _, s := range d.Services {
					if s.ServiceID == id {
						found = true
						if got := strings.Join(s.Times, " "); got != want {
							t.Errorf("%s: %q, want %q", id, got, want)
						}
					}
				}
				if !found {
					t.Errorf("%s missing from %+v", id, d.Services)
				}
			}
			if c.next != "" && (d.Next == nil || d.Next.Date != c.next || d.Next.Empty()) {
				t.Errorf("next %+v", d.Next)
			}
			if !strings.Contains(d.HowToBook, "cannot make bookings") {
				t.Errorf("how to book %q", d.HowToBook)
			}
		})
	}
}

func TestAccountAndSubscription(t *testing.T) {
	k, _ := newKit()
	ctx := context.Background()
	a := k.Account(ctx, sam)
	ad := a.Data.(AccountData)
	if !a.OK || ad.Name != "Sam Patel" || ad.Email != "s***@example.com" || strings.Contains(a.JSON(), "sam@example.com") {
		t.Errorf("account %+v", a)
	}
	s := k.Subscription(ctx, sam)
	sd := s.Data.(SubscriptionData)
	if !s.OK || sd.Plan != "Standard Clean - Fortnightly" || sd.Status != "Active" || sd.NextPayment != "£70.00" ||
		sd.NextPaymentDate != "2026-04-01" || sd.SessionsRemaining != 1 || sd.SessionsPerPeriod != 1 {
		t.Errorf("subscription %+v", sd)
	}
	none := k.Subscription(ctx, Caller{Authenticated: true, ProfileID: demo.ProfileTest, Now: now})
	if none.OK || none.Code != ErrNotFound {
		t.Errorf("no plan: %+v", none)
	}
}

func TestHandoffAndHelp(t *testing.T) {
	k, _ := newKit()
	r := k.Handoff(context.Background(), sam, HandoffArgs{Summary: "Wants to discuss a refund; email sam@example.com"})
	if !r.OK || r.Handoff == nil || r.Handoff.Reason != brain.HandoffRequested ||
		!strings.Contains(r.Handoff.Summary, "Sam") || strings.Contains(r.Handoff.Summary, "sam@example.com") {
		t.Errorf("handoff %+v", r.Handoff)
	}
	r = k.Handoff(context.Background(), stranger, HandoffArgs{Summary: strings.Repeat("long ", 500)})
	if len([]rune(r.Handoff.Summary)) > maxSummary {
		t.Errorf("summary of %d runes", len([]rune(r.Handoff.Summary)))
	}
	h := k.Help(context.Background(), sam).Data.(HelpData)
	if len(h.Capabilities) == 0 || h.NotOffered == "" || !h.SignedIn {
		t.Errorf("help %+v", h)
	}
}

// flaky is a backend whose every call fails with err: the demo cannot fail.
type flaky struct{ err error }

func (f flaky) ProfilesByPhone(context.Context, string) ([]backend.Profile, error) { return nil, f.err }
func (f flaky) Services(context.Context) ([]backend.Service, error)                { return nil, f.err }
func (f flaky) Availability(context.Context, string, time.Time) ([]backend.Slot, error) {
	return nil, f.err
}
func (f flaky) Bookings(context.Context, string, backend.BookingFilter) ([]backend.Booking, error) {
	return nil, f.err
}
func (f flaky) CancelBooking(context.Context, string, string) (backend.CancelResult, error) {
	return backend.CancelResult{}, f.err
}
func (f flaky) Account(context.Context, string) (backend.Account, error) {
	return backend.Account{}, f.err
}
func (f flaky) Subscription(context.Context, string) (backend.Subscription, error) {
	return backend.Subscription{}, f.err
}

func TestBackendErrors(t *testing.T) {
	cases := []struct {
		err  error
		code string
	}{
		{fmt.Errorf("GET /services: %w", backend.ErrUnavailable), ErrUnavailable},
		{context.DeadlineExceeded, ErrUnavailable},
		{errors.New("connection reset"), ErrUnavailable},
		{fmt.Errorf("401: %w", backend.ErrUnauthorized), ErrBackendAuth},
		{backend.ErrInvalid, ErrInvalid},
		{backend.ErrNotFound, ErrNotFound},
	}
	for _, c := range cases {
		k := &Kit{Backend: flaky{c.err}}
		for _, r := range []Result{
			k.Services(context.Background(), sam),
			k.Availability(context.Background(), sam, AvailabilityArgs{}),
			k.Bookings(context.Background(), sam, BookingsArgs{}),
			k.Account(context.Background(), sam),
		} {
			if r.OK || r.Code != c.code || r.Call.Error != c.code || r.Call.Tool != r.Tool {
				t.Errorf("%v via %s: %+v", c.err, r.Tool, r)
			}
			if strings.Contains(r.JSON(), "connection reset") {
				t.Errorf("internal error text reaches the model: %s", r.JSON())
			}
		}
		// A failed confirmation keeps the proposal only when trying again
		// may help.
		c2 := sam
		c2.Pending = &brain.PendingAction{Kind: brain.PendingCancel, ProfileID: demo.ProfileSam, BookingID: "bk_1", Expires: now.Add(time.Minute)}
		r := k.Cancel(context.Background(), c2, CancelArgs{Confirm: true})
		if r.ClearPending == (c.code == ErrUnavailable) {
			t.Errorf("%v: clear pending %v", c.err, r.ClearPending)
		}
	}
}

func TestCallDispatch(t *testing.T) {
	k, _ := newKit()
	cases := []struct {
		name, args string
		ok         bool
		code       string
	}{
		{ListServices, "", true, ""},
		{CheckAvailability, `{"date":"2026-03-11","service":"Deep Clean"}`, true, ""},
		{ListBookings, `{"when":"past"}`, true, ""},
		{CancelBooking, `{"date":"2026-03-20"}`, true, ""},
		{AccountInfo, "{}", true, ""},
		{SubscriptionInfo, "null", true, ""},
		{Help, "{}", true, ""},
		{HandoffToHuman, `{"summary":"x"}`, true, ""},
		{CheckAvailability, `{"date":`, false, ErrBadArgs},
		{"create_booking", `{}`, false, ErrUnknownTool},
	}
	for _, c := range cases {
		r := k.Call(context.Background(), sam, c.name, c.args)
		if r.OK != c.ok || r.Code != c.code || r.Call.Tool != c.name || r.Tool != c.name {
			t.Errorf("%s(%s): %+v", c.name, c.args, r)
		}
		var v map[string]any
		if err := json.Unmarshal([]byte(r.JSON()), &v); err != nil {
			t.Errorf("%s: result is not a JSON object: %v", c.name, err)
		}
	}
}

// TestDefinitions: every tool has a valid schema without a profile field,
// and every definition is callable.
func TestDefinitions(t *testing.T) {
	k, _ := newKit()
	seen := map[string]bool{}
	for _, d := range Definitions() {
		var schema struct {
			Type       string                     `json:"type"`
			Properties map[string]json.RawMessage `json:"properties"`
		}
		if err := json.Unmarshal(d.Parameters, &schema); err != nil || schema.Type != "object" {
			t.Errorf("%s: schema %v", d.Name, err)
		}
		for p := range schema.Properties {
			if strings.Contains(p, "profile") || strings.Contains(p, "customer") || strings.Contains(p, "phone") {
				t.Errorf("%s: argument %q would let the model pick the customer", d.Name, p)
			}
		}
		if d.Description == "" {
			t.Errorf("%s: no description", d.Name)
		}
		if r := k.Call(context.Background(), sam, d.Name, "{}"); r.Code == ErrUnknownTool {
			t.Errorf("%s: defined but not callable", d.Name)
		}
		seen[d.Name] = true
	}
	if len(seen) != 8 {
		t.Errorf("%d tools defined, want 8", len(seen))
	}
}

func TestMatchServices(t *testing.T) {
	k, _ := newKit()
	all, _ := k.Backend.Services(context.Background())
	cases := []struct {
		text     string
		want     string
		specific bool
	}{
		{"deep clean", demo.ServiceDeep, true},
		{"Can I get a Premium Clean?", demo.ServicePremium, true},
		{"standrd", demo.ServiceStandard, true},
		{"limpieza estándar", demo.ServiceStandard, true},
		{demo.ServiceDeep, demo.ServiceDeep, true},
		{"a clean", "", false},
		{"", "", false},
	}
	for _, c := range cases {
		got, specific := MatchServices(all, c.text)
		if specific != c.specific || specific && (len(got) != 1 || got[0].ID != c.want) || !specific && len(got) != len(all) {
			t.Errorf("MatchServices(%q) = %v %v", c.text, got, specific)
		}
	}
}

func TestMoneyAndClock(t *testing.T) {
	cases := []struct {
		minor    int64
		currency string
		want     string
	}{
		{7000, "GBP", "£70.00"}, {1250, "eur", "€12.50"}, {5, "USD", "$0.05"}, {-300, "GBP", "-£3.00"}, {100, "CHF", "1.00 CHF"},
	}
	for _, c := range cases {
		if got := Money(c.minor, c.currency); got != c.want {
			t.Errorf("Money(%d, %s) = %s", c.minor, c.currency, got)
		}
	}
	if got := Clock(time.Date(2026, 1, 1, 9, 5, 0, 0, time.UTC)); got != "9:05" {
		t.Errorf("Clock = %s", got)
	}
}

func isUpcoming(t *testing.T, be backend.Backend, profile, id string) bool {
	t.Helper()
	list, err := be.Bookings(context.Background(), profile, backend.Upcoming)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range list {
		if b.ID == id {
			return true
		}
	}
	return false
}
