// Package tenants holds the registry of businesses Parley serves: their
// numbers, channel credentials, backend and brain settings.
package tenants

import (
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	_ "time/tzdata" // time zones work on machines without a zoneinfo database
)

// Channel names.
const (
	ChannelTwilio    = "twilio"
	ChannelMeta      = "meta"
	ChannelSimulator = "sim"
)

// Tenant is one business.
type Tenant struct {
	ID     string  `yaml:"id" json:"id"`
	Name   string  `yaml:"name" json:"name"`
	Twilio *Twilio `yaml:"twilio,omitempty" json:"twilio,omitempty"`
	// Meta connects the tenant's number directly through Meta's Cloud API.
	Meta *Meta `yaml:"meta,omitempty" json:"meta,omitempty"`
	Sim  bool  `yaml:"simulator,omitempty" json:"simulator,omitempty"`
	// Number is what the business says of its WhatsApp number (twilio or
	// meta above) beyond the provider's credentials: its display name,
	// whether it is active.
	Number NumberSettings `yaml:"number,omitempty" json:"number,omitzero"`
	// MoreNumbers are the tenant's other WhatsApp numbers: the one above
	// is its first. Customers write to any; replies leave from the number
	// they wrote to; API sends choose one ("from") or take the first
	// active.
	MoreNumbers []Number `yaml:"more_numbers,omitempty" json:"more_numbers,omitempty"`
	// Agents are the business's people who answer when the assistant
	// hands a conversation over (tenants/agents.go).
	Agents  []Agent       `yaml:"agents,omitempty" json:"agents,omitempty"`
	Backend BackendConfig `yaml:"backend" json:"backend"`
	Brain   BrainConfig   `yaml:"brain" json:"brain"`
	Session SessionConfig `yaml:"session,omitempty" json:"session,omitempty"`
	// Templates are the tenant's approved WhatsApp templates by name.
	Templates map[string]Template `yaml:"templates,omitempty" json:"templates,omitempty"`
	// Webhook, when set, receives "message.received" and
	// "conversation.started" events, signed with the secret.
	Webhook *Webhook `yaml:"webhook,omitempty" json:"webhook,omitempty"`
	// Outbound tunes the sender for the tenant's number.
	Outbound OutboundConfig `yaml:"outbound,omitempty" json:"outbound,omitempty"`
	// TimeZone is where the business is: "today", "tomorrow" and slot times
	// are read and shown in it. Default Europe/London.
	TimeZone string `yaml:"time_zone,omitempty" json:"time_zone,omitempty"`
	// DashboardURL is where customers manage bookings themselves.
	DashboardURL string `yaml:"dashboard_url,omitempty" json:"dashboard_url,omitempty"`
	// APIRateLimit caps automation API sends per second (default 50).
	APIRateLimit float64 `yaml:"api_rate_limit,omitempty" json:"api_rate_limit,omitempty"`
}

// NumberSettings are a tenant's number's own settings.
type NumberSettings struct {
	// DisplayName is how the agency's people know the number.
	DisplayName string `yaml:"display_name,omitempty" json:"display_name,omitempty"`
	// Agent is the id of the agent the number is assigned to (one of the
	// tenant's agents, WhatsApp enabled): who answers its conversations
	// when a person must.
	Agent string `yaml:"assigned_agent,omitempty" json:"assigned_agent,omitempty"`
	// Inactive: the number is switched off. Its webhooks are still
	// verified, stored and logged (nothing is lost), nothing is answered
	// automatically, and API sends from it answer 503 sender_offline.
	Inactive bool `yaml:"inactive,omitempty" json:"inactive,omitempty"`
}

// Number is one of a tenant's other numbers: a Twilio sender or a Meta
// Cloud number, and its settings.
type Number struct {
	NumberSettings `yaml:",inline"`
	Twilio         *Twilio `yaml:"twilio,omitempty" json:"twilio,omitempty"`
	Meta           *Meta   `yaml:"meta,omitempty" json:"meta,omitempty"`
}

// OutboundConfig tunes sending from the tenant's number.
type OutboundConfig struct {
	// RateLimit is messages per second from the number; nil means the
	// default (80/s, Meta's and Twilio's usual tier), 0 means no limit.
	RateLimit *float64 `yaml:"rate_limit,omitempty" json:"rate_limit,omitempty"`
	// FallbackTemplate names a template in templates: sent instead when
	// free text is refused outside the 24-hour window.
	FallbackTemplate  string            `yaml:"fallback_template,omitempty" json:"fallback_template,omitempty"`
	FallbackVariables map[string]string `yaml:"fallback_variables,omitempty" json:"fallback_variables,omitempty"`
}

// Webhook is a tenant's endpoint for Parley's event triggers.
type Webhook struct {
	URL    string `yaml:"url" json:"url"`
	Secret Secret `yaml:"secret" json:"secret"`
}

// Template is an approved WhatsApp template: a Twilio Content SID or a
// Meta template name, with its language.
type Template struct {
	ContentSID string `yaml:"content_sid,omitempty" json:"content_sid,omitempty"`
	Language   string `yaml:"language,omitempty" json:"language,omitempty"`
}

// SessionConfig overrides the sign-in rules for a tenant; zero keeps the
// default (3 codes an hour, 10 a day, 24h sessions ending after 2h idle).
type SessionConfig struct {
	CodesPerHour int           `yaml:"codes_per_hour,omitempty" json:"codes_per_hour,omitempty"`
	CodesPerDay  int           `yaml:"codes_per_day,omitempty" json:"codes_per_day,omitempty"`
	SessionTTL   time.Duration `yaml:"session_ttl,omitempty" json:"session_ttl,omitempty"`
	IdleTimeout  time.Duration `yaml:"idle_timeout,omitempty" json:"idle_timeout,omitempty"`
}

// Twilio is a tenant's Twilio WhatsApp sender.
type Twilio struct {
	AccountSID string `yaml:"account_sid" json:"account_sid"`
	AuthToken  Secret `yaml:"auth_token" json:"auth_token"`
	From       string `yaml:"from" json:"from"`
	// APIBaseURL points the sender at a Twilio-compatible API (sandboxes,
	// tests). Empty means Twilio itself.
	APIBaseURL string `yaml:"api_base_url,omitempty" json:"api_base_url,omitempty"`
}

// BackendConfig says where the tenant's business system is.
type BackendConfig struct {
	Kind    string `yaml:"kind" json:"kind"` // demo | http
	BaseURL string `yaml:"base_url,omitempty" json:"base_url,omitempty"`
	Token   Secret `yaml:"token,omitempty" json:"token,omitempty"`
}

// BrainConfig says which brain answers the tenant's customers.
type BrainConfig struct {
	Kind    string `yaml:"kind" json:"kind"` // rules | openai
	BaseURL string `yaml:"base_url,omitempty" json:"base_url,omitempty"`
	Model   string `yaml:"model,omitempty" json:"model,omitempty"`
	APIKey  Secret `yaml:"api_key,omitempty" json:"api_key,omitempty"`
	// Escalate are phrases, beyond brain.RiskPhrases (disputed or
	// unauthorised charges, accounts taken over, legal threats), that send
	// a conversation to a person at once, whichever brain answers.
	Escalate []string `yaml:"escalate,omitempty" json:"escalate,omitempty"`
}

// ChannelNone is the channel of a tenant with no number connected yet:
// nothing reaches it and nothing can be sent from it.
const ChannelNone = ""

// Channel is the channel replies to this tenant's customers go out on.
func (t *Tenant) Channel() string {
	switch {
	case t.Twilio != nil:
		return ChannelTwilio
	case t.Meta != nil:
		return ChannelMeta
	case t.Sim:
		return ChannelSimulator
	}
	return ChannelNone
}

// CanSend reports whether messages can leave from one of the tenant's
// numbers now: one is connected and active.
func (t *Tenant) CanSend() bool {
	if t.Sim {
		return true
	}
	for n := range t.EachNumber() {
		if !n.Inactive {
			return true
		}
	}
	return false
}

var idPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)

// Location is the tenant's time zone.
func (t *Tenant) Location() (*time.Location, error) {
	if t.TimeZone == "" {
		return time.LoadLocation("Europe/London")
	}
	return time.LoadLocation(t.TimeZone)
}

// Validate reports the first thing wrong with the tenant's configuration.
func (t *Tenant) Validate() error {
	if !idPattern.MatchString(t.ID) {
		return fmt.Errorf("tenant id %q: use lower-case letters, digits, - and _", t.ID)
	}
	if t.Twilio != nil {
		if t.Twilio.AccountSID == "" || t.Twilio.AuthToken == "" || t.Twilio.From == "" {
			return fmt.Errorf("tenant %s: twilio needs account_sid, auth_token and from", t.ID)
		}
	}
	if t.Meta != nil {
		if t.Twilio != nil {
			return fmt.Errorf("tenant %s: configure one channel, twilio or meta", t.ID)
		}
		if err := t.Meta.Validate(); err != nil {
			return fmt.Errorf("tenant %s: meta: %w", t.ID, err)
		}
	}
	// No channel is a tenant whose number is not connected yet (an
	// agency creates the business first): valid, it just reaches no one.
	if err := t.validateNumbers(); err != nil {
		return err
	}
	if err := t.validateAgents(); err != nil {
		return err
	}
	switch t.Backend.Kind {
	case "", "demo":
	case "http":
		if !strings.HasPrefix(t.Backend.BaseURL, "http://") && !strings.HasPrefix(t.Backend.BaseURL, "https://") {
			return fmt.Errorf("tenant %s: backend kind http needs an http(s) base_url", t.ID)
		}
	default:
		return fmt.Errorf("tenant %s: unknown backend kind %q", t.ID, t.Backend.Kind)
	}
	switch t.Brain.Kind {
	case "", "rules":
	case "openai":
		if t.Brain.Model == "" {
			return fmt.Errorf("tenant %s: brain kind openai needs a model", t.ID)
		}
	default:
		return fmt.Errorf("tenant %s: unknown brain kind %q", t.ID, t.Brain.Kind)
	}
	if n := t.Outbound.FallbackTemplate; n != "" {
		if _, ok := t.Templates[n]; !ok {
			return fmt.Errorf("tenant %s: outbound.fallback_template %q is not in templates", t.ID, n)
		}
	}
	if r := t.Outbound.RateLimit; r != nil && *r < 0 {
		return fmt.Errorf("tenant %s: outbound.rate_limit must not be negative", t.ID)
	}
	if _, err := t.Location(); err != nil {
		return fmt.Errorf("tenant %s: time_zone: %w", t.ID, err)
	}
	if w := t.Webhook; w != nil && (!strings.HasPrefix(w.URL, "http://") && !strings.HasPrefix(w.URL, "https://") || w.Secret == "") {
		return fmt.Errorf("tenant %s: webhook needs an http(s) url and a secret", t.ID)
	}
	if s := t.Session; s.CodesPerHour < 0 || s.CodesPerDay < 0 || s.SessionTTL < 0 || s.IdleTimeout < 0 {
		return fmt.Errorf("tenant %s: session limits must not be negative", t.ID)
	}
	return nil
}

// Registry finds tenants by id. It is safe for concurrent use and can be
// changed at runtime (parley.config, tenants/configlog): each change
// builds a new snapshot and swaps it in atomically, so readers (the
// webhook hot path) never lock. A *Tenant it returns is never modified:
// a change replaces it. Indexes by a provider's numbers are the
// provider's (channels/meta: Numbers), rebuilt when Version changes.
type Registry struct {
	snap atomic.Pointer[snapshot]
	mu   sync.Mutex // serialises writers
}

// snapshot is one immutable state of the registry.
type snapshot struct {
	version uint64
	byID    map[string]*Tenant
	sorted  []*Tenant
}

// NewRegistry validates the tenants and indexes them.
func NewRegistry(list []Tenant) (*Registry, error) {
	byID := make(map[string]*Tenant, len(list))
	for i := range list {
		t := &list[i]
		if err := t.Validate(); err != nil {
			return nil, err
		}
		if _, dup := byID[t.ID]; dup {
			return nil, fmt.Errorf("tenant %s configured twice", t.ID)
		}
		byID[t.ID] = t
	}
	if err := checkNumbers(byID); err != nil {
		return nil, err
	}
	r := &Registry{}
	r.snap.Store(newSnapshot(1, byID))
	return r, nil
}

func newSnapshot(version uint64, byID map[string]*Tenant) *snapshot {
	sorted := make([]*Tenant, 0, len(byID))
	for _, t := range byID {
		sorted = append(sorted, t)
	}
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].ID < sorted[j].ID })
	return &snapshot{version: version, byID: byID, sorted: sorted}
}

// ErrNumberTaken says a Meta phone_number_id is already another tenant's:
// a webhook could not tell the two apart.
var ErrNumberTaken = errors.New("number already connected to another tenant")

// checkNumbers refuses two tenants on one Meta phone_number_id.
func checkNumbers(byID map[string]*Tenant) error {
	seen := make(map[string]string)
	for _, t := range byID {
		for _, id := range t.metaNumbers() {
			if other, dup := seen[id]; dup && other != t.ID {
				a, b := other, t.ID
				if b < a {
					a, b = b, a
				}
				return fmt.Errorf("meta phone_number_id %s configured for tenants %s and %s: %w", id, a, b, ErrNumberTaken)
			}
			seen[id] = t.ID
		}
	}
	return nil
}

// Get returns the tenant with that id, or nil.
func (r *Registry) Get(id string) *Tenant { return r.snap.Load().byID[id] }

// All returns the tenants sorted by id. The slice is shared: do not
// modify it.
func (r *Registry) All() []*Tenant { return r.snap.Load().sorted }

// Len is the number of tenants.
func (r *Registry) Len() int { return len(r.snap.Load().byID) }

// Version changes with every change of the registry: indexes built from
// it are stale once it moved.
func (r *Registry) Version() uint64 { return r.snap.Load().version }

// Apply validates and applies one batch of changes: puts (new or
// replaced tenants) and deletes (ids), in one swap. It refuses the whole
// batch if a tenant is invalid or two tenants would share a Meta number.
func (r *Registry) Apply(puts []Tenant, deletes []string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	old := r.snap.Load()
	byID := make(map[string]*Tenant, len(old.byID)+len(puts))
	for id, t := range old.byID {
		byID[id] = t
	}
	for _, id := range deletes {
		delete(byID, id)
	}
	for i := range puts {
		t := puts[i]
		if err := t.Validate(); err != nil {
			return err
		}
		byID[t.ID] = &t
	}
	if err := checkNumbers(byID); err != nil {
		return err
	}
	r.snap.Store(newSnapshot(old.version+1, byID))
	return nil
}

// Check reports whether t could be put now: valid, and on no Meta number
// of another tenant (ErrNumberTaken).
func (r *Registry) Check(t Tenant) error {
	if err := t.Validate(); err != nil {
		return err
	}
	mine := t.metaNumbers()
	if len(mine) == 0 {
		return nil
	}
	for _, o := range r.All() {
		if o.ID == t.ID {
			continue
		}
		for _, id := range o.metaNumbers() {
			if slices.Contains(mine, id) {
				return fmt.Errorf("meta phone_number_id %s is tenant %s's: %w", id, o.ID, ErrNumberTaken)
			}
		}
	}
	return nil
}

// Put adds or replaces one tenant.
func (r *Registry) Put(t Tenant) error { return r.Apply([]Tenant{t}, nil) }

// Delete removes a tenant; it reports whether there was one.
func (r *Registry) Delete(id string) bool {
	if r.Get(id) == nil {
		return false
	}
	return r.Apply(nil, []string{id}) == nil
}

// Clone is a deep copy of t: changing it leaves t, and so the registry's
// snapshot it may come from, as it was.
func (t *Tenant) Clone() Tenant {
	c := *t
	if t.Twilio != nil {
		tw := *t.Twilio
		c.Twilio = &tw
	}
	if t.Meta != nil {
		m := *t.Meta
		c.Meta = &m
	}
	if t.Webhook != nil {
		w := *t.Webhook
		c.Webhook = &w
	}
	if t.Outbound.RateLimit != nil {
		r := *t.Outbound.RateLimit
		c.Outbound.RateLimit = &r
	}
	c.Outbound.FallbackVariables = maps.Clone(t.Outbound.FallbackVariables)
	c.Templates = maps.Clone(t.Templates)
	c.Brain.Escalate = slices.Clone(t.Brain.Escalate)
	c.Agents = slices.Clone(t.Agents)
	c.MoreNumbers = nil
	for _, n := range t.MoreNumbers {
		if n.Twilio != nil {
			tw := *n.Twilio
			n.Twilio = &tw
		}
		if n.Meta != nil {
			m := *n.Meta
			n.Meta = &m
		}
		c.MoreNumbers = append(c.MoreNumbers, n)
	}
	return c
}
