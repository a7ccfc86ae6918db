package channels_test

import (
	"strings"
	"testing"

	"github.com/parleyhq/parley/channels"
	"github.com/parleyhq/parley/channels/meta"
	"github.com/parleyhq/parley/channels/sim"
	"github.com/parleyhq/parley/channels/twilio"
	"github.com/parleyhq/parley/tenants"
)

func TestTextLimit(t *testing.T) {
	cases := []struct {
		name  string
		limit channels.TextLimit
		text  string
		want  int
	}{
		{"ascii on Twilio", twilio.TextLimit, "hello", 5},
		{"accents are one unit", twilio.TextLimit, "ñé€", 3},
		{"an emoji is two UTF-16 units on Twilio", twilio.TextLimit, "hi 😀", 5},
		{"an emoji is one character on WhatsApp", meta.TextLimit, "hi 😀", 4},
		{"800 emoji fill Twilio's 1,600", twilio.TextLimit, strings.Repeat("😀", 800), 1600},
	}
	for _, tc := range cases {
		if got := tc.limit.Len(tc.text); got != tc.want {
			t.Errorf("%s: Len = %d, want %d", tc.name, got, tc.want)
		}
	}
	// Each tenant's limit is its channel's provider's.
	reg := channels.NewRegistry(twilio.New(nil, ""), meta.New(nil, 0), sim.New(sim.NewHub()))
	whatsApp := channels.TextLimit{Max: 4096}
	for _, tc := range []struct {
		tenant tenants.Tenant
		want   channels.TextLimit
	}{
		{tenants.Tenant{ID: "a", Twilio: &tenants.Twilio{}}, channels.TextLimit{Max: 1600, UTF16: true}},
		{tenants.Tenant{ID: "b", Meta: &tenants.Meta{}}, whatsApp},
		{tenants.Tenant{ID: "c", Sim: true}, whatsApp},
	} {
		if got, ok := reg.TextLimit(tc.tenant.Channel()); !ok || got != tc.want {
			t.Fatalf("tenant %s on %s: limit %+v (%v), want %+v", tc.tenant.ID, tc.tenant.Channel(), got, ok, tc.want)
		}
	}
	if _, ok := channels.NewRegistry().TextLimit(tenants.ChannelTwilio); ok {
		t.Fatal("a limit for a channel no provider serves")
	}
}
