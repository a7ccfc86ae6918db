package delivery

import (
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/parleyhq/parley/tenants"
	"github.com/parleyhq/parley/wire"
)

func TestTenantPolicy(t *testing.T) {
	zero, fifty := 0.0, 50.0
	templates := map[string]tenants.Template{"comeback": {ContentSID: fallbackSID, Language: "en_GB"}}
	for _, c := range []struct {
		name     string
		tenant   tenants.Tenant
		rate     float64
		fallback *wire.Template
	}{
		{"defaults: 80/s, no fallback", tenants.Tenant{}, DefaultRateLimit, nil},
		{"a limit", tenants.Tenant{Outbound: tenants.OutboundConfig{RateLimit: &fifty}}, 50, nil},
		{"no limit", tenants.Tenant{Outbound: tenants.OutboundConfig{RateLimit: &zero}}, 0, nil},
		{"templates but no fallback named", tenants.Tenant{Templates: templates}, DefaultRateLimit, nil},
		{"a fallback template with its variables", tenants.Tenant{Templates: templates, Outbound: tenants.OutboundConfig{
			FallbackTemplate: "comeback", FallbackVariables: map[string]string{"1": "there"}}}, DefaultRateLimit,
			&wire.Template{Name: "comeback", ContentSid: fallbackSID, Language: "en_GB", Variables: map[string]string{"1": "there"}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := rateLimit(&c.tenant); got != c.rate {
				t.Fatalf("rate limit %v, want %v", got, c.rate)
			}
			if got := fallbackTemplate(&c.tenant); !proto.Equal(got, c.fallback) {
				t.Fatalf("fallback %v, want %v", got, c.fallback)
			}
		})
	}
}
