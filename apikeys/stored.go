package apikeys

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"sync/atomic"
	"time"

	"github.com/parleyhq/parley/internal/ids"
	"github.com/parleyhq/parley/tenants"
)

// Stored is a key created through the API, as parley.config keeps it:
// its SHA-256 digest, never the key. A key is 32 random bytes, so a fast
// digest is enough: there is no dictionary to try against it.
type Stored struct {
	ID        string    `json:"id"`
	Name      string    `json:"name,omitempty"`
	Role      string    `json:"role"`
	Tenants   []string  `json:"tenants"`
	Digest    string    `json:"digest"` // hex SHA-256 of the key
	Hint      string    `json:"hint"`   // the key's last four characters
	CreatedAt time.Time `json:"created_at"`
	CreatedBy string    `json:"created_by,omitempty"` // the creating key's label
	// Agent is the tenant's agent the key is for (agent keys only): who
	// "assigned=me" is, and who acted in the audit.
	Agent string `json:"agent,omitempty"`
	// ExpiresAt, when set, ends the key: a rotated key keeps working
	// until then, beside its replacement.
	ExpiresAt time.Time `json:"expires_at,omitzero"`
}

// KeyPrefix starts every generated key, so a leaked one is recognisable
// (secret scanners) and told apart from a configured one.
const KeyPrefix = "parley_"

var idPattern = regexp.MustCompile(`^key_[a-z0-9]{16}$`)

// Generate makes a new key for role and tenants: the secret, shown once,
// and what is kept of it.
func Generate(name, role string, tenantIDs []string, createdBy string, now time.Time) (string, Stored, error) {
	if err := checkScope(role, tenantIDs); err != nil {
		return "", Stored{}, err
	}
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", Stored{}, err
	}
	secret := KeyPrefix + base64.RawURLEncoding.EncodeToString(b[:])
	d := sha256.Sum256([]byte(secret))
	return secret, Stored{
		ID: NewID(), Name: name, Role: role, Tenants: slices.Clone(tenantIDs),
		Digest: hex.EncodeToString(d[:]), Hint: secret[len(secret)-4:],
		CreatedAt: now.UTC(), CreatedBy: createdBy,
	}, nil
}

// NewID is a new key id: key_ and 16 random lower-case characters.
func NewID() string { return ids.Short("key_", 16) }

// ValidID reports whether id could be a stored key's id.
func ValidID(id string) bool { return idPattern.MatchString(id) }

// Check reports what is wrong with a stored key.
func (st *Stored) Check() error {
	if !ValidID(st.ID) {
		return fmt.Errorf("key id %q", st.ID)
	}
	if d, err := hex.DecodeString(st.Digest); err != nil || len(d) != sha256.Size {
		return fmt.Errorf("key %s: digest is not a hex SHA-256", st.ID)
	}
	if st.Agent != "" && (st.Role != RoleAgent || len(st.Tenants) != 1 || st.Tenants[0] == AllTenants) {
		return fmt.Errorf("key %s: an agent's key has the agent role and the agent's one tenant", st.ID)
	}
	return checkScope(st.Role, st.Tenants)
}

// key is the stored key as the set authorizes with it.
func (st *Stored) key() *Key {
	return &Key{Tenants: slices.Clone(st.Tenants), Role: st.Role, Name: st.Name,
		ID: st.ID, Stored: true, Hint: st.Hint, CreatedAt: st.CreatedAt, ExpiresAt: st.ExpiresAt, Agent: st.Agent}
}

// ErrDuplicateKey says a stored key has the digest of another key.
var ErrDuplicateKey = errors.New("a key with this digest already exists")

// Put adds a stored key, or replaces the one with its id (rotation sets
// ExpiresAt on the old key this way).
func (s *Set) Put(st Stored) error {
	if err := st.Check(); err != nil {
		return err
	}
	var d [sha256.Size]byte
	_, _ = hex.Decode(d[:], []byte(st.Digest))
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.snap.Load().entries
	next := make([]*entry, 0, len(old)+1)
	var prev *entry
	for _, e := range old {
		if e.key.ID == st.ID && e.key.Stored {
			prev = e
			continue
		}
		if e.digest == d {
			return fmt.Errorf("key %s: %w", st.ID, ErrDuplicateKey)
		}
		next = append(next, e)
	}
	rec := st
	rec.Tenants = slices.Clone(st.Tenants)
	e := &entry{key: st.key(), digest: d, stored: &rec}
	if prev != nil {
		e.lastUse.Store(prev.lastUse.Load())
		e.localUse.Store(prev.localUse.Load())
	}
	if n, ok := s.pendingUse[st.ID]; ok {
		raise(&e.lastUse, n)
		delete(s.pendingUse, st.ID)
	}
	s.snap.Store(&keySnapshot{entries: append(next, e)})
	return nil
}

// Remove revokes the stored key with that id; it reports whether there
// was one.
func (s *Set) Remove(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.snap.Load().entries
	next := make([]*entry, 0, len(old))
	for _, e := range old {
		if !(e.key.Stored && e.key.ID == id) {
			next = append(next, e)
		}
	}
	if len(next) == len(old) {
		return false
	}
	s.snap.Store(&keySnapshot{entries: next})
	return true
}

// Info is a key as the API lists it: never its secret.
type Info struct {
	ID   string `json:"id,omitempty"`
	Name string `json:"name"`
	// Key is the key masked: its last four characters at most.
	Key     string   `json:"key"`
	Role    string   `json:"role"`
	Tenants []string `json:"tenants"`
	// Source is "api" for keys created through the API, "config" for the
	// configuration file's (revoked by editing the file).
	Source    string     `json:"source"`
	Agent     string     `json:"agent,omitempty"`
	CreatedAt *time.Time `json:"created_at,omitempty"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
	// LastUsedAt is the key's last request: for keys made through the
	// API, on any node (nodes tell each other within a minute); for the
	// config file's, on the node answering.
	LastUsedAt *time.Time `json:"last_used_at,omitempty"`
}

// List is every key visible to a key reaching tenants (every key for an
// agency-wide one): those all of whose tenants it reaches. Sorted by
// name, then id.
func (s *Set) List(by *Key) []Info {
	var out []Info
	for _, e := range s.snap.Load().entries {
		if !by.Oversees(e.key.Tenants) {
			continue
		}
		in := e.key.Info()
		if n := e.lastUse.Load(); n != 0 {
			in.LastUsedAt = timePtr(time.Unix(0, n).UTC())
		}
		out = append(out, in)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Name != out[j].Name {
			return out[i].Name < out[j].Name
		}
		return out[i].ID < out[j].ID
	})
	return out
}

// Info is the key as the API lists it, without its last use.
func (k *Key) Info() Info {
	in := Info{ID: k.ID, Name: k.Label(), Role: k.Role, Tenants: slices.Clone(k.Tenants), Source: "config", Agent: k.Agent}
	if k.Stored {
		in.Source, in.Key = "api", "****"+k.Hint
		in.CreatedAt = timePtr(k.CreatedAt)
		in.ExpiresAt = timePtr(k.ExpiresAt)
	} else {
		in.Key = tenants.Mask(k.Key.Reveal())
	}
	return in
}

// Info is the stored key as the API lists it.
func (st *Stored) Info() Info { return st.key().Info() }

// StoredLen is the number of keys created through the API.
func (s *Set) StoredLen() int {
	n := 0
	for _, e := range s.snap.Load().entries {
		if e.stored != nil {
			n++
		}
	}
	return n
}

// Stored returns the stored key with that id, if there is one.
func (s *Set) Stored(id string) (Stored, bool) {
	for _, e := range s.snap.Load().entries {
		if e.stored != nil && e.stored.ID == id {
			st := *e.stored
			st.Tenants = slices.Clone(st.Tenants)
			return st, true
		}
	}
	return Stored{}, false
}

// Oversees reports whether k may see and manage a key scoped to ids: an
// agency-wide key any key, another only keys all of whose tenants it
// reaches (never an agency-wide one).
func (k *Key) Oversees(ids []string) bool {
	if k.AgencyWide() {
		return true
	}
	for _, id := range ids {
		if id == AllTenants || !k.Reaches(id) {
			return false
		}
	}
	return true
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// Use is when a stored key was last used, on some node.
type Use struct {
	ID string
	At time.Time
}

// UsedSince is the stored keys used on this node after since (their last
// use as this node saw it): what a node tells the others.
func (s *Set) UsedSince(since time.Time) []Use {
	var out []Use
	for _, e := range s.snap.Load().entries {
		if e.stored == nil {
			continue
		}
		if n := e.localUse.Load(); n != 0 && n > since.UnixNano() {
			out = append(out, Use{ID: e.stored.ID, At: time.Unix(0, n)})
		}
	}
	return out
}

// SeenUse records that another node used stored key id at at: the key's
// last use is the latest any node saw. A use of a key the set does not
// have yet (parley.config compacted: the key's record is now after its
// use's) is kept until Put brings the key.
func (s *Set) SeenUse(id string, at time.Time) {
	for _, e := range s.snap.Load().entries {
		if e.stored != nil && e.stored.ID == id {
			raise(&e.lastUse, at.UnixNano())
			return
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pendingUse == nil {
		s.pendingUse = map[string]int64{}
	}
	s.pendingUse[id] = max(s.pendingUse[id], at.UnixNano())
}

// raise sets v to n unless it holds a later time.
func raise(v *atomic.Int64, n int64) {
	for {
		old := v.Load()
		if n <= old || v.CompareAndSwap(old, n) {
			return
		}
	}
}
