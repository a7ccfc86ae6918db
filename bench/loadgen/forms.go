// Package loadgen drives an HTTP endpoint with signed Twilio WhatsApp
// webhooks and measures what comes back: accepted requests per second and
// the latency distribution.
//
// Everything a request needs (form body, signature) is built before the
// clock starts, so that the generator, which shares the CPU with the server
// under test on a small machine, spends as little as possible per request.
package loadgen

import (
	"fmt"
	"math/rand/v2"
	"net/url"

	"github.com/parleyhq/parley/channels/twilio"
)

// Webhook says what the forms are signed for and who they are addressed to.
type Webhook struct {
	// PublicBaseURL plus Path is the URL Twilio signs (the server's
	// configured public base URL, not the loopback address it listens on).
	PublicBaseURL string
	Path          string
	AuthToken     string
	AccountSID    string
	// To is the tenant's WhatsApp sender, "whatsapp:+14155238886".
	To string
}

// Request is one pre-built webhook: the urlencoded form and its
// X-Twilio-Signature.
type Request struct {
	Body      []byte
	Signature string
	// Path, if set, is where this request goes instead of Config.Path
	// (status callbacks go to /webhooks/twilio/{tenant}/status).
	Path string
}

// texts are customer messages of the kinds a booking assistant gets, of
// varied length (20 to ~150 characters), so that forms are not all one size.
var texts = []string{
	"Hi",
	"Hello, is anyone there?",
	"Can I book a haircut for Saturday at 10am?",
	"What time do you open tomorrow?",
	"I need to move my appointment on Thursday to next week if possible, any afternoon works for me",
	"123456",
	"Do you have availability for two people this evening? We'd like a table near the window 🙂",
	"Cancel my booking please",
	"How much is the monthly subscription and can I pause it while I'm travelling in August?",
	"Thanks!",
	"My account says payment failed but my card was charged twice, can someone check? Order 88213",
	"Is parking available near the clinic?",
}

var names = []string{"Sam", "María José", "Li Wei", "Oluwaseun", "Zoë", "Ahmed", "Priya", "Jan", "Chloé", "Kenji"}

// countries give the From numbers a realistic spread of lengths.
var countries = []string{"44", "1", "34", "91", "234", "49", "55", "81"}

// Forms builds n distinct inbound WhatsApp message webhooks: each has its own
// MessageSid and its own sender number (so records spread over Kafka
// partitions as real traffic does), with the fields Twilio sends for a text
// message. seed makes the set reproducible.
func Forms(n int, seed uint64, w Webhook) []Request {
	r := rand.New(rand.NewPCG(seed, 0x7061726c6579))
	fullURL := w.PublicBaseURL + w.Path
	out := make([]Request, n)
	for i := range out {
		// The index in the SID and the number keeps every form distinct;
		// the random half makes SIDs look like Twilio's.
		sid := fmt.Sprintf("SM%016x%016x", r.Uint64(), uint64(i))
		cc := countries[i%len(countries)]
		// 10 subscriber digits: the index, offset so that numbers do not
		// start with zeros; E.164 allows up to 15 digits with the country
		// code.
		waID := fmt.Sprintf("%s%010d", cc, 7000000000+i)
		out[i] = message(w, fullURL, sid, waID, names[r.IntN(len(names))], texts[r.IntN(len(texts))])
	}
	return out
}

// Message is one inbound WhatsApp text message webhook from +waID (digits
// only) with the fields Twilio sends, signed for w.
func Message(w Webhook, sid, waID, profileName, text string) Request {
	return message(w, w.PublicBaseURL+w.Path, sid, waID, profileName, text)
}

func message(w Webhook, fullURL, sid, waID, profileName, text string) Request {
	form := url.Values{
		"SmsMessageSid":    {sid},
		"NumMedia":         {"0"},
		"ProfileName":      {profileName},
		"MessageType":      {"text"},
		"SmsSid":           {sid},
		"WaId":             {waID},
		"SmsStatus":        {"received"},
		"Body":             {text},
		"To":               {w.To},
		"NumSegments":      {"1"},
		"ReferralNumMedia": {"0"},
		"MessageSid":       {sid},
		"AccountSid":       {w.AccountSID},
		"From":             {"whatsapp:+" + waID},
		"ApiVersion":       {"2010-04-01"},
	}
	return Request{
		Body:      []byte(form.Encode()),
		Signature: twilio.Signature(w.AuthToken, fullURL, form),
	}
}

// StatusPath is where Twilio posts the delivery status callbacks of
// messages sent from w's tenant: w.Path + "/status", as Parley asks.
func StatusPath(w Webhook) string { return w.Path + "/status" }

// Status is the delivery status callback Twilio posts about a message it
// sent (sid) to +waID: status is "sent", "delivered", "read", … Its Path
// is StatusPath(w).
func Status(w Webhook, sid, waID, status string) Request {
	path := StatusPath(w)
	form := url.Values{
		"AccountSid":    {w.AccountSID},
		"ApiVersion":    {"2010-04-01"},
		"ChannelPrefix": {"whatsapp"},
		"From":          {w.To},
		"MessageSid":    {sid},
		"MessageStatus": {status},
		"SmsSid":        {sid},
		"SmsStatus":     {status},
		"To":            {"whatsapp:+" + waID},
	}
	return Request{
		Body:      []byte(form.Encode()),
		Signature: twilio.Signature(w.AuthToken, w.PublicBaseURL+path, form),
		Path:      path,
	}
}

// MeanBodyBytes is the average form size, for the report.
func MeanBodyBytes(reqs []Request) int {
	if len(reqs) == 0 {
		return 0
	}
	total := 0
	for _, r := range reqs {
		total += len(r.Body)
	}
	return total / len(reqs)
}

// AccountSID makes a Twilio-shaped account SID ("AC" and 32 hex digits).
func AccountSID(n int) string {
	return fmt.Sprintf("AC%032x", n)
}
