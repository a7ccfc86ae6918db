// Package backend is the tenant's business system as Parley sees it: the
// contract the session actor and the brain's tools call.
package backend

import (
	"context"
	"errors"
)

// Profile is a customer account that a phone number may sign in as.
type Profile struct {
	ID              string `json:"id"`
	Name            string `json:"name"`
	Email           string `json:"email"`
	WhatsAppEnabled bool   `json:"whatsapp_enabled"`
}

// Backend is one tenant's business system.
type Backend interface {
	// ProfilesByPhone lists the profiles that use an E.164 number, in the
	// backend's order; none is not an error.
	ProfilesByPhone(ctx context.Context, phone string) ([]Profile, error)
}

// ErrUnavailable means the backend could not be reached or failed; the
// caller may try again later.
var ErrUnavailable = errors.New("backend unavailable")
