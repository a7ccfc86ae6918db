package engine

import (
	"fmt"

	"github.com/parleyhq/parley/backend"
	"github.com/parleyhq/parley/backend/demo"
	"github.com/parleyhq/parley/backend/httpapi"
	"github.com/parleyhq/parley/brain"
	"github.com/parleyhq/parley/brain/rules"
	"github.com/parleyhq/parley/tenants"
)

// brainSet picks each tenant's brain.
type brainSet struct {
	rules *rules.Brain
}

func newBrains() *brainSet { return &brainSet{rules: rules.New()} }

// For returns the brain of a tenant. Until the language-model brain lands,
// every tenant is answered by the rules brain.
func (b *brainSet) For(*tenants.Tenant) brain.Brain { return b.rules }

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
