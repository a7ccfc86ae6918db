package config

import "github.com/parleyhq/parley/tenants"

// Dev is the configuration `parley dev` runs on without a file: loopback,
// embedded broker, local ClickHouse, and the demo tenant on the simulator.
// addr and dataDir override the listen address (127.0.0.1:8080) and the
// data directory (.parley) when not empty, so that several can run side by
// side.
func Dev(addr, dataDir string) *Config {
	c := &Config{
		HTTP:    HTTP{Addr: addr},
		DataDir: dataDir,
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
