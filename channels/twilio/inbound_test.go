package twilio

import (
	"errors"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/parleyhq/parley/channels/providertest"
	"github.com/parleyhq/parley/tenants"
	"github.com/parleyhq/parley/wire"
)

// testdata/*.json (providertest.TestdataFiles) are webhook forms in
// Twilio's documented shapes, stored as a map of form field to value.
func loadForm(t testing.TB, name string) url.Values {
	t.Helper()
	return providertest.Form(t, providertest.Load(t, name))
}

var receivedAt = time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)

// Normalize stamps each record with Parley's envelope: one id from newID,
// the time it was received, the tenant and the channel. What the payloads
// normalise to is in incoming_test.go, through the webhook route.
func TestNormalizeEnvelope(t *testing.T) {
	for _, f := range providertest.TestdataFiles(t) {
		t.Run(f, func(t *testing.T) {
			calls := 0
			got, err := Normalize("acme", loadForm(t, f), receivedAt, func() string { calls++; return "evt-1" })
			if err != nil {
				t.Fatal(err)
			}
			if calls != 1 {
				t.Fatalf("newID called %d times", calls)
			}
			if got.Id != "evt-1" || got.Tenant != "acme" || got.Channel != Channel || got.ReceivedAtMs != receivedAt.UnixMilli() {
				t.Fatalf("envelope %v", got)
			}
		})
	}
}

func TestChannelIsTenantsChannel(t *testing.T) {
	if Channel != tenants.ChannelTwilio {
		t.Fatalf("Channel %q, tenants.ChannelTwilio %q", Channel, tenants.ChannelTwilio)
	}
}

func TestNormalizeVariants(t *testing.T) {
	cases := []struct {
		name   string
		file   string
		mutate func(url.Values)
		check  func(*wire.Inbound) bool
	}{
		{"SmsMessageSid only (older webhooks)", "text_message.json",
			func(v url.Values) { v.Del("MessageSid") },
			func(in *wire.Inbound) bool {
				return in.GetMessage().GetProviderId() == "SM0123456789abcdef0123456789abcdef"
			}},
		{"no NumMedia", "text_message.json",
			func(v url.Values) { v.Del("NumMedia") },
			func(in *wire.Inbound) bool { return len(in.GetMessage().GetMedia()) == 0 }},
		{"NumMedia above the count of urls reads only NumMedia", "media_message.json",
			func(v url.Values) { v.Set("NumMedia", "1") },
			func(in *wire.Inbound) bool { return len(in.GetMessage().GetMedia()) == 1 }},
		{"ten media", "media_message.json",
			func(v url.Values) {
				v.Set("NumMedia", "10")
				for i := range 10 {
					v.Set("MediaUrl"+strconv.Itoa(i), "https://api.twilio.com/m/"+strconv.Itoa(i))
				}
			},
			func(in *wire.Inbound) bool { return len(in.GetMessage().GetMedia()) == 10 }},
		{"label only", "location_message.json",
			func(v url.Values) { v.Del("Address") },
			func(in *wire.Inbound) bool { return in.GetMessage().GetLocation().GetLabel() == "Trafalgar Square" }},
		{"name and a different address", "location_message.json",
			func(v url.Values) {
				v.Set("Label", "National Gallery")
				v.Set("Address", "Trafalgar Square, London WC2N 5DN")
			},
			func(in *wire.Inbound) bool {
				return in.GetMessage().GetLocation().GetLabel() == "National Gallery, Trafalgar Square, London WC2N 5DN"
			}},
		{"dropped pin", "location_message.json",
			func(v url.Values) { v.Del("Label"); v.Del("Address") },
			func(in *wire.Inbound) bool { l := in.GetMessage().GetLocation(); return l != nil && l.Label == "" }},
		{"status in capitals", "status_delivered.json",
			func(v url.Values) { v.Set("MessageStatus", "DELIVERED") },
			func(in *wire.Inbound) bool { return in.GetStatus().GetStatus() == "delivered" }},
		{"status Twilio adds later passes through", "status_delivered.json",
			func(v url.Values) { v.Set("MessageStatus", "partially_delivered") },
			func(in *wire.Inbound) bool { return in.GetStatus().GetStatus() == "partially_delivered" }},
		{"MessageStatus=received is a message", "text_message.json",
			func(v url.Values) { v.Set("MessageStatus", "received") },
			func(in *wire.Inbound) bool { return in.GetMessage().GetText() == "Hello there" }},
		{"message without text, media or location still opens the window", "text_message.json",
			func(v url.Values) { v.Set("Body", ""); v.Set("MessageType", "sticker") },
			func(in *wire.Inbound) bool { m := in.GetMessage(); return m != nil && m.Text == "" }},
		{"a list picker row: its id", "button_reply.json",
			func(v url.Values) {
				v.Del("ButtonPayload")
				v.Del("ButtonText")
				v.Set("ListId", "slot-2026-11-27T10:30")
				v.Set("ListTitle", "Fri 27 Nov, 10:30")
				v.Set("Body", "Fri 27 Nov, 10:30")
			},
			func(in *wire.Inbound) bool {
				m := in.GetMessage()
				return m.GetReplyId() == "slot-2026-11-27T10:30" && m.GetText() == "Fri 27 Nov, 10:30"
			}},
		{"unknown fields are ignored", "text_message.json",
			func(v url.Values) { v.Set("SomethingNew", "\xff") },
			func(in *wire.Inbound) bool { return in.GetMessage() != nil }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			form := loadForm(t, tc.file)
			tc.mutate(form)
			in, err := Normalize("acme", form, receivedAt, func() string { return "evt-1" })
			if err != nil {
				t.Fatal(err)
			}
			if !tc.check(in) {
				t.Fatalf("got %v", in)
			}
		})
	}
}

func TestNormalizeRejectsMalformed(t *testing.T) {
	cases := []struct {
		name   string
		file   string
		mutate func(url.Values)
		detail string // in the error message, for the ingress's 400 body
	}{
		{"no sid", "text_message.json", func(v url.Values) { v.Del("MessageSid"); v.Del("SmsMessageSid") }, "MessageSid missing"},
		{"button payload not UTF-8", "button_reply.json", func(v url.Values) { v.Set("ButtonPayload", "\xff") }, "ButtonPayload"},
		{"sid not a Twilio SID", "text_message.json", func(v url.Values) { v.Set("MessageSid", "SM1") }, "MessageSid"},
		{"sid too long", "text_message.json", func(v url.Values) { v.Set("MessageSid", "SM"+strings.Repeat("a", 1000)) }, "MessageSid"},
		{"no From", "text_message.json", func(v url.Values) { v.Del("From") }, "From"},
		{"From without whatsapp: (SMS)", "text_message.json", func(v url.Values) { v.Set("From", "+447700900456") }, "From"},
		{"From national format", "text_message.json", func(v url.Values) { v.Set("From", "whatsapp:07700900456") }, "From"},
		{"From with spaces", "text_message.json", func(v url.Values) { v.Set("From", "whatsapp:+44 7700 900456") }, "From"},
		{"From too long", "text_message.json", func(v url.Values) { v.Set("From", "whatsapp:+4477009004561234") }, "From"},
		{"From country code 0", "text_message.json", func(v url.Values) { v.Set("From", "whatsapp:+0447700900456") }, "From"},
		{"bad To", "text_message.json", func(v url.Values) { v.Set("To", "whatsapp:") }, "To"},
		{"NumMedia not a number", "media_message.json", func(v url.Values) { v.Set("NumMedia", "two") }, "NumMedia"},
		{"NumMedia signed", "media_message.json", func(v url.Values) { v.Set("NumMedia", "+2") }, "NumMedia"},
		{"NumMedia negative", "media_message.json", func(v url.Values) { v.Set("NumMedia", "-1") }, "NumMedia"},
		{"NumMedia over 10", "media_message.json", func(v url.Values) { v.Set("NumMedia", "11") }, "NumMedia"},
		{"NumMedia huge", "media_message.json", func(v url.Values) { v.Set("NumMedia", "99999999999999999999") }, "NumMedia"},
		{"MediaUrl missing", "media_message.json", func(v url.Values) { v.Del("MediaUrl1") }, "MediaUrl1"},
		{"MediaUrl relative", "media_message.json", func(v url.Values) { v.Set("MediaUrl0", "/Media/ME1") }, "MediaUrl0"},
		{"MediaUrl not http", "media_message.json", func(v url.Values) { v.Set("MediaUrl0", "file:///etc/passwd") }, "MediaUrl0"},
		{"latitude not a number", "location_message.json", func(v url.Values) { v.Set("Latitude", "north") }, "location"},
		{"latitude NaN", "location_message.json", func(v url.Values) { v.Set("Latitude", "NaN") }, "location"},
		{"longitude Inf", "location_message.json", func(v url.Values) { v.Set("Longitude", "+Inf") }, "location"},
		{"latitude out of range", "location_message.json", func(v url.Values) { v.Set("Latitude", "91") }, "location"},
		{"longitude out of range", "location_message.json", func(v url.Values) { v.Set("Longitude", "-180.5") }, "location"},
		{"longitude without latitude", "location_message.json", func(v url.Values) { v.Del("Latitude") }, "location"},
		{"body not UTF-8", "text_message.json", func(v url.Values) { v.Set("Body", "caf\xe9") }, "Body"},
		{"profile name not UTF-8", "text_message.json", func(v url.Values) { v.Set("ProfileName", "\xff") }, "ProfileName"},
		{"status with bad To", "status_delivered.json", func(v url.Values) { v.Set("To", "+447700900456") }, "To"},
		{"status not a word", "status_delivered.json", func(v url.Values) { v.Set("MessageStatus", "de livered") }, "MessageStatus"},
		{"ErrorCode not a number", "status_failed_63016.json", func(v url.Values) { v.Set("ErrorCode", "63016; drop table") }, "ErrorCode"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			form := loadForm(t, tc.file)
			tc.mutate(form)
			in, err := Normalize("acme", form, receivedAt, func() string { t.Fatal("newID called for a refused webhook"); return "" })
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("got %v, %v; want ErrMalformed", in, err)
			}
			if !strings.Contains(err.Error(), tc.detail) {
				t.Fatalf("error %q does not mention %q", err, tc.detail)
			}
			if len(err.Error()) > 200 {
				t.Fatalf("error echoes too much input: %q", err)
			}
		})
	}
}

func TestParseForm(t *testing.T) {
	cases := []struct {
		name string
		body string
		want url.Values // nil: must fail with ErrMalformed
	}{
		{"empty", "", url.Values{}},
		{"plus is a space", "Body=Hello+there&From=whatsapp%3A%2B447700900456",
			url.Values{"Body": {"Hello there"}, "From": {"whatsapp:+447700900456"}}},
		{"utf-8 escapes", "Body=%C2%BFQu%C3%A9%3F", url.Values{"Body": {"¿Qué?"}}},
		// Twilio sends each field once; a repeat is a re-cut body.
		{"repeated field", "A=1&A=2", nil},
		{"repeated field, one empty", "Body=hi&Body=", nil},
		{"empty value", "Body=", url.Values{"Body": {""}}},
		{"bad escape", "Body=%zz&From=x", nil},
		{"truncated escape", "Body=100%", nil},
		{"bad escape in a name", "B%ody=x", nil},
		{"semicolon separator", "Body=a;From=b", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseForm([]byte(tc.body))
			if tc.want == nil {
				if !errors.Is(err, ErrMalformed) {
					t.Fatalf("got %v, %v; want ErrMalformed", got, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
			for k, vs := range tc.want {
				if !slices.Equal(got[k], vs) {
					t.Fatalf("got %v, want %v", got, tc.want)
				}
			}
		})
	}
}

// The ingress path end to end on the stored payloads: encode as Twilio
// would, parse, normalise.
func TestParseThenNormalizeTestdata(t *testing.T) {
	for _, f := range providertest.TestdataFiles(t) {
		form, err := ParseForm([]byte(loadForm(t, f).Encode()))
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if _, err := Normalize("acme", form, receivedAt, func() string { return "x" }); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
	}
}

// FuzzParseAndNormalize feeds arbitrary bodies through the ingress path.
// Whatever comes in: no panic; errors are ErrMalformed; an accepted
// webhook has an E.164 phone, a provider id, and encodes as protobuf.
//
//	go test ./channels/twilio -run '^$' -fuzz FuzzParseAndNormalize -fuzztime 30s
func FuzzParseAndNormalize(f *testing.F) {
	for _, name := range providertest.TestdataFiles(f) {
		f.Add([]byte(loadForm(f, name).Encode()))
	}
	f.Add([]byte("MessageSid=SM0123456789abcdef0123456789abcdef&From=whatsapp%3A%2B447700900456&To=whatsapp%3A%2B14155238886&NumMedia=11"))
	f.Add([]byte("MessageSid=SM0123456789abcdef0123456789abcdef&From=whatsapp%3A%2B447700900456&To=whatsapp%3A%2B14155238886&Latitude=NaN&Longitude=0"))
	f.Add([]byte("MessageSid=SM0123456789abcdef0123456789abcdef&MessageStatus=failed&ErrorCode=63016&To=whatsapp%3A%2B447700900456"))
	f.Add([]byte("%"))
	f.Add([]byte("a=1;b=2"))
	f.Fuzz(func(t *testing.T, body []byte) {
		form, err := ParseForm(body)
		if providertest.Refused(t, err, ErrMalformed, "ParseForm") {
			return
		}
		in, err := Normalize("acme", form, receivedAt, func() string { return "evt" })
		if providertest.Refused(t, err, ErrMalformed, "Normalize") {
			return
		}
		providertest.CheckRecord(t, in, Channel, "evt")
		if n := len(in.GetMessage().GetMedia()); n > MaxMedia {
			t.Fatalf("%d media", n)
		}
		if in.Tenant != "acme" {
			t.Fatalf("envelope %v", in)
		}
	})
}
