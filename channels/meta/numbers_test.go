package meta_test

import (
	"errors"
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

// Two tenants on one number: the registry refuses them (a webhook could
// not tell them apart), from the file and at runtime.
func TestNumbersRefuseTwoTenantsOnOneNumber(t *testing.T) {
	_, err := tenants.NewRegistry([]tenants.Tenant{metaTenant("acme", "1065"), metaTenant("beta", "1065")})
	if err == nil || !strings.Contains(err.Error(), "configured for tenants acme and beta") {
		t.Fatalf("err = %v", err)
	}
	reg, err := tenants.NewRegistry([]tenants.Tenant{metaTenant("acme", "1065")})
	if err != nil {
		t.Fatal(err)
	}
	if err := reg.Put(metaTenant("beta", "1065")); !errors.Is(err, tenants.ErrNumberTaken) {
		t.Fatalf("Put of a second tenant on the number: %v", err)
	}
}

// The index follows the registry as it changes at runtime.
func TestNumbersFollowTheRegistry(t *testing.T) {
	reg, err := tenants.NewRegistry([]tenants.Tenant{metaTenant("acme", "1065")})
	if err != nil {
		t.Fatal(err)
	}
	p := meta.New(nil, 0)
	if _, ok := p.LookupNumber(reg, "2077"); ok {
		t.Fatal("2077 found before it was connected")
	}
	if err := reg.Put(metaTenant("beta", "2077")); err != nil {
		t.Fatal(err)
	}
	if got, ok := p.LookupNumber(reg, "2077"); !ok || got.Tenant != "beta" {
		t.Fatalf("after Put: %+v %v", got, ok)
	}
	reg.Delete("beta")
	if _, ok := p.LookupNumber(reg, "2077"); ok {
		t.Fatal("2077 found after its tenant was deleted")
	}
}
