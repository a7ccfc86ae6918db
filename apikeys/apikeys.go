// Package apikeys checks the API keys of Parley's HTTP API (`Authorization:
// Bearer KEY`). Keys come from the configuration, each scoped to tenants
// and a role:
//
//	api_keys:
//	  - { key: "${PARLEY_ADMIN_KEY}", tenants: ["*"], role: admin }   # agency-wide
//	  - { key: "${ACME_KEY}", tenants: ["acme"], role: agent }
//	  - { key: "${ACME_ANALYST_KEY}", tenants: ["acme"], role: analyst, name: acme-bi }
//
// Roles: admin may do everything; agent reads and sends messages and reads
// and changes conversations; analyst reads analytics and the conversation
// log, and changes nothing. A key never reaches a tenant it is not scoped
// to.
package apikeys

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/parleyhq/parley/tenants"
)

// Roles.
const (
	RoleAdmin   = "admin"
	RoleAgent   = "agent"
	RoleAnalyst = "analyst"
)

// AllTenants in a key's tenant list scopes it to every tenant.
const AllTenants = "*"

// MinKeyLength is the shortest key accepted. A key is a bearer credential
// compared as a whole; a short one is guessable.
const MinKeyLength = 16

// Permission is one thing a request needs.
type Permission string

// Permissions. Handlers ask for the narrowest one that covers them.
const (
	// AnalyticsRead: summary, time series, power users.
	AnalyticsRead Permission = "analytics:read"
	// MessagesRead: the conversation log.
	MessagesRead Permission = "messages:read"
	// MessagesSend: send a message or template, have the assistant respond.
	MessagesSend Permission = "messages:send"
	// ConversationsRead and ConversationsWrite: conversation state, status,
	// AI on/off, assignment.
	ConversationsRead  Permission = "conversations:read"
	ConversationsWrite Permission = "conversations:write"
	// CustomersForget: GDPR erasure of a customer.
	CustomersForget Permission = "customers:forget"
	// MediaRead: the files customers sent (photos, documents), for the
	// people who answer them; analysts read the log without them.
	MediaRead Permission = "media:read"
	// TenantsManage: read and change a tenant's configuration; creating
	// and deleting tenants also needs an agency-wide key (AgencyWide).
	TenantsManage Permission = "tenants:manage"
	// KeysManage: create, list, rotate and revoke API keys, for the
	// tenants the key reaches.
	KeysManage Permission = "keys:manage"
)

// grants are what each role may do; admin may do everything.
var grants = map[string][]Permission{
	RoleAgent:   {MessagesRead, MessagesSend, ConversationsRead, ConversationsWrite, MediaRead},
	RoleAnalyst: {AnalyticsRead, MessagesRead},
}

// Key is one configured API key.
type Key struct {
	Key tenants.Secret `yaml:"key" json:"key"`
	// Tenants the key may reach: tenant ids, or "*" for all.
	Tenants []string `yaml:"tenants" json:"tenants"`
	// Role is admin, agent or analyst.
	Role string `yaml:"role" json:"role"`
	// Name identifies the key in the audit log and in logs, never the key
	// itself. Default: the role and the key's last four characters.
	Name string `yaml:"name,omitempty" json:"name,omitempty"`

	// The rest is for keys created through the API (Stored): their id,
	// their secret's last four characters (the one part of it kept), and
	// when they were made and stop working (a rotated key's overlap).
	ID        string    `yaml:"-" json:"id,omitempty"`
	Stored    bool      `yaml:"-" json:"-"`
	Hint      string    `yaml:"-" json:"hint,omitempty"`
	CreatedAt time.Time `yaml:"-" json:"created_at,omitzero"`
	ExpiresAt time.Time `yaml:"-" json:"expires_at,omitzero"`
	// Agent is the tenant's agent an agent key is for (Stored.Agent).
	Agent string `yaml:"-" json:"agent,omitempty"`
}

// Can reports whether the key's role grants p.
func (k *Key) Can(p Permission) bool {
	return k.Role == RoleAdmin || slices.Contains(grants[k.Role], p)
}

// Reaches reports whether the key is scoped to tenant.
func (k *Key) Reaches(tenant string) bool {
	return slices.Contains(k.Tenants, AllTenants) || slices.Contains(k.Tenants, tenant)
}

// AgencyWide reports whether the key reaches every tenant ("*"), those
// created after it included.
func (k *Key) AgencyWide() bool { return slices.Contains(k.Tenants, AllTenants) }

// IsAdmin reports whether the key has the admin role.
func (k *Key) IsAdmin() bool { return k.Role == RoleAdmin }

// Label is how the key is named in logs and the audit: its Name, or its
// role and masked value.
func (k *Key) Label() string {
	switch {
	case k.Name != "":
		return k.Name
	case k.ID != "":
		return k.ID
	}
	return k.Role + ":" + tenants.Mask(k.Key.Reveal())
}

// Error is an authorization failure, with the HTTP status and the error
// code the API answers with.
type Error struct {
	Status  int
	Code    string
	Message string
}

func (e *Error) Error() string { return e.Message }

// The authorization failures. Compare with errors.Is.
var (
	ErrMissingKey = &Error{http.StatusUnauthorized, "missing_key", "missing API key: send Authorization: Bearer KEY"}
	ErrBadKey     = &Error{http.StatusUnauthorized, "bad_key", "unknown API key"}
	ErrExpiredKey = &Error{http.StatusUnauthorized, "expired_key", "this API key has expired (it was rotated or revoked): use its replacement"}
	ErrTenant     = &Error{http.StatusForbidden, "forbidden_tenant", "this API key is not allowed for this tenant"}
	ErrRole       = &Error{http.StatusForbidden, "forbidden_role", "this API key's role does not allow this request"}
)

// Set is the keys that authorize requests: the configuration's, and the
// ones created through the API (Stored, kept on parley.config), which can
// be added and revoked at runtime. It is safe for concurrent use: readers
// load an immutable snapshot, writers swap in a new one.
type Set struct {
	snap atomic.Pointer[keySnapshot]
	mu   sync.Mutex // serialises writers
	now  func() time.Time
	// pendingUse are uses of keys not in the set yet (SeenUse), by id;
	// guarded by mu.
	pendingUse map[string]int64
}

// keySnapshot is one state of the set.
type keySnapshot struct {
	entries []*entry
}

// entry is one key and what the set knows of it. Entries are shared
// between snapshots, so its last use survives changes of the set.
type entry struct {
	key      *Key
	digest   [sha256.Size]byte
	lastUse  atomic.Int64 // unix nanoseconds, the latest any node reported
	localUse atomic.Int64 // unix nanoseconds, on this node
	stored   *Stored      // what parley.config keeps; nil for the file's
}

// New validates the keys and prepares them. A key must be at least
// MinKeyLength characters, have a known role and at least one tenant, and
// appear once.
func New(keys []Key) (*Set, error) {
	s := &Set{now: time.Now}
	seen := map[[sha256.Size]byte]bool{}
	var entries []*entry
	for i := range keys {
		k := keys[i]
		where := fmt.Sprintf("api_keys[%d]", i)
		if k.Name != "" {
			where += " (" + k.Name + ")"
		}
		if len(k.Key.Reveal()) < MinKeyLength {
			return nil, fmt.Errorf("%s: key is shorter than %d characters", where, MinKeyLength)
		}
		if err := checkScope(k.Role, k.Tenants); err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		d := sha256.Sum256([]byte(k.Key.Reveal()))
		if seen[d] {
			return nil, fmt.Errorf("%s: the same key is configured twice", where)
		}
		seen[d] = true
		k.Tenants = slices.Clone(k.Tenants)
		k.ID, k.Stored = "", false
		entries = append(entries, &entry{key: &k, digest: d})
	}
	s.snap.Store(&keySnapshot{entries: entries})
	return s, nil
}

// checkScope reports what is wrong with a key's role and tenants.
func checkScope(role string, tenants []string) error {
	switch {
	case role != RoleAdmin && role != RoleAgent && role != RoleAnalyst:
		return fmt.Errorf("role %q: want admin, agent or analyst", role)
	case len(tenants) == 0:
		return errors.New("no tenants (use [\"*\"] for all)")
	}
	for _, t := range tenants {
		if t == "" {
			return errors.New("empty tenant id")
		}
	}
	return nil
}

// Len is the number of keys.
func (s *Set) Len() int { return len(s.snap.Load().entries) }

// Identify finds the key an Authorization header carries, or returns
// ErrMissingKey, ErrBadKey or ErrExpiredKey.
//
// The presented key is hashed and its digest compared with every
// digest with subtle.ConstantTimeCompare, without stopping at a match:
// the time taken depends neither on how much of a key matched nor on
// which key it was. Comparing digests rather than keys also hides the
// keys' lengths.
func (s *Set) Identify(header string) (*Key, error) {
	presented, ok := bearer(header)
	if !ok {
		return nil, ErrMissingKey
	}
	d := sha256.Sum256([]byte(presented))
	var found *entry
	for _, e := range s.snap.Load().entries {
		if subtle.ConstantTimeCompare(d[:], e.digest[:]) == 1 {
			found = e
		}
	}
	if found == nil {
		return nil, ErrBadKey
	}
	now := s.now()
	if exp := found.key.ExpiresAt; !exp.IsZero() && !now.Before(exp) {
		return nil, ErrExpiredKey
	}
	found.lastUse.Store(now.UnixNano())
	found.localUse.Store(now.UnixNano())
	return found.key, nil
}

// Authorize checks that the Authorization header carries a key scoped to
// tenant whose role grants need. An empty tenant skips the tenant check
// (requests about no tenant, such as listing the tenants a key sees). It
// returns the key, or ErrMissingKey / ErrBadKey (401), ErrTenant /
// ErrRole (403).
func (s *Set) Authorize(header string, tenant string, need Permission) (*Key, error) {
	k, err := s.Identify(header)
	if err != nil {
		return nil, err
	}
	if tenant != "" && !k.Reaches(tenant) {
		return nil, ErrTenant
	}
	if need != "" && !k.Can(need) {
		return nil, ErrRole
	}
	return k, nil
}

// bearer extracts the credential of "Bearer KEY" (scheme case-insensitive,
// as RFC 7235 says).
func bearer(header string) (string, bool) {
	header = strings.TrimSpace(header)
	scheme, rest, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	rest = strings.TrimSpace(rest)
	return rest, rest != ""
}

// AsError returns err as an *Error, if it is one.
func AsError(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}
