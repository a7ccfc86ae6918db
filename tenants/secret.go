package tenants

import (
	"encoding/json"

	"github.com/parleyhq/parley/internal/mask"
)

// Secret is a credential. It prints masked everywhere (fmt, logs, JSON) so
// that a tenant or config dumped for debugging never leaks it; Reveal is the
// one way to read it.
type Secret string

// Reveal returns the secret itself, for signing and authenticating only.
func (s Secret) Reveal() string { return string(s) }

// String masks the secret.
func (s Secret) String() string { return Mask(string(s)) }

// GoString masks the secret in %#v.
func (s Secret) GoString() string { return Mask(string(s)) }

// MarshalJSON masks the secret.
func (s Secret) MarshalJSON() ([]byte, error) { return json.Marshal(Mask(string(s))) }

// MarshalText masks the secret (YAML and other text encoders).
func (s Secret) MarshalText() ([]byte, error) { return []byte(Mask(string(s))), nil }

// Mask shows at most the last four characters of a credential, and none of a
// short one.
func Mask(s string) string { return mask.Secret(s) }
