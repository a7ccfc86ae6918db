package twilio_test

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/twilio/twilio-go/client"

	"github.com/parleyhq/parley/channels"
	"github.com/parleyhq/parley/channels/providertest"
	"github.com/parleyhq/parley/channels/twilio"
	"github.com/parleyhq/parley/channels/twilio/twiliotest"
	"github.com/parleyhq/parley/tenants"
	"github.com/parleyhq/parley/wire"
)

const (
	contentSID = "HX0123456789abcdef0123456789abcdef"
	callback   = publicBaseURL + "/webhooks/twilio/acme/status"
	createdSID = "SM5123456789abcdef0123456789abcdef" // testdata/responses/message_created.json
)

var messagesPath = "/2010-04-01/Accounts/" + twiliotest.TestAccountSID + "/Messages.json"

// sendAs is the tenant the outgoing cases send as.
func sendAs(baseURL string) *tenants.Tenant {
	return &tenants.Tenant{ID: "acme",
		Twilio: &tenants.Twilio{AccountSID: twiliotest.TestAccountSID, AuthToken: twiliotest.TestAuthToken,
			From: twiliotest.SandboxFrom, APIBaseURL: baseURL},
		Templates: map[string]tenants.Template{"booking_reminder": {ContentSID: contentSID, Language: "en_GB"}},
	}
}

// twilioError is Twilio's error body.
func twilioError(status, code int, message string) providertest.Response {
	return providertest.Response{Status: status, Body: fmt.Sprintf(
		`{"code":%d,"message":%q,"more_info":"https://www.twilio.com/docs/errors/%d","status":%d}`, code, message, code, status)}
}

// form is what a send of text (or of a template, with the content sid
// and variables) asks; callback "" leaves StatusCallback out.
func form(text, cb string, extra ...string) url.Values {
	f := url.Values{"To": {"whatsapp:" + providertest.Customer}, "From": {twiliotest.SandboxFrom}}
	if text != "" {
		f.Set("Body", text)
	}
	if cb != "" {
		f.Set("StatusCallback", cb)
	}
	for i := 0; i+1 < len(extra); i += 2 {
		f.Set(extra[i], extra[i+1])
	}
	return f
}

func request(f url.Values) *providertest.Request {
	basic := base64.StdEncoding.EncodeToString([]byte(twiliotest.TestAccountSID + ":" + twiliotest.TestAuthToken))
	return &providertest.Request{Path: messagesPath, Form: f, Headers: map[string]string{"Authorization": "Basic " + basic}}
}

func text(s string) *wire.Outbound {
	return &wire.Outbound{Id: "out-1", Tenant: "acme", Phone: providertest.Customer, Text: s}
}

var created = providertest.Response{Status: 201, Data: "responses/message_created.json"}

// outgoing are sends through the Provider with a status callback, against
// answers in Twilio's documented shapes.
var outgoing = append([]providertest.OutgoingCase{
	{Label: "text", Out: text("Your booking is confirmed ✅"), Response: created, ID: createdSID,
		Request: request(form("Your booking is confirmed ✅", callback))},
	{Label: "template by content sid, variables as JSON with sorted keys", Out: text(""),
		Template: &wire.Template{ContentSid: contentSID, Variables: map[string]string{"2": "10:30", "1": "Sam \"S\" Ödegaard"}},
		Response: created, ID: createdSID,
		Request: request(form("", callback, "ContentSid", contentSID, "ContentVariables", `{"1":"Sam \"S\" Ödegaard","2":"10:30"}`))},
	{Label: "template without variables leaves the field out", Out: text(""), Template: &wire.Template{ContentSid: contentSID},
		Response: created, ID: createdSID, Request: request(form("", callback, "ContentSid", contentSID))},
	{Label: "template named as Meta names it: the catalogue's content sid", Out: text(""),
		Template: &wire.Template{Name: "booking_reminder", Variables: map[string]string{"1": "x"}},
		Response: created, ID: createdSID, Request: request(form("", callback, "ContentSid", contentSID, "ContentVariables", `{"1":"x"}`))},

	// Failures, classified.
	{Label: "http 429, api concurrency", Response: providertest.Response{Status: 429, Data: "responses/error_20429.json"},
		Request: request(form("hi", callback)),
		Err:     &providertest.WantError{Kind: channels.Retry, Status: 429, Code: twilio.CodeTooManyReqs, Message: "Too Many Requests", RateLimited: true}},
	{Label: "whatsapp rate limit 63018", Response: providertest.Response{Status: 400, Data: "responses/error_63018.json"},
		Request: request(form("hi", callback)),
		Err:     &providertest.WantError{Kind: channels.Retry, Status: 400, Code: twilio.CodeRateLimited, Message: "Rate limit exceeded for Channel", RateLimited: true}},
	{Label: "500", Response: twilioError(500, 20500, "Internal Server Error"), Request: request(form("hi", callback)),
		Err: &providertest.WantError{Kind: channels.Retry, Status: 500, Code: 20500, Message: "Internal Server Error"}},
	{Label: "503", Response: twilioError(503, 20503, "Service Unavailable"), Request: request(form("hi", callback)),
		Err: &providertest.WantError{Kind: channels.Retry, Status: 503, Code: 20503, Message: "Service Unavailable"}},
	{Label: "unsubscribed 21610", Response: providertest.Response{Status: 400, Data: "responses/error_21610.json"},
		Request: request(form("hi", callback)),
		Err:     &providertest.WantError{Kind: channels.OptedOut, Status: 400, Code: twilio.CodeUnsubscribed, Message: "Attempt to send to unsubscribed recipient"}},
	{Label: "outside the 24h window 63016", Response: providertest.Response{Status: 400, Data: "responses/error_63016.json"},
		Request: request(form("hi", callback)),
		Err: &providertest.WantError{Kind: channels.OutsideWindow, Status: 400, Code: twilio.CodeOutsideWindow,
			Message: "Failed to send freeform message because you are outside the allowed window"}},
	{Label: "invalid To 21211", Response: twilioError(400, 21211, "Invalid 'To' Phone Number"), Request: request(form("hi", callback)),
		Err: &providertest.WantError{Kind: channels.Permanent, Status: 400, Code: 21211, Message: "Invalid 'To' Phone Number"}},
	{Label: "forbidden", Response: twilioError(403, 20403, "Permission denied"), Request: request(form("hi", callback)),
		Err: &providertest.WantError{Kind: channels.Permanent, Status: 403, Code: 20403, Message: "Permission denied"}},
	{Label: "template: unsubscribed 21610", Out: text(""), Template: &wire.Template{ContentSid: contentSID, Variables: map[string]string{"1": "x"}},
		Response: providertest.Response{Status: 400, Data: "responses/error_21610.json"},
		Request:  request(form("", callback, "ContentSid", contentSID, "ContentVariables", `{"1":"x"}`)),
		Err:      &providertest.WantError{Kind: channels.OptedOut, Status: 400, Code: twilio.CodeUnsubscribed, Message: "Attempt to send to unsubscribed recipient"}},
	{Label: "template: 429", Out: text(""), Template: &wire.Template{ContentSid: contentSID, Variables: map[string]string{"1": "x"}},
		Response: providertest.Response{Status: 429, Data: "responses/error_20429.json"},
		Request:  request(form("", callback, "ContentSid", contentSID, "ContentVariables", `{"1":"x"}`)),
		Err:      &providertest.WantError{Kind: channels.Retry, Status: 429, Code: twilio.CodeTooManyReqs, Message: "Too Many Requests", RateLimited: true}},

	// Answers that are not Twilio's JSON, and Retry-After.
	{Label: "429 with Retry-After seconds", Request: request(form("hi", callback)),
		Response: providertest.Response{Status: 429, Data: "responses/error_20429.json", Headers: map[string]string{"Retry-After": "7"}},
		Err:      &providertest.WantError{Kind: channels.Retry, Status: 429, Code: 20429, RetryAfter: 7 * time.Second, RateLimited: true}},
	{Label: "400 ignores Retry-After", Request: request(form("hi", callback)),
		Response: providertest.Response{Status: 400, Body: `{"code":21610,"message":"Attempt to send to unsubscribed recipient","status":400}`, Headers: map[string]string{"Retry-After": "7"}},
		Err:      &providertest.WantError{Kind: channels.OptedOut, Status: 400, Code: 21610}},
	{Label: "error body without status uses the HTTP status", Request: request(form("hi", callback)),
		Response: providertest.Response{Status: 500, Body: `{"code":20500,"message":"Internal Server Error"}`},
		Err:      &providertest.WantError{Kind: channels.Retry, Status: 500, Code: 20500}},
	{Label: "201 without a sid is not retried (it was accepted)", Request: request(form("hi", callback)),
		Response: providertest.Response{Status: 201, Body: `{"status":"queued"}`},
		Err:      &providertest.WantError{Kind: channels.Permanent, Status: 201}},
	{Label: "201 that does not decode is not retried", Request: request(form("hi", callback)),
		Response: providertest.Response{Status: 201, Body: `{"sid":`},
		Err:      &providertest.WantError{Kind: channels.Permanent, Status: 201}},

	// Refused before any request.
	{Label: "no twilio config", Tenant: func(t *tenants.Tenant) { t.Twilio = nil }, Err: &providertest.WantError{}},
	{Label: "to with whatsapp: prefix", Out: &wire.Outbound{Phone: "whatsapp:" + providertest.Customer, Text: "hi"}, Err: &providertest.WantError{}},
	{Label: "to national", Out: &wire.Outbound{Phone: "07700900123", Text: "hi"}, Err: &providertest.WantError{}},
	{Label: "empty body", Out: text(""), Err: &providertest.WantError{}},
	{Label: "body over 1,600 characters", Out: text(strings.Repeat("é", 1601)), Err: &providertest.WantError{Code: 21617}},
	{Label: "801 emoji are 1,602 UTF-16 units", Out: text(strings.Repeat("😀", 801)), Err: &providertest.WantError{Code: 21617}},
	{Label: "base url not http", Tenant: func(t *tenants.Tenant) { t.Twilio.APIBaseURL = "ftp://example.com" }, Err: &providertest.WantError{}},
	{Label: "base url relative", Tenant: func(t *tenants.Tenant) { t.Twilio.APIBaseURL = "localhost:8080" }, Err: &providertest.WantError{}},
	{Label: "template without a content sid", Out: text(""), Template: &wire.Template{Name: "not_in_the_catalogue"}, Err: &providertest.WantError{}},
	{Label: "template sid too short", Out: text(""), Template: &wire.Template{ContentSid: "HX123"}, Err: &providertest.WantError{}},
	// (not SM0123…: the test token would be in the error text)
	{Label: "template sid of a message", Out: text(""), Template: &wire.Template{ContentSid: "SMfedcba9876543210fedcba9876543210"}, Err: &providertest.WantError{}},
	{Label: "template sid not hex", Out: text(""), Template: &wire.Template{ContentSid: "HX0123456789abcdef0123456789abcdeg"}, Err: &providertest.WantError{}},
	{Label: "template to a national number", Out: &wire.Outbound{Phone: "0151 1234"}, Template: &wire.Template{ContentSid: contentSID}, Err: &providertest.WantError{}},
}, providertest.CommonResponses(request(form("hi", callback)))...)

// checkRestError: callers can still reach twilio-go's error of an answer
// Twilio gave.
func checkRestError(t *testing.T, err error) {
	se, _ := channels.AsSendError(err)
	if se.Code == 0 || se.Status == 0 || se.Status/100 == 2 {
		return
	}
	var re *client.TwilioRestError
	if !errors.As(err, &re) || re.Code != se.Code {
		t.Fatalf("no TwilioRestError under %v", err)
	}
}

func TestOutgoing(t *testing.T) {
	providertest.Outgoing{
		Provider: twilio.New(nil, publicBaseURL),
		Tenant:   sendAs,
		Secrets:  []string{twiliotest.TestAuthToken},
		Check:    checkRestError,
	}.Run(t, outgoing)
}

// Without a public base URL there is no status callback: the field is not
// sent at all.
func TestOutgoingWithoutCallback(t *testing.T) {
	providertest.Outgoing{Provider: twilio.New(nil, ""), Tenant: sendAs}.Run(t, []providertest.OutgoingCase{
		{Label: "text", Out: text("again"), Response: created, ID: createdSID, Request: request(form("again", ""))},
		{Label: "template", Out: text(""), Template: &wire.Template{ContentSid: contentSID}, Response: created, ID: createdSID,
			Request: request(form("", "", "ContentSid", contentSID))},
	})
}
