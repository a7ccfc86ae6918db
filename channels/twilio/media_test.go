package twilio_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/parleyhq/parley/channels"
	"github.com/parleyhq/parley/channels/providertest"
	"github.com/parleyhq/parley/channels/twilio"
	"github.com/parleyhq/parley/channels/twilio/twiliotest"
	"github.com/parleyhq/parley/tenants"
)

func TestFetchMedia(t *testing.T) {
	const sid, token = "AC00000000000000000000000000000001", "test-auth-token-0123456789abcdef"
	srv := twiliotest.Start(t, sid, token)
	photo := bytes.Repeat([]byte{0xff, 0xd8, 0x17}, 1000)
	mediaURL := srv.AddMedia("MM0123456789abcdef0123456789abcdef", "ME0123456789abcdef0123456789abcdef", "image/jpeg", photo)
	s := twilio.NewSender(nil)
	ctx := context.Background()
	cfg := srv.Config("whatsapp:+14155238886")

	body, ct, size, err := s.FetchMedia(ctx, cfg, mediaURL)
	providertest.CheckDownload(t, photo, "image/jpeg", body, ct, size, err)

	other := *cfg
	other.AccountSID = "AC00000000000000000000000000000002"
	wrong := *cfg
	wrong.AuthToken = "not-the-token"
	cases := []struct {
		name     string
		cfg      *tenants.Twilio
		url      string
		notFound bool
		want     string
	}{
		{"another account's media", &other, mediaURL, true, "not a media URL"},
		{"another host", cfg, strings.Replace(mediaURL, "127.0.0.1", "localhost", 1), true, "not a media URL"},
		{"not a media path", cfg, srv.URL() + "/2010-04-01/Accounts/" + sid + "/Messages.json", true, "not a media URL"},
		{"climbing out", cfg, srv.URL() + "/2010-04-01/Accounts/" + sid + "/Messages/MM1/Media/../../../../x", true, "not a media URL"},
		{"unknown media", cfg, srv.URL() + "/2010-04-01/Accounts/" + sid + "/Messages/MM1/Media/ME1", true, "not found"},
		{"wrong token", &wrong, mediaURL, false, "401"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, _, _, err := s.FetchMedia(ctx, tc.cfg, tc.url)
			if err == nil || errors.Is(err, twilio.ErrMediaNotFound) != tc.notFound || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q (not found: %v)", err, tc.want, tc.notFound)
			}
			if strings.Contains(err.Error(), token) {
				t.Fatalf("the token is in the error: %v", err)
			}
		})
	}
}

// TestMediaOfATenantsSecondAccount: a file a customer sent to a tenant's
// second sender, on another Twilio account, is fetched with that
// account's credentials.
func TestMediaOfATenantsSecondAccount(t *testing.T) {
	first := twiliotest.Start(t, "AC00000000000000000000000000000001", "0123456789abcdef0123456789abcdef")
	second := twiliotest.Start(t, "AC00000000000000000000000000000002", "fedcba9876543210fedcba9876543210")
	photo := bytes.Repeat([]byte{0xff, 0xd8, 0x42}, 500)
	mediaURL := second.AddMedia("MM1123456789abcdef0123456789abcdef", "ME1123456789abcdef0123456789abcdef", "image/jpeg", photo)
	tn := &tenants.Tenant{ID: "acme", Twilio: first.Config("whatsapp:+14155238886"),
		MoreNumbers: []tenants.Number{{Twilio: second.Config("whatsapp:+14155230002")}}}
	reg := channels.NewRegistry(twilio.New(nil, ""))
	body, ct, size, err := reg.FetchMedia(context.Background(), tn, mediaURL)
	providertest.CheckDownload(t, photo, "image/jpeg", body, ct, size, err)

	one := &tenants.Tenant{ID: "acme", Twilio: first.Config("whatsapp:+14155238886")}
	if _, _, _, err := reg.FetchMedia(context.Background(), one, mediaURL); !errors.Is(err, channels.ErrMediaNotFound) {
		t.Fatalf("another account's file without that account: %v", err)
	}
}
