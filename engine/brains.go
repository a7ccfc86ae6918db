package engine

import (
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/parleyhq/parley/backend"
	"github.com/parleyhq/parley/backend/demo"
	"github.com/parleyhq/parley/backend/httpapi"
	"github.com/parleyhq/parley/brain"
	"github.com/parleyhq/parley/brain/openai"
	"github.com/parleyhq/parley/brain/rules"
	"github.com/parleyhq/parley/brain/tools"
	"github.com/parleyhq/parley/tenants"
)

// brainSet holds each tenant's brain: the rules brain over the tenant's
// backend, or the language-model brain with the rules brain as fallback.
// Tenants change at runtime (parley.config), so a brain is built on first
// use and rebuilt when its tenant was replaced.
type brainSet struct {
	backends *backendSet
	log      *slog.Logger
	byTenant sync.Map // tenant id -> brainEntry
}

type brainEntry struct {
	t *tenants.Tenant
	b brain.Brain
}

// newBrains checks that every tenant of reg gets a brain, and builds them.
func newBrains(reg *tenants.Registry, backends *backendSet, log *slog.Logger) (*brainSet, error) {
	b := &brainSet{backends: backends, log: log}
	for _, t := range reg.All() {
		if _, err := b.build(t); err != nil {
			return nil, err
		}
	}
	return b, nil
}

func (b *brainSet) build(t *tenants.Tenant) (brain.Brain, error) {
	loc, err := t.Location()
	if err != nil {
		loc = time.UTC // Validate refuses an unknown zone; kept for the fallback
	}
	kit := &tools.Kit{Backend: b.backends.For(t), Location: loc, DashboardURL: t.DashboardURL}
	offline := rules.New(rules.WithKit(kit))
	var out brain.Brain = offline
	if t.Brain.Kind == "openai" {
		llm, err := openai.New(openai.Config{
			BaseURL:  t.Brain.BaseURL,
			Model:    t.Brain.Model,
			APIKey:   t.Brain.APIKey.Reveal(),
			Kit:      kit,
			Fallback: offline,
		})
		if err != nil {
			fallback := rules.Escalate(offline, t.Brain.Escalate)
			b.byTenant.Store(t.ID, brainEntry{t, fallback})
			return fallback, fmt.Errorf("tenant %s brain: %w", t.ID, err)
		}
		out = llm
	}
	// Disputed charges, accounts taken over and legal threats go to a
	// person before any brain answers.
	out = rules.Escalate(out, t.Brain.Escalate)
	b.byTenant.Store(t.ID, brainEntry{t, out})
	return out, nil
}

// For returns the brain of a tenant. A tenant whose brain cannot be built
// (a setting the registry's validation lets through) answers by the rules.
func (b *brainSet) For(t *tenants.Tenant) brain.Brain {
	if e, ok := b.byTenant.Load(t.ID); ok && e.(brainEntry).t == t {
		return e.(brainEntry).b
	}
	out, err := b.build(t)
	if err != nil {
		b.log.Warn("tenant brain falls back to rules", "tenant", t.ID, "err", err)
	}
	return out
}

// backendSet picks each tenant's business system: the in-memory demo for
// kind demo, an HTTP client of the backend contract for kind http, built
// on first use and rebuilt when the tenant was replaced.
type backendSet struct {
	demo *demo.Backend
	log  *slog.Logger
	http sync.Map // tenant id -> backendEntry
}

type backendEntry struct {
	t *tenants.Tenant
	c *httpapi.Client
}

func newBackends(reg *tenants.Registry, log *slog.Logger) (*backendSet, error) {
	b := &backendSet{demo: demo.New(), log: log}
	for _, t := range reg.All() {
		if _, err := b.build(t); err != nil {
			return nil, err
		}
	}
	return b, nil
}

func (b *backendSet) build(t *tenants.Tenant) (*httpapi.Client, error) {
	if t.Backend.Kind != "http" {
		return nil, nil
	}
	c, err := httpapi.NewClient(t.Backend.BaseURL, t.Backend.Token.Reveal())
	if err != nil {
		return nil, fmt.Errorf("tenant %s backend: %w", t.ID, err)
	}
	b.http.Store(t.ID, backendEntry{t, c})
	return c, nil
}

// For returns the backend of a tenant.
func (b *backendSet) For(t *tenants.Tenant) backend.Backend {
	if t.Backend.Kind != "http" {
		return b.demo
	}
	if e, ok := b.http.Load(t.ID); ok && e.(backendEntry).t == t {
		return e.(backendEntry).c
	}
	c, err := b.build(t)
	if err != nil || c == nil {
		b.log.Warn("tenant backend unusable; the demo backend answers", "tenant", t.ID, "err", err)
		return b.demo
	}
	return c
}

// Profiles is For narrowed to what sessions need.
func (b *backendSet) Profiles(t *tenants.Tenant) backend.Profiles { return b.For(t) }
