package meta_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parleyhq/parley/channels"
	"github.com/parleyhq/parley/channels/meta"
	"github.com/parleyhq/parley/channels/meta/metatest"
	"github.com/parleyhq/parley/channels/providertest"
)

const customer = "+447700900123"

var wamidPattern = regexp.MustCompile(`^wamid\.[A-Za-z0-9+/=]+$`)

func sendError(t *testing.T, err error) *channels.SendError {
	t.Helper()
	return providertest.SendError(t, err)
}

// noToken fails the test if any text of err carries the token.
func noToken(t *testing.T, err error, tokens ...string) {
	t.Helper()
	se := sendError(t, err)
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

func TestSendSuccess(t *testing.T) {
	srv := metatest.Start(t, metatest.TestAccessToken)
	s := meta.NewSender(nil)

	wamid, err := s.Send(context.Background(), srv.Config(), customer, "Your booking is confirmed ✅")
	if err != nil {
		t.Fatal(err)
	}
	if !wamidPattern.MatchString(wamid) {
		t.Fatalf("wamid %q", wamid)
	}
	msgs := srv.Messages()
	if len(msgs) != 1 {
		t.Fatalf("%d messages", len(msgs))
	}
	m := msgs[0]
	if m.ID != wamid || m.Version != meta.DefaultAPIVersion || m.PhoneNumberID != metatest.TestPhoneNumberID ||
		m.Token != metatest.TestAccessToken || m.To != "447700900123" || m.Type != "text" ||
		m.Text != "Your booking is confirmed ✅" {
		t.Fatalf("server recorded %+v", m)
	}
	// The body is exactly Meta's documented shape.
	var body map[string]any
	if err := json.Unmarshal(m.Body, &body); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"messaging_product": "whatsapp", "recipient_type": "individual", "to": "447700900123",
		"type": "text", "text": map[string]any{"body": "Your booking is confirmed ✅"}}
	if fmt.Sprint(body) != fmt.Sprint(want) {
		t.Fatalf("body %v\nwant %v", body, want)
	}
	if srv.Attempts() != 1 {
		t.Fatalf("%d attempts", srv.Attempts())
	}
}

func TestSendTemplate(t *testing.T) {
	srv := metatest.Start(t, metatest.TestAccessToken)
	s := meta.NewSender(nil)
	ctx := context.Background()

	wamid, err := s.SendTemplate(ctx, srv.Config(), customer, "booking_reminder", "en_GB", []string{"Sam", "Friday 10:30"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.SendTemplate(ctx, srv.Config(), customer, "hello_world", "en_US", nil); err != nil {
		t.Fatal(err)
	}
	msgs := srv.Messages()
	if len(msgs) != 2 {
		t.Fatalf("%d messages", len(msgs))
	}
	m := msgs[0]
	if m.ID != wamid || m.Type != "template" || m.TemplateName != "booking_reminder" || m.TemplateLanguage != "en_GB" ||
		!slices.Equal(m.TemplateParams, []string{"Sam", "Friday 10:30"}) || m.To != "447700900123" {
		t.Fatalf("server recorded %+v", m)
	}
	var body struct {
		Template struct {
			Components []struct {
				Type       string
				Parameters []struct{ Type, Text string }
			}
		}
	}
	if err := json.Unmarshal(m.Body, &body); err != nil {
		t.Fatal(err)
	}
	if c := body.Template.Components; len(c) != 1 || c[0].Type != "body" || len(c[0].Parameters) != 2 || c[0].Parameters[1].Type != "text" {
		t.Fatalf("components %+v", c)
	}
	// No parameters: no components at all (Meta refuses an empty list).
	if m := msgs[1]; m.TemplateName != "hello_world" || len(m.TemplateParams) != 0 || strings.Contains(string(m.Body), "components") {
		t.Fatalf("server recorded %+v: %s", m, m.Body)
	}
}

func TestSendFailuresAreClassified(t *testing.T) {
	srv := metatest.Start(t, metatest.TestAccessToken)
	s := meta.NewSender(nil)

	// Statuses and messages as Meta's error-code table gives them.
	cases := []struct {
		name         string
		status, code int
		message      string
		retryable    bool
	}{
		{"http 429", 429, meta.CodeThroughput, "(#130429) Rate limit hit", true},
		{"throughput 130429 with 400", 400, meta.CodeThroughput, "(#130429) Rate limit hit", true},
		{"pair rate limit 131056", 400, meta.CodePairRateLimit, "(#131056) (Business Account, Consumer Account) pair rate limit hit", true},
		{"spam rate limit 131048", 400, meta.CodeSpamRateLimit, "(#131048) Spam rate limit hit", true},
		{"app call limit 4", 400, meta.CodeAPITooManyCalls, "(#4) Application request limit reached", true},
		{"waba rate limit 80007", 400, meta.CodeRateLimit, "(#80007) Rate limit issues", true},
		{"500", 500, 131000, "(#131000) Something went wrong", true},
		{"503", 503, 2, "(#2) Service temporarily unavailable", true},
		{"outside the window 131047", 400, meta.CodeOutsideWindow, "(#131047) Re-engagement message", false},
		{"undeliverable 131026", 400, meta.CodeUndeliverable, "(#131026) Message Undeliverable", false},
		{"marketing opt-out 131050", 400, meta.CodeMarketingOptOut, "(#131050) User stopped marketing messages", false},
		{"invalid parameter 100", 400, meta.CodeInvalidParameter, "(#100) Invalid parameter", false},
		{"template not found 132001", 404, meta.CodeTemplateNotFound, "(#132001) Template name does not exist in the translation", false},
		{"token expired 190", 401, meta.CodeAccessToken, "Error validating access token: Session has expired", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv.FailNext(1, tc.status, tc.code, tc.message)
			_, err := s.Send(context.Background(), srv.Config(), customer, "hi")
			se := sendError(t, err)
			if se.Status != tc.status || se.Code != tc.code || se.Message != tc.message || se.Retryable() != tc.retryable {
				t.Fatalf("got %+v", se)
			}
			// Meta's longer explanation and trace id come along.
			if se.Details != tc.message || se.Trace == "" {
				t.Fatalf("details %q, trace %q", se.Details, se.Trace)
			}
			noToken(t, err, metatest.TestAccessToken)
		})
	}
	// Failures are not messages, and the scripted ones are used up.
	if n := len(srv.Messages()); n != 0 {
		t.Fatalf("%d messages recorded", n)
	}
	if _, err := s.Send(context.Background(), srv.Config(), customer, "hi"); err != nil {
		t.Fatal(err)
	}
	if n := srv.Attempts(); n != len(cases)+1 {
		t.Fatalf("%d attempts", n)
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
	_, err := s.Send(ctx, srv.Config(), customer, "Are you still coming?")
	se := sendError(t, err)
	if se.Code != meta.CodeOutsideWindow || se.Retryable() || !strings.Contains(se.Error(), "more than 24 hours") {
		t.Fatalf("got %+v", se)
	}
	if _, err := s.SendTemplate(ctx, srv.Config(), customer, "booking_reminder", "en_GB", []string{"Sam"}); err != nil {
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
	_, err := s.Send(context.Background(), cfg, customer, "hi")
	se := sendError(t, err)
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
	_, err := meta.NewSender(nil).Send(context.Background(), cfg, customer, "hi")
	se := sendError(t, err)
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

func TestSendRefusesBadInputWithoutARequest(t *testing.T) {
	srv := metatest.Start(t, metatest.TestAccessToken)
	s := meta.NewSender(nil)
	ctx := context.Background()
	withCfg := func(f func(*meta.Config)) meta.Config { c := srv.Config(); f(&c); return c }
	text := func(cfg meta.Config, to, body string) func() error {
		return func() error { _, err := s.Send(ctx, cfg, to, body); return err }
	}
	tpl := func(name, lang string, params ...string) func() error {
		return func() error { _, err := s.SendTemplate(ctx, srv.Config(), customer, name, lang, params); return err }
	}
	good := srv.Config()
	cases := []struct {
		name string
		send func() error
	}{
		{"to without plus", text(good, "447700900123", "hi")},
		{"to national", text(good, "07700900123", "hi")},
		{"to with whatsapp: prefix", text(good, "whatsapp:"+customer, "hi")},
		{"empty text", text(good, customer, "")},
		{"text too long", text(good, customer, strings.Repeat("é", meta.MaxTextLength+1))},
		{"text not UTF-8", text(good, customer, "caf\xe9")},
		{"no phone number id", text(withCfg(func(c *meta.Config) { c.PhoneNumberID = "" }), customer, "hi")},
		{"phone number id a path", text(withCfg(func(c *meta.Config) { c.PhoneNumberID = "1/../me" }), customer, "hi")},
		{"no access token", text(withCfg(func(c *meta.Config) { c.AccessToken = "" }), customer, "hi")},
		{"base url not http", text(withCfg(func(c *meta.Config) { c.APIBaseURL = "ftp://example.com" }), customer, "hi")},
		{"base url relative", text(withCfg(func(c *meta.Config) { c.APIBaseURL = "localhost:8080" }), customer, "hi")},
		{"bad api version", text(withCfg(func(c *meta.Config) { c.APIVersion = "21" }), customer, "hi")},
		{"template name with capitals", tpl("Booking_Reminder", "en_GB")},
		{"template name empty", tpl("", "en_GB")},
		{"template language empty", tpl("booking_reminder", "")},
		{"template language odd", tpl("booking_reminder", "english")},
		{"template param empty", tpl("booking_reminder", "en_GB", "Sam", "")},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if se := sendError(t, tc.send()); se.Retryable() || se.Status != 0 {
				t.Fatalf("got %+v", se)
			}
		})
	}
	if n := srv.Attempts(); n != 0 {
		t.Fatalf("%d requests reached the server", n)
	}
	// The longest text WhatsApp takes is sent.
	if _, err := s.Send(ctx, good, customer, strings.Repeat("é", meta.MaxTextLength)); err != nil {
		t.Fatal(err)
	}
}

func TestSendNetworkAndContext(t *testing.T) {
	providertest.CheckNetworkAndContext(t, func(ctx context.Context, client *http.Client, baseURL string) error {
		cfg := meta.Config{PhoneNumberID: metatest.TestPhoneNumberID, AccessToken: metatest.TestAccessToken, APIBaseURL: baseURL}
		_, err := meta.NewSender(client).Send(ctx, cfg, customer, "hi")
		return err
	}, func(t *testing.T, err error) { noToken(t, err, metatest.TestAccessToken) })
}

// Answers that are not Graph's JSON, and Retry-After.
func TestSendRawAnswers(t *testing.T) {
	cases := append(providertest.CommonRawAnswers(), []providertest.RawAnswer{
		providertest.Answer("429 with Retry-After seconds", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Retry-After", "60")
			w.WriteHeader(429)
			fmt.Fprint(w, `{"error":{"message":"(#130429) Rate limit hit","type":"OAuthException","code":130429,"fbtrace_id":"Az"}}`)
		}, 429, 130429, true, time.Minute),
		providertest.Answer("rate-limit code with 400 and Retry-After", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Retry-After", "7")
			w.WriteHeader(400)
			fmt.Fprint(w, `{"error":{"message":"(#131056) pair rate limit hit","type":"OAuthException","code":131056}}`)
		}, 400, 131056, true, 7*time.Second),
		providertest.Answer("400 ignores Retry-After", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Retry-After", "7")
			w.WriteHeader(400)
			fmt.Fprint(w, `{"error":{"message":"(#131026) Message Undeliverable","code":131026}}`)
		}, 400, 131026, false, 0),
		providertest.Answer("403 without a body", func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(403)
		}, 403, 0, false, 0),
		providertest.Answer("200 without a message id is not retried (it was accepted)", func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprint(w, `{"messaging_product":"whatsapp","contacts":[{"input":"447700900123","wa_id":"447700900123"}],"messages":[]}`)
		}, 200, 0, false, 0),
		providertest.Answer("200 that does not decode is not retried", func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprint(w, `{"messages":`)
		}, 200, 0, false, 0),
	}...)
	providertest.CheckRawAnswers(t, cases, func(baseURL string) error {
		cfg := meta.Config{PhoneNumberID: metatest.TestPhoneNumberID, AccessToken: metatest.TestAccessToken, APIBaseURL: baseURL}
		_, err := meta.NewSender(nil).Send(context.Background(), cfg, customer, "hi")
		return err
	})
}

// Without APIBaseURL the request goes to Meta's Graph API; a transport
// stands in for the network.
func TestSendDefaultsToGraph(t *testing.T) {
	client, last := providertest.Capture(200)
	cfg := meta.Config{PhoneNumberID: metatest.TestPhoneNumberID, AccessToken: metatest.TestAccessToken}
	_, _ = meta.NewSender(client).Send(context.Background(), cfg, customer, "hi")
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
	if _, err := meta.NewSender(nil).Send(context.Background(), cfg, customer, "hi"); err != nil {
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
			if _, err := s.Send(context.Background(), cfg, customer, fmt.Sprint("n", i)); err != nil {
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
