package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

func (h *harness) api(t *testing.T, method, path, key, body string) (int, map[string]any, http.Header) {
	t.Helper()
	return h.apiWith(t, method, path, key, body, nil)
}

// apiWith is api with extra request headers.
func (h *harness) apiWith(t *testing.T, method, path, key, body string, headers map[string]string) (int, map[string]any, http.Header) {
	t.Helper()
	res, b := h.request(t, method, path, key, body, headers)
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	return res.StatusCode, m, res.Header
}

// request makes an API request with the key (when not empty) and
// headers, and returns the response with its whole body read.
func (h *harness) request(t *testing.T, method, path, key, body string, headers map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, h.engine.URL()+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res, b
}

func errorCode(m map[string]any) string {
	e, _ := m["error"].(map[string]any)
	c, _ := e["code"].(string)
	return c
}

func TestAutomationAPI(t *testing.T) {
	h := startHarness(t)
	const agent, admin, analyst = "acme-agent-key-0123456789", "admin-key-0123456789", "analyst-key-0123456789"
	send := "/api/v1/tenants/acme/messages"

	cases := []struct {
		name, path, key, body string
		want                  int
		code                  string
	}{
		{"no key", send, "", `{"to":"+4915112345678","text":"hi"}`, 401, ""},
		{"unknown key", send, "nope-nope-nope-nope-nope", `{"to":"+4915112345678","text":"hi"}`, 401, ""},
		{"analyst may not send", send, analyst, `{"to":"+4915112345678","text":"hi"}`, 403, ""},
		{"another tenant's data", "/api/v1/tenants/demo/messages", agent, `{"to":"+4915112345678","text":"hi"}`, 403, ""},
		{"unknown tenant", "/api/v1/tenants/nobody/messages", admin, `{"to":"+4915112345678","text":"hi"}`, 404, "unknown_tenant"},
		{"national format", send, agent, `{"to":"0151/12345678","text":"hi"}`, 400, "invalid_phone_number"},
		{"spaces and brackets", send, agent, `{"to":"+49 (0) 151 12345678","text":"hi"}`, 400, "invalid_phone_number"},
		{"too long", send, agent, `{"to":"+4915112345678","text":"` + strings.Repeat("x", 4097) + `"}`, 400, "text_too_long"},
		{"over Twilio's 1,600 characters", send, agent, `{"to":"+4915112345678","text":"` + strings.Repeat("x", 1601) + `"}`, 400, "text_too_long"},
		{"801 emoji are 1,602 UTF-16 units on Twilio", send, agent, `{"to":"+4915112345678","text":"` + strings.Repeat("😀", 801) + `"}`, 400, "text_too_long"},
		{"1,601 characters are fine through Meta", "/api/v1/tenants/beta/messages", admin, `{"to":"+4915112345678","text":"` + strings.Repeat("x", 1601) + `"}`, 422, "outside_window"},
		{"unknown template", send, agent, `{"to":"+4915112345678","template":{"name":"nope"}}`, 404, "template_not_found"},
		{"outside the window", send, agent, `{"to":"+4915112345678","text":"hi"}`, 422, "outside_window"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, m, _ := h.api(t, http.MethodPost, tc.path, tc.key, tc.body)
			if status != tc.want || (tc.code != "" && errorCode(m) != tc.code) {
				t.Fatalf("status %d body %v, want %d %s", status, m, tc.want, tc.code)
			}
		})
	}

	// A template may go at any time.
	status, m, _ := h.api(t, http.MethodPost, send, agent, `{"to":"+4915112345678","template":{"name":"booking_reminder","variables":{"1":"Sam"}}}`)
	if status != 202 || m["id"] == "" {
		t.Fatalf("template send: %d %v", status, m)
	}

	// Once the customer wrote, free text may go, and reaches Twilio.
	h.sendWhatsApp(t, "SM0123456789abcdef0123456789abcd01", "+447700900456", "Hello")
	h.twilio.WaitFor(1, 30*time.Second)
	status, m, _ = h.api(t, http.MethodPost, send, agent, `{"to":"+447700900456","text":"Your cleaner is on the way"}`)
	if status != 202 || m["status"] != "queued" || m["window_open_until"] == nil {
		t.Fatalf("text send: %d %v", status, m)
	}
	eventually(t, 30*time.Second, func() error {
		for _, msg := range h.twilio.Messages() {
			if msg.Body == "Your cleaner is on the way" && msg.To == "whatsapp:+447700900456" {
				return nil
			}
		}
		return fmt.Errorf("API message did not reach Twilio: %+v", h.twilio.Messages())
	})

	// The assistant answers the caller.
	status, m, _ = h.api(t, http.MethodPost, "/api/v1/tenants/acme/ai/respond", agent, `{"customer":"+447700900456","message":"What can you help me with?"}`)
	if status != 200 || m["reply"] == "" {
		t.Fatalf("ai/respond: %d %v", status, m)
	}

	// Operators steer conversations.
	status, m, _ = h.api(t, http.MethodPost, "/api/v1/tenants/acme/conversations/+447700900456/ai", agent, `{"enabled":false}`)
	if status != 200 || m["ok"] != true {
		t.Fatalf("ai off: %d %v", status, m)
	}

	// The tenant's rate limit answers 429 with Retry-After.
	limited := false
	for range 20 {
		status, _, hdr := h.api(t, http.MethodPost, send, agent, `{"to":"+4915112345678","template":{"name":"booking_reminder"}}`)
		if status == 429 {
			limited = hdr.Get("Retry-After") != ""
			break
		}
	}
	if !limited {
		t.Fatal("no 429 with Retry-After after a burst over the tenant's limit")
	}
}

// A client that retries a send with the same Idempotency-Key (after a
// timeout, say) gets the first answer again, and the customer gets the
// message once.
func TestIdempotentSendThroughTheAPI(t *testing.T) {
	h := startHarness(t)
	const agent = "acme-agent-key-0123456789"
	const send = "/api/v1/tenants/acme/messages"
	h.sendWhatsApp(t, "SM0123456789abcdef0123456789abcd02", "+447700900456", "Hello")
	h.twilio.WaitFor(1, 30*time.Second)
	body := `{"to":"+447700900456","text":"Your invoice is ready"}`
	key := map[string]string{"Idempotency-Key": "invoice-2026-11-0042"}

	status, first, hdr := h.apiWith(t, http.MethodPost, send, agent, body, key)
	if status != 202 || first["id"] == "" || hdr.Get("Idempotent-Replayed") != "" {
		t.Fatalf("first send: %d %v %v", status, first, hdr)
	}
	status, again, hdr := h.apiWith(t, http.MethodPost, send, agent, body, key)
	if status != 202 || again["id"] != first["id"] || hdr.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("retried send: %d %v %v, want the first answer (id %v) replayed", status, again, hdr, first["id"])
	}
	status, m, _ := h.apiWith(t, http.MethodPost, send, agent, `{"to":"+447700900456","text":"Something else"}`, key)
	if status != 422 || errorCode(m) != "idempotency_key_reused" {
		t.Fatalf("key reused for another message: %d %v", status, m)
	}
	status, m, _ = h.apiWith(t, http.MethodPost, send, agent, body, map[string]string{"Idempotency-Key": "has spaces in it"})
	if status != 400 || errorCode(m) != "invalid_idempotency_key" {
		t.Fatalf("bad key: %d %v", status, m)
	}

	h.twilio.WaitFor(2, 30*time.Second)
	time.Sleep(time.Second) // a second copy would arrive by now
	n := 0
	for _, msg := range h.twilio.Messages() {
		if msg.Body == "Your invoice is ready" {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("the customer got the message %d times, want once", n)
	}
}

func TestUnsubscribedCustomerIsMarkedOptedOut(t *testing.T) {
	h := startHarness(t)
	const agent = "acme-agent-key-0123456789"
	h.sendWhatsApp(t, "SM0123456789abcdef0123456789abcd55", "+447700900456", "Hello")
	h.twilio.WaitFor(1, 30*time.Second)

	// Twilio refuses the next send: the customer unsubscribed.
	h.twilio.FailNext(1, 400, 21610, "Attempt to send to unsubscribed recipient")
	status, m, _ := h.api(t, http.MethodPost, "/api/v1/tenants/acme/messages", agent, `{"to":"+447700900456","text":"first"}`)
	if status != 202 {
		t.Fatalf("send: %d %v", status, m)
	}
	eventually(t, 30*time.Second, func() error {
		status, m, _ := h.api(t, http.MethodPost, "/api/v1/tenants/acme/messages", agent, `{"to":"+447700900456","text":"second"}`)
		if status != 422 || errorCode(m) != "opted_out" {
			return fmt.Errorf("send after unsubscribe: %d %v", status, m)
		}
		return nil
	})
	// Writing again opts the customer back in.
	h.sendWhatsApp(t, "SM0123456789abcdef0123456789abcd56", "+447700900456", "I'm back")
	eventually(t, 30*time.Second, func() error {
		status, m, _ := h.api(t, http.MethodPost, "/api/v1/tenants/acme/messages", agent, `{"to":"+447700900456","text":"welcome back"}`)
		if status != 202 {
			return fmt.Errorf("send after the customer wrote: %d %v", status, m)
		}
		return nil
	})
}

func TestAnalyticsAndErasureThroughTheEngine(t *testing.T) {
	h := startHarness(t)
	const admin, analyst = "admin-key-0123456789", "analyst-key-0123456789"
	h.sendWhatsApp(t, "SM0123456789abcdef0123456789abcd91", "+447700900456", "Hello")
	h.twilio.WaitFor(1, 30*time.Second)

	eventually(t, 30*time.Second, func() error {
		status, m, _ := h.api(t, http.MethodGet, "/api/v1/tenants/acme/analytics/summary", analyst, "")
		if status != 200 {
			return fmt.Errorf("summary: %d %v", status, m)
		}
		if m["messages_in"] != float64(1) || m["messages_out"] != float64(1) {
			return fmt.Errorf("summary %v", m)
		}
		return nil
	})
	if status, _, _ := h.api(t, http.MethodGet, "/api/v1/tenants/demo/analytics/summary", analyst, ""); status != 403 {
		t.Fatalf("analyst reached another tenant: %d", status)
	}
	res, err := http.Get(h.engine.URL() + "/dashboard")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("dashboard: %d", res.StatusCode)
	}

	// Erasure: the rows go, and the session starts over (a new code).
	status, m, _ := h.api(t, http.MethodDelete, "/api/v1/tenants/acme/customers/+447700900456", admin, "")
	if status != 200 {
		t.Fatalf("forget: %d %v", status, m)
	}
	var left uint64
	if err := h.engine.Store().Conn().QueryRow(context.Background(), fmt.Sprintf(
		"SELECT count() FROM %s.messages WHERE phone = '+447700900456'", h.db)).Scan(&left); err != nil {
		t.Fatal(err)
	}
	if left != 0 {
		t.Fatalf("%d message rows left after erasure", left)
	}
	h.sendWhatsApp(t, "SM0123456789abcdef0123456789abcd92", "+447700900456", "Hello again")
	got := h.twilio.WaitFor(2, 30*time.Second)
	if len(got) != 2 || !strings.Contains(got[1].Body, "verification code") {
		t.Fatalf("after erasure the session should start over: %+v", got)
	}
}
