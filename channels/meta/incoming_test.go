package meta_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/parleyhq/parley/channels"
	"github.com/parleyhq/parley/channels/meta"
	"github.com/parleyhq/parley/channels/providertest"
	"github.com/parleyhq/parley/tenants"
	"github.com/parleyhq/parley/wire"
)

// Two tenants' business numbers, as in testdata: acme's is Meta's example
// number, beta's another number of the same agency.
const (
	acmeNumberID = "106540352242922"
	betaNumberID = "107655329552231"
	acmeSecret   = "0123456789abcdef0123456789abcdef"
	betaSecret   = "fedcba9876543210fedcba9876543210"
	acmeTo       = "+15550783881"
)

func signedBy(secret string) func(string, []byte) map[string]string {
	return func(_ string, body []byte) map[string]string {
		return map[string]string{meta.SignatureHeader: meta.Signature(secret, body)}
	}
}

// numberOf is the phone_number_id each tenant's records name as To.
var numberOf = map[string]string{"acme": acmeNumberID, "beta": betaNumberID}

func msgIn(tenant, phone string, m *wire.CustomerMessage) *wire.Inbound {
	return &wire.Inbound{Tenant: tenant, To: numberOf[tenant], Phone: phone, Channel: "meta", Kind: &wire.Inbound_Message{Message: m}}
}

func statusIn(tenant, phone string, s *wire.DeliveryStatus) *wire.Inbound {
	return &wire.Inbound{Tenant: tenant, To: numberOf[tenant], Phone: phone, Channel: "meta", Kind: &wire.Inbound_Status{Status: s}}
}

func one(in *wire.Inbound) []*wire.Inbound { return []*wire.Inbound{in} }

// payloads are the webhooks Meta sends, over testdata/*.json (bodies in
// Meta's documented shapes), from one app for both numbers.
var payloads = []providertest.IncomingCase{
	{Label: "text message", Data: "text_message.json", BodyContains: "ok", Inbound: one(msgIn("acme", "+16505551234", &wire.CustomerMessage{
		ProviderId: "wamid.HBgLMTY1MDU1NTEyMzQVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA=",
		Text:       "Does it come in another color?", ProfileName: "Sheena Nelson", To: acmeTo,
	}))},
	// A message written in a group the business is in (Meta's groups
	// webhook): it carries the group, so the session logs it and does not
	// answer the sender one to one.
	{Label: "group message", Data: "group_message.json", Inbound: one(msgIn("acme", "+16505551234", &wire.CustomerMessage{
		ProviderId: "wamid.HBgLMTY1MDU1NTEyMzQVAgARGBJHUk9VUDAwMDAwMDAwMDAwMQA=",
		Text:       "Is the shop open on Sunday?", ProfileName: "Sheena Nelson", To: acmeTo,
		GroupId: "Y2FwaV9ncm91cDoxNjUwNTU1MTIzNDoxMjAzNjM0MDQ4NzE5NzQyOTM=",
	}))},
	{Label: "image message", Data: "image_message.json", Inbound: one(msgIn("acme", "+34600123456", &wire.CustomerMessage{
		ProviderId: "wamid.HBgLMzQ2MDAxMjM0NTYVAgASGBQzQUNCMjA1QzA3QjY0RDQ5QjI4NwA=",
		Text:       "¿Tenéis este corte? 💇", ProfileName: "Zoë", To: acmeTo,
		Media: []*wire.Media{{Url: "meta-media:1003383421387256", ContentType: "image/jpeg"}},
	}))},
	{Label: "document message", Data: "document_message.json", Inbound: one(msgIn("acme", "+16505551234", &wire.CustomerMessage{
		ProviderId: "wamid.HBgLMTY1MDU1NTEyMzQVAgASGBQzRUIwQzc1MEE3RDZCRUVBOEU1RgA=",
		Text:       "Signed form", ProfileName: "Sheena Nelson", To: acmeTo,
		Media: []*wire.Media{{Url: "meta-media:2070396176763463", ContentType: "application/pdf"}},
	}))},
	{Label: "audio message", Data: "audio_message.json", Inbound: one(msgIn("acme", "+16505551234", &wire.CustomerMessage{
		ProviderId:  "wamid.HBgLMTY1MDU1NTEyMzQVAgASGBQzQTE5QjNGN0Y4QjkyQzlCNDRBNQA=",
		ProfileName: "Sheena Nelson", To: acmeTo,
		Media: []*wire.Media{{Url: "meta-media:1418617449289736", ContentType: "audio/ogg; codecs=opus"}},
	}))},
	{Label: "sticker message", Data: "sticker_message.json", Inbound: one(msgIn("acme", "+16505551234", &wire.CustomerMessage{
		ProviderId:  "wamid.HBgLMTY1MDU1NTEyMzQVAgASGBQzQjI3NTY0MzQyMUM5NjM0RjE5QgA=",
		ProfileName: "Sheena Nelson", To: acmeTo,
		Media: []*wire.Media{{Url: "meta-media:1138766181251219", ContentType: "image/webp"}},
	}))},
	{Label: "location message", Data: "location_message.json", Inbound: one(msgIn("acme", "+447700900123", &wire.CustomerMessage{
		ProviderId:  "wamid.HBgMNDQ3NzAwOTAwMTIzFQIAEhggQUI1MTM5RjNGNUVFNkUxQ0FCQjkwNjIwNDZEQzgA",
		ProfileName: "Sam", To: acmeTo,
		Location: &wire.Location{Latitude: 51.508039, Longitude: -0.128069, Label: "Trafalgar Square, London WC2N 5DN"},
	}))},
	{Label: "interactive button reply", Data: "interactive_button_reply.json", Inbound: one(msgIn("acme", "+34600123456", &wire.CustomerMessage{
		ProviderId: "wamid.HBgLMzQ2MDAxMjM0NTYVAgASGBQzQTg1NDY4QTJBQjQ4NDNBMjJGMgA=",
		Text:       "Sí, confirmo", ReplyId: "confirm-booking-8841", ProfileName: "Zoë", To: acmeTo,
	}))},
	{Label: "interactive list reply", Data: "interactive_list_reply.json", Inbound: one(msgIn("acme", "+447700900123", &wire.CustomerMessage{
		ProviderId: "wamid.HBgMNDQ3NzAwOTAwMTIzFQIAEhggOTg3NjU0MzIxMEFCQ0RFRjAxMjM0NTY3ODlBQkNEAA==",
		Text:       "Fri 27 Nov, 10:30", ReplyId: "slot-2026-11-27T10:30", ProfileName: "Sam", To: acmeTo,
	}))},
	// A WhatsApp Flow's answer: the form's fields are kept (compact), not
	// only the word "Sent" the customer saw.
	{Label: "flow reply", Data: "flow_reply.json", Inbound: one(msgIn("acme", "+447700900123", &wire.CustomerMessage{
		ProviderId: "wamid.HBgMNDQ3NzAwOTAwMTIzFQIAEhggRkxPVzAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDEA",
		Text:       "Sent", ProfileName: "Sam", To: acmeTo,
		FlowResponse: `{"flow_token":"booking-7731","service":"standard_clean","date":"2026-11-27","notes":"Side gate is open"}`,
	}))},
	{Label: "button message", Data: "button_message.json", Inbound: one(msgIn("acme", "+447700900123", &wire.CustomerMessage{
		ProviderId: "wamid.HBgMNDQ3NzAwOTAwMTIzFQIAEhggNTA4QjBCMkM3QUZBNDkzOUQ3RkVGRjg0M0E4RTdGRDcA",
		Text:       "Reschedule", ReplyId: "RESCHEDULE_8841", ProfileName: "Sam", To: acmeTo,
	}))},
	// Reactions are not messages to answer.
	{Label: "reaction message", Data: "reaction_message.json"},
	// A type the Cloud API does not pass on still opens the window.
	{Label: "unsupported message", Data: "unsupported_message.json", Inbound: one(msgIn("acme", "+447700900123", &wire.CustomerMessage{
		ProviderId:  "wamid.HBgMNDQ3NzAwOTAwMTIzFQIAEhggMDFGQTYyMUY0OEI2RjI4MzQ0MDQxNUM3RUI3Mzg5RTQA",
		ProfileName: "Sam", To: acmeTo,
	}))},
	// Statuses are about messages Parley sent: the customer is the
	// recipient.
	{Label: "status sent", Data: "status_sent.json", Inbound: one(statusIn("acme", "+16505551234", &wire.DeliveryStatus{
		ProviderId: "wamid.HBgLMTY1MDU1NTEyMzQVAgARGBI5QTNDQTVCM0Q0Q0Q2RTY3RTcA", Status: "sent",
	}))},
	{Label: "status delivered", Data: "status_delivered.json", Inbound: one(statusIn("acme", "+16505551234", &wire.DeliveryStatus{
		ProviderId: "wamid.HBgLMTY1MDU1NTEyMzQVAgARGBI5QTNDQTVCM0Q0Q0Q2RTY3RTcA", Status: "delivered",
	}))},
	{Label: "status read", Data: "status_read.json", Inbound: one(statusIn("acme", "+16505551234", &wire.DeliveryStatus{
		ProviderId: "wamid.HBgLMTY1MDU1NTEyMzQVAgARGBI5QTNDQTVCM0Q0Q0Q2RTY3RTcA", Status: "read",
	}))},
	{Label: "status failed 131047", Data: "status_failed_131047.json", Inbound: one(statusIn("acme", "+447700900123", &wire.DeliveryStatus{
		ProviderId: "wamid.HBgMNDQ3NzAwOTAwMTIzFQIAERgSNEZGNkI1RTcyQTk4MTRFRDQ2AA==", Status: "failed", ErrorCode: "131047",
	}))},
	// One customer writing to two tenants' numbers in one payload: each
	// message goes to the tenant whose number it came to.
	{Label: "two numbers", Data: "two_numbers.json", Inbound: []*wire.Inbound{
		msgIn("acme", "+447700900123", &wire.CustomerMessage{
			ProviderId: "wamid.HBgMNDQ3NzAwOTAwMTIzFQIAEhggQUNNRTAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAxAA==",
			Text:       "For Acme: can I book Friday?", ProfileName: "Sam", To: acmeTo,
		}),
		msgIn("beta", "+447700900123", &wire.CustomerMessage{
			ProviderId: "wamid.HBgMNDQ3NzAwOTAwMTIzFQIAEhggQkVUQTAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAxAA==",
			Text:       "For Beta: is my order ready?", ProfileName: "Sam", To: "+15550001234",
		}),
		statusIn("beta", "+447700900456", &wire.DeliveryStatus{
			ProviderId: "wamid.HBgMNDQ3NzAwOTAwMTIzFQIAERgSQkVUQTAwMDAwMDAwMDAwMDAxAA==", Status: "delivered",
		}),
	}},
	{Label: "unknown number", Data: "unknown_number.json", Status: 404},
	// Another subscribed field at the same URL: nothing for sessions.
	{Label: "template status update", Data: "template_status_update.json"},
}

// twoApps are the route's answers when each tenant's number belongs to an
// app of its own: the handshake, and the signature of each.
var twoApps = []providertest.IncomingCase{
	{Label: "handshake", Method: "GET", Path: meta.WebhookPath + "?hub.mode=subscribe&hub.verify_token=acme-verify-token&hub.challenge=1158201444",
		BodyContains: "1158201444"},
	{Label: "handshake with the other tenant's token", Method: "GET",
		Path: meta.WebhookPath + "?hub.mode=subscribe&hub.verify_token=beta-verify-token&hub.challenge=42", BodyContains: "42"},
	{Label: "handshake with a wrong token", Method: "GET",
		Path: meta.WebhookPath + "?hub.mode=subscribe&hub.verify_token=wrong&hub.challenge=42", Status: 403},
	{Label: "unsubscribe is no handshake", Method: "GET",
		Path: meta.WebhookPath + "?hub.mode=unsubscribe&hub.verify_token=acme-verify-token&hub.challenge=42", Status: 403},
	{Label: "PUT", Method: "PUT", Path: meta.WebhookPath, Status: 405},

	{Label: "signed by the tenant's app", Data: "text_message.json", Sign: signedBy(acmeSecret),
		Inbound: one(msgIn("acme", "+16505551234", &wire.CustomerMessage{
			ProviderId: "wamid.HBgLMTY1MDU1NTEyMzQVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA=",
			Text:       "Does it come in another color?", ProfileName: "Sheena Nelson", To: acmeTo,
		}))},
	{Label: "signed with another tenant's secret", Data: "text_message.json", Sign: signedBy(betaSecret), Status: 403},
	{Label: "unsigned", Data: "text_message.json", Status: 403},
	// A payload signed by acme's app cannot speak for beta's number, and
	// is not half-accepted either.
	{Label: "acme's app naming beta's number", Data: "two_numbers.json", Sign: signedBy(acmeSecret), Status: 403},
	{Label: "unknown number", Data: "unknown_number.json", Sign: signedBy(acmeSecret), Status: 404},
	{Label: "malformed", Body: []byte("{not json"), Sign: signedBy(acmeSecret), Status: 400},
	// A forged body is refused on its signature before it is parsed: an
	// unsigned 2.6 MB body naming 20,000 numbers costs two HMACs.
	{Label: "unsigned, 20,000 numbers", Body: manyNumbers(20000), Status: 403},
	{Label: "unsigned and malformed", Body: []byte("{not json"), Status: 403},
	{Label: "signed, more numbers than a payload may name", Body: manyNumbers(meta.MaxPhoneNumberIDs + 1), Sign: signedBy(acmeSecret), Status: 400,
		BodyContains: "more than"},
}

// manyNumbers is a payload with n changes, each for a number of its own.
func manyNumbers(n int) []byte {
	var b strings.Builder
	b.WriteString(`{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[`)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"field":"messages","value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"1","phone_number_id":"%015d"}}}`, 200000000000000+i)
	}
	b.WriteString(`]}]}`)
	return []byte(b.String())
}

func metaTenants(t *testing.T, betaAppSecret string) *tenants.Registry {
	t.Helper()
	reg, err := tenants.NewRegistry([]tenants.Tenant{
		{ID: "acme", Meta: &meta.Config{PhoneNumberID: acmeNumberID, AccessToken: "EAAGacme", AppSecret: acmeSecret, VerifyToken: "acme-verify-token"}},
		{ID: "beta", Meta: &meta.Config{PhoneNumberID: betaNumberID, AccessToken: "EAAGbeta", AppSecret: betaAppSecret, VerifyToken: "beta-verify-token"}},
		{ID: "gamma", Sim: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	return reg
}

func TestIncoming(t *testing.T) {
	for i := range payloads {
		payloads[i].Path = meta.WebhookPath
		payloads[i].Sign = signedBy(acmeSecret)
	}
	for i := range twoApps {
		if twoApps[i].Path == "" {
			twoApps[i].Path = meta.WebhookPath
		}
	}
	t.Run("one app", func(t *testing.T) {
		providertest.Incoming{Provider: meta.New(nil, 0), Env: channels.Env{Tenants: metaTenants(t, acmeSecret)}}.Run(t, payloads)
	})
	t.Run("two apps", func(t *testing.T) {
		providertest.Incoming{Provider: meta.New(nil, 0), Env: channels.Env{Tenants: metaTenants(t, betaSecret)}}.Run(t, twoApps)
	})
	providertest.CheckCoverage(t, payloads)
}
