package clustertest

import (
	"context"
	"testing"

	"github.com/parleyhq/parley/backend"
	"github.com/parleyhq/parley/backend/httpapi"
)

// Any number signs in as exactly one enabled profile, and a real answer
// can be told from a prompt by the names of what the business offers.
func TestBackendOverTheContract(t *testing.T) {
	b := StartBackend(t)
	cl, err := httpapi.NewClient(b.URL(), BackendToken)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, phone := range []string{"+447700900001", "+14155550123"} {
		ps, err := cl.ProfilesByPhone(ctx, phone)
		if err != nil || len(ps) != 1 || !ps[0].WhatsAppEnabled || ps[0].ID != ProfileID(phone) {
			t.Fatalf("profiles of %s: %+v, %v", phone, ps, err)
		}
		bks, err := cl.Bookings(ctx, ps[0].ID, backend.Upcoming)
		if err != nil || len(bks) != 1 || bks[0].ServiceName != BookingName {
			t.Fatalf("bookings of %s: %+v, %v", phone, bks, err)
		}
	}
	svcs, err := cl.Services(ctx)
	if err != nil || len(svcs) == 0 || svcs[0].Name != ServiceName {
		t.Fatalf("services: %+v, %v", svcs, err)
	}
	if wrong, _ := httpapi.NewClient(b.URL(), "wrong-token"); wrong != nil {
		if _, err := wrong.Services(ctx); err == nil {
			t.Fatal("a wrong token was accepted")
		}
	}
}

// Phones spreads customers evenly over the partitions, consecutive ones
// in different partitions.
func TestPhonesSpread(t *testing.T) {
	phones := Phones(30, 8)
	per := map[int]int{}
	seen := map[string]bool{}
	for i, p := range phones {
		if seen[p] {
			t.Fatalf("%s twice", p)
		}
		seen[p] = true
		part := Partition(p, 8)
		per[part]++
		if i > 0 && Partition(phones[i-1], 8) == part {
			t.Fatalf("%s and %s share partition %d", phones[i-1], p, part)
		}
	}
	for part := range 8 {
		if per[part] < 3 || per[part] > 4 {
			t.Fatalf("partition %d has %d customers: %v", part, per[part], per)
		}
	}
}
