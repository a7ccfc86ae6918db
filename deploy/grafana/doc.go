// Package grafana holds Parley's Grafana provisioning; its test runs every
// dashboard query against a real ClickHouse with Parley's schema.
package grafana
