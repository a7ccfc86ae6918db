package twilio_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twilio/twilio-go/client"

	"github.com/parleyhq/parley/channels"
	"github.com/parleyhq/parley/channels/providertest"
	"github.com/parleyhq/parley/channels/twilio"
	"github.com/parleyhq/parley/channels/twilio/twiliotest"
	"github.com/parleyhq/parley/tenants"
)

const customer = "+447700900123"

var sidPattern = regexp.MustCompile(`^SM[0-9a-f]{32}$`)

func sendError(t *testing.T, err error) *channels.SendError {
	t.Helper()
	return providertest.SendError(t, err)
}

func TestSendSuccess(t *testing.T) {
	srv := twiliotest.Start(t, twiliotest.TestAccountSID, twiliotest.TestAuthToken)
	cfg := srv.Config(twiliotest.SandboxFrom)
	s := twilio.NewSender(nil)

	sid, err := s.Send(context.Background(), cfg, customer, "Your booking is confirmed ✅", "https://parley.example.com/webhooks/twilio/acme/status")
	if err != nil {
		t.Fatal(err)
	}
	if !sidPattern.MatchString(sid) {
		t.Fatalf("sid %q", sid)
	}
	msgs := srv.Messages()
	if len(msgs) != 1 {
		t.Fatalf("%d messages", len(msgs))
	}
	m := msgs[0]
	want := twiliotest.Message{
		SID: sid, AccountSID: twiliotest.TestAccountSID,
		User: twiliotest.TestAccountSID, Password: twiliotest.TestAuthToken,
		To: "whatsapp:" + customer, From: "whatsapp:+14155238886", Body: "Your booking is confirmed ✅",
		StatusCallback: "https://parley.example.com/webhooks/twilio/acme/status",
	}
	if m.SID != want.SID || m.AccountSID != want.AccountSID || m.User != want.User || m.Password != want.Password ||
		m.To != want.To || m.From != want.From ||
		m.Body != want.Body || m.StatusCallback != want.StatusCallback {
		t.Fatalf("server recorded %+v\nwant %+v", m, want)
	}
	if srv.Attempts() != 1 {
		t.Fatalf("%d attempts", srv.Attempts())
	}

	// No status callback: the field is not sent at all.
	if _, err := s.Send(context.Background(), cfg, customer, "again", ""); err != nil {
		t.Fatal(err)
	}
	if m := srv.Messages()[1]; m.Form.Has("StatusCallback") {
		t.Fatalf("StatusCallback sent: %v", m.Form)
	}
}

func TestSendFailuresAreClassified(t *testing.T) {
	srv := twiliotest.Start(t, twiliotest.TestAccountSID, twiliotest.TestAuthToken)
	cfg := srv.Config(twiliotest.SandboxFrom)
	s := twilio.NewSender(nil)

	cases := []struct {
		name         string
		status, code int
		message      string
		retryable    bool
	}{
		{"http 429, api concurrency", 429, twilio.CodeTooManyReqs, "Too Many Requests", true},
		{"whatsapp rate limit 63018", 400, twilio.CodeRateLimited, "Rate limit exceeded for Channel", true},
		{"500", 500, 20500, "Internal Server Error", true},
		{"503", 503, 20503, "Service Unavailable", true},
		{"unsubscribed 21610", 400, twilio.CodeUnsubscribed, "Attempt to send to unsubscribed recipient", false},
		{"outside the 24h window 63016", 400, twilio.CodeOutsideWindow, "Failed to send freeform message because you are outside the allowed window", false},
		{"invalid To 21211", 400, 21211, "Invalid 'To' Phone Number", false},
		{"forbidden", 403, 20403, "Permission denied", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv.FailNext(1, tc.status, tc.code, tc.message)
			_, err := s.Send(context.Background(), cfg, customer, "hi", "")
			se := sendError(t, err)
			if se.Status != tc.status || se.Code != tc.code || se.Message != tc.message || se.Retryable() != tc.retryable {
				t.Fatalf("got %+v", se)
			}
			// Callers can still reach twilio-go's error.
			var re *client.TwilioRestError
			if !errors.As(err, &re) || re.Code != tc.code {
				t.Fatalf("no TwilioRestError under %v", err)
			}
		})
	}
	// Failures are not messages, and the scripted ones are used up.
	if n := len(srv.Messages()); n != 0 {
		t.Fatalf("%d messages recorded", n)
	}
	if _, err := s.Send(context.Background(), cfg, customer, "hi", ""); err != nil {
		t.Fatal(err)
	}
}

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
			_, err := s.Send(context.Background(), cfg, customer, "hi", "")
			se := sendError(t, err)
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

func TestSendRefusesBadInputWithoutARequest(t *testing.T) {
	srv := twiliotest.Start(t, twiliotest.TestAccountSID, twiliotest.TestAuthToken)
	s := twilio.NewSender(nil)
	cases := []struct {
		name string
		cfg  func(*tenants.Twilio) *tenants.Twilio
		to   string
		body string
	}{
		{"nil config", func(*tenants.Twilio) *tenants.Twilio { return nil }, customer, "hi"},
		{"to with whatsapp: prefix", nil, "whatsapp:" + customer, "hi"},
		{"to national", nil, "07700900123", "hi"},
		{"empty body", nil, customer, ""},
		{"body over 1,600 characters", nil, customer, strings.Repeat("é", 1601)},
		{"801 emoji are 1,602 UTF-16 units", nil, customer, strings.Repeat("😀", 801)},
		{"base url not http", func(c *tenants.Twilio) *tenants.Twilio { c.APIBaseURL = "ftp://example.com"; return c }, customer, "hi"},
		{"base url relative", func(c *tenants.Twilio) *tenants.Twilio { c.APIBaseURL = "localhost:8080"; return c }, customer, "hi"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := srv.Config(twiliotest.SandboxFrom)
			if tc.cfg != nil {
				cfg = tc.cfg(cfg)
			}
			_, err := s.Send(context.Background(), cfg, tc.to, tc.body, "")
			if se := sendError(t, err); se.Retryable() || se.Status != 0 {
				t.Fatalf("got %+v", se)
			}
		})
	}
	if n := srv.Attempts(); n != 0 {
		t.Fatalf("%d requests reached the server", n)
	}
}

func TestSendNetworkAndContext(t *testing.T) {
	providertest.CheckNetworkAndContext(t, func(ctx context.Context, client *http.Client, baseURL string) error {
		cfg := &tenants.Twilio{AccountSID: twiliotest.TestAccountSID, AuthToken: twiliotest.TestAuthToken,
			From: twiliotest.SandboxFrom, APIBaseURL: baseURL}
		_, err := twilio.NewSender(client).Send(ctx, cfg, customer, "hi", "")
		return err
	}, nil)
}

// Answers that are not Twilio's JSON, and Retry-After.
func TestSendRawAnswers(t *testing.T) {
	cases := append(providertest.CommonRawAnswers(), []providertest.RawAnswer{
		providertest.Answer("429 with Retry-After seconds", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Retry-After", "7")
			w.WriteHeader(429)
			fmt.Fprint(w, `{"code":20429,"message":"Too Many Requests","more_info":"https://www.twilio.com/docs/errors/20429","status":429}`)
		}, 429, 20429, true, 7*time.Second),
		providertest.Answer("400 ignores Retry-After", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Retry-After", "7")
			w.WriteHeader(400)
			fmt.Fprint(w, `{"code":21610,"message":"Attempt to send to unsubscribed recipient","status":400}`)
		}, 400, 21610, false, 0),
		providertest.Answer("error body without status uses the HTTP status", func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(500)
			fmt.Fprint(w, `{"code":20500,"message":"Internal Server Error"}`)
		}, 500, 20500, true, 0),
		providertest.Answer("201 without a sid is not retried (it was accepted)", func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(201)
			fmt.Fprint(w, `{"status":"queued"}`)
		}, 201, 0, false, 0),
		providertest.Answer("201 that does not decode is not retried", func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(201)
			fmt.Fprint(w, `{"sid":`)
		}, 201, 0, false, 0),
	}...)
	providertest.CheckRawAnswers(t, cases, func(baseURL string) error {
		cfg := &tenants.Twilio{AccountSID: twiliotest.TestAccountSID, AuthToken: twiliotest.TestAuthToken,
			From: twiliotest.SandboxFrom, APIBaseURL: baseURL}
		_, err := twilio.NewSender(nil).Send(context.Background(), cfg, customer, "hi", "")
		return err
	})
}

// Without APIBaseURL the request goes to Twilio itself; a transport stands
// in for the network.
func TestSendDefaultsToTwilio(t *testing.T) {
	client, last := providertest.Capture(201)
	cfg := &tenants.Twilio{AccountSID: twiliotest.TestAccountSID, AuthToken: twiliotest.TestAuthToken, From: twiliotest.SandboxFrom}
	_, _ = twilio.NewSender(client).Send(context.Background(), cfg, customer, "hi", "")
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
	if _, err := twilio.NewSender(nil).Send(context.Background(), cfg, customer, "hi", ""); err != nil {
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
			if _, err := s.Send(context.Background(), srv.Config(twiliotest.SandboxFrom), customer, fmt.Sprint("n", i), ""); err != nil {
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

const contentSID = "HX0123456789abcdef0123456789abcdef"

func TestSendTemplate(t *testing.T) {
	srv := twiliotest.Start(t, twiliotest.TestAccountSID, twiliotest.TestAuthToken)
	cfg := srv.Config(twiliotest.SandboxFrom)
	s := twilio.NewSender(nil)

	vars := map[string]string{"2": "10:30", "1": "Sam \"S\" Ödegaard"}
	sid, err := s.SendTemplate(context.Background(), cfg, customer, contentSID, vars, "https://parley.example.com/webhooks/twilio/acme/status")
	if err != nil {
		t.Fatal(err)
	}
	if !sidPattern.MatchString(sid) {
		t.Fatalf("sid %q", sid)
	}
	// Without variables the field is left out.
	if _, err := s.SendTemplate(context.Background(), cfg, customer, contentSID, nil, ""); err != nil {
		t.Fatal(err)
	}
	msgs := srv.Messages()
	if len(msgs) != 2 {
		t.Fatalf("%d messages", len(msgs))
	}
	m := msgs[0]
	if m.SID != sid || m.ContentSID != contentSID || m.Body != "" || m.To != "whatsapp:"+customer || m.From != twiliotest.SandboxFrom ||
		m.StatusCallback != "https://parley.example.com/webhooks/twilio/acme/status" {
		t.Fatalf("server recorded %+v", m)
	}
	// JSON with sorted keys: the same request for the same variables.
	if want := `{"1":"Sam \"S\" Ödegaard","2":"10:30"}`; m.ContentVariables != want {
		t.Fatalf("ContentVariables %s, want %s", m.ContentVariables, want)
	}
	if m := msgs[1]; m.ContentSID != contentSID || m.Form.Has("ContentVariables") || m.Form.Has("Body") || m.Form.Has("StatusCallback") {
		t.Fatalf("form %v", m.Form)
	}
}

func TestSendTemplateFailuresAndBadInput(t *testing.T) {
	srv := twiliotest.Start(t, twiliotest.TestAccountSID, twiliotest.TestAuthToken)
	cfg := srv.Config(twiliotest.SandboxFrom)
	s := twilio.NewSender(nil)

	for _, bad := range []string{"", "HX123", "SM0123456789abcdef0123456789abcdef", "HX0123456789abcdef0123456789abcdeg"} {
		_, err := s.SendTemplate(context.Background(), cfg, customer, bad, nil, "")
		if se := sendError(t, err); se.Retryable() || se.Status != 0 {
			t.Fatalf("%q: got %+v", bad, se)
		}
	}
	if _, err := s.SendTemplate(context.Background(), cfg, "0151 1234", contentSID, nil, ""); err == nil {
		t.Fatal("national number accepted")
	}
	if n := srv.Attempts(); n != 0 {
		t.Fatalf("%d requests reached the server", n)
	}

	srv.FailNext(1, 400, twilio.CodeUnsubscribed, "Attempt to send to unsubscribed recipient")
	srv.FailNext(1, 429, twilio.CodeTooManyReqs, "Too Many Requests")
	_, err := s.SendTemplate(context.Background(), cfg, customer, contentSID, map[string]string{"1": "x"}, "")
	if se := sendError(t, err); se.Code != twilio.CodeUnsubscribed || se.Retryable() {
		t.Fatalf("got %+v", se)
	}
	_, err = s.SendTemplate(context.Background(), cfg, customer, contentSID, map[string]string{"1": "x"}, "")
	if se := sendError(t, err); se.Code != twilio.CodeTooManyReqs || !se.Retryable() {
		t.Fatalf("got %+v", se)
	}
}
