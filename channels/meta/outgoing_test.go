package meta_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/parleyhq/parley/channels"
	"github.com/parleyhq/parley/channels/meta"
	"github.com/parleyhq/parley/channels/meta/metatest"
	"github.com/parleyhq/parley/channels/providertest"
	"github.com/parleyhq/parley/tenants"
	"github.com/parleyhq/parley/wire"
)

const sentID = "wamid.HBgMNDQ3NzAwOTAwMTIzFQIAERgSOUE4QzdCNkQ1RTRGM0EyQjFDAA==" // testdata/responses/message_sent.json

var sent = providertest.Response{Data: "responses/message_sent.json"}

// sendAs is the tenant the outgoing cases send as.
func sendAs(baseURL string) *tenants.Tenant {
	return &tenants.Tenant{ID: "acme",
		Meta: &meta.Config{PhoneNumberID: metatest.TestPhoneNumberID, AccessToken: metatest.TestAccessToken, APIBaseURL: baseURL},
		Templates: map[string]tenants.Template{
			"booking_reminder": {ContentSID: "HX0123456789abcdef0123456789abcdef", Language: "en_GB"},
			"hello_world":      {},
		},
	}
}

// graphError is Graph's error body, with details equal to the message.
func graphError(status, code int, message string) providertest.Response {
	return providertest.Response{Status: status, Body: fmt.Sprintf(
		`{"error":{"message":%q,"type":"OAuthException","code":%d,"error_data":{"messaging_product":"whatsapp","details":%[1]q},"fbtrace_id":"Atrace"}}`,
		message, code)}
}

// classified is a failure with Graph's error body: the message, details
// and trace come along.
func classified(kind channels.Kind, status, code int, message string, rateLimited bool) *providertest.WantError {
	return &providertest.WantError{Kind: kind, Status: status, Code: code, Message: message, Details: message, Trace: "Atrace", RateLimited: rateLimited}
}

// request is a send's request with the JSON body.
func request(body string) *providertest.Request {
	return &providertest.Request{Path: "/" + meta.DefaultAPIVersion + "/" + metatest.TestPhoneNumberID + "/messages", JSON: body,
		Headers: map[string]string{"Authorization": "Bearer " + metatest.TestAccessToken, "Content-Type": "application/json"}}
}

func textBody(text string) string {
	return fmt.Sprintf(`{"messaging_product":"whatsapp","recipient_type":"individual","to":"447700900123","type":"text","text":{"body":%q}}`, text)
}

var hi = request(textBody("hi"))

func text(s string) *wire.Outbound {
	return &wire.Outbound{Id: "out-1", Tenant: "acme", Phone: providertest.Customer, Text: s}
}

func failure(label string, status, code int, message string, kind channels.Kind, rateLimited bool) providertest.OutgoingCase {
	return providertest.OutgoingCase{Label: label, Response: graphError(status, code, message), Request: hi,
		Err: classified(kind, status, code, message, rateLimited)}
}

func refusedBefore(label string, out *wire.Outbound, tpl *wire.Template, cfg func(*meta.Config)) providertest.OutgoingCase {
	c := providertest.OutgoingCase{Label: label, Out: out, Template: tpl, Err: &providertest.WantError{}}
	if cfg != nil {
		c.Tenant = func(t *tenants.Tenant) { cfg(t.Meta) }
	}
	return c
}

// outgoing are sends through the Provider against answers in Graph's
// documented shapes.
var outgoing = append([]providertest.OutgoingCase{
	{Label: "text: the body is Meta's documented shape", Out: text("Your booking is confirmed ✅"), Response: sent, ID: sentID,
		Request: request(textBody("Your booking is confirmed ✅"))},
	{Label: "the longest text WhatsApp takes is sent", Out: text(strings.Repeat("é", meta.MaxTextLength)), Response: sent, ID: sentID,
		Request: request(textBody(strings.Repeat("é", meta.MaxTextLength)))},
	{Label: "template with body parameters", Out: text(""),
		Template: &wire.Template{Name: "booking_reminder", Language: "en_GB", Variables: map[string]string{"2": "Friday 10:30", "1": "Sam"}},
		Response: sent, ID: sentID,
		Request: request(`{"messaging_product":"whatsapp","recipient_type":"individual","to":"447700900123","type":"template","template":{"name":"booking_reminder","language":{"code":"en_GB"},"components":[{"type":"body","parameters":[{"type":"text","text":"Sam"},{"type":"text","text":"Friday 10:30"}]}]}}`)},
	// No parameters: no components at all (Meta refuses an empty list).
	{Label: "template without parameters", Out: text(""), Template: &wire.Template{Name: "hello_world", Language: "en_US"},
		Response: sent, ID: sentID,
		Request: request(`{"messaging_product":"whatsapp","recipient_type":"individual","to":"447700900123","type":"template","template":{"name":"hello_world","language":{"code":"en_US"}}}`)},
	{Label: "template named by its Twilio content sid: the catalogue's name and language", Out: text(""),
		Template: &wire.Template{ContentSid: "HX0123456789abcdef0123456789abcdef"}, Response: sent, ID: sentID,
		Request: request(`{"messaging_product":"whatsapp","recipient_type":"individual","to":"447700900123","type":"template","template":{"name":"booking_reminder","language":{"code":"en_GB"}}}`)},
	{Label: "template without a language anywhere", Out: text(""), Template: &wire.Template{Name: "hello_world"}, Response: sent, ID: sentID,
		Request: request(`{"messaging_product":"whatsapp","recipient_type":"individual","to":"447700900123","type":"template","template":{"name":"hello_world","language":{"code":"en"}}}`)},

	// Statuses and messages as Meta's error-code table gives them.
	{Label: "throughput 130429 from testdata", Response: providertest.Response{Status: 400, Data: "responses/error_130429.json"}, Request: hi,
		Err: &providertest.WantError{Kind: channels.Retry, Status: 400, Code: meta.CodeThroughput, Message: "(#130429) Rate limit hit",
			Details: "Cloud API message throughput has been reached.", Trace: "AOv2MGOtIC1v1MiNmXvs6Wn", RateLimited: true}},
	{Label: "outside the window 131047 from testdata", Response: providertest.Response{Status: 400, Data: "responses/error_131047.json"}, Request: hi,
		Err: &providertest.WantError{Kind: channels.OutsideWindow, Status: 400, Code: meta.CodeOutsideWindow, Message: "(#131047) Re-engagement message",
			Details: "Message failed to send because more than 24 hours have passed since the customer last replied to this number.", Trace: "AtMDBpJw5pBHrGhRjbdbGrt"}},
	{Label: "undeliverable 131026 from testdata", Response: providertest.Response{Status: 400, Data: "responses/error_131026.json"}, Request: hi,
		Err: &providertest.WantError{Kind: channels.Permanent, Status: 400, Code: meta.CodeUndeliverable, Message: "(#131026) Message Undeliverable",
			Details: "Message Undeliverable.", Trace: "AmJhOuI0hNWfOX5Hah0qZGJ"}},
	failure("http 429", 429, meta.CodeThroughput, "(#130429) Rate limit hit", channels.Retry, true),
	failure("throughput 130429 with 400", 400, meta.CodeThroughput, "(#130429) Rate limit hit", channels.Retry, true),
	failure("pair rate limit 131056", 400, meta.CodePairRateLimit, "(#131056) (Business Account, Consumer Account) pair rate limit hit", channels.Retry, false),
	failure("spam rate limit 131048", 400, meta.CodeSpamRateLimit, "(#131048) Spam rate limit hit", channels.Retry, true),
	failure("app call limit 4", 400, meta.CodeAPITooManyCalls, "(#4) Application request limit reached", channels.Retry, true),
	failure("waba rate limit 80007", 400, meta.CodeRateLimit, "(#80007) Rate limit issues", channels.Retry, true),
	failure("500", 500, 131000, "(#131000) Something went wrong", channels.Retry, false),
	failure("503", 503, 2, "(#2) Service temporarily unavailable", channels.Retry, false),
	failure("outside the window 131047", 400, meta.CodeOutsideWindow, "(#131047) Re-engagement message", channels.OutsideWindow, false),
	failure("undeliverable 131026", 400, meta.CodeUndeliverable, "(#131026) Message Undeliverable", channels.Permanent, false),
	failure("marketing opt-out 131050", 400, meta.CodeMarketingOptOut, "(#131050) User stopped marketing messages", channels.Permanent, false),
	failure("invalid parameter 100", 400, meta.CodeInvalidParameter, "(#100) Invalid parameter", channels.Permanent, false),
	failure("template not found 132001", 404, meta.CodeTemplateNotFound, "(#132001) Template name does not exist in the translation", channels.Permanent, false),
	failure("token expired 190", 401, meta.CodeAccessToken, "Error validating access token: Session has expired", channels.Permanent, false),

	// Answers that are not Graph's JSON, and Retry-After.
	{Label: "429 with Retry-After seconds", Request: hi,
		Response: providertest.Response{Status: 429, Headers: map[string]string{"Retry-After": "60"},
			Body: `{"error":{"message":"(#130429) Rate limit hit","type":"OAuthException","code":130429,"fbtrace_id":"Az"}}`},
		Err: &providertest.WantError{Kind: channels.Retry, Status: 429, Code: 130429, RetryAfter: time.Minute, RateLimited: true}},
	{Label: "rate-limit code with 400 and Retry-After", Request: hi,
		Response: providertest.Response{Status: 400, Headers: map[string]string{"Retry-After": "7"},
			Body: `{"error":{"message":"(#131056) pair rate limit hit","type":"OAuthException","code":131056}}`},
		Err: &providertest.WantError{Kind: channels.Retry, Status: 400, Code: 131056, RetryAfter: 7 * time.Second}},
	{Label: "400 ignores Retry-After", Request: hi,
		Response: providertest.Response{Status: 400, Headers: map[string]string{"Retry-After": "7"},
			Body: `{"error":{"message":"(#131026) Message Undeliverable","code":131026}}`},
		Err: &providertest.WantError{Kind: channels.Permanent, Status: 400, Code: 131026}},
	{Label: "403 without a body", Request: hi, Response: providertest.Response{Status: 403},
		Err: &providertest.WantError{Kind: channels.Permanent, Status: 403}},
	{Label: "200 without a message id is not retried (it was accepted)", Request: hi,
		Response: providertest.Response{Body: `{"messaging_product":"whatsapp","contacts":[{"input":"447700900123","wa_id":"447700900123"}],"messages":[]}`},
		Err:      &providertest.WantError{Kind: channels.Permanent, Status: 200}},
	{Label: "200 that does not decode is not retried", Request: hi, Response: providertest.Response{Body: `{"messages":`},
		Err: &providertest.WantError{Kind: channels.Permanent, Status: 200}},

	// Refused before any request.
	refusedBefore("to without plus", &wire.Outbound{Phone: "447700900123", Text: "hi"}, nil, nil),
	refusedBefore("to national", &wire.Outbound{Phone: "07700900123", Text: "hi"}, nil, nil),
	refusedBefore("to with whatsapp: prefix", &wire.Outbound{Phone: "whatsapp:" + providertest.Customer, Text: "hi"}, nil, nil),
	refusedBefore("empty text", text(""), nil, nil),
	refusedBefore("text too long", text(strings.Repeat("é", meta.MaxTextLength+1)), nil, nil),
	refusedBefore("text not UTF-8", text("caf\xe9"), nil, nil),
	refusedBefore("no phone number id", nil, nil, func(c *meta.Config) { c.PhoneNumberID = "" }),
	refusedBefore("phone number id a path", nil, nil, func(c *meta.Config) { c.PhoneNumberID = "1/../me" }),
	refusedBefore("no access token", nil, nil, func(c *meta.Config) { c.AccessToken = "" }),
	refusedBefore("base url not http", nil, nil, func(c *meta.Config) { c.APIBaseURL = "ftp://example.com" }),
	refusedBefore("base url relative", nil, nil, func(c *meta.Config) { c.APIBaseURL = "localhost:8080" }),
	refusedBefore("bad api version", nil, nil, func(c *meta.Config) { c.APIVersion = "21" }),
	refusedBefore("template name with capitals", text(""), &wire.Template{Name: "Booking_Reminder", Language: "en_GB"}, nil),
	refusedBefore("template without a name", text(""), &wire.Template{Language: "en_GB"}, nil),
	refusedBefore("template language odd", text(""), &wire.Template{Name: "booking_reminder", Language: "english"}, nil),
	refusedBefore("template param empty", text(""), &wire.Template{Name: "booking_reminder", Language: "en_GB",
		Variables: map[string]string{"1": "Sam", "2": ""}}, nil),
	{Label: "no meta config", Tenant: func(t *tenants.Tenant) { t.Meta = nil }, Err: &providertest.WantError{}},
}, providertest.CommonResponses(hi)...)

func TestOutgoing(t *testing.T) {
	providertest.Outgoing{
		Provider: meta.New(nil, 0),
		Tenant:   sendAs,
		Secrets:  []string{metatest.TestAccessToken},
	}.Run(t, outgoing)
}
