// Package twiliotest is a fake of Twilio's Messages API for tests: a real
// HTTP server on a loopback port that accepts what twilio-go sends, answers
// as Twilio does, records every accepted message and can be told to fail.
//
// Point a tenant at it with Server.Config, send through twilio.Sender (or
// any Twilio client that can change its base URL), then assert on
// Server.Messages or wait with Server.WaitFor:
//
//	srv := twiliotest.Start(t, twiliotest.TestAccountSID, twiliotest.TestAuthToken)
//	cfg := srv.Config(twiliotest.SandboxFrom)
//	sid, err := twilio.NewSender(nil).Send(ctx, cfg, "+447700900123", "hi", "")
//	msgs := srv.WaitFor(1, 5*time.Second)
//	if len(msgs) != 1 { t.Fatalf(...) }
//
// What it implements, in Twilio's shapes:
//
//	POST /2010-04-01/Accounts/{AccountSid}/Messages.json
//	     form: To, From, Body, ContentSid, ContentVariables, MediaUrl,
//	           StatusCallback (anything else is recorded, not checked)
//	     201  the message resource: sid "SM" + 32 hex, status "queued", …
//	     401  20003 wrong or missing HTTP Basic credentials
//	     404  20404 another account's path, or any other path
//	     405  20004 a method other than POST
//	     400  21604/21603 To or From missing, 21211 To not a number,
//	          21619 neither Body, ContentSid nor MediaUrl,
//	          21617 Body over 1,600 characters (UTF-16 units: Twilio's
//	          own count is undocumented, this is the stricter one)
//	     any  scripted with FailNext
//	GET  /2010-04-01/Accounts/{AccountSid}/Messages/{sid}/Media/{sid}
//	     (added with AddMedia) 307 to /cdn/…, which serves the file
//	     without credentials; 401 20003, 404 20404 as above
//
// Twilio's error body is {"code", "message", "more_info", "status"}, which
// is what twilio-go decodes into client.TwilioRestError.
package twiliotest

import (
	"context"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/parleyhq/parley/channels/providertest"
	"github.com/parleyhq/parley/channels/twilio"
	"github.com/parleyhq/parley/tenants"
)

// Credentials and sender for tests. They have the shape of real ones (twilio-go
// refuses non-alphanumeric credentials before sending) but grant nothing.
const (
	TestAccountSID = "AC00000000000000000000000000000001"
	TestAuthToken  = "0123456789abcdef0123456789abcdef"
	// SandboxFrom is Twilio's WhatsApp sandbox sender.
	SandboxFrom = "whatsapp:+14155238886"
)

// Message is one message the server accepted.
type Message struct {
	SID        string // "SM" + 32 hex digits, as returned to the client
	AccountSID string // from the URL path
	// User and Password are the HTTP Basic credentials the client sent.
	// Only requests whose credentials matched are recorded, so they equal
	// the server's account SID and auth token; tests assert on them to
	// show which tenant's credentials a send used.
	User, Password string
	To             string // as sent, e.g. "whatsapp:+447700900123"
	From           string
	Body           string
	// ContentSid and ContentVariables are set for template sends (the way
	// out of the 24-hour window).
	ContentSID       string
	ContentVariables string
	MediaURLs        []string
	StatusCallback   string
	// Form is the whole request form, for fields not broken out above.
	Form        url.Values
	DateCreated time.Time
}

// Server is a running fake Messages API. Its methods are safe for
// concurrent use.
type Server struct {
	accountSID string
	authToken  string

	// Fake is the server, the accepted messages, the attempts, the
	// scripted failures and the media: URL, Close, Messages, Attempts,
	// Wait, Since, WaitFor and Reset.
	*providertest.Fake[Message, scripted]
}

type scripted struct {
	status, code int
	message      string
}

// AddMedia makes a customer's file available as Twilio serves it, and
// returns its URL as a webhook's MediaUrl0 carries it:
// /2010-04-01/Accounts/{sid}/Messages/{message}/Media/{media}. With the
// account's credentials it redirects, as Twilio does, to a URL on this
// server that serves data without credentials.
func (s *Server) AddMedia(messageSID, mediaSID, contentType string, data []byte) string {
	path := "/2010-04-01/Accounts/" + s.accountSID + "/Messages/" + messageSID + "/Media/" + mediaSID
	s.StoreFile(path, contentType, data)
	return s.URL() + path
}

var mediaPath = regexp.MustCompile(`^/2010-04-01/Accounts/[^/]+/Messages/[^/]+/Media/[^/]+$`)

// serveMedia answers the media URLs and their redirect targets; false when
// r is not for them.
func (s *Server) serveMedia(w http.ResponseWriter, r *http.Request) bool {
	if path, ok := strings.CutPrefix(r.URL.Path, "/cdn"); ok && r.Method == http.MethodGet {
		file, found := s.File(path)
		if !found {
			http.NotFound(w, r)
			return true
		}
		providertest.ServeFile(w, file)
		return true
	}
	if !mediaPath.MatchString(r.URL.Path) || r.Method != http.MethodGet {
		return false
	}
	user, pass, ok := r.BasicAuth()
	if !ok || !equal(user, s.accountSID) || !equal(pass, s.authToken) {
		w.Header().Set("WWW-Authenticate", `Basic realm="Twilio API"`)
		writeError(w, http.StatusUnauthorized, 20003, "Authenticate")
		return true
	}
	if _, found := s.File(r.URL.Path); !found {
		writeError(w, http.StatusNotFound, 20404, "The requested resource "+r.URL.Path+" was not found")
		return true
	}
	http.Redirect(w, r, "/cdn"+r.URL.Path, http.StatusTemporaryRedirect)
	return true
}

// New starts a server that accepts the given account SID and auth token.
// Close it when done, or use Start.
func New(accountSID, authToken string) *Server {
	s := &Server{accountSID: accountSID, authToken: authToken}
	s.Fake = providertest.NewFake[Message, scripted](func(m Message) Message {
		m.Form = cloneValues(m.Form)
		m.MediaURLs = append([]string(nil), m.MediaURLs...)
		return m
	}, s.serve)
	return s
}

// Start is New for a test: the server closes when t ends.
func Start(t testing.TB, accountSID, authToken string) *Server {
	t.Helper()
	s := New(accountSID, authToken)
	t.Cleanup(s.Close)
	return s
}

// Config returns a tenant configuration that sends through this server
// from the given WhatsApp sender ("whatsapp:+14155238886").
func (s *Server) Config(from string) *tenants.Twilio {
	return &tenants.Twilio{
		AccountSID: s.accountSID,
		AuthToken:  tenants.Secret(s.authToken),
		From:       from,
		APIBaseURL: s.URL(),
	}
}

// FailNext makes the next n authenticated requests to the Messages
// endpoint fail with HTTP status and Twilio's error body {"code": code,
// "message": message, ...}. Calls queue up: FailNext(1, 429, …) then
// FailNext(1, 500, …) fails the next request with 429 and the one after
// with 500. Failed requests are not recorded as messages.
//
// Typical scripts: (1, 429, 20429, "Too Many Requests"),
// (1, 400, 21610, "Attempt to send to unsubscribed recipient"),
// (1, 400, 63016, "Failed to send freeform message because you are outside
// the allowed window").
func (s *Server) FailNext(n int, status int, code int, message string) {
	s.Script(n, scripted{status: status, code: code, message: message})
}

// DeliverStatus plays Twilio's part after a send: it POSTs a status
// callback for m (status "sent", "delivered", "read", "failed", …, with
// errorCode for failures, "" otherwise) to m.StatusCallback, signed with
// X-Twilio-Signature as Twilio signs it, so the ingress's signature check
// passes when the callback URL is the public URL it expects. An answer
// other than 2xx is an error.
func (s *Server) DeliverStatus(ctx context.Context, m Message, status, errorCode string) error {
	if m.StatusCallback == "" {
		return fmt.Errorf("twiliotest: message %s has no StatusCallback", m.SID)
	}
	form := url.Values{
		"AccountSid":    {m.AccountSID},
		"ApiVersion":    {"2010-04-01"},
		"ChannelPrefix": {"whatsapp"},
		"From":          {m.From},
		"MessageSid":    {m.SID},
		"MessageStatus": {status},
		"SmsSid":        {m.SID},
		"SmsStatus":     {status},
		"To":            {m.To},
	}
	if errorCode != "" {
		form.Set("ErrorCode", errorCode)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, m.StatusCallback, strings.NewReader(form.Encode()))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Twilio-Signature", twilio.Signature(s.authToken, m.StatusCallback, form))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("twiliotest: status callback to %s answered %s", m.StatusCallback, resp.Status)
	}
	return nil
}

var (
	messagesPath = regexp.MustCompile(`^/2010-04-01/Accounts/([^/]+)/Messages\.json$`)
	toAddress    = regexp.MustCompile(`^(whatsapp:)?\+[1-9][0-9]{6,14}$`)
)

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	if s.serveMedia(w, r) {
		return
	}
	m := messagesPath.FindStringSubmatch(r.URL.Path)
	if m == nil {
		writeError(w, http.StatusNotFound, 20404, "The requested resource "+r.URL.Path+" was not found")
		return
	}
	s.CountAttempt()
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeError(w, http.StatusMethodNotAllowed, 20004, "Method not allowed")
		return
	}
	user, pass, ok := r.BasicAuth()
	if !ok || !equal(user, s.accountSID) || !equal(pass, s.authToken) {
		w.Header().Set("WWW-Authenticate", `Basic realm="Twilio API"`)
		writeError(w, http.StatusUnauthorized, 20003, "Authenticate")
		return
	}
	if m[1] != s.accountSID {
		writeError(w, http.StatusNotFound, 20404, "The requested resource "+r.URL.Path+" was not found")
		return
	}
	if fail, ok := s.TakeFailure(); ok {
		writeError(w, fail.status, fail.code, fail.message)
		return
	}
	if err := r.ParseForm(); err != nil {
		writeError(w, http.StatusBadRequest, 20001, "Could not parse form: "+err.Error())
		return
	}
	f := r.PostForm
	msg := Message{
		AccountSID:       s.accountSID,
		User:             user,
		Password:         pass,
		To:               f.Get("To"),
		From:             f.Get("From"),
		Body:             f.Get("Body"),
		ContentSID:       f.Get("ContentSid"),
		ContentVariables: f.Get("ContentVariables"),
		MediaURLs:        f["MediaUrl"],
		StatusCallback:   f.Get("StatusCallback"),
		Form:             cloneValues(f),
		DateCreated:      time.Now().UTC().Truncate(time.Second),
	}
	switch {
	case msg.To == "":
		writeError(w, http.StatusBadRequest, 21604, "A 'To' phone number is required.")
		return
	case !toAddress.MatchString(msg.To):
		writeError(w, http.StatusBadRequest, 21211, "Invalid 'To' Phone Number: "+msg.To)
		return
	case msg.From == "":
		writeError(w, http.StatusBadRequest, 21603, "A 'From' phone number is required.")
		return
	case msg.Body == "" && msg.ContentSID == "" && len(msg.MediaURLs) == 0:
		writeError(w, http.StatusBadRequest, 21619, "A text message body, media URL or content SID is required.")
		return
	case twilio.TextLimit.Len(msg.Body) > twilio.TextLimit.Max:
		writeError(w, http.StatusBadRequest, 21617, "The concatenated message body exceeds the 1600 character limit.")
		return
	}
	msg.SID = newSID("SM")

	s.Record(msg)

	writeJSON(w, http.StatusCreated, resource(msg))
}

// messageResource is Twilio's Message resource as the create call returns
// it; nulls are what Twilio returns before the message moves on.
type messageResource struct {
	AccountSID          string            `json:"account_sid"`
	APIVersion          string            `json:"api_version"`
	Body                string            `json:"body"`
	DateCreated         string            `json:"date_created"`
	DateSent            *string           `json:"date_sent"`
	DateUpdated         string            `json:"date_updated"`
	Direction           string            `json:"direction"`
	ErrorCode           *int              `json:"error_code"`
	ErrorMessage        *string           `json:"error_message"`
	From                string            `json:"from"`
	MessagingServiceSID *string           `json:"messaging_service_sid"`
	NumMedia            string            `json:"num_media"`
	NumSegments         string            `json:"num_segments"`
	Price               *string           `json:"price"`
	PriceUnit           string            `json:"price_unit"`
	SID                 string            `json:"sid"`
	Status              string            `json:"status"`
	SubresourceURIs     map[string]string `json:"subresource_uris"`
	To                  string            `json:"to"`
	URI                 string            `json:"uri"`
}

func resource(m Message) messageResource {
	// Twilio's dates are RFC 2822 with a numeric zone:
	// "Thu, 24 Aug 2023 05:01:45 +0000".
	date := m.DateCreated.Format(time.RFC1123Z)
	uri := "/2010-04-01/Accounts/" + m.AccountSID + "/Messages/" + m.SID
	return messageResource{
		AccountSID:      m.AccountSID,
		APIVersion:      "2010-04-01",
		Body:            m.Body,
		DateCreated:     date,
		DateUpdated:     date,
		Direction:       "outbound-api",
		From:            m.From,
		NumMedia:        strconv.Itoa(len(m.MediaURLs)),
		NumSegments:     "1",
		PriceUnit:       "USD",
		SID:             m.SID,
		Status:          "queued",
		SubresourceURIs: map[string]string{"media": uri + "/Media.json"},
		To:              m.To,
		URI:             uri + ".json",
	}
}

// twilioError is the body of every Twilio REST error.
type twilioError struct {
	Code     int    `json:"code"`
	Message  string `json:"message"`
	MoreInfo string `json:"more_info"`
	Status   int    `json:"status"`
}

func writeError(w http.ResponseWriter, status, code int, message string) {
	writeJSON(w, status, twilioError{
		Code:     code,
		Message:  message,
		MoreInfo: "https://www.twilio.com/docs/errors/" + strconv.Itoa(code),
		Status:   status,
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	providertest.WriteJSON(w, status, "application/json; charset=utf-8", v)
}

// newSID makes a Twilio-style SID: a two-letter prefix and 32 hex digits.
func newSID(prefix string) string {
	return prefix + hex.EncodeToString(providertest.RandomBytes(16))
}

func equal(a, b string) bool { return providertest.SameSecret(a, b) }

func cloneValues(v url.Values) url.Values {
	out := make(url.Values, len(v))
	for k, vs := range v {
		out[k] = append([]string(nil), vs...)
	}
	return out
}
