package config

import "github.com/parleyhq/parley/tenants"

// Dev is the configuration `parley dev` runs on without a file: loopback,
// embedded broker, local ClickHouse, and the demo tenant on the simulator.
func Dev() *Config {
	c := &Config{
		Tenants: []tenants.Tenant{{
			ID:      "demo",
			Name:    "Demo Cleaning Co",
			Sim:     true,
			Backend: tenants.BackendConfig{Kind: "demo"},
			Brain:   tenants.BrainConfig{Kind: "rules"},
		}},
	}
	c.Defaults()
	return c
}
