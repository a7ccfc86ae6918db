// Package ids makes Parley's identifiers.
package ids

import (
	"crypto/rand"

	"github.com/google/uuid"
)

// New returns a time-ordered UUIDv7 string: unique across processes, and
// sorting by it roughly sorts by creation time, which keeps ClickHouse
// look-ups by id local.
func New() string {
	return uuid.Must(uuid.NewV7()).String()
}

// Short returns prefix and n random lower-case letters and digits: an id
// people read and type (API keys' key_…, agents' agt_…), unguessable at
// n of 12 or more.
func Short(prefix string, n int) string {
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, n)
	_, _ = rand.Read(b)
	id := []byte(prefix)
	for _, c := range b {
		// 256 is not a multiple of 36: the first 4 letters are a little
		// likelier, which costs under 0.1 bit of 5.17 per character.
		id = append(id, alphabet[int(c)%len(alphabet)])
	}
	return string(id)
}
