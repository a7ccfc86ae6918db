package tenants

import (
	"strings"
	"testing"
)

func TestTextLimit(t *testing.T) {
	cases := []struct {
		name  string
		limit TextLimit
		text  string
		want  int
	}{
		{"ascii on Twilio", TwilioTextLimit, "hello", 5},
		{"accents are one unit", TwilioTextLimit, "ñé€", 3},
		{"an emoji is two UTF-16 units on Twilio", TwilioTextLimit, "hi 😀", 5},
		{"an emoji is one character on WhatsApp", WhatsAppTextLimit, "hi 😀", 4},
		{"800 emoji fill Twilio's 1,600", TwilioTextLimit, strings.Repeat("😀", 800), 1600},
	}
	for _, tc := range cases {
		if got := tc.limit.Len(tc.text); got != tc.want {
			t.Errorf("%s: Len = %d, want %d", tc.name, got, tc.want)
		}
	}
	twilio := Tenant{ID: "a", Twilio: &Twilio{}}
	meta := Tenant{ID: "b", Sim: true}
	if twilio.TextLimit() != TwilioTextLimit || meta.TextLimit() != WhatsAppTextLimit || WhatsAppTextLimit.Max != 4096 {
		t.Fatal("wrong limit for the channel")
	}
}
