package metatest_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parleyhq/parley/channels/meta"
	"github.com/parleyhq/parley/channels/meta/metatest"
	"github.com/parleyhq/parley/channels/providertest"
	"github.com/parleyhq/parley/wire"
)

const token = metatest.TestAccessToken

var messagesPath = "/v21.0/" + metatest.TestPhoneNumberID + "/messages"

// post makes a raw request, the way any Cloud API client would, and
// decodes the JSON answer.
func post(t *testing.T, srv *metatest.Server, method, path, body, bearer string) (int, http.Header, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL()+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	return providertest.DoJSON(t, req)
}

const textBody = `{"messaging_product":"whatsapp","recipient_type":"individual","to":"447700900123","type":"text","text":{"preview_url":false,"body":"Hello"}}`

func TestSendAnswer(t *testing.T) {
	srv := metatest.Start(t, token)
	status, header, body := post(t, srv, "POST", messagesPath, textBody, token)
	if status != 200 || !strings.HasPrefix(header.Get("Content-Type"), "application/json") {
		t.Fatalf("%d %s %v", status, header.Get("Content-Type"), body)
	}
	if body["messaging_product"] != "whatsapp" {
		t.Fatalf("%v", body)
	}
	contacts := body["contacts"].([]any)
	if c := contacts[0].(map[string]any); c["input"] != "447700900123" || c["wa_id"] != "447700900123" {
		t.Fatalf("contacts %v", contacts)
	}
	id := body["messages"].([]any)[0].(map[string]any)["id"].(string)
	if !regexp.MustCompile(`^wamid\.[A-Za-z0-9+/=]{20,}$`).MatchString(id) {
		t.Fatalf("id %q", id)
	}
	msgs := srv.Messages()
	if len(msgs) != 1 {
		t.Fatalf("%d messages", len(msgs))
	}
	m := msgs[0]
	if m.ID != id || m.Version != "v21.0" || m.PhoneNumberID != metatest.TestPhoneNumberID || m.Token != token ||
		m.To != "447700900123" || m.Type != "text" || m.Text != "Hello" || string(m.Body) != textBody {
		t.Fatalf("recorded %+v", m)
	}
	// The record is a copy.
	m.Body[0] = 'X'
	if srv.Messages()[0].Body[0] != '{' {
		t.Fatal("Messages shares its bodies")
	}
}

func TestTemplateRecorded(t *testing.T) {
	srv := metatest.Start(t, token)
	body := `{"messaging_product":"whatsapp","to":"+447700900123","type":"template","template":{"name":"booking_reminder","language":{"code":"en_GB"},"components":[{"type":"header","parameters":[{"type":"text","text":"H"}]},{"type":"body","parameters":[{"type":"text","text":"Sam"},{"type":"text","text":"Friday"}]}]}}`
	if status, _, out := post(t, srv, "POST", messagesPath, body, token); status != 200 {
		t.Fatalf("%d %v", status, out)
	}
	m := srv.Messages()[0]
	if m.TemplateName != "booking_reminder" || m.TemplateLanguage != "en_GB" || !slices.Equal(m.TemplateParams, []string{"Sam", "Friday"}) {
		t.Fatalf("recorded %+v", m)
	}
}

func TestErrorsInGraphShape(t *testing.T) {
	srv := metatest.Start(t, token)
	without := func(field string) string {
		var m map[string]any
		_ = json.Unmarshal([]byte(textBody), &m)
		delete(m, field)
		b, _ := json.Marshal(m)
		return string(b)
	}
	cases := []struct {
		name         string
		method, path string
		body, bearer string
		status, code int
	}{
		{"no token", "POST", messagesPath, textBody, "", 401, 104},
		{"wrong token", "POST", messagesPath, textBody, "EAAGwrong", 401, 190},
		{"GET", "GET", messagesPath, "", token, 400, 100},
		{"unknown path", "POST", "/v21.0/" + metatest.TestPhoneNumberID + "/calls", textBody, token, 400, 100},
		{"no version", "POST", "/" + metatest.TestPhoneNumberID + "/messages", textBody, token, 400, 100},
		{"not json", "POST", messagesPath, "to=447700900123", token, 400, 100},
		{"unknown field", "POST", messagesPath, strings.Replace(textBody, `"type"`, `"typ":"x","type"`, 1), token, 400, 100},
		{"no messaging_product", "POST", messagesPath, without("messaging_product"), token, 400, 100},
		{"no to", "POST", messagesPath, without("to"), token, 400, 100},
		{"to not a number", "POST", messagesPath, strings.Replace(textBody, "447700900123", "sam", 1), token, 400, 100},
		{"text without body", "POST", messagesPath, strings.Replace(textBody, `"body":"Hello"`, `"body":""`, 1), token, 400, 100},
		{"group recipient", "POST", messagesPath, strings.Replace(textBody, "individual", "group", 1), token, 400, 100},
		{"template without language", "POST", messagesPath, `{"messaging_product":"whatsapp","to":"447700900123","type":"template","template":{"name":"x"}}`, token, 400, 100},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, _, body := post(t, srv, tc.method, tc.path, tc.body, tc.bearer)
			e, _ := body["error"].(map[string]any)
			if status != tc.status || e == nil || e["code"] != float64(tc.code) {
				t.Fatalf("%d %v", status, body)
			}
			if msg, _ := e["message"].(string); msg == "" || e["type"] == "" || e["fbtrace_id"] == "" {
				t.Fatalf("error body %v", e)
			}
		})
	}
	if n := len(srv.Messages()); n != 0 {
		t.Fatalf("%d messages recorded", n)
	}
}

func TestFailNextQueuesInOrder(t *testing.T) {
	srv := metatest.Start(t, token)
	srv.FailNext(2, 400, meta.CodeThroughput, "(#130429) Rate limit hit")
	srv.FailNextWith(1, metatest.Failure{Status: 503, Code: 2, Subcode: 2494010, Message: "(#2) Service temporarily unavailable",
		Details: "later", Type: "OAuthException", RetryAfter: "30"})
	// A request with a wrong token is answered 401 and does not use up a
	// scripted failure.
	if status, _, _ := post(t, srv, "POST", messagesPath, textBody, "EAAGwrong"); status != 401 {
		t.Fatalf("%d", status)
	}
	for i, want := range []int{400, 400, 503, 200} {
		status, header, body := post(t, srv, "POST", messagesPath, textBody, token)
		if status != want {
			t.Fatalf("request %d: %d %v", i, status, body)
		}
		if want == 503 {
			e := body["error"].(map[string]any)
			if e["error_subcode"] != float64(2494010) || e["error_data"].(map[string]any)["details"] != "later" || header.Get("Retry-After") != "30" {
				t.Fatalf("scripted answer %v %v", header, body)
			}
		}
		if want == 400 {
			if _, has := body["error"].(map[string]any)["error_subcode"]; has {
				t.Fatal("error_subcode 0 is sent")
			}
		}
	}
	if n := srv.Attempts(); n != 5 {
		t.Fatalf("%d attempts", n)
	}
	srv.FailNext(1, 500, 131000, "x")
	srv.Reset()
	if srv.Attempts() != 0 || len(srv.Messages()) != 0 {
		t.Fatal("Reset kept state")
	}
	if status, _, _ := post(t, srv, "POST", messagesPath, textBody, token); status != 200 {
		t.Fatal("Reset kept a scripted failure")
	}
}

func TestWaitFor(t *testing.T) {
	srv := metatest.Start(t, token)
	if got := srv.WaitFor(1, 20*time.Millisecond); len(got) != 0 {
		t.Fatalf("%d", len(got))
	}
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() {
			time.Sleep(10 * time.Millisecond)
			if _, err := meta.NewSender(nil).Send(context.Background(), srv.Config(), "+447700900123", "hi"); err != nil {
				t.Error(err)
			}
		})
	}
	if got := srv.WaitFor(3, 5*time.Second); len(got) != 3 {
		t.Fatalf("%d", len(got))
	}
	wg.Wait()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if got, err := srv.Wait(ctx, 4); len(got) != 3 || !errors.Is(err, context.Canceled) {
		t.Fatalf("%d %v", len(got), err)
	}
}

// The webhook helpers build what Meta sends, and the meta package reads
// it back.
func TestWebhookHelpers(t *testing.T) {
	body := metatest.TextWebhook(metatest.TestPhoneNumberID, "wamid.T1", "+447700900123", "Sam", "hello")
	sig := metatest.SignedWebhook(metatest.TestAppSecret, body)
	if !meta.ValidSignature(metatest.TestAppSecret, body, sig) || !strings.HasPrefix(sig, "sha256=") {
		t.Fatalf("signature %q", sig)
	}
	lookup := func(id string) (meta.Number, bool) {
		return meta.Number{Tenant: "acme", AppSecret: metatest.TestAppSecret}, id == metatest.TestPhoneNumberID
	}
	out, err := meta.Accept(body, sig, lookup, time.Now(), func() string { return "evt" })
	if err != nil || len(out) != 1 {
		t.Fatalf("%v %v", out, err)
	}
	m := out[0].GetMessage()
	if out[0].Tenant != "acme" || out[0].Phone != "+447700900123" || m.GetText() != "hello" || m.GetProfileName() != "Sam" ||
		m.GetProviderId() != "wamid.T1" || m.GetTo() != "+"+metatest.TestDisplayNumber {
		t.Fatalf("got %v", out[0])
	}

	// Several numbers, several kinds, one payload.
	body = metatest.Payload(
		metatest.Change{PhoneNumberID: metatest.TestPhoneNumberID, DisplayNumber: metatest.TestDisplayNumber,
			Statuses: []map[string]any{metatest.StatusUpdate("wamid.S1", "+447700900123", "failed", meta.CodeOutsideWindow)}},
		metatest.Change{PhoneNumberID: "107655329552231", DisplayNumber: "15550001234",
			Contacts: []map[string]any{metatest.Contact("+34600123456", "Zoë")},
			Messages: []map[string]any{metatest.TextMessage("wamid.T2", "+34600123456", "hola")}},
	)
	two := func(id string) (meta.Number, bool) {
		switch id {
		case metatest.TestPhoneNumberID:
			return meta.Number{Tenant: "acme", AppSecret: metatest.TestAppSecret}, true
		case "107655329552231":
			return meta.Number{Tenant: "beta", AppSecret: metatest.TestAppSecret}, true
		}
		return meta.Number{}, false
	}
	out, err = meta.Accept(body, metatest.SignedWebhook(metatest.TestAppSecret, body), two, time.Now(), func() string { return "evt" })
	if err != nil || len(out) != 2 {
		t.Fatalf("%v %v", out, err)
	}
	if s := out[0].GetStatus(); out[0].Tenant != "acme" || s.GetStatus() != "failed" || s.GetErrorCode() != "131047" || out[0].Phone != "+447700900123" {
		t.Fatalf("got %v", out[0])
	}
	if out[1].Tenant != "beta" || out[1].GetMessage().GetText() != "hola" || out[1].GetMessage().GetProfileName() != "Zoë" {
		t.Fatalf("got %v", out[1])
	}
}

// A stand-in for the ingress's POST /webhooks/meta, built only from the
// meta package's exported API, receiving what DeliverStatus posts.
func TestDeliverStatusToAReceiver(t *testing.T) {
	srv := metatest.Start(t, token)
	var (
		mu  sync.Mutex
		got []*wire.Inbound
	)
	lookup := func(id string) (meta.Number, bool) {
		return meta.Number{Tenant: "acme", AppSecret: metatest.TestAppSecret}, id == metatest.TestPhoneNumberID
	}
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		out, err := meta.Accept(body, r.Header.Get(meta.SignatureHeader), lookup, time.Now(), func() string { return "evt" })
		mu.Lock()
		got = append(got, out...)
		mu.Unlock()
		w.WriteHeader(meta.ResponseStatus(len(out), err))
	}))
	defer receiver.Close()

	ctx := context.Background()
	if _, err := meta.NewSender(nil).Send(ctx, srv.Config(), "+447700900123", "hi"); err != nil {
		t.Fatal(err)
	}
	m := srv.Messages()[0]
	if err := srv.DeliverStatus(ctx, receiver.URL, metatest.TestAppSecret, m, "delivered", 0); err != nil {
		t.Fatal(err)
	}
	if err := srv.DeliverStatus(ctx, receiver.URL, metatest.TestAppSecret, m, "failed", meta.CodeUndeliverable); err != nil {
		t.Fatal(err)
	}
	// Signed with another app's secret: refused.
	if err := srv.DeliverStatus(ctx, receiver.URL, "another app secret", m, "read", 0); err == nil || !strings.Contains(err.Error(), "403") {
		t.Fatalf("forged status: %v", err)
	}
	if code, err := metatest.Post(ctx, receiver.URL, metatest.TestAppSecret,
		metatest.StatusWebhook("999", m.ID, "+447700900123", "read", 0)); err != nil || code != 404 {
		t.Fatalf("unknown number: %d %v", code, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 2 {
		t.Fatalf("%d records", len(got))
	}
	for i, want := range []struct{ status, code string }{{"delivered", ""}, {"failed", "131026"}} {
		s := got[i].GetStatus()
		if s.GetProviderId() != m.ID || s.GetStatus() != want.status || s.GetErrorCode() != want.code || got[i].Phone != "+447700900123" {
			t.Fatalf("record %d: %v", i, got[i])
		}
	}
}
