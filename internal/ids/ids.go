// Package ids makes Parley's identifiers.
package ids

import "github.com/google/uuid"

// New returns a time-ordered UUIDv7 string: unique across processes, and
// sorting by it roughly sorts by creation time, which keeps ClickHouse
// look-ups by id local.
func New() string {
	return uuid.Must(uuid.NewV7()).String()
}
