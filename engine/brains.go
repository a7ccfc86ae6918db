package engine

import (
	"github.com/parleyhq/parley/backend"
	"github.com/parleyhq/parley/backend/demo"
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

// backendSet picks each tenant's business system.
type backendSet struct {
	demo *demo.Backend
}

func newBackends() *backendSet { return &backendSet{demo: demo.New()} }

// For returns the backend of a tenant: the demo business for kind demo
// (the only kind so far).
func (b *backendSet) For(*tenants.Tenant) backend.Profiles { return b.demo }
