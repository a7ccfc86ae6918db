package meta

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/parleyhq/parley/channels"
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

// TextLimit is WhatsApp's limit on a text message, through Meta: 4,096
// characters.
var TextLimit = channels.TextLimit{Max: MaxTextLength}

// DefaultTimeout bounds one send when the http.Client given to NewSender
// sets no Timeout.
const DefaultTimeout = 15 * time.Second

// maxResponse bounds how much of an answer is read: a Graph answer is a
// few hundred bytes, and a misconfigured api_base_url must not make the
// sender buffer a large page.
const maxResponse = 1 << 20

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
// id its statuses will carry. Every error is a *channels.SendError.
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
		return "", refused("empty message text")
	}
	if !utf8.ValidString(text) {
		return "", refused("message text is not valid UTF-8")
	}
	if n := utf8.RuneCountInString(text); n > MaxTextLength {
		return "", refused(fmt.Sprintf("message text has %d characters, WhatsApp takes at most %d", n, MaxTextLength))
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
// *channels.SendError; CodeTemplateNotFound means no approved template has that
// name and language.
func (s *Sender) SendTemplate(ctx context.Context, cfg Config, to, name, lang string, params []string) (string, error) {
	if !templateName.MatchString(name) {
		return "", refused(fmt.Sprintf("template name %q is not a WhatsApp template name", clip(name)))
	}
	if !languageCode.MatchString(lang) {
		return "", refused(fmt.Sprintf("template language %q is not a language code like en_US", clip(lang)))
	}
	tpl := &templateBody{Name: name, Language: language{Code: lang}}
	if len(params) > 0 {
		body := component{Type: "body", Parameters: make([]parameter, len(params))}
		for i, p := range params {
			// Meta refuses an empty parameter; say which one here.
			if p == "" || !utf8.ValidString(p) {
				return "", refused(fmt.Sprintf("template parameter {{%d}} is empty or not valid UTF-8", i+1))
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
		return "", refused(fmt.Sprintf("recipient %q is not an E.164 number", clip(to)))
	}
	if !phoneNumberID.MatchString(cfg.PhoneNumberID) {
		return "", refused("phone_number_id is not a Cloud API phone number id")
	}
	if cfg.AccessToken == "" {
		return "", refused("no access token configured")
	}
	if cfg.APIVersion != "" && !apiVersion.MatchString(cfg.APIVersion) {
		return "", refused("api_version is not like " + DefaultAPIVersion)
	}
	base, err := cfg.BaseURL()
	if err != nil {
		return "", refused(err.Error())
	}
	req.MessagingProduct = "whatsapp"
	req.RecipientType = "individual"
	req.To = to[1:] // Meta's examples use digits without '+'
	body, err := json.Marshal(req)
	if err != nil {
		return "", &channels.SendError{Provider: Channel, Message: "encode: " + err.Error(), Cause: err}
	}
	if err := ctx.Err(); err != nil {
		return "", &channels.SendError{Provider: Channel, Message: "aborted: " + err.Error(), Kind: channels.Retry, Cause: err}
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()

	endpoint := base.JoinPath(cfg.Version(), cfg.PhoneNumberID, "messages")
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint.String(), bytes.NewReader(body))
	if err != nil {
		return "", &channels.SendError{Provider: Channel, Message: "request: " + err.Error(), Cause: err}
	}
	hreq.Header.Set("Authorization", "Bearer "+cfg.AccessToken)
	hreq.Header.Set("Content-Type", "application/json")
	hreq.Header.Set("Accept", "application/json")

	resp, err := s.client.Do(hreq)
	if err != nil {
		// No answer: the request may or may not have reached Meta.
		se := &channels.SendError{Provider: Channel, Message: err.Error(), Kind: channels.Retry, Cause: err}
		if ctxErr := ctx.Err(); ctxErr != nil {
			se.Message, se.Cause = "aborted: "+ctxErr.Error(), ctxErr
		}
		return "", se.Redact(cfg.AccessToken)
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
			return "", (&channels.SendError{Provider: Channel, Status: resp.StatusCode, Message: "reading the answer: " + readErr.Error(), Cause: readErr}).Redact(cfg.AccessToken)
		case json.Unmarshal(raw, &ok) != nil:
			return "", &channels.SendError{Provider: Channel, Status: resp.StatusCode, Message: "undecodable answer"}
		case len(ok.Messages) == 0 || ok.Messages[0].ID == "":
			return "", &channels.SendError{Provider: Channel, Status: resp.StatusCode, Message: "answer has no message id"}
		}
		return ok.Messages[0].ID, nil
	}
	return "", classify(resp, raw, cfg.AccessToken)
}

// refused is a send refused before any request: permanent.
func refused(msg string) *channels.SendError {
	return &channels.SendError{Provider: Channel, Message: msg}
}

// throttles are the codes that throttle the business number (or the app
// or account behind it) rather than one conversation: the whole lane
// waits. 131056, the pair rate limit, holds only that customer.
var throttles = map[int]bool{
	CodeAPITooManyCalls: true,
	CodeRateLimit:       true,
	CodeThroughput:      true,
	CodeSpamRateLimit:   true,
}

// classify turns an error answer into a SendError.
//
// It is retryable for HTTP 429 and 5xx and Meta's rate-limit codes (4,
// 80007, 130429, 131048, 131056); 131047 means free text outside the
// 24-hour window (send a template instead); everything else — 131026
// (undeliverable), 131050 (opted out of marketing), 100 (invalid
// parameter), 190 (bad access token) — is permanent: the same request
// cannot succeed.
func classify(resp *http.Response, raw []byte, token string) *channels.SendError {
	se := &channels.SendError{Provider: Channel, Status: resp.StatusCode}
	var ge graphError
	if json.Unmarshal(raw, &ge) == nil && ge.Error != nil {
		e := ge.Error
		se.Code, se.Subcode = e.Code, e.ErrorSubcode
		se.Message, se.Details, se.Trace = clipLong(e.Message), clipLong(e.ErrorData.Details), clipLong(e.FBTraceID)
	} else {
		// Not Graph's JSON, e.g. a proxy's 502 page.
		se.Message = http.StatusText(resp.StatusCode) + " (no Graph error body)"
	}
	switch {
	case se.Code == CodeOutsideWindow:
		se.Kind = channels.OutsideWindow
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500 || retryableCodes[se.Code]:
		se.Kind = channels.Retry
		se.RateLimited = resp.StatusCode == http.StatusTooManyRequests || throttles[se.Code]
		se.RetryAfter = channels.ParseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
	default:
		// Including 131050 (the customer stopped marketing messages):
		// that refuses marketing templates only, so it does not mark the
		// customer opted out of everything as Twilio's 21610 does.
		se.Kind = channels.Permanent
	}
	return se.Redact(token)
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
