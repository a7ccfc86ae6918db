package meta_test

import (
	"strings"
	"testing"

	"github.com/parleyhq/parley/channels/meta"
	"github.com/parleyhq/parley/tenants"
)

func metaTenant(id, number string) tenants.Tenant {
	return tenants.Tenant{ID: id, Meta: &tenants.Meta{PhoneNumberID: number, AccessToken: "t", AppSecret: id + "-secret", VerifyToken: "v"}}
}

// The Meta provider finds a webhook's tenant by phone_number_id in its own
// index of the registry.
func TestNumbersFindTheTenantOfEachNumber(t *testing.T) {
	reg, err := tenants.NewRegistry([]tenants.Tenant{metaTenant("acme", "1065"), metaTenant("beta", "2077"), {ID: "demo", Sim: true}})
	if err != nil {
		t.Fatal(err)
	}
	n, err := meta.IndexNumbers(reg)
	if err != nil {
		t.Fatal(err)
	}
	for number, want := range map[string]meta.Number{"1065": {Tenant: "acme", AppSecret: "acme-secret"}, "2077": {Tenant: "beta", AppSecret: "beta-secret"}} {
		if got, ok := n.Lookup(number); !ok || got != want {
			t.Fatalf("Lookup(%s) = %+v, %v; want %+v", number, got, ok, want)
		}
	}
	if _, ok := n.Lookup("3088"); ok {
		t.Fatal("a number no tenant has was found")
	}
}

func TestNumbersRefuseTwoTenantsOnOneNumber(t *testing.T) {
	reg, err := tenants.NewRegistry([]tenants.Tenant{metaTenant("acme", "1065"), metaTenant("beta", "1065")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := meta.IndexNumbers(reg); err == nil || !strings.Contains(err.Error(), "configured for tenants acme and beta") {
		t.Fatalf("err = %v", err)
	}
}
