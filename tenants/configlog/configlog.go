// Package configlog keeps the tenant registry in step with the compacted
// topic parley.config, on every node: one record per tenant, keyed
// "tenant/<id>", its value the tenant as JSON with its credentials sealed
// (AES-256-GCM, internal/seal, PARLEY_SECRETS_KEY, bound to the record's
// key), a tombstone once it was deleted. Every node reads the topic from
// its start when it starts, then follows it: a change produced on one node
// is applied on all within a second, without a restart.
//
// The YAML file still works: its tenants seed the topic on first start,
// and at every start a tenant the file defines replaces what the topic
// says of it (the file wins, for what it defines only, and the log says
// so); tenants created at runtime are kept.
package configlog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"strings"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/parleyhq/parley/apikeys"
	"github.com/parleyhq/parley/bus"
	"github.com/parleyhq/parley/internal/seal"
	"github.com/parleyhq/parley/tenants"
	"github.com/parleyhq/parley/wire"
)

// Key prefixes of parley.config.
const (
	PrefixTenant = "tenant/"
	PrefixKey    = "key/"
	// PrefixKeyUse records are when an API key was last used: each node
	// writes those it saw used, at most once per UseInterval.
	PrefixKeyUse = "keyuse/"
)

// DefaultUseInterval is how often a node tells the others which keys it
// saw used.
const DefaultUseInterval = 30 * time.Second

// keyUse is the value of a keyuse/ record.
type keyUse struct {
	V    int   `json:"v"`
	AtMs int64 `json:"at_ms"`
}

// TenantKey is the record key of a tenant.
func TenantKey(id string) []byte { return []byte(PrefixTenant + id) }

// APIKeyKey is the record key of an API key created through the API.
func APIKeyKey(id string) []byte { return []byte(PrefixKey + id) }

// keyRecord is the value of a key/ record: the key's digest and scope,
// never the key (nothing to seal).
type keyRecord struct {
	V   int            `json:"v"`
	Key apikeys.Stored `json:"key"`
}

// EncodeKey is st's record value.
func EncodeKey(st apikeys.Stored) ([]byte, error) { return json.Marshal(keyRecord{V: 1, Key: st}) }

// DecodeKey is the inverse of EncodeKey; key is the record's key.
func DecodeKey(key, value []byte) (apikeys.Stored, error) {
	var r keyRecord
	if err := json.Unmarshal(value, &r); err != nil {
		return apikeys.Stored{}, fmt.Errorf("record: %w", err)
	}
	if r.V != 1 {
		return apikeys.Stored{}, fmt.Errorf("record version %d: this node reads version 1 (upgrade it)", r.V)
	}
	if string(key) != string(APIKeyKey(r.Key.ID)) {
		return apikeys.Stored{}, fmt.Errorf("record of key %q under key %q", r.Key.ID, key)
	}
	return r.Key, r.Key.Check()
}

// record is a value of parley.config.
type record struct {
	V int `json:"v"`
	// Tenant is the tenant with every credential emptied.
	Tenant json.RawMessage `json:"tenant,omitempty"`
	// Sealed is the credentials (secrets, sealed with the record's key as
	// additional data: moved to another record it does not open).
	Sealed []byte `json:"sealed,omitempty"`
}

// secrets are a tenant's credentials, in the clear, only ever sealed.
// Its first number's are at the top level (numberSecrets is embedded, so
// its fields are the record's own), the others' in More.
type secrets struct {
	numberSecrets
	BackendToken  string `json:"backend_token,omitempty"`
	BrainAPIKey   string `json:"brain_api_key,omitempty"`
	WebhookSecret string `json:"webhook_secret,omitempty"`
	// More are the credentials of the tenant's more_numbers, by index.
	More []numberSecrets `json:"more,omitempty"`
}

// numberSecrets are one number's credentials.
type numberSecrets struct {
	TwilioAuthToken string `json:"twilio_auth_token,omitempty"`
	MetaAccessToken string `json:"meta_access_token,omitempty"`
	MetaAppSecret   string `json:"meta_app_secret,omitempty"`
	MetaVerifyToken string `json:"meta_verify_token,omitempty"`
}

// takeSecrets replaces a number's provider settings with copies without
// their credentials, and returns the credentials.
func takeSecrets(tw **tenants.Twilio, m **tenants.Meta) numberSecrets {
	var ns numberSecrets
	if *tw != nil {
		c := **tw
		ns.TwilioAuthToken, c.AuthToken = c.AuthToken.Reveal(), ""
		*tw = &c
	}
	if *m != nil {
		c := **m
		ns.MetaAccessToken, c.AccessToken = c.AccessToken, ""
		ns.MetaAppSecret, c.AppSecret = c.AppSecret, ""
		ns.MetaVerifyToken, c.VerifyToken = c.VerifyToken, ""
		*m = &c
	}
	return ns
}

// putSecrets puts ns back into a number's provider settings.
func putSecrets(tw *tenants.Twilio, m *tenants.Meta, ns numberSecrets) {
	if tw != nil {
		tw.AuthToken = tenants.Secret(ns.TwilioAuthToken)
	}
	if m != nil {
		m.AccessToken, m.AppSecret, m.VerifyToken = ns.MetaAccessToken, ns.MetaAppSecret, ns.MetaVerifyToken
	}
}

// EncodeTenant is t's record value: t as JSON without its credentials,
// and the credentials sealed with box.
func EncodeTenant(box *seal.Box, t tenants.Tenant) ([]byte, error) {
	var s secrets
	c := t // a copy: the pointers below are copied before they are changed
	s.numberSecrets = takeSecrets(&c.Twilio, &c.Meta)
	if t.Webhook != nil {
		w := *t.Webhook
		s.WebhookSecret, w.Secret = w.Secret.Reveal(), ""
		c.Webhook = &w
	}
	s.BackendToken, c.Backend.Token = t.Backend.Token.Reveal(), ""
	s.BrainAPIKey, c.Brain.APIKey = t.Brain.APIKey.Reveal(), ""
	c.MoreNumbers = nil
	for _, n := range t.MoreNumbers {
		s.More = append(s.More, takeSecrets(&n.Twilio, &n.Meta))
		c.MoreNumbers = append(c.MoreNumbers, n)
	}
	pub, err := json.Marshal(c)
	if err != nil {
		return nil, err
	}
	plain, err := json.Marshal(s)
	if err != nil {
		return nil, err
	}
	return json.Marshal(record{V: 1, Tenant: pub, Sealed: box.Seal(plain, TenantKey(t.ID))})
}

// DecodeTenant is the inverse of EncodeTenant; key is the record's key.
func DecodeTenant(box *seal.Box, key, value []byte) (tenants.Tenant, error) {
	var t tenants.Tenant
	var r record
	if err := json.Unmarshal(value, &r); err != nil {
		return t, fmt.Errorf("record: %w", err)
	}
	if r.V != 1 {
		return t, fmt.Errorf("record version %d: this node reads version 1 (upgrade it)", r.V)
	}
	if err := json.Unmarshal(r.Tenant, &t); err != nil {
		return t, fmt.Errorf("tenant: %w", err)
	}
	if string(key) != string(TenantKey(t.ID)) {
		return t, fmt.Errorf("record of tenant %q under key %q", t.ID, key)
	}
	plain, err := box.Open(r.Sealed, key)
	if err != nil {
		return t, err
	}
	var s secrets
	if err := json.Unmarshal(plain, &s); err != nil {
		return t, fmt.Errorf("secrets: %w", err)
	}
	putSecrets(t.Twilio, t.Meta, s.numberSecrets)
	if t.Webhook != nil {
		t.Webhook.Secret = tenants.Secret(s.WebhookSecret)
	}
	t.Backend.Token = tenants.Secret(s.BackendToken)
	t.Brain.APIKey = tenants.Secret(s.BrainAPIKey)
	if len(s.More) != len(t.MoreNumbers) {
		return t, fmt.Errorf("secrets of %d more numbers for %d", len(s.More), len(t.MoreNumbers))
	}
	for i := range t.MoreNumbers {
		putSecrets(t.MoreNumbers[i].Twilio, t.MoreNumbers[i].Meta, s.More[i])
	}
	return t, nil
}

// Options say what to follow and where to apply it.
type Options struct {
	Brokers  []string
	Security *bus.Security // nil: plaintext
	Producer *bus.Producer
	Box      *seal.Box
	// Registry is the tenants of the file; the topic's are added to it.
	Registry *tenants.Registry
	// Keys is the API keys of the file; the ones created through the API
	// are added to it and revoked from it. Nil: key records are ignored.
	Keys *apikeys.Set
	// File is the tenants the file defines: they win over the topic.
	File   []tenants.Tenant
	Logger *slog.Logger
	// UseInterval is how often this node writes the last use of the keys
	// it saw used (DefaultUseInterval when zero).
	UseInterval time.Duration
	// AllowSimulator lets simulator tenants from the topic in (dev, or
	// allow_simulator); without it they are skipped, as serve refuses them
	// in the file.
	AllowSimulator bool
}

// Log is a running follower of parley.config.
type Log struct {
	o Options

	mu      sync.Mutex
	applied chan struct{} // closed and replaced at each applied change
	file    map[string]bool
}

// Start reads parley.config to its end into the registry (the file's
// tenants winning), writes the file's tenants the topic lacks or differs
// on, and follows the topic until ctx ends.
func Start(ctx context.Context, o Options) (*Log, error) {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	file := map[string]bool{}
	for _, t := range o.File {
		file[t.ID] = true
	}
	l := &Log{o: o, applied: make(chan struct{}), file: file}
	// Until caught up, records collect here and go in as one change.
	seen := map[string]*tenants.Tenant{} // id -> latest (nil: deleted)
	live := false
	started := time.Now()
	err := bus.Follow(ctx, o.Brokers, o.Security, wire.TopicConfig, o.Logger, func(key, value []byte) {
		if id, ok := strings.CutPrefix(string(key), PrefixKeyUse); ok {
			var u keyUse
			if o.Keys != nil && value != nil && json.Unmarshal(value, &u) == nil && u.V == 1 {
				o.Keys.SeenUse(id, time.UnixMilli(u.AtMs))
			}
			return
		}
		if id, ok := strings.CutPrefix(string(key), PrefixKey); ok {
			l.applyKey(id, key, value)
			return
		}
		id, ok := strings.CutPrefix(string(key), PrefixTenant)
		if !ok {
			return // a record kind a newer node writes
		}
		var t *tenants.Tenant
		if value != nil {
			d, err := DecodeTenant(o.Box, key, value)
			if err != nil {
				o.Logger.Warn("parley.config: record skipped", "key", string(key), "err", err)
				return
			}
			if d.Sim && !o.AllowSimulator {
				o.Logger.Warn("parley.config: simulator tenant skipped (serve runs no simulator unless allow_simulator)", "tenant", id)
				return
			}
			t = &d
		}
		if !live {
			seen[id] = t
			return
		}
		l.apply(id, t)
	}, func() {
		live = true
		var puts []tenants.Tenant
		var deletes []string
		for id, t := range seen {
			switch {
			case file[id]:
				// The file wins; Start writes it back below if it differs.
			case t == nil:
				deletes = append(deletes, id)
			default:
				puts = append(puts, *t)
			}
		}
		if err := o.Registry.Apply(puts, deletes); err != nil {
			// One bad record must not hide the others: apply one by one.
			for _, t := range puts {
				if err := o.Registry.Put(t); err != nil {
					o.Logger.Warn("parley.config: tenant skipped", "tenant", t.ID, "err", err)
				}
			}
		}
	})
	if err != nil {
		return nil, fmt.Errorf("follow %s: %w", wire.TopicConfig, err)
	}
	loaded := o.Registry.Len()
	// Compare the file's tenants with what the topic said before writing.
	var msgs []kafka.Message
	for _, t := range o.File {
		value, err := EncodeTenant(o.Box, t)
		if err != nil {
			return nil, err
		}
		prev, had := seen[t.ID]
		switch {
		case !had || prev == nil:
			o.Logger.Info("parley.config: tenant from the config file written to the topic", "tenant", t.ID)
		case !sameTenant(o.Box, t, *prev):
			o.Logger.Warn("parley.config: the config file defines this tenant; its definition replaces the one on the topic", "tenant", t.ID)
		default:
			continue
		}
		msgs = append(msgs, kafka.Message{Topic: wire.TopicConfig, Key: TenantKey(t.ID), Value: value})
	}
	if len(msgs) > 0 {
		if err := o.Producer.Produce(ctx, msgs...); err != nil {
			return nil, fmt.Errorf("seed %s: %w", wire.TopicConfig, err)
		}
	}
	apiKeys := 0
	if o.Keys != nil {
		apiKeys = o.Keys.StoredLen()
		go l.tellUses(ctx)
	}
	o.Logger.Info("parley.config loaded", "tenants", loaded, "api_keys", apiKeys, "from_file", len(o.File), "written", len(msgs), "took", time.Since(started).Round(time.Millisecond))
	return l, nil
}

// sameTenant reports whether the file's a and the topic's b are the same
// tenant, compared as the topic would carry a.
func sameTenant(box *seal.Box, a, b tenants.Tenant) bool {
	v, err := EncodeTenant(box, a)
	if err != nil {
		return false
	}
	ra, err := DecodeTenant(box, TenantKey(a.ID), v)
	return err == nil && reflect.DeepEqual(ra, b)
}

// tellUses writes, every UseInterval, when the keys this node saw used
// were last used, so that every node lists the same last use.
func (l *Log) tellUses(ctx context.Context) {
	every := l.o.UseInterval
	if every <= 0 {
		every = DefaultUseInterval
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	since := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		next := time.Now()
		if err := l.TellUses(ctx, since); err != nil {
			l.o.Logger.Warn("parley.config: key use not written; next time", "err", err)
			continue
		}
		since = next
	}
}

// TellUses writes the last use of the keys this node saw used after
// since (tellUses runs it every UseInterval).
func (l *Log) TellUses(ctx context.Context, since time.Time) error {
	var msgs []kafka.Message
	for _, u := range l.o.Keys.UsedSince(since) {
		v, _ := json.Marshal(keyUse{V: 1, AtMs: u.At.UnixMilli()})
		msgs = append(msgs, kafka.Message{Topic: wire.TopicConfig, Key: []byte(PrefixKeyUse + u.ID), Value: v})
	}
	if len(msgs) == 0 {
		return nil
	}
	return l.o.Producer.Produce(ctx, msgs...)
}

// FromFile reports whether the config file defines tenant id: the file
// wins at every start, so a change made at runtime would not last.
func (l *Log) FromFile(id string) bool { return l.file[id] }

// applyKey puts one followed key record into the key set. Keys need no
// catching up first: each record stands alone.
func (l *Log) applyKey(id string, key, value []byte) {
	if l.o.Keys == nil {
		return
	}
	if value == nil {
		if l.o.Keys.Remove(id) {
			l.o.Logger.Info("parley.config: API key revoked", "key_id", id)
		}
	} else if st, err := DecodeKey(key, value); err != nil {
		l.o.Logger.Warn("parley.config: key record skipped", "key", string(key), "err", err)
		return
	} else if err := l.o.Keys.Put(st); err != nil {
		l.o.Logger.Warn("parley.config: key record refused", "key_id", id, "err", err)
		return
	}
	l.changed()
}

// changed wakes the writers waiting for their change to apply.
func (l *Log) changed() {
	l.mu.Lock()
	close(l.applied)
	l.applied = make(chan struct{})
	l.mu.Unlock()
}

// apply puts one followed change into the registry.
func (l *Log) apply(id string, t *tenants.Tenant) {
	if t == nil {
		if l.o.Registry.Delete(id) {
			l.o.Logger.Info("parley.config: tenant deleted", "tenant", id)
		}
	} else if err := l.o.Registry.Put(*t); err != nil {
		l.o.Logger.Warn("parley.config: tenant change refused", "tenant", id, "err", err)
	} else {
		l.o.Logger.Info("parley.config: tenant applied", "tenant", id)
	}
	l.changed()
}

// ErrInvalid says a change was refused before anything was written: the
// tenant is not valid, or its Meta number is another tenant's (then the
// error is also tenants.ErrNumberTaken).
var ErrInvalid = errors.New("invalid")

// ErrNotApplied says a change was written but not seen applied in time.
var ErrNotApplied = errors.New("parley.config: change written, not yet applied on this node")

// PutTenant validates t and writes it to parley.config; it returns once
// this node applied it (every node does within about a second). A tenant
// on another tenant's Meta number is refused (tenants.ErrNumberTaken)
// before anything is written.
func (l *Log) PutTenant(ctx context.Context, t tenants.Tenant) error {
	if err := l.o.Registry.Check(t); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	value, err := EncodeTenant(l.o.Box, t)
	if err != nil {
		return err
	}
	return l.write(ctx, TenantKey(t.ID), value, func() bool {
		got := l.o.Registry.Get(t.ID)
		return got != nil && sameTenant(l.o.Box, t, *got)
	})
}

// DeleteTenant writes the tenant's tombstone; it returns once this node
// applied it.
func (l *Log) DeleteTenant(ctx context.Context, id string) error {
	return l.write(ctx, TenantKey(id), nil, func() bool { return l.o.Registry.Get(id) == nil })
}

// PutKey writes an API key created or rotated through the API; it
// returns once this node's key set has it.
func (l *Log) PutKey(ctx context.Context, st apikeys.Stored) error {
	if l.o.Keys == nil {
		return errors.New("parley.config: this node keeps no API keys")
	}
	if err := st.Check(); err != nil {
		return err
	}
	value, err := EncodeKey(st)
	if err != nil {
		return err
	}
	return l.write(ctx, APIKeyKey(st.ID), value, func() bool {
		k, ok := l.o.Keys.Stored(st.ID)
		return ok && k.ExpiresAt.Equal(st.ExpiresAt)
	})
}

// DeleteKey revokes an API key: its tombstone; it returns once this node
// refuses the key (every node does within about a second).
func (l *Log) DeleteKey(ctx context.Context, id string) error {
	if l.o.Keys == nil {
		return errors.New("parley.config: this node keeps no API keys")
	}
	// Its last use goes with it (compaction then drops both).
	if err := l.o.Producer.Produce(ctx, kafka.Message{Topic: wire.TopicConfig, Key: []byte(PrefixKeyUse + id)}); err != nil {
		return err
	}
	return l.write(ctx, APIKeyKey(id), nil, func() bool {
		_, ok := l.o.Keys.Stored(id)
		return !ok
	})
}

func (l *Log) write(ctx context.Context, key, value []byte, done func() bool) error {
	if err := l.o.Producer.Produce(ctx, kafka.Message{Topic: wire.TopicConfig, Key: key, Value: value}); err != nil {
		return err
	}
	deadline := time.NewTimer(5 * time.Second)
	defer deadline.Stop()
	for {
		l.mu.Lock()
		ch := l.applied
		l.mu.Unlock()
		if done() {
			return nil
		}
		select {
		case <-ch:
		case <-deadline.C:
			return ErrNotApplied
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
