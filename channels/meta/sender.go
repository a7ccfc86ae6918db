package meta

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/parleyhq/parley/internal/e164"
)

// Graph API error codes Parley acts on
// (https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes).
const (
	CodeAPITooManyCalls  = 4      // the app's API call rate limit: retry
	CodeInvalidParameter = 100    // a request field is wrong: never retry
	CodeAccessToken      = 190    // access token expired or invalid: fix the config
	CodeRateLimit        = 80007  // the WhatsApp Business Account's rate limit: retry
	CodeThroughput       = 130429 // the number's messages/s throughput reached: retry
	CodeUndeliverable    = 131026 // not a WhatsApp user, old app, …: never retry
	CodeOutsideWindow    = 131047 // "re-engagement": free text outside the 24-hour window; send a template
	CodeSpamRateLimit    = 131048 // the number is held back for spam reports: retry later
	CodeMarketingOptOut  = 131050 // the customer stopped marketing messages: never retry
	CodePairRateLimit    = 131056 // too many messages to this customer too fast: retry
	CodeTemplateNotFound = 132001 // no approved template of that name and language
)

// retryableCodes are Meta's rate limits: the same request succeeds once
// the limit lets it through, whatever HTTP status came with the code.
var retryableCodes = map[int]bool{
	CodeAPITooManyCalls: true,
	CodeRateLimit:       true,
	CodeThroughput:      true,
	CodeSpamRateLimit:   true,
	CodePairRateLimit:   true,
}

// MaxTextLength is the longest text body WhatsApp accepts, in characters.
const MaxTextLength = 4096

// DefaultTimeout bounds one send when the http.Client given to NewSender
// sets no Timeout.
const DefaultTimeout = 15 * time.Second

// maxRetryAfter caps a provider's Retry-After: the caller blocks that
// customer's queue for the duration, and a bogus "Retry-After: 86400" must
// not stall it for a day.
const maxRetryAfter = 5 * time.Minute

// maxResponse bounds how much of an answer is read: a Graph answer is a
// few hundred bytes, and a misconfigured api_base_url must not make the
// sender buffer a large page.
const maxResponse = 1 << 20

// SendError is a failed send, classified for the caller's retry decision.
//
// Retryable is true for HTTP 429 and 5xx, Meta's rate-limit codes (4,
// 80007, 130429, 131048, 131056), network errors and a cancelled or
// expired ctx (the message may still be sent later); it is false for
// everything else — 131047 (outside the 24-hour window: send a template
// instead), 131026 (undeliverable), 131050 (opted out of marketing), 100
// (invalid parameter), 190 (bad access token), refused input — where the
// same request cannot succeed.
//
// A SendError never contains the access token.
type SendError struct {
	Status  int // HTTP status; 0 when no response arrived
	Code    int // Graph error code; 0 if none
	Subcode int // Graph error_subcode; 0 if none
	Message string
	// Details is error_data.details, Meta's longer explanation.
	Details string
	// FBTraceID identifies the failed request to Meta's support.
	FBTraceID string
	// Retryable says whether the same send may succeed later.
	Retryable bool
	// RetryAfter is the wait the provider asked for (Retry-After), capped
	// at five minutes; 0 means "use your own backoff".
	RetryAfter time.Duration

	cause error
}

func (e *SendError) Error() string {
	var b strings.Builder
	b.WriteString("meta send: ")
	if e.Status != 0 {
		fmt.Fprintf(&b, "status %d ", e.Status)
	}
	if e.Code != 0 {
		fmt.Fprintf(&b, "code %d ", e.Code)
		if e.Subcode != 0 {
			fmt.Fprintf(&b, "subcode %d ", e.Subcode)
		}
	}
	b.WriteString(e.Message)
	if e.Details != "" {
		b.WriteString(": ")
		b.WriteString(e.Details)
	}
	if e.Retryable {
		b.WriteString(" (retryable)")
	}
	return b.String()
}

// Unwrap exposes the cause — context.Canceled, a *url.Error, a JSON error
// — to errors.Is and errors.As.
func (e *SendError) Unwrap() error { return e.cause }

// Sender sends WhatsApp messages through the Graph API messages endpoint.
// It is safe for concurrent use; one Sender serves every tenant, each send
// carrying its tenant's Config.
type Sender struct {
	client  *http.Client
	timeout time.Duration
}

// NewSender creates a sender that makes its requests with httpClient's
// Transport (connection pool), Jar and CheckRedirect; its Timeout bounds
// each send (DefaultTimeout when zero). A nil httpClient means
// http.DefaultTransport and DefaultTimeout.
func NewSender(httpClient *http.Client) *Sender {
	c := &http.Client{}
	s := &Sender{client: c, timeout: DefaultTimeout}
	if httpClient != nil {
		c.Transport = httpClient.Transport
		c.Jar = httpClient.Jar
		c.CheckRedirect = httpClient.CheckRedirect
		if httpClient.Timeout > 0 {
			s.timeout = httpClient.Timeout
		}
	}
	// The deadline goes on the request's context instead of c.Timeout, so
	// that a timeout is context.DeadlineExceeded like any other expiry.
	if c.CheckRedirect == nil {
		// A redirect answer is returned, not followed: a POST carrying the
		// bearer token is never replayed somewhere else.
		c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	}
	return s
}

// The request bodies of the messages endpoint.
type (
	sendRequest struct {
		MessagingProduct string        `json:"messaging_product"`
		RecipientType    string        `json:"recipient_type"`
		To               string        `json:"to"`
		Type             string        `json:"type"`
		Text             *textBody     `json:"text,omitempty"`
		Template         *templateBody `json:"template,omitempty"`
	}
	textBody struct {
		Body string `json:"body"`
	}
	templateBody struct {
		Name       string      `json:"name"`
		Language   language    `json:"language"`
		Components []component `json:"components,omitempty"`
	}
	language struct {
		Code string `json:"code"`
	}
	component struct {
		Type       string      `json:"type"`
		Parameters []parameter `json:"parameters"`
	}
	parameter struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}
)

// Send sends text to the customer's E.164 number (to) from the tenant's
// business number cfg.PhoneNumberID, and returns the message's wamid, the
// id its statuses will carry. Every error is a *SendError.
//
// Free text is only delivered within 24 hours of the customer's last
// message; outside, Meta refuses with CodeOutsideWindow and a template
// (SendTemplate) is the way to reach the customer.
//
// ctx bounds the request. A send that failed with a network error or a
// cancelled ctx may still have reached Meta, and the messages endpoint has
// no idempotency key: a retry can duplicate the message.
func (s *Sender) Send(ctx context.Context, cfg Config, to, text string) (string, error) {
	if text == "" {
		return "", &SendError{Message: "empty message text"}
	}
	if !utf8.ValidString(text) {
		return "", &SendError{Message: "message text is not valid UTF-8"}
	}
	if n := utf8.RuneCountInString(text); n > MaxTextLength {
		return "", &SendError{Message: fmt.Sprintf("message text has %d characters, WhatsApp takes at most %d", n, MaxTextLength)}
	}
	return s.send(ctx, cfg, to, &sendRequest{Type: "text", Text: &textBody{Body: text}})
}

var (
	// templateName is how Meta names templates: lower case, digits, _.
	templateName = regexp.MustCompile(`^[a-z0-9_]{1,512}$`)
	// languageCode is a template language: "en", "en_US", "pt_BR",
	// "zh_HK".
	languageCode = regexp.MustCompile(`^[a-z]{2,3}(_[A-Za-z]{2,4})?$`)
)

// SendTemplate sends the approved template name in language ("en_US") to
// the customer's E.164 number, with params as the body's {{1}}, {{2}}, …
// in order, and returns the message's wamid. Templates are the only
// messages WhatsApp delivers outside the 24-hour window. Every error is a
// *SendError; CodeTemplateNotFound means no approved template has that
// name and language.
func (s *Sender) SendTemplate(ctx context.Context, cfg Config, to, name, lang string, params []string) (string, error) {
	if !templateName.MatchString(name) {
		return "", &SendError{Message: fmt.Sprintf("template name %q is not a WhatsApp template name", clip(name))}
	}
	if !languageCode.MatchString(lang) {
		return "", &SendError{Message: fmt.Sprintf("template language %q is not a language code like en_US", clip(lang))}
	}
	tpl := &templateBody{Name: name, Language: language{Code: lang}}
	if len(params) > 0 {
		body := component{Type: "body", Parameters: make([]parameter, len(params))}
		for i, p := range params {
			// Meta refuses an empty parameter; say which one here.
			if p == "" || !utf8.ValidString(p) {
				return "", &SendError{Message: fmt.Sprintf("template parameter {{%d}} is empty or not valid UTF-8", i+1)}
			}
			body.Parameters[i] = parameter{Type: "text", Text: p}
		}
		tpl.Components = []component{body}
	}
	return s.send(ctx, cfg, to, &sendRequest{Type: "template", Template: tpl})
}

// sendResponse is the messages endpoint's answer to a send.
type sendResponse struct {
	Messages []struct {
		ID string `json:"id"`
	} `json:"messages"`
}

// graphError is the body of every Graph API error.
type graphError struct {
	Error *struct {
		Message      string `json:"message"`
		Type         string `json:"type"`
		Code         int    `json:"code"`
		ErrorSubcode int    `json:"error_subcode"`
		ErrorData    struct {
			Details string `json:"details"`
		} `json:"error_data"`
		FBTraceID string `json:"fbtrace_id"`
	} `json:"error"`
}

func (s *Sender) send(ctx context.Context, cfg Config, to string, req *sendRequest) (string, error) {
	if !e164.Valid(to) {
		return "", &SendError{Message: fmt.Sprintf("recipient %q is not an E.164 number", clip(to))}
	}
	if !phoneNumberID.MatchString(cfg.PhoneNumberID) {
		return "", &SendError{Message: "phone_number_id is not a Cloud API phone number id"}
	}
	if cfg.AccessToken == "" {
		return "", &SendError{Message: "no access token configured"}
	}
	if cfg.APIVersion != "" && !apiVersion.MatchString(cfg.APIVersion) {
		return "", &SendError{Message: "api_version is not like " + DefaultAPIVersion}
	}
	base, err := cfg.baseURL()
	if err != nil {
		return "", &SendError{Message: err.Error()}
	}
	req.MessagingProduct = "whatsapp"
	req.RecipientType = "individual"
	req.To = to[1:] // Meta's examples use digits without '+'
	body, err := json.Marshal(req)
	if err != nil {
		return "", &SendError{Message: "encode: " + err.Error(), cause: err}
	}
	if err := ctx.Err(); err != nil {
		return "", &SendError{Message: "aborted: " + err.Error(), Retryable: true, cause: err}
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()

	endpoint := base.JoinPath(cfg.version(), cfg.PhoneNumberID, "messages")
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint.String(), bytes.NewReader(body))
	if err != nil {
		return "", &SendError{Message: "request: " + err.Error(), cause: err}
	}
	hreq.Header.Set("Authorization", "Bearer "+cfg.AccessToken)
	hreq.Header.Set("Content-Type", "application/json")
	hreq.Header.Set("Accept", "application/json")

	resp, err := s.client.Do(hreq)
	if err != nil {
		// No answer: the request may or may not have reached Meta.
		se := &SendError{Message: err.Error(), Retryable: true, cause: err}
		if ctxErr := ctx.Err(); ctxErr != nil {
			se.Message, se.cause = "aborted: "+ctxErr.Error(), ctxErr
		}
		return "", se.redact(cfg.AccessToken)
	}
	defer resp.Body.Close()
	raw, readErr := io.ReadAll(io.LimitReader(resp.Body, maxResponse))

	if resp.StatusCode/100 == 2 {
		// Meta accepted the message, so it is probably on its way: any
		// trouble reading the answer is final, as a retry could send it
		// twice.
		var ok sendResponse
		switch {
		case readErr != nil:
			return "", (&SendError{Status: resp.StatusCode, Message: "reading the answer: " + readErr.Error(), cause: readErr}).redact(cfg.AccessToken)
		case json.Unmarshal(raw, &ok) != nil:
			return "", &SendError{Status: resp.StatusCode, Message: "undecodable answer"}
		case len(ok.Messages) == 0 || ok.Messages[0].ID == "":
			return "", &SendError{Status: resp.StatusCode, Message: "answer has no message id"}
		}
		return ok.Messages[0].ID, nil
	}
	return "", classify(resp, raw, cfg.AccessToken)
}

// classify turns an error answer into a SendError.
func classify(resp *http.Response, raw []byte, token string) *SendError {
	se := &SendError{Status: resp.StatusCode}
	var ge graphError
	if json.Unmarshal(raw, &ge) == nil && ge.Error != nil {
		e := ge.Error
		se.Code, se.Subcode = e.Code, e.ErrorSubcode
		se.Message, se.Details, se.FBTraceID = clipLong(e.Message), clipLong(e.ErrorData.Details), clipLong(e.FBTraceID)
	} else {
		// Not Graph's JSON, e.g. a proxy's 502 page.
		se.Message = http.StatusText(resp.StatusCode) + " (no Graph error body)"
	}
	if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500 || retryableCodes[se.Code] {
		se.Retryable = true
		se.RetryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
	}
	return se.redact(token)
}

// redact removes the access token from every text of e. Nothing should
// carry it — it travels in a header, not the URL — but messages are text
// other software wrote, and errors end up in logs.
func (e *SendError) redact(token string) *SendError {
	if token == "" {
		return e
	}
	for _, s := range []*string{&e.Message, &e.Details, &e.FBTraceID} {
		*s = strings.ReplaceAll(*s, token, "[redacted]")
	}
	if e.cause != nil && strings.Contains(e.cause.Error(), token) {
		e.cause = nil
	}
	return e
}

// clipLong bounds a text from the answer: a misconfigured server can send
// a message of any size, and it goes into logs.
func clipLong(s string) string {
	const limit = 500
	if len(s) <= limit {
		return s
	}
	return strings.ToValidUTF8(s[:limit], "") + "…"
}

// parseRetryAfter reads a Retry-After header: delay-seconds or an HTTP
// date (RFC 9110 §10.2.3). Anything unreadable or in the past is 0.
func parseRetryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	var d time.Duration
	if secs, err := strconv.Atoi(v); err == nil {
		if secs <= 0 {
			return 0
		}
		d = time.Duration(min(secs, int(maxRetryAfter/time.Second))) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(now)
	}
	return max(0, min(d, maxRetryAfter))
}
