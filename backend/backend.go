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

// Service is something the business offers.
type Service struct {
	ID          string        `json:"id"`
	Name        string        `json:"name"`
	Duration    time.Duration `json:"-"`
	DurationMin int           `json:"duration_minutes"`
	PricePence  int64         `json:"price_pence,omitempty"`
	Currency    string        `json:"currency,omitempty"`
	Description string        `json:"description,omitempty"`
}

// Slot is a bookable start time for a service.
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

// BookingFilter selects bookings by time.
type BookingFilter string

// Booking filters.
const (
	Upcoming BookingFilter = "upcoming"
	Past     BookingFilter = "past"
)

// CancelResult is the outcome of a cancellation request.
type CancelResult struct {
	Cancelled bool    `json:"cancelled"`
	Booking   Booking `json:"booking"`
	// Reason explains a refusal (e.g. inside the cancellation window).
	Reason string `json:"reason,omitempty"`
	// Policy is the business's cancellation policy in words.
	Policy string `json:"policy,omitempty"`
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
	PeriodDescription string    `json:"period_description,omitempty"`
}

// Backend is one tenant's business system. Every account call takes the
// profile id of the signed-in customer: callers take it from the session,
// never from user or model input.
type Backend interface {
	Profiles
	Services(ctx context.Context) ([]Service, error)
	Availability(ctx context.Context, serviceID string, date time.Time) ([]Slot, error)
	Bookings(ctx context.Context, profileID string, filter BookingFilter) ([]Booking, error)
	// CancelBooking cancels a booking of the profile, subject to the
	// cancellation policy. A booking of another profile is ErrNotFound.
	CancelBooking(ctx context.Context, profileID, bookingID string) (CancelResult, error)
	Account(ctx context.Context, profileID string) (Account, error)
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
