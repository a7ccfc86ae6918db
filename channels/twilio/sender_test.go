package twilio_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parleyhq/parley/channels/providertest"
	"github.com/parleyhq/parley/channels/twilio"
	"github.com/parleyhq/parley/channels/twilio/twiliotest"
	"github.com/parleyhq/parley/tenants"
)

func TestSendWrongCredentials(t *testing.T) {
	srv := twiliotest.Start(t, twiliotest.TestAccountSID, twiliotest.TestAuthToken)
	s := twilio.NewSender(nil)
	const wrong = "fedcba9876543210fedcba9876543210"
	cases := []struct {
		name   string
		cfg    func(*tenants.Twilio)
		token  string
		status int
		code   int
	}{
		{"wrong token", func(c *tenants.Twilio) { c.AuthToken = wrong }, wrong, 401, twilio.CodeAuthentication},
		{"wrong account", func(c *tenants.Twilio) { c.AccountSID = "AC00000000000000000000000000000002" }, twiliotest.TestAuthToken, 401, twilio.CodeAuthentication},
		// twilio-go refuses it before any request is made (code 21224).
		{"token twilio-go refuses", func(c *tenants.Twilio) { c.AuthToken = "s3cr3t/with+symbols" }, "s3cr3t/with+symbols", 400, 21224},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := srv.Config(twiliotest.SandboxFrom)
			tc.cfg(cfg)
			_, err := s.Send(context.Background(), cfg, providertest.Customer, "hi", "")
			se := providertest.SendError(t, err)
			if se.Retryable() || se.Status != tc.status || se.Code != tc.code {
				t.Fatalf("got %+v", se)
			}
			for _, text := range []string{err.Error(), fmt.Sprintf("%+v", err), fmt.Sprintf("%#v", se), errors.Unwrap(err).Error()} {
				if strings.Contains(text, tc.token) || strings.Contains(text, twiliotest.TestAuthToken) {
					t.Fatalf("token in error text: %s", text)
				}
			}
		})
	}
}

func TestSendNetworkAndContext(t *testing.T) {
	providertest.CheckNetworkAndContext(t, func(ctx context.Context, client *http.Client, baseURL string) error {
		cfg := &tenants.Twilio{AccountSID: twiliotest.TestAccountSID, AuthToken: twiliotest.TestAuthToken,
			From: twiliotest.SandboxFrom, APIBaseURL: baseURL}
		_, err := twilio.NewSender(client).Send(ctx, cfg, providertest.Customer, "hi", "")
		return err
	}, nil)
}

// Without APIBaseURL the request goes to Twilio itself; a transport stands
// in for the network.
func TestSendDefaultsToTwilio(t *testing.T) {
	client, last := providertest.Capture(201)
	cfg := &tenants.Twilio{AccountSID: twiliotest.TestAccountSID, AuthToken: twiliotest.TestAuthToken, From: twiliotest.SandboxFrom}
	_, _ = twilio.NewSender(client).Send(context.Background(), cfg, providertest.Customer, "hi", "")
	got := last()
	if got == nil {
		t.Fatal("no request")
	}
	if u := got.URL.String(); u != "https://api.twilio.com/2010-04-01/Accounts/"+twiliotest.TestAccountSID+"/Messages.json" {
		t.Fatalf("url %s", u)
	}
	if user, pass, ok := got.BasicAuth(); !ok || user != twiliotest.TestAccountSID || pass != twiliotest.TestAuthToken {
		t.Fatal("no basic auth")
	}
}

// APIBaseURL may carry a path prefix, e.g. a sandbox mounted under a path
// behind a reverse proxy.
func TestSendBaseURLWithPath(t *testing.T) {
	srv := twiliotest.Start(t, twiliotest.TestAccountSID, twiliotest.TestAuthToken)
	cfg := srv.Config(twiliotest.SandboxFrom)
	cfg.APIBaseURL = providertest.UnderPrefix(t, srv.URL(), "/sandbox/twilio")
	if _, err := twilio.NewSender(nil).Send(context.Background(), cfg, providertest.Customer, "hi", ""); err != nil {
		t.Fatal(err)
	}
	if n := len(srv.WaitFor(1, time.Second)); n != 1 {
		t.Fatalf("%d messages", n)
	}
}

// Many tenants' workers share one Sender.
func TestSendConcurrent(t *testing.T) {
	a := twiliotest.Start(t, twiliotest.TestAccountSID, twiliotest.TestAuthToken)
	b := twiliotest.Start(t, "AC00000000000000000000000000000002", "ffffffffffffffffffffffffffffffff")
	s := twilio.NewSender(nil)
	var wg sync.WaitGroup
	for i := range 40 {
		srv := a
		if i%2 == 1 {
			srv = b
		}
		wg.Go(func() {
			if _, err := s.Send(context.Background(), srv.Config(twiliotest.SandboxFrom), providertest.Customer, fmt.Sprint("n", i), ""); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	for _, srv := range []*twiliotest.Server{a, b} {
		if n := len(srv.WaitFor(20, time.Second)); n != 20 {
			t.Fatalf("%d messages", n)
		}
	}
}
