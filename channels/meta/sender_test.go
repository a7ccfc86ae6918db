package meta_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parleyhq/parley/channels/meta"
	"github.com/parleyhq/parley/channels/meta/metatest"
	"github.com/parleyhq/parley/channels/providertest"
)

// noToken fails the test if any text of err carries the token.
func noToken(t *testing.T, err error, tokens ...string) {
	t.Helper()
	se := providertest.SendError(t, err)
	texts := []string{err.Error(), fmt.Sprintf("%+v", err), fmt.Sprintf("%#v", se), fmt.Sprintf("%v", *se)}
	if u := errors.Unwrap(err); u != nil {
		texts = append(texts, u.Error())
	}
	for _, text := range texts {
		for _, tok := range tokens {
			if strings.Contains(text, tok) {
				t.Fatalf("token in error text: %s", text)
			}
		}
	}
}

// The sender's caller tells "outside the window" apart to send the tenant's
// template instead, and that is also what a template send then does.
func TestOutsideWindowThenTemplate(t *testing.T) {
	srv := metatest.Start(t, metatest.TestAccessToken)
	s := meta.NewSender(nil)
	ctx := context.Background()
	srv.FailNextWith(1, metatest.Failure{Status: 400, Code: meta.CodeOutsideWindow, Message: "(#131047) Re-engagement message",
		Details: "Message failed to send because more than 24 hours have passed since the customer last replied to this number."})
	_, err := s.Send(ctx, srv.Config(), providertest.Customer, "Are you still coming?")
	se := providertest.SendError(t, err)
	if se.Code != meta.CodeOutsideWindow || se.Retryable() || !strings.Contains(se.Error(), "more than 24 hours") {
		t.Fatalf("got %+v", se)
	}
	if _, err := s.SendTemplate(ctx, srv.Config(), providertest.Customer, "booking_reminder", "en_GB", []string{"Sam"}); err != nil {
		t.Fatal(err)
	}
	if msgs := srv.Messages(); len(msgs) != 1 || msgs[0].TemplateName != "booking_reminder" {
		t.Fatalf("recorded %+v", msgs)
	}
}

func TestSendBadToken(t *testing.T) {
	srv := metatest.Start(t, metatest.TestAccessToken)
	s := meta.NewSender(nil)
	const wrong = "EAAGwrong0000ZBsecret0000TOKEN0000000000000000"
	cfg := srv.Config()
	cfg.AccessToken = wrong
	_, err := s.Send(context.Background(), cfg, providertest.Customer, "hi")
	se := providertest.SendError(t, err)
	if se.Retryable() || se.Status != 401 || se.Code != meta.CodeAccessToken {
		t.Fatalf("got %+v", se)
	}
	noToken(t, err, wrong, metatest.TestAccessToken)
	if n := len(srv.Messages()); n != 0 {
		t.Fatalf("%d messages recorded", n)
	}
}

// Whatever the answer says, the token does not come back in the error.
func TestSendErrorNeverCarriesTheToken(t *testing.T) {
	const token = "EAAGleaky0000ZBsecret0000TOKEN0000000000000000"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(400)
		fmt.Fprintf(w, `{"error":{"message":"Malformed access token %[1]s","type":"OAuthException","code":190,"error_data":{"details":"token %[1]s"},"fbtrace_id":"%[1]s"}}`,
			strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "))
	}))
	defer srv.Close()
	cfg := meta.Config{PhoneNumberID: metatest.TestPhoneNumberID, AccessToken: token, APIBaseURL: srv.URL}
	_, err := meta.NewSender(nil).Send(context.Background(), cfg, providertest.Customer, "hi")
	se := providertest.SendError(t, err)
	if se.Code != 190 || se.Retryable() || !strings.Contains(se.Message, "[redacted]") {
		t.Fatalf("got %+v", se)
	}
	noToken(t, err, token)
	// The configuration prints masked too.
	for _, text := range []string{fmt.Sprint(cfg), fmt.Sprintf("%+v", cfg), fmt.Sprintf("%#v", cfg), fmt.Sprintf("%v", &cfg)} {
		if strings.Contains(text, token) {
			t.Fatalf("token printed: %s", text)
		}
	}
}

func TestSendNetworkAndContext(t *testing.T) {
	providertest.CheckNetworkAndContext(t, func(ctx context.Context, client *http.Client, baseURL string) error {
		cfg := meta.Config{PhoneNumberID: metatest.TestPhoneNumberID, AccessToken: metatest.TestAccessToken, APIBaseURL: baseURL}
		_, err := meta.NewSender(client).Send(ctx, cfg, providertest.Customer, "hi")
		return err
	}, func(t *testing.T, err error) { noToken(t, err, metatest.TestAccessToken) })
}

// Without APIBaseURL the request goes to Meta's Graph API; a transport
// stands in for the network.
func TestSendDefaultsToGraph(t *testing.T) {
	client, last := providertest.Capture(200)
	cfg := meta.Config{PhoneNumberID: metatest.TestPhoneNumberID, AccessToken: metatest.TestAccessToken}
	_, _ = meta.NewSender(client).Send(context.Background(), cfg, providertest.Customer, "hi")
	got := last()
	if got == nil {
		t.Fatal("no request")
	}
	if u := got.URL.String(); u != "https://graph.facebook.com/v21.0/"+metatest.TestPhoneNumberID+"/messages" {
		t.Fatalf("url %s", u)
	}
	if a := got.Header.Get("Authorization"); a != "Bearer "+metatest.TestAccessToken {
		t.Fatalf("Authorization %q", a)
	}
	if ct := got.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type %q", ct)
	}
	// The token is in the header only.
	if strings.Contains(got.URL.String(), metatest.TestAccessToken) {
		t.Fatal("token in the URL")
	}
}

// APIBaseURL may carry a path prefix and APIVersion another version.
func TestSendBaseURLWithPathAndVersion(t *testing.T) {
	srv := metatest.Start(t, metatest.TestAccessToken)
	cfg := srv.Config()
	cfg.APIBaseURL = providertest.UnderPrefix(t, srv.URL(), "/sandbox/meta")
	cfg.APIVersion = "v23.0"
	if _, err := meta.NewSender(nil).Send(context.Background(), cfg, providertest.Customer, "hi"); err != nil {
		t.Fatal(err)
	}
	if msgs := srv.WaitFor(1, time.Second); len(msgs) != 1 || msgs[0].Version != "v23.0" {
		t.Fatalf("%+v", msgs)
	}
}

// Many tenants' workers share one Sender; each send uses its own tenant's
// number and token.
func TestSendConcurrent(t *testing.T) {
	a := metatest.Start(t, metatest.TestAccessToken)
	b := metatest.Start(t, "EAAGbeta0000ZBparley0000TOKEN0000000000000000")
	bCfg := b.Config()
	bCfg.PhoneNumberID = "107655329552231"
	s := meta.NewSender(nil)
	var wg sync.WaitGroup
	for i := range 40 {
		cfg := a.Config()
		if i%2 == 1 {
			cfg = bCfg
		}
		wg.Go(func() {
			if _, err := s.Send(context.Background(), cfg, providertest.Customer, fmt.Sprint("n", i)); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	for _, c := range []struct {
		srv   *metatest.Server
		id    string
		token string
	}{{a, metatest.TestPhoneNumberID, metatest.TestAccessToken}, {b, "107655329552231", bCfg.AccessToken}} {
		msgs := c.srv.WaitFor(20, time.Second)
		if len(msgs) != 20 {
			t.Fatalf("%d messages", len(msgs))
		}
		for _, m := range msgs {
			if m.PhoneNumberID != c.id || m.Token != c.token {
				t.Fatalf("message sent as %s with another token", m.PhoneNumberID)
			}
		}
	}
}

// A template send names its language: the Provider fills in the
// catalogue's or DefaultTemplateLanguage, the Sender takes none empty.
func TestSendTemplateNeedsALanguage(t *testing.T) {
	srv := metatest.Start(t, metatest.TestAccessToken)
	_, err := meta.NewSender(nil).SendTemplate(context.Background(), srv.Config(), providertest.Customer, "booking_reminder", "", nil)
	if se := providertest.SendError(t, err); se.Retryable() || se.Status != 0 {
		t.Fatalf("got %+v", se)
	}
	if n := srv.Attempts(); n != 0 {
		t.Fatalf("%d requests reached the server", n)
	}
}
