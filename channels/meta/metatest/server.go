// Package metatest is a fake of Meta's Graph API messages endpoint for
// tests: a real HTTP server on a loopback port that accepts what a Cloud
// API client sends, answers as Meta does, records every accepted message
// and can be told to fail. It also builds and signs webhook payloads, to
// play Meta's part towards the ingress.
//
// Point a tenant at it with Server.Config, send through meta.Sender (or
// any Cloud API client that can change its base URL), then assert on
// Server.Messages or wait with Server.WaitFor:
//
//	srv := metatest.Start(t, metatest.TestAccessToken)
//	wamid, err := meta.NewSender(nil).Send(ctx, srv.Config(), "+447700900123", "hi")
//	msgs := srv.WaitFor(1, 5*time.Second)
//	if len(msgs) != 1 { t.Fatalf(...) }
//
// What it implements, in Meta's shapes:
//
//	POST /{version}/{phone_number_id}/messages
//	     JSON: messaging_product "whatsapp", recipient_type, to, type,
//	           text{body, preview_url} | template{name, language{code},
//	           components[{type, parameters[{type, text}]}]} | other types,
//	           recorded as they are
//	     200  {"messaging_product":"whatsapp","contacts":[{"input","wa_id"}],
//	           "messages":[{"id":"wamid.…"}]}
//	     401  190 wrong bearer token, 104 none
//	     400  100 a required field missing or wrong, an unknown field, a
//	          method other than POST, any other path (subcode 33)
//	     any  scripted with FailNext or FailNextWith
//	GET  /{version}/{media id}        (media added with AddMedia)
//	     200  {"messaging_product":"whatsapp","url","mime_type","sha256",
//	           "file_size","id"}; the url is this server's /media-download/{id}
//	     400  100 unknown media id; 401 as above
//	GET  /media-download/{media id}   the bytes, with the bearer token only
//
// Graph's error body is {"error": {"message", "type", "code",
// "error_subcode", "error_data": {"messaging_product", "details"},
// "fbtrace_id"}}.
package metatest

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/parleyhq/parley/channels/meta"
	"github.com/parleyhq/parley/channels/providertest"
)

// Credentials and numbers for tests. They have the shape of real ones but
// grant nothing. TestPhoneNumberID and TestDisplayNumber are the example
// business number of Meta's documentation.
const (
	TestPhoneNumberID = "106540352242922"
	TestDisplayNumber = "15550783881" // as Meta writes it: digits, no '+'
	TestAccessToken   = "EAAGtest0000ZBparley0000TOKEN0000000000000000"
	TestAppSecret     = "0123456789abcdef0123456789abcdef"
	TestVerifyToken   = "parley-verify-0123456789"
)

// Message is one message the server accepted.
type Message struct {
	ID            string // "wamid.…", as returned to the client
	Version       string // from the path, "v21.0"
	PhoneNumberID string // from the path: which business number sent it
	// Token is the bearer token the client sent. Only requests with the
	// server's token are recorded, so it equals that token; tests assert
	// on it to show which tenant's credentials a send used.
	Token string
	To    string // as sent: digits, e.g. "447700900123"
	Type  string // text | template | image | …
	Text  string // text.body
	// TemplateName, TemplateLanguage and TemplateParams are set for
	// template sends: name, language.code and the text parameters of the
	// body component, in order.
	TemplateName     string
	TemplateLanguage string
	TemplateParams   []string
	// Body is the whole request body, for fields not broken out above.
	Body     json.RawMessage
	Received time.Time
}

// Failure is a scripted error answer. Zero fields get defaults: Type
// "OAuthException", a fbtrace_id, and Details equal to Message.
type Failure struct {
	Status  int // HTTP status
	Code    int // Graph error code
	Subcode int // error_subcode; omitted when 0
	Message string
	Details string // error_data.details
	Type    string
	// RetryAfter, when set, is sent as the Retry-After header.
	RetryAfter string
}

// Server is a running fake messages endpoint. Its methods are safe for
// concurrent use.
type Server struct {
	token string

	// Fake is the server, the accepted messages, the attempts, the
	// scripted failures and the media: URL, Close, Messages, Attempts,
	// Wait, Since, WaitFor and Reset.
	*providertest.Fake[Message, Failure]
}

// AddMedia makes a media id known, as if a customer had sent the file:
// GET /{version}/{id} describes it and its url serves data.
func (s *Server) AddMedia(id, mimeType string, data []byte) {
	s.StoreFile(id, mimeType, data)
}

// New starts a server that accepts the given access token for any business
// number. Close it when done, or use Start.
func New(token string) *Server {
	s := &Server{token: token}
	s.Fake = providertest.NewFake[Message, Failure](func(m Message) Message {
		m.TemplateParams = append([]string(nil), m.TemplateParams...)
		m.Body = append(json.RawMessage(nil), m.Body...)
		return m
	}, s.serve)
	return s
}

// Start is New for a test: the server closes when t ends.
func Start(t testing.TB, token string) *Server {
	t.Helper()
	s := New(token)
	t.Cleanup(s.Close)
	return s
}

// Config returns a tenant configuration that sends through this server
// from TestPhoneNumberID, with TestAppSecret and TestVerifyToken for the
// webhook side.
func (s *Server) Config() meta.Config {
	return meta.Config{
		PhoneNumberID: TestPhoneNumberID,
		AccessToken:   s.token,
		AppSecret:     TestAppSecret,
		VerifyToken:   TestVerifyToken,
		APIBaseURL:    s.URL(),
	}
}

// FailNext makes the next n authenticated requests to the messages
// endpoint fail with HTTP status and Graph's error body carrying code and
// message. Calls queue up: FailNext(1, 400, 130429, …) then FailNext(1,
// 500, …) fails the next request with the first and the one after with
// the second. Failed requests are not recorded as messages.
//
// Typical scripts, as Meta answers them:
//
//	(1, 400, meta.CodeThroughput, "(#130429) Rate limit hit")
//	(1, 400, meta.CodePairRateLimit, "(#131056) (Business Account, Consumer Account) pair rate limit hit")
//	(1, 400, meta.CodeOutsideWindow, "(#131047) Re-engagement message")
//	(1, 400, meta.CodeUndeliverable, "(#131026) Message Undeliverable")
//	(1, 500, 131000, "(#131000) Something went wrong")
func (s *Server) FailNext(n int, status int, code int, message string) {
	s.FailNextWith(n, Failure{Status: status, Code: code, Message: message})
}

// FailNextWith is FailNext with every part of the answer chosen.
func (s *Server) FailNextWith(n int, f Failure) { s.Script(n, f) }

var (
	messagesPath = regexp.MustCompile(`^/(v[0-9]+\.[0-9]+)/([0-9]+)/messages$`)
	toNumber     = regexp.MustCompile(`^\+?[1-9][0-9]{6,14}$`)
)

// request is the messages endpoint's request body, decoded strictly: a
// field Meta does not know is refused, which catches a client's typos.
type request struct {
	MessagingProduct string `json:"messaging_product"`
	RecipientType    string `json:"recipient_type"`
	To               string `json:"to"`
	Type             string `json:"type"`
	Text             *struct {
		Body       string `json:"body"`
		PreviewURL bool   `json:"preview_url"`
	} `json:"text"`
	Template *struct {
		Name     string `json:"name"`
		Language *struct {
			Code   string `json:"code"`
			Policy string `json:"policy"`
		} `json:"language"`
		Components []struct {
			Type       string `json:"type"`
			SubType    string `json:"sub_type"`
			Index      any    `json:"index"`
			Parameters []struct {
				Type string `json:"type"`
				Text string `json:"text"`
			} `json:"parameters"`
		} `json:"components"`
	} `json:"template"`
	// Other message types are accepted and recorded, not checked.
	Image       json.RawMessage `json:"image"`
	Document    json.RawMessage `json:"document"`
	Audio       json.RawMessage `json:"audio"`
	Video       json.RawMessage `json:"video"`
	Sticker     json.RawMessage `json:"sticker"`
	Location    json.RawMessage `json:"location"`
	Interactive json.RawMessage `json:"interactive"`
	Reaction    json.RawMessage `json:"reaction"`
	Contacts    json.RawMessage `json:"contacts"`
	Context     json.RawMessage `json:"context"`
}

var (
	mediaPath    = regexp.MustCompile(`^/v\d+\.\d+/(\d+)$`)
	downloadPath = regexp.MustCompile(`^/media-download/(\d+)$`)
)

// authorized answers 401 as Graph does unless the request carries the
// server's bearer token.
func (s *Server) authorized(w http.ResponseWriter, r *http.Request) bool {
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	switch {
	case !ok || token == "":
		writeError(w, Failure{Status: http.StatusUnauthorized, Code: 104, Message: "An access token is required to request this resource."})
		return false
	case !providertest.SameSecret(token, s.token):
		writeError(w, Failure{Status: http.StatusUnauthorized, Code: 190, Message: "Invalid OAuth access token - Cannot parse access token"})
		return false
	}
	return true
}

// serveMedia answers the media endpoints; false when r is not for them.
func (s *Server) serveMedia(w http.ResponseWriter, r *http.Request) bool {
	id, download := "", false
	if m := mediaPath.FindStringSubmatch(r.URL.Path); m != nil && r.Method == http.MethodGet {
		id = m[1]
	} else if m := downloadPath.FindStringSubmatch(r.URL.Path); m != nil && r.Method == http.MethodGet {
		id, download = m[1], true
	} else {
		return false
	}
	if !s.authorized(w, r) {
		return true
	}
	md, ok := s.File(id)
	if !ok {
		writeError(w, Failure{Status: http.StatusBadRequest, Code: 100, Subcode: 33, Type: "GraphMethodException",
			Message: "Unsupported get request. Object with ID '" + id + "' does not exist, cannot be loaded due to missing permissions, or does not support this operation."})
		return true
	}
	if download {
		providertest.ServeFile(w, md)
		return true
	}
	sum := sha256.Sum256(md.Data)
	writeJSON(w, http.StatusOK, map[string]any{
		"messaging_product": "whatsapp", "url": s.URL() + "/media-download/" + id, "mime_type": md.ContentType,
		"sha256": hex.EncodeToString(sum[:]), "file_size": len(md.Data), "id": id,
	})
	return true
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	if s.serveMedia(w, r) {
		return
	}
	m := messagesPath.FindStringSubmatch(r.URL.Path)
	if m == nil {
		writeError(w, Failure{Status: http.StatusBadRequest, Code: 100, Subcode: 33, Type: "GraphMethodException",
			Message: "Unsupported " + strings.ToLower(r.Method) + " request. Object with ID '" + r.URL.Path + "' does not exist, cannot be loaded due to missing permissions, or does not support this operation."})
		return
	}
	s.CountAttempt()
	if r.Method != http.MethodPost {
		writeError(w, Failure{Status: http.StatusBadRequest, Code: 100, Subcode: 33, Type: "GraphMethodException",
			Message: "Unsupported " + strings.ToLower(r.Method) + " request."})
		return
	}
	if !s.authorized(w, r) {
		return
	}
	if fail, ok := s.TakeFailure(); ok {
		writeError(w, fail)
		return
	}

	var body bytes.Buffer
	if _, err := body.ReadFrom(http.MaxBytesReader(w, r.Body, 1<<20)); err != nil {
		invalid(w, "Could not read the request body")
		return
	}
	var req request
	dec := json.NewDecoder(bytes.NewReader(body.Bytes()))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		invalid(w, "Invalid parameter: "+err.Error())
		return
	}
	msg := Message{
		Version:       m[1],
		PhoneNumberID: m[2],
		Token:         strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "),
		To:            req.To,
		Type:          req.Type,
		Body:          json.RawMessage(body.Bytes()),
		Received:      time.Now(),
	}
	switch {
	case req.MessagingProduct != "whatsapp":
		invalid(w, "The parameter messaging_product is required.")
		return
	case req.RecipientType != "" && req.RecipientType != "individual":
		invalid(w, "Param recipient_type must be one of {individual}.")
		return
	case req.To == "":
		invalid(w, "The parameter to is required.")
		return
	case !toNumber.MatchString(req.To):
		invalid(w, "Invalid parameter: to "+strconv.Quote(req.To)+" is not a phone number.")
		return
	}
	switch req.Type {
	case "", "text":
		// Meta's default type is text.
		msg.Type = "text"
		if req.Text == nil || req.Text.Body == "" {
			invalid(w, "The parameter text['body'] is required.")
			return
		}
		if utf8.RuneCountInString(req.Text.Body) > meta.MaxTextLength {
			invalid(w, "Param text['body'] must be at most 4096 characters long.")
			return
		}
		msg.Text = req.Text.Body
	case "template":
		t := req.Template
		switch {
		case t == nil || t.Name == "":
			invalid(w, "The parameter template['name'] is required.")
			return
		case t.Language == nil || t.Language.Code == "":
			invalid(w, "The parameter template['language']['code'] is required.")
			return
		}
		msg.TemplateName, msg.TemplateLanguage = t.Name, t.Language.Code
		for _, c := range t.Components {
			if c.Type != "body" {
				continue
			}
			for _, p := range c.Parameters {
				if p.Type == "text" && p.Text == "" {
					invalid(w, "Param template['components'][0]['parameters'][0]['text'] must be a non-empty string.")
					return
				}
				msg.TemplateParams = append(msg.TemplateParams, p.Text)
			}
		}
	}
	msg.ID = newWAMID()

	s.Record(msg)

	writeJSON(w, http.StatusOK, map[string]any{
		"messaging_product": "whatsapp",
		"contacts":          []map[string]string{{"input": req.To, "wa_id": strings.TrimPrefix(req.To, "+")}},
		"messages":          []map[string]string{{"id": msg.ID}},
	})
}

func invalid(w http.ResponseWriter, message string) {
	writeError(w, Failure{Status: http.StatusBadRequest, Code: 100, Message: "(#100) " + message})
}

func writeError(w http.ResponseWriter, f Failure) {
	if f.Type == "" {
		f.Type = "OAuthException"
	}
	if f.Details == "" {
		f.Details = f.Message
	}
	e := map[string]any{
		"message":    f.Message,
		"type":       f.Type,
		"code":       f.Code,
		"error_data": map[string]string{"messaging_product": "whatsapp", "details": f.Details},
		"fbtrace_id": newTraceID(),
	}
	if f.Subcode != 0 {
		e["error_subcode"] = f.Subcode
	}
	if f.RetryAfter != "" {
		w.Header().Set("Retry-After", f.RetryAfter)
	}
	writeJSON(w, f.Status, map[string]any{"error": e})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	providertest.WriteJSON(w, status, "application/json; charset=UTF-8", v)
}

// newWAMID makes a message id of the shape Meta returns: "wamid." and
// standard base64.
func newWAMID() string {
	return "wamid.HBgL" + base64.StdEncoding.EncodeToString(providertest.RandomBytes(30))
}

func newTraceID() string {
	return "A" + base64.RawURLEncoding.EncodeToString(providertest.RandomBytes(8))
}
