package clustertest

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/parleyhq/parley/backend"
	"github.com/parleyhq/parley/backend/httpapi"
)

// BackendToken is the bearer token the test backend accepts.
const BackendToken = "clustertest-backend-token-0123456789"

// What the test business offers and books, so a test can tell a real
// answer from a sign-in prompt: the answer to "what services do you offer"
// names ServiceName, the answer to "my bookings" names BookingName.
const (
	ServiceName = "Spotless Oven Clean"
	BookingName = "Sparkling Window Wash"
)

// Backend is a tenant business in which every E.164 number has exactly
// one profile, with WhatsApp access enabled: sign-in never asks which
// profile, never refuses, and a test can sign in any number it makes up.
// Every profile has one upcoming booking. Served over the contract of
// backend/openapi.yaml by httpapi.Handler, so nodes reach it as they reach
// a real business.
type Backend struct {
	srv *httptest.Server
}

// StartBackend serves the test business until t ends.
func StartBackend(t testing.TB) *Backend {
	t.Helper()
	b := &Backend{}
	h := httpapi.Handler(business{}, BackendToken)
	b.srv = httptest.NewServer(h)
	t.Cleanup(b.srv.Close)
	return b
}

// URL is the base URL a tenant's backend.base_url names.
func (b *Backend) URL() string { return b.srv.URL }

// ProfileID is the one profile of phone: "p" and its digits.
func ProfileID(phone string) string { return "p" + strings.TrimPrefix(phone, "+") }

// FirstName is the first name of phone's profile, as the greeting after
// sign-in says it.
const FirstName = "Robin"

type business struct{}

var _ backend.Backend = business{}

func (business) ProfilesByPhone(_ context.Context, phone string) ([]backend.Profile, error) {
	return []backend.Profile{{
		ID:              ProfileID(phone),
		Name:            FirstName + " " + strings.TrimPrefix(phone, "+"),
		Email:           ProfileID(phone) + "@customers.example",
		WhatsAppEnabled: true,
	}}, nil
}

var services = []backend.Service{
	{ID: "oven", Name: ServiceName, Duration: 2 * time.Hour, DurationMin: 120, PricePence: 8900, Currency: "GBP"},
	{ID: "windows", Name: BookingName, Duration: time.Hour, DurationMin: 60, PricePence: 4500, Currency: "GBP"},
}

func (business) Services(context.Context) ([]backend.Service, error) {
	return services, nil
}

func (business) Availability(_ context.Context, serviceID string, date time.Time) ([]backend.Slot, error) {
	var d time.Duration
	for _, s := range services {
		if s.ID == serviceID {
			d = s.Duration
		}
	}
	if d == 0 {
		return nil, backend.ErrInvalid
	}
	day := time.Date(date.Year(), date.Month(), date.Day(), 0, 0, 0, 0, time.UTC)
	var slots []backend.Slot
	for _, h := range []int{9, 13, 16} {
		start := day.Add(time.Duration(h) * time.Hour)
		if start.After(time.Now()) {
			slots = append(slots, backend.Slot{Start: start, End: start.Add(d)})
		}
	}
	return slots, nil
}

// booking is the profile's one upcoming booking: tomorrow at 10:00 UTC.
func booking(profileID string) backend.Booking {
	start := time.Now().UTC().Truncate(24 * time.Hour).Add(34 * time.Hour)
	return backend.Booking{
		ID: "b-" + profileID, ProfileID: profileID, ServiceID: "windows", ServiceName: BookingName,
		Start: start, End: start.Add(time.Hour), Status: "confirmed", Address: "1 Test Street",
	}
}

func (business) Bookings(_ context.Context, profileID string, filter backend.BookingFilter) ([]backend.Booking, error) {
	if filter == backend.Past {
		return nil, nil
	}
	return []backend.Booking{booking(profileID)}, nil
}

// CancelBooking is refused by policy: the tests never cancel, and a
// booking that stays keeps "my bookings" answering the same.
func (business) CancelBooking(_ context.Context, profileID, bookingID string) (backend.CancelResult, error) {
	if bookingID != "b-"+profileID {
		return backend.CancelResult{}, backend.ErrNotFound
	}
	return backend.CancelResult{Booking: booking(profileID), Reason: "test bookings cannot be cancelled", Policy: "none"}, nil
}

func (business) Account(_ context.Context, profileID string) (backend.Account, error) {
	return backend.Account{
		ProfileID: profileID, Name: FirstName + " " + strings.TrimPrefix(profileID, "p"),
		Email: profileID + "@customers.example", Phone: "+" + strings.TrimPrefix(profileID, "p"),
		MemberSince: time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC),
	}, nil
}

func (business) Subscription(context.Context, string) (backend.Subscription, error) {
	return backend.Subscription{}, backend.ErrNotFound
}
