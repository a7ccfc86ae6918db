package engine

import (
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
