package providertest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parleyhq/parley/channels"
	"github.com/parleyhq/parley/tenants"
	"github.com/parleyhq/parley/wire"
)

// Customer is the phone the outgoing cases send to unless a case says
// otherwise.
const Customer = "+447700900123"

// Response is what the provider's API answers a send with.
type Response struct {
	// Status is the HTTP status; 0 is 200.
	Status int
	// Data names a testdata file that is the body (testdata/responses/…:
	// answers in the provider's documented shapes); Body is the body
	// when Data is "".
	Data    string
	Body    string
	Headers map[string]string
}

// Request is what a send must have asked of the provider's API.
type Request struct {
	// Method is "" for POST.
	Method string
	Path   string
	// Form, when not nil, is the whole form body; JSON, when set, is the
	// whole JSON body (compared as JSON values, not as text).
	Form url.Values
	JSON string
	// Headers must be on the request as they are.
	Headers map[string]string
}

// WantError is what the *channels.SendError of a failed send must say.
type WantError struct {
	Kind        channels.Kind
	Status      int // 0: no answer came (refused before any request, or no network)
	Code        int
	Message     string // when set, the SendError's Message
	Details     string // when set, the SendError's Details
	RetryAfter  time.Duration
	RateLimited bool
	// Trace, when set, is the SendError's Trace.
	Trace string
}

// OutgoingCase is one send through a provider and what must come of it.
type OutgoingCase struct {
	Label string
	// Out is what is sent; nil: the text "hi" to Customer. Template, when
	// set, is sent instead of Out's text.
	Out      *wire.Outbound
	Template *wire.Template
	// Tenant, when set, changes the tenant the case sends as.
	Tenant func(*tenants.Tenant)
	// Response answers every request the send makes.
	Response Response
	// Request is what the send must have asked; nil: no request may
	// reach the API (refused before it, or a provider that sends none).
	Request *Request
	// ID is the provider's message id a successful send returns; "" with
	// Err nil: any id that Outgoing.ID accepts.
	ID string
	// Err is the failure; nil: the send succeeds.
	Err *WantError
}

// Outgoing runs OutgoingCases through a provider's Send against a local
// server standing in for the provider's API.
type Outgoing struct {
	Provider channels.Provider
	// Tenant returns the tenant to send as, its API base URL pointed at
	// baseURL.
	Tenant func(baseURL string) *tenants.Tenant
	// ID, when set, checks the id of a successful send whose case names
	// none.
	ID func(id string) bool
	// Secrets must never be in the text of an error.
	Secrets []string
	// Check, when set, looks further at each failed send's error.
	Check func(t *testing.T, err error)
}

// Run runs the cases, each as a subtest with a server of its own.
func (h Outgoing) Run(t *testing.T, cases []OutgoingCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.Label, func(t *testing.T) { h.run(t, tc) })
	}
}

type seenRequest struct {
	method, path string
	header       http.Header
	body         []byte
}

func (h Outgoing) run(t *testing.T, tc OutgoingCase) {
	respBody := []byte(tc.Response.Body)
	if tc.Response.Data != "" {
		respBody = Load(t, tc.Response.Data)
	}
	var (
		mu   sync.Mutex
		seen []seenRequest
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		seen = append(seen, seenRequest{r.Method, r.URL.Path, r.Header.Clone(), b})
		mu.Unlock()
		for k, v := range tc.Response.Headers {
			w.Header().Set(k, v)
		}
		if w.Header().Get("Content-Type") == "" && len(respBody) > 0 && respBody[0] == '{' {
			w.Header().Set("Content-Type", "application/json")
		}
		status := tc.Response.Status
		if status == 0 {
			status = http.StatusOK
		}
		w.WriteHeader(status)
		_, _ = w.Write(respBody)
	}))
	defer srv.Close()

	tenant := h.Tenant(srv.URL)
	if tc.Tenant != nil {
		tc.Tenant(tenant)
	}
	out := tc.Out
	if out == nil {
		out = &wire.Outbound{Id: "out-1", Tenant: tenant.ID, Phone: Customer, Text: "hi"}
	}
	id, err := h.Provider.Send(context.Background(), tenant, out, tc.Template)

	mu.Lock()
	defer mu.Unlock()
	switch {
	case tc.Request == nil && len(seen) != 0:
		t.Fatalf("%d requests reached the API, want none: %s %s", len(seen), seen[0].method, seen[0].path)
	case tc.Request != nil && len(seen) != 1:
		t.Fatalf("%d requests reached the API, want 1", len(seen))
	case tc.Request != nil:
		checkRequest(t, *tc.Request, seen[0])
	}

	if tc.Err == nil {
		if err != nil {
			t.Fatalf("send: %v", err)
		}
		if tc.ID != "" && id != tc.ID || tc.ID == "" && h.ID != nil && !h.ID(id) {
			t.Fatalf("id %q, want %q", id, tc.ID)
		}
		return
	}
	se := SendError(t, err)
	w := tc.Err
	if se.Kind != w.Kind || se.Status != w.Status || se.Code != w.Code || se.RetryAfter != w.RetryAfter || se.RateLimited != w.RateLimited ||
		w.Message != "" && se.Message != w.Message || w.Details != "" && se.Details != w.Details || w.Trace != "" && se.Trace != w.Trace {
		t.Fatalf("got  %+v\nwant %+v", se, *w)
	}
	if se.Retryable() != (w.Kind == channels.Retry) {
		t.Fatalf("Retryable() = %v for kind %v", se.Retryable(), se.Kind)
	}
	texts := []string{err.Error(), fmt.Sprintf("%+v", err), fmt.Sprintf("%#v", se), fmt.Sprintf("%v", *se)}
	if c := se.Cause; c != nil {
		texts = append(texts, c.Error())
	}
	for _, text := range texts {
		for _, s := range h.Secrets {
			if s != "" && strings.Contains(text, s) {
				t.Fatalf("a secret is in the error text: %s", text)
			}
		}
	}
	if h.Check != nil {
		h.Check(t, err)
	}
}

func checkRequest(t *testing.T, want Request, got seenRequest) {
	t.Helper()
	method := want.Method
	if method == "" {
		method = http.MethodPost
	}
	if got.method != method || got.path != want.Path {
		t.Fatalf("request %s %s, want %s %s", got.method, got.path, method, want.Path)
	}
	for k, v := range want.Headers {
		if g := got.header.Get(k); g != v {
			t.Fatalf("header %s = %q, want %q", k, g, v)
		}
	}
	if want.Form != nil {
		form, err := url.ParseQuery(string(got.body))
		if err != nil {
			t.Fatalf("body is not a form: %v", err)
		}
		if !reflect.DeepEqual(form, want.Form) {
			t.Fatalf("form %v\nwant %v", form, want.Form)
		}
	}
	if want.JSON != "" {
		var g, w any
		if err := json.Unmarshal(got.body, &g); err != nil {
			t.Fatalf("body %s is not JSON: %v", got.body, err)
		}
		if err := json.Unmarshal([]byte(want.JSON), &w); err != nil {
			t.Fatalf("the case's JSON: %v", err)
		}
		if !reflect.DeepEqual(g, w) {
			t.Fatalf("body %s\nwant %s", got.body, want.JSON)
		}
	}
}

// CommonResponses are answers that mean the same from any provider: a
// proxy's error page, a Retry-After to cap, a redirect not to follow.
// req is what the default send asks of the provider.
func CommonResponses(req *Request) []OutgoingCase {
	return []OutgoingCase{
		{Label: "502 html from a proxy", Request: req,
			Response: Response{Status: 502, Body: "<html>Bad Gateway</html>", Headers: map[string]string{"Content-Type": "text/html"}},
			Err:      &WantError{Kind: channels.Retry, Status: 502}},
		{Label: "503 with an absurd Retry-After is capped", Request: req,
			Response: Response{Status: 503, Headers: map[string]string{"Retry-After": "86400"}},
			Err:      &WantError{Kind: channels.Retry, Status: 503, RetryAfter: channels.MaxRetryAfter}},
		{Label: "redirect is not followed", Request: req,
			Response: Response{Status: 307, Headers: map[string]string{"Location": "https://elsewhere.example/"}},
			Err:      &WantError{Kind: channels.Permanent, Status: 307}},
	}
}
