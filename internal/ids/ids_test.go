package ids

import (
	"regexp"
	"testing"
)

func TestShort(t *testing.T) {
	shape := regexp.MustCompile(`^key_[a-z0-9]{16}$`)
	seen := map[string]bool{}
	for range 1000 {
		id := Short("key_", 16)
		if !shape.MatchString(id) || seen[id] {
			t.Fatalf("Short: %q (seen before: %v)", id, seen[id])
		}
		seen[id] = true
	}
}
