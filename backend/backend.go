// Package backend is the tenant's business system as Parley sees it: the
// contract (openapi.yaml beside this file) that the session actor and the
// brain's tools call. The demo business implements it in memory (package
// demo); any other business implements it over HTTP (package httpapi's
// client).
package backend

import (
	"context"
	"errors"
	"time"
)

// Profile is a customer account that a phone number may sign in as.
type Profile struct {
	ID              string `json:"id"`
	Name            string `json:"name"`
	Email           string `json:"email"`
	WhatsAppEnabled bool   `json:"whatsapp_enabled"`
}

// Service is something the business offers. Duration is not on the wire
// (JSON has no duration type both sides agree on): DurationMin is, and
// clients fill Duration from it.
type Service struct {
	ID          string        `json:"id"`
	Name        string        `json:"name"`
	Duration    time.Duration `json:"-"`
	DurationMin int           `json:"duration_minutes"`
	PricePence  int64         `json:"price_pence,omitempty"`
	Currency    string        `json:"currency,omitempty"`
	Description string        `json:"description,omitempty"`
}

// Slot is a bookable start time for a service. Times carry the business's
// UTC offset on the wire (RFC 3339), so compare them with Equal.
type Slot struct {
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
}

// Booking is one appointment of a customer.
type Booking struct {
	ID          string    `json:"id"`
	ProfileID   string    `json:"profile_id"`
	ServiceID   string    `json:"service_id"`
	ServiceName string    `json:"service_name"`
	Start       time.Time `json:"start"`
	End         time.Time `json:"end"`
	Status      string    `json:"status"` // confirmed | cancelled | completed
	Address     string    `json:"address,omitempty"`
}

// BookingFilter selects bookings by time: Upcoming is the confirmed bookings
// that have not started, soonest first; Past is every booking that has
// started (any status), most recent first.
type BookingFilter string

// Booking filters.
const (
	Upcoming BookingFilter = "upcoming"
	Past     BookingFilter = "past"
)

// CancelResult is the outcome of a cancellation request. A refusal by policy
// is a result (Cancelled false, Reason set), not an error: the brain tells
// the customer why rather than "something went wrong".
type CancelResult struct {
	Cancelled bool    `json:"cancelled"`
	Booking   Booking `json:"booking"`
	// Reason explains a refusal (e.g. inside the cancellation window).
	Reason string `json:"reason,omitempty"`
	// Policy is the business's cancellation policy in words.
	Policy string `json:"policy,omitempty"`
	// AlreadyCancelled is set when the booking was cancelled before this
	// request: cancelling is idempotent, so a repeated confirmation (or a
	// retried delivery) is not an error, but the reply can say so.
	AlreadyCancelled bool `json:"already_cancelled,omitempty"`
}

// Account is a customer's account details.
type Account struct {
	ProfileID   string    `json:"profile_id"`
	Name        string    `json:"name"`
	Email       string    `json:"email"`
	Phone       string    `json:"phone"`
	Address     string    `json:"address,omitempty"`
	MemberSince time.Time `json:"member_since"`
}

// Subscription is a customer's plan, quotas and next payment.
type Subscription struct {
	ProfileID         string    `json:"profile_id"`
	Plan              string    `json:"plan"`
	Status            string    `json:"status"` // Active | Paused | Cancelled
	PricePence        int64     `json:"price_pence"`
	Currency          string    `json:"currency"`
	NextPaymentDate   time.Time `json:"next_payment_date"`
	NextPaymentPence  int64     `json:"next_payment_pence"`
	SessionsPerPeriod int       `json:"sessions_per_period"`
	SessionsRemaining int       `json:"sessions_remaining"`
	// PeriodDescription names the period the session quota counts over
	// (e.g. "fortnight").
	PeriodDescription string `json:"period_description,omitempty"`
}

// Backend is one tenant's business system. Every account call takes the
// profile id of the signed-in customer: callers take it from the session,
// never from user or model input.
type Backend interface {
	Profiles
	// Services lists what the business offers.
	Services(ctx context.Context) ([]Service, error)
	// Availability lists the free start times of a service on the
	// calendar day of date (its year, month and day as written, in date's
	// own location), in the business's time zone. A day without slots
	// (closed, fully booked, past) is an empty list, not an error; an
	// unknown service is ErrInvalid.
	Availability(ctx context.Context, serviceID string, date time.Time) ([]Slot, error)
	// Bookings lists the profile's bookings; an unknown profile is
	// ErrNotFound.
	Bookings(ctx context.Context, profileID string, filter BookingFilter) ([]Booking, error)
	// CancelBooking cancels a booking of the profile, subject to the
	// cancellation policy. A booking of another profile is ErrNotFound.
	CancelBooking(ctx context.Context, profileID, bookingID string) (CancelResult, error)
	// Account returns the profile's account details.
	Account(ctx context.Context, profileID string) (Account, error)
	// Subscription returns the profile's plan; a profile without one is
	// ErrNotFound.
	Subscription(ctx context.Context, profileID string) (Subscription, error)
}

// Profiles finds who may sign in with a number: all the session actor
// needs of a backend.
type Profiles interface {
	// ProfilesByPhone lists the profiles that use an E.164 number, in the
	// backend's order; none is not an error.
	ProfilesByPhone(ctx context.Context, phone string) ([]Profile, error)
}

// Typed errors the brain can explain to the customer.
var (
	// ErrUnavailable: the backend could not be reached or failed; the
	// caller may try again later.
	ErrUnavailable = errors.New("backend unavailable")
	// ErrNotFound: no such record for this customer.
	ErrNotFound = errors.New("not found")
	// ErrInvalid: the request was refused as invalid (bad date, unknown
	// service).
	ErrInvalid = errors.New("invalid request")
	// ErrUnauthorized: the backend refused Parley's credentials.
	ErrUnauthorized = errors.New("backend refused credentials")
)
