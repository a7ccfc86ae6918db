// Package demo is the in-memory demo business behind the `demo` tenant and
// every tenant configured with `backend: {kind: demo}`. Tests and the
// simulator rely on its fixed records.
package demo

import (
	"context"

	"github.com/parleyhq/parley/backend"
)

// Backend is the demo business. It is read-only and safe for concurrent use.
type Backend struct {
	profiles map[string][]backend.Profile
}

// New returns the demo business with its fixed records.
func New() *Backend {
	return &Backend{profiles: map[string][]backend.Profile{
		"+447700900123": {
			{ID: "prof_jane", Name: "Jane Smith", Email: "jane@example.com", WhatsAppEnabled: true},
			{ID: "prof_test", Name: "Test User", Email: "test@example.com", WhatsAppEnabled: true},
			{ID: "prof_john", Name: "John Doe", Email: "admin@example.com", WhatsAppEnabled: true},
		},
		"+447700900456": {
			{ID: "prof_sam", Name: "Sam Patel", Email: "sam@example.com", WhatsAppEnabled: true},
		},
		"+447700900789": {
			{ID: "prof_alex", Name: "Alex Morgan", Email: "alex@example.com", WhatsAppEnabled: false},
		},
	}}
}

// ProfilesByPhone implements backend.Backend.
func (b *Backend) ProfilesByPhone(_ context.Context, phone string) ([]backend.Profile, error) {
	return append([]backend.Profile(nil), b.profiles[phone]...), nil
}
