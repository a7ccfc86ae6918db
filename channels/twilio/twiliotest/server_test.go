package twiliotest_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parleyhq/parley/channels/providertest"
	"github.com/parleyhq/parley/channels/twilio"
	"github.com/parleyhq/parley/channels/twilio/twiliotest"
)

const (
	sid   = twiliotest.TestAccountSID
	token = twiliotest.TestAuthToken
)

var messagesPath = "/2010-04-01/Accounts/" + sid + "/Messages.json"

// post makes a raw request, the way any Twilio client would, and decodes
// the JSON answer.
func post(t *testing.T, srv *twiliotest.Server, method, path string, form url.Values, user, pass string) (int, http.Header, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL()+path, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	return providertest.DoJSON(t, req)
}

func message(to, body string) url.Values {
	return url.Values{"To": {to}, "From": {twiliotest.SandboxFrom}, "Body": {body}}
}

func TestCreateMessageResource(t *testing.T) {
	srv := twiliotest.Start(t, sid, token)
	form := message("whatsapp:+447700900123", "Hello")
	form.Set("StatusCallback", "https://parley.example.com/cb")
	status, header, body := post(t, srv, http.MethodPost, messagesPath, form, sid, token)
	if status != http.StatusCreated || !strings.HasPrefix(header.Get("Content-Type"), "application/json") {
		t.Fatalf("%d %s", status, header.Get("Content-Type"))
	}
	msgSID, _ := body["sid"].(string)
	if !regexp.MustCompile(`^SM[0-9a-f]{32}$`).MatchString(msgSID) {
		t.Fatalf("sid %q", body["sid"])
	}
	want := map[string]any{
		"account_sid": sid, "api_version": "2010-04-01", "body": "Hello", "direction": "outbound-api",
		"from": twiliotest.SandboxFrom, "to": "whatsapp:+447700900123", "status": "queued",
		"num_media": "0", "num_segments": "1", "price": nil, "error_code": nil, "error_message": nil,
		"date_sent": nil, "uri": "/2010-04-01/Accounts/" + sid + "/Messages/" + msgSID + ".json",
	}
	for k, v := range want {
		if body[k] != v {
			t.Errorf("%s = %#v, want %#v", k, body[k], v)
		}
	}
	if _, err := time.Parse(time.RFC1123Z, body["date_created"].(string)); err != nil {
		t.Errorf("date_created: %v", err)
	}

	msgs := srv.Messages()
	if len(msgs) != 1 {
		t.Fatalf("%d messages", len(msgs))
	}
	m := msgs[0]
	if m.SID != msgSID || m.User != sid || m.Password != token || m.AccountSID != sid || m.Body != "Hello" ||
		m.StatusCallback != "https://parley.example.com/cb" || m.Form.Get("Body") != "Hello" {
		t.Fatalf("recorded %+v", m)
	}
	// The record is a copy: changing it does not change the server's.
	m.Form.Set("Body", "changed")
	if srv.Messages()[0].Form.Get("Body") != "Hello" {
		t.Fatal("Messages shares its forms")
	}
}

func TestTemplateSendNeedsNoBody(t *testing.T) {
	srv := twiliotest.Start(t, sid, token)
	form := url.Values{"To": {"whatsapp:+447700900123"}, "From": {twiliotest.SandboxFrom},
		"ContentSid": {"HX00000000000000000000000000000001"}, "ContentVariables": {`{"1":"Friday"}`}}
	if status, _, body := post(t, srv, http.MethodPost, messagesPath, form, sid, token); status != 201 {
		t.Fatalf("%d %v", status, body)
	}
	if m := srv.Messages()[0]; m.ContentSID != "HX00000000000000000000000000000001" || m.ContentVariables != `{"1":"Friday"}` {
		t.Fatalf("recorded %+v", m)
	}
}

func TestErrorsInTwilioShape(t *testing.T) {
	srv := twiliotest.Start(t, sid, token)
	good := message("whatsapp:+447700900123", "Hello")
	without := func(field string) url.Values {
		f := message("whatsapp:+447700900123", "Hello")
		f.Del(field)
		return f
	}
	cases := []struct {
		name         string
		method, path string
		form         url.Values
		user, pass   string
		status, code int
	}{
		{"no credentials", "POST", messagesPath, good, "", "", 401, 20003},
		{"wrong token", "POST", messagesPath, good, sid, "ffffffffffffffffffffffffffffffff", 401, 20003},
		{"wrong account", "POST", messagesPath, good, "AC00000000000000000000000000000002", token, 401, 20003},
		{"another account's path", "POST", "/2010-04-01/Accounts/AC00000000000000000000000000000002/Messages.json", good, sid, token, 404, 20404},
		{"unknown path", "POST", "/2010-04-01/Accounts/" + sid + "/Calls.json", good, sid, token, 404, 20404},
		{"GET", "GET", messagesPath, nil, sid, token, 405, 20004},
		{"no To", "POST", messagesPath, without("To"), sid, token, 400, 21604},
		{"To not a number", "POST", messagesPath, message("whatsapp:bob", "x"), sid, token, 400, 21211},
		{"no From", "POST", messagesPath, without("From"), sid, token, 400, 21603},
		{"no Body, ContentSid or MediaUrl", "POST", messagesPath, without("Body"), sid, token, 400, 21619},
		{"Body over 1,600 characters", "POST", messagesPath, message("whatsapp:+447700900123", strings.Repeat("é", 1601)), sid, token, 400, 21617},
		{"Body over 1,600 UTF-16 units", "POST", messagesPath, message("whatsapp:+447700900123", strings.Repeat("😀", 801)), sid, token, 400, 21617},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, header, body := post(t, srv, tc.method, tc.path, tc.form, tc.user, tc.pass)
			if status != tc.status || body["status"] != float64(tc.status) || body["code"] != float64(tc.code) {
				t.Fatalf("%d %v", status, body)
			}
			if msg, _ := body["message"].(string); msg == "" {
				t.Fatalf("no message: %v", body)
			}
			if body["more_info"] != "https://www.twilio.com/docs/errors/"+strconv.Itoa(tc.code) {
				t.Fatalf("more_info %v", body["more_info"])
			}
			if status == 401 && header.Get("WWW-Authenticate") == "" {
				t.Fatal("401 without WWW-Authenticate")
			}
		})
	}
	if n := len(srv.Messages()); n != 0 {
		t.Fatalf("%d messages recorded", n)
	}
}

func TestFailNext(t *testing.T) {
	srv := twiliotest.Start(t, sid, token)
	srv.FailNext(2, 429, 20429, "Too Many Requests")
	srv.FailNext(1, 400, 21610, "Attempt to send to unsubscribed recipient")

	// An unauthenticated request does not use up a scripted failure.
	if status, _, _ := post(t, srv, "POST", messagesPath, message("whatsapp:+447700900123", "x"), sid, "wrong"); status != 401 {
		t.Fatalf("status %d", status)
	}
	want := []struct{ status, code int }{{429, 20429}, {429, 20429}, {400, 21610}, {201, 0}}
	for i, w := range want {
		status, _, body := post(t, srv, "POST", messagesPath, message("whatsapp:+447700900123", "x"), sid, token)
		if status != w.status || (w.code != 0 && body["code"] != float64(w.code)) {
			t.Fatalf("request %d: %d %v, want %d %d", i, status, body, w.status, w.code)
		}
	}
	if srv.Attempts() != 5 || len(srv.Messages()) != 1 {
		t.Fatalf("attempts %d, messages %d", srv.Attempts(), len(srv.Messages()))
	}
	srv.FailNext(1, 500, 20500, "Internal Server Error")
	srv.Reset()
	if srv.Attempts() != 0 || len(srv.Messages()) != 0 {
		t.Fatal("Reset kept state")
	}
	if status, _, _ := post(t, srv, "POST", messagesPath, message("whatsapp:+447700900123", "x"), sid, token); status != 201 {
		t.Fatalf("Reset kept a scripted failure: %d", status)
	}
}

func TestWait(t *testing.T) {
	srv := twiliotest.Start(t, sid, token)
	// Nothing arrives: WaitFor gives up after the timeout with what it has.
	start := time.Now()
	if got := srv.WaitFor(1, 50*time.Millisecond); len(got) != 0 || time.Since(start) < 50*time.Millisecond {
		t.Fatalf("got %d after %v", len(got), time.Since(start))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := srv.Wait(ctx, 1); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err %v", err)
	}

	// Messages arriving while waiting wake the waiter.
	go func() {
		for i := range 3 {
			time.Sleep(10 * time.Millisecond)
			res, err := http.DefaultClient.Do(signedPost(srv, message("whatsapp:+447700900123", string(rune('a'+i)))))
			if err == nil {
				res.Body.Close()
			}
		}
	}()
	got := srv.WaitFor(3, 5*time.Second)
	if len(got) != 3 || got[0].Body != "a" || got[2].Body != "c" {
		t.Fatalf("got %+v", got)
	}
}

// Since follows the stream: each call returns only what arrived after the
// messages already seen, waiting for at least one.
func TestSince(t *testing.T) {
	srv := twiliotest.Start(t, sid, token)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if got, err := srv.Since(ctx, 0); !errors.Is(err, context.DeadlineExceeded) || len(got) != 0 {
		t.Fatalf("nothing sent: got %d, err %v", len(got), err)
	}
	send := func(body string) {
		res, err := http.DefaultClient.Do(signedPost(srv, message("whatsapp:+447700900123", body)))
		if err == nil {
			res.Body.Close()
		}
	}
	send("a")
	send("b")
	got, err := srv.Since(context.Background(), 0)
	if err != nil || len(got) != 2 || got[0].Body != "a" || got[1].Body != "b" {
		t.Fatalf("got %+v, %v", got, err)
	}
	go func() {
		time.Sleep(20 * time.Millisecond)
		send("c")
	}()
	ctx, cancel = context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	got, err = srv.Since(ctx, 2)
	if err != nil || len(got) != 1 || got[0].Body != "c" {
		t.Fatalf("after two: got %+v, %v", got, err)
	}
	// What Since returns is a copy.
	got[0].Form.Set("Body", "changed")
	if again, _ := srv.Since(context.Background(), 2); again[0].Form.Get("Body") != "c" {
		t.Fatal("Since shares the server's forms")
	}
}

func signedPost(srv *twiliotest.Server, form url.Values) *http.Request {
	req, _ := http.NewRequest("POST", srv.URL()+messagesPath, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(sid, token)
	return req
}

// DeliverStatus posts what Twilio would; the package's own webhook code
// accepts it.
func TestDeliverStatus(t *testing.T) {
	srv := twiliotest.Start(t, sid, token)
	type received struct {
		err  error
		form url.Values
	}
	got := make(chan received, 1)
	var answer atomic.Int32
	answer.Store(http.StatusOK)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		form, err := twilio.ParseForm(b)
		if err == nil && !twilio.ValidSignature(token, "http://"+r.Host+r.URL.RequestURI(), form, r.Header.Get("X-Twilio-Signature")) {
			err = errors.New("bad signature")
		}
		w.WriteHeader(int(answer.Load()))
		got <- received{err, form}
	}))
	defer hook.Close()

	cfg := srv.Config(twiliotest.SandboxFrom)
	s := twilio.NewSender(nil)
	if _, err := s.Send(context.Background(), cfg, "+447700900123", "hi", hook.URL+"/webhooks/twilio/acme/status"); err != nil {
		t.Fatal(err)
	}
	m := srv.WaitFor(1, time.Second)[0]

	if err := srv.DeliverStatus(context.Background(), m, "failed", "63016"); err != nil {
		t.Fatal(err)
	}
	r := <-got
	if r.err != nil {
		t.Fatal(r.err)
	}
	in, err := twilio.Normalize("acme", r.form, time.Now(), func() string { return "evt" })
	if err != nil {
		t.Fatal(err)
	}
	st := in.GetStatus()
	if in.Phone != "+447700900123" || st.GetProviderId() != m.SID || st.GetStatus() != "failed" || st.GetErrorCode() != "63016" {
		t.Fatalf("normalised %v", in)
	}

	answer.Store(http.StatusForbidden)
	if err := srv.DeliverStatus(context.Background(), m, "delivered", ""); err == nil {
		t.Fatal("a 403 answer is not an error")
	}
	<-got
	m.StatusCallback = ""
	if err := srv.DeliverStatus(context.Background(), m, "delivered", ""); err == nil {
		t.Fatal("no callback URL is not an error")
	}
}
