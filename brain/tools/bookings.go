package tools

import (
	"context"
	"strings"
	"time"

	"github.com/parleyhq/parley/backend"
	"github.com/parleyhq/parley/brain"
	"github.com/parleyhq/parley/brain/internal/nlp"
)

// BookingInfo is a booking as the model reads it.
type BookingInfo struct {
	ID      string `json:"id"`
	Service string `json:"service"`
	Date    string `json:"date"`
	Weekday string `json:"weekday"`
	Start   string `json:"start"`
	End     string `json:"end"`
	Status  string `json:"status"`
	Address string `json:"address,omitempty"`
	// At is the start as a time, for phrasing.
	At time.Time `json:"-"`
}

func (k *Kit) bookingInfo(b backend.Booking) BookingInfo {
	st, en := b.Start.In(k.loc()), b.End.In(k.loc())
	return BookingInfo{ID: b.ID, Service: b.ServiceName, Date: st.Format("2006-01-02"), Weekday: st.Weekday().String(),
		Start: Clock(st), End: Clock(en), Status: b.Status, Address: b.Address, At: st}
}

// Describe is a booking in words, for a confirmation question: "Standard
// Clean on Friday 2026-03-13 at 9:00".
func (b BookingInfo) Describe() string {
	return b.Service + " on " + b.Weekday + " " + b.Date + " at " + b.Start
}

// BookingsArgs are list_bookings' arguments.
type BookingsArgs struct {
	// When is "upcoming" (default) or "past".
	When string `json:"when,omitempty"`
	// Date keeps only the bookings on that day (YYYY-MM-DD or words).
	Date string `json:"date,omitempty"`
}

// BookingsData is the result of list_bookings.
type BookingsData struct {
	When     string        `json:"when"`
	Date     string        `json:"date,omitempty"`
	Bookings []BookingInfo `json:"bookings"`
}

// Bookings runs list_bookings for the signed-in customer.
func (k *Kit) Bookings(ctx context.Context, c Caller, a BookingsArgs) Result {
	start := time.Now()
	if !c.signedIn() {
		return k.notSignedIn(ListBookings, start)
	}
	filter := backend.Upcoming
	if strings.EqualFold(strings.TrimSpace(a.When), "past") {
		filter = backend.Past
	}
	var day time.Time
	if strings.TrimSpace(a.Date) != "" {
		d, ok := nlp.ParseDate(a.Date, k.now(c))
		if !ok {
			return k.fail(ListBookings, start, ErrBadArgs, "The date "+quote(a.Date)+" was not understood; use YYYY-MM-DD.")
		}
		day = d
	}
	list, err := k.Backend.Bookings(ctx, c.ProfileID, filter)
	if err != nil {
		return k.backendFail(ListBookings, start, err)
	}
	d := BookingsData{When: string(filter), Bookings: []BookingInfo{}}
	if !day.IsZero() {
		d.Date = day.Format("2006-01-02")
	}
	for _, b := range list {
		bi := k.bookingInfo(b)
		if d.Date != "" && bi.Date != d.Date {
			continue
		}
		d.Bookings = append(d.Bookings, bi)
	}
	return k.ok(ListBookings, start, d)
}

// CancelArgs are cancel_booking's arguments. Name the booking by id (from
// list_bookings) or by its date.
type CancelArgs struct {
	BookingID string `json:"booking_id,omitempty"`
	Date      string `json:"date,omitempty"`
	// Service narrows a date with more than one booking.
	Service string `json:"service,omitempty"`
	// Confirm applies the cancellation the customer was asked about on
	// an earlier message and has now agreed to.
	Confirm bool `json:"confirm,omitempty"`
}

// Cancellation stages.
const (
	CancelConfirmNeeded    = "confirmation_needed" // proposed; ask the customer
	CancelChoose           = "choose"              // several bookings match; ask which
	CancelNone             = "no_booking"          // nothing matches
	CancelDone             = "cancelled"
	CancelAlreadyCancelled = "already_cancelled"
	CancelRefused          = "refused_by_policy"
)

// CancelData is the result of cancel_booking.
type CancelData struct {
	Stage      string        `json:"stage"`
	Booking    *BookingInfo  `json:"booking,omitempty"`
	Candidates []BookingInfo `json:"upcoming_bookings,omitempty"`
	Reason     string        `json:"reason,omitempty"`
	Policy     string        `json:"policy,omitempty"`
	// Instruction tells the model what to do next.
	Instruction string `json:"instruction,omitempty"`
}

// Cancel runs cancel_booking in two steps. Without a matching pending
// proposal from an earlier message it only proposes: it finds the booking
// among the customer's upcoming ones and returns it with SetPending. With
// Confirm and that pending proposal (same profile, not expired, same
// booking), it cancels.
func (k *Kit) Cancel(ctx context.Context, c Caller, a CancelArgs) Result {
	start := time.Now()
	if !c.signedIn() {
		return k.notSignedIn(CancelBooking, start)
	}
	now := k.now(c)
	id := strings.TrimSpace(a.BookingID)
	if a.Confirm && c.Pending.ValidFor(c.ProfileID, now) && c.Pending.Kind == brain.PendingCancel &&
		(id == "" || id == c.Pending.BookingID) {
		return k.applyCancel(ctx, c, start)
	}
	list, err := k.Backend.Bookings(ctx, c.ProfileID, backend.Upcoming)
	if err != nil {
		return k.backendFail(CancelBooking, start, err)
	}
	upcoming := make([]BookingInfo, 0, len(list))
	for _, b := range list {
		if b.Status == "" || b.Status == "confirmed" {
			upcoming = append(upcoming, k.bookingInfo(b))
		}
	}
	var matches []BookingInfo
	switch {
	case id != "":
		for _, b := range upcoming {
			if b.ID == id {
				matches = append(matches, b)
			}
		}
		if len(matches) == 0 {
			// Whether it exists for someone else is not the customer's
			// business: the same answer either way.
			r := k.fail(CancelBooking, start, ErrNotFound,
				"No upcoming booking with that id belongs to this customer. Only the customer's own bookings (see list_bookings) can be cancelled.")
			r.ClearPending = true
			return r
		}
	case strings.TrimSpace(a.Date) != "":
		day, ok := nlp.ParseDate(a.Date, now)
		if !ok {
			return k.fail(CancelBooking, start, ErrBadArgs, "The date "+quote(a.Date)+" was not understood; use YYYY-MM-DD.")
		}
		want := day.Format("2006-01-02")
		for _, b := range upcoming {
			if b.Date == want {
				matches = append(matches, b)
			}
		}
	default:
		matches = upcoming
	}
	if len(matches) > 1 && strings.TrimSpace(a.Service) != "" {
		var narrowed []BookingInfo
		for _, b := range matches {
			if _, specific := MatchServices([]backend.Service{{Name: b.Service}}, a.Service); specific {
				narrowed = append(narrowed, b)
			}
		}
		if len(narrowed) > 0 {
			matches = narrowed
		}
	}
	switch len(matches) {
	case 0:
		r := k.ok(CancelBooking, start, CancelData{Stage: CancelNone, Candidates: upcoming,
			Instruction: "Tell the customer no upcoming booking matches and list the upcoming ones, if any."})
		r.ClearPending = true
		return r
	case 1:
		b := matches[0]
		r := k.ok(CancelBooking, start, CancelData{Stage: CancelConfirmNeeded, Booking: &b,
			Instruction: "Nothing is cancelled yet. Ask the customer to confirm cancelling this booking. Only after they reply yes, call cancel_booking with confirm=true and this booking_id."})
		r.SetPending = &brain.PendingAction{Kind: brain.PendingCancel, ProfileID: c.ProfileID, BookingID: b.ID,
			Summary: b.Describe(), Expires: now.Add(k.pendingTTL())}
		return r
	}
	r := k.ok(CancelBooking, start, CancelData{Stage: CancelChoose, Candidates: matches,
		Instruction: "Several bookings match. Ask the customer which one to cancel."})
	r.ClearPending = true
	return r
}

// applyCancel cancels the pending booking: the customer said yes.
func (k *Kit) applyCancel(ctx context.Context, c Caller, start time.Time) Result {
	res, err := k.Backend.CancelBooking(ctx, c.ProfileID, c.Pending.BookingID)
	if err != nil {
		r := k.backendFail(CancelBooking, start, err)
		if r.Code != ErrUnavailable {
			// Not found or refused: asking again will not help. A
			// temporary failure keeps the proposal so "yes" can be
			// repeated.
			r.ClearPending = true
		}
		return r
	}
	b := k.bookingInfo(res.Booking)
	d := CancelData{Booking: &b, Reason: res.Reason, Policy: res.Policy}
	switch {
	case res.AlreadyCancelled:
		d.Stage = CancelAlreadyCancelled
	case res.Cancelled:
		d.Stage = CancelDone
	default:
		d.Stage = CancelRefused
		d.Instruction = "The booking was not cancelled. Explain the reason and the policy, and offer a person from the team."
	}
	r := k.ok(CancelBooking, start, d)
	r.ClearPending = true
	return r
}
