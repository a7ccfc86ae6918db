package twilio_test

import (
	"net/url"
	"testing"

	"github.com/parleyhq/parley/channels"
	"github.com/parleyhq/parley/channels/providertest"
	"github.com/parleyhq/parley/channels/twilio"
	"github.com/parleyhq/parley/channels/twilio/twiliotest"
	"github.com/parleyhq/parley/tenants"
	"github.com/parleyhq/parley/wire"
)

// The public URL Twilio calls and signs.
const publicBaseURL = "https://parley.example.com"

// signed signs a request as Twilio does, for the URL it was called at.
func signed(u string, body []byte) map[string]string {
	return signedFor(u)(u, body)
}

// secondToken is the auth token of acme's second sender's account.
const secondToken = "f00dfeedf00dfeedf00dfeedf00dbeef"

// signedWith signs for u with another account's token.
func signedWith(token, u string) func(string, []byte) map[string]string {
	return func(_ string, body []byte) map[string]string {
		form, _ := url.ParseQuery(string(body))
		return map[string]string{"X-Twilio-Signature": twilio.Signature(token, u, form)}
	}
}

// signedFor signs for another URL than the one called.
func signedFor(u string) func(string, []byte) map[string]string {
	return func(_ string, body []byte) map[string]string {
		form, err := url.ParseQuery(string(body))
		if err != nil {
			form = url.Values{}
		}
		return map[string]string{"X-Twilio-Signature": twilio.Signature(twiliotest.TestAuthToken, u, form)}
	}
}

func message(phone string, m *wire.CustomerMessage) []*wire.Inbound {
	return []*wire.Inbound{{Tenant: "acme", To: "+14155238886", Phone: phone, Channel: "twilio", Kind: &wire.Inbound_Message{Message: m}}}
}

func status(phone string, s *wire.DeliveryStatus) []*wire.Inbound {
	return []*wire.Inbound{{Tenant: "acme", To: "+14155238886", Phone: phone, Channel: "twilio", Kind: &wire.Inbound_Status{Status: s}}}
}

const (
	hook       = "/webhooks/twilio/acme"
	statusURL  = "/webhooks/twilio/acme/status"
	mediaBase  = "https://api.twilio.com/2010-04-01/Accounts/AC00000000000000000000000000000001/Messages/MM0123456789abcdef0123456789abcdef/Media/"
	emptyTwiML = "<Response/>"
)

// incoming are the webhooks Twilio sends, over testdata/*.json (forms in
// Twilio's documented shapes, stored as a JSON object of field to value).
var incoming = []providertest.IncomingCase{
	{Label: "text message", Path: hook, Data: "text_message.json", Sign: signed, BodyContains: emptyTwiML,
		Inbound: message("+447700900456", &wire.CustomerMessage{
			ProviderId: "SM0123456789abcdef0123456789abcdef", Text: "Hello there", ProfileName: "Sam", To: "+14155238886",
		})},
	{Label: "media message", Path: hook, Data: "media_message.json", Sign: signed,
		Inbound: message("+447700900123", &wire.CustomerMessage{
			ProviderId: "MM0123456789abcdef0123456789abcdef", ProfileName: "Jane", To: "+14155238886",
			Media: []*wire.Media{
				{Url: mediaBase + "ME00000000000000000000000000000001", ContentType: "image/jpeg"},
				{Url: mediaBase + "ME00000000000000000000000000000002", ContentType: "image/png"},
			},
		})},
	{Label: "location message", Path: hook, Data: "location_message.json", Sign: signed,
		Inbound: message("+447700900456", &wire.CustomerMessage{
			ProviderId: "SM1123456789abcdef0123456789abcdef", ProfileName: "Sam", To: "+14155238886",
			Location: &wire.Location{Latitude: 51.5072, Longitude: -0.1276, Label: "Trafalgar Square, London"},
		})},
	{Label: "button reply", Path: hook, Data: "button_reply.json", Sign: signed,
		Inbound: message("+34600123456", &wire.CustomerMessage{
			ProviderId: "SM4123456789abcdef0123456789abcdef", Text: "Sí, confirmo", ReplyId: "confirm_booking", ProfileName: "Zoë", To: "+14155238886",
		})},
	// Status callbacks are about messages Parley sent: the customer is To.
	{Label: "status delivered", Path: statusURL, Data: "status_delivered.json", Sign: signed, BodyContains: emptyTwiML,
		Inbound: status("+447700900456", &wire.DeliveryStatus{ProviderId: "SM2123456789abcdef0123456789abcdef", Status: "delivered"})},
	{Label: "status read", Path: statusURL, Data: "status_read.json", Sign: signed,
		Inbound: status("+447700900456", &wire.DeliveryStatus{ProviderId: "SM2123456789abcdef0123456789abcdef", Status: "read"})},
	{Label: "status failed 63016", Path: statusURL, Data: "status_failed_63016.json", Sign: signed,
		Inbound: status("+447700900456", &wire.DeliveryStatus{ProviderId: "SM3123456789abcdef0123456789abcdef", Status: "failed", ErrorCode: "63016"})},

	// Signatures.
	{Label: "signed with the default port", Path: hook, Data: "text_message.json",
		Sign: signedFor("https://parley.example.com:443" + hook), Inbound: message("+447700900456", &wire.CustomerMessage{
			ProviderId: "SM0123456789abcdef0123456789abcdef", Text: "Hello there", ProfileName: "Sam", To: "+14155238886",
		})},
	{Label: "bad signature", Path: hook, Data: "text_message.json",
		Headers: map[string]string{"X-Twilio-Signature": "AAAAAAAAAAAAAAAAAAAAAAAAAAA="}, Status: 403},
	{Label: "no signature", Path: hook, Data: "text_message.json", Status: 403},
	{Label: "signed for the listener url, not the public one", Path: hook, Data: "text_message.json",
		Sign: signedFor("http://127.0.0.1:8080" + hook), Status: 403},
	{Label: "a status signed for the message URL", Path: statusURL, Data: "status_delivered.json",
		Sign: signedFor(publicBaseURL + hook), Status: 403},

	// A tenant's second sender, on another account: the webhook URL is
	// the tenant's, the number is the one the message was sent to, and the
	// signature must be by that number's account.
	{Label: "to the second number", Path: hook, Data: "text_message_second_number.json", Sign: signedWith(secondToken, publicBaseURL+hook),
		Inbound: []*wire.Inbound{{Tenant: "acme", To: "+14155230002", Phone: "+447700900456", Channel: "twilio", Kind: &wire.Inbound_Message{Message: &wire.CustomerMessage{
			ProviderId: "SM4123456789abcdef0123456789abcdef", Text: "Hello, second number", ProfileName: "Sam", To: "+14155230002"}}}}},
	{Label: "to the second number, signed by the first number's account", Path: hook, Data: "text_message_second_number.json", Sign: signed, Status: 403},
	// The first account's, to a sender the tenant does not have (deleted):
	// no such number here.
	{Label: "to a sender not connected", Path: hook, Data: "text_message_deleted_sender.json", Sign: signed, Status: 404},

	// Refusals.
	{Label: "unknown tenant", Path: "/webhooks/twilio/nobody", Data: "text_message.json", Sign: signed, Status: 404},
	{Label: "a tenant without Twilio", Path: "/webhooks/twilio/beta", Data: "text_message.json", Sign: signed, Status: 404},
	{Label: "unknown path under the tenant", Path: hook + "/other", Data: "text_message.json", Sign: signed, Status: 404},
	{Label: "GET", Method: "GET", Path: hook, Status: 405},
	{Label: "malformed form", Path: hook, Body: []byte("Body=%zz"), Headers: map[string]string{"X-Twilio-Signature": "x"}, Status: 400},
	{Label: "signed but not a message", Path: hook, Body: []byte("Foo=bar"), Sign: signed, Status: 400, BodyContains: "MessageSid"},
}

func TestIncoming(t *testing.T) {
	reg, err := tenants.NewRegistry([]tenants.Tenant{
		{ID: "acme", Twilio: &tenants.Twilio{AccountSID: twiliotest.TestAccountSID, AuthToken: twiliotest.TestAuthToken, From: twiliotest.SandboxFrom},
			MoreNumbers: []tenants.Number{{Twilio: &tenants.Twilio{AccountSID: "AC00000000000000000000000000000002", AuthToken: secondToken, From: "whatsapp:+14155230002"}}}},
		{ID: "beta", Sim: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	providertest.Incoming{
		Provider: twilio.New(nil, ""),
		Env:      channels.Env{Tenants: reg, PublicBaseURL: publicBaseURL},
		Body:     providertest.FormBody,
	}.Run(t, incoming)
	providertest.CheckCoverage(t, incoming)
}
