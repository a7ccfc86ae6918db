package engine

import (
	"fmt"

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
type brainSet struct {
	byTenant map[string]brain.Brain
}

func newBrains(reg *tenants.Registry, backends *backendSet) (*brainSet, error) {
	b := &brainSet{byTenant: map[string]brain.Brain{}}
	for _, t := range reg.All() {
		loc, err := t.Location()
		if err != nil {
			return nil, err
		}
		kit := &tools.Kit{Backend: backends.For(t), Location: loc, DashboardURL: t.DashboardURL}
		offline := rules.New(rules.WithKit(kit))
		switch t.Brain.Kind {
		case "openai":
			llm, err := openai.New(openai.Config{
				BaseURL:  t.Brain.BaseURL,
				Model:    t.Brain.Model,
				APIKey:   t.Brain.APIKey.Reveal(),
				Kit:      kit,
				Fallback: offline,
			})
			if err != nil {
				return nil, fmt.Errorf("tenant %s brain: %w", t.ID, err)
			}
			b.byTenant[t.ID] = llm
		default:
			b.byTenant[t.ID] = offline
		}
	}
	return b, nil
}

// For returns the brain of a tenant.
func (b *brainSet) For(t *tenants.Tenant) brain.Brain { return b.byTenant[t.ID] }

// backendSet picks each tenant's business system: the in-memory demo for
// kind demo, an HTTP client of the backend contract for kind http.
type backendSet struct {
	demo *demo.Backend
	http map[string]*httpapi.Client
}

func newBackends(reg *tenants.Registry) (*backendSet, error) {
	b := &backendSet{demo: demo.New(), http: map[string]*httpapi.Client{}}
	for _, t := range reg.All() {
		if t.Backend.Kind != "http" {
			continue
		}
		c, err := httpapi.NewClient(t.Backend.BaseURL, t.Backend.Token.Reveal())
		if err != nil {
			return nil, fmt.Errorf("tenant %s backend: %w", t.ID, err)
		}
		b.http[t.ID] = c
	}
	return b, nil
}

// For returns the backend of a tenant.
func (b *backendSet) For(t *tenants.Tenant) backend.Backend {
	if c, ok := b.http[t.ID]; ok {
		return c
	}
	return b.demo
}

// Profiles is For narrowed to what sessions need.
func (b *backendSet) Profiles(t *tenants.Tenant) backend.Profiles { return b.For(t) }
