package twilio

import (
	"cmp"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/parleyhq/parley/internal/e164"
	"github.com/parleyhq/parley/wire"
)

// Channel is the wire.Inbound.Channel of everything this package produces;
// it equals tenants.ChannelTwilio.
const Channel = "twilio"

// ErrMalformed marks a webhook Parley cannot accept. Every error ParseForm
// and Normalize return wraps it, so the ingress answers 400 with
// errors.Is(err, ErrMalformed) and the detail in the message.
var ErrMalformed = errors.New("malformed twilio webhook")

func malformed(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, a...))
}

// MaxMedia bounds NumMedia: Twilio attaches at most ten media to a message
// (WhatsApp itself sends one). A larger count is not a real webhook, and
// bounding it bounds the work a request can cause.
const MaxMedia = 10

var (
	// messageSID is a Twilio message SID: a two-letter prefix (SM, MM) and
	// 32 hex digits. It becomes the deduplication key, so anything else —
	// an empty or a 100 kB value — is refused rather than carried along.
	messageSID = regexp.MustCompile(`^[A-Z]{2}[0-9a-fA-F]{32}$`)
	// numMedia is digits only: strconv.Atoi alone would take "+3" or "-0".
	numMedia = regexp.MustCompile(`^[0-9]{1,2}$`)
	// status is a lower-case status word. Statuses Twilio adds later pass
	// through to the session, which ignores those it does not know.
	status = regexp.MustCompile(`^[a-z][a-z_-]{0,31}$`)
	// errorCode is Twilio's numeric error code.
	errorCode = regexp.MustCompile(`^[0-9]{1,10}$`)
)

// ParseForm parses an application/x-www-form-urlencoded body strictly: a bad
// percent-escape or a semicolon separator is an error rather than a silently
// dropped field, because a dropped field would also be missing from the
// signature check and from the normalised message.
//
// A field given twice is refused too. Twilio's signature is over the sorted
// fields with keys and values run together without separators, so the
// signed string does not pin where one field ends; Twilio sends each field
// once, and refusing repeats leaves one reading of a signed body fewer.
func ParseForm(body []byte) (url.Values, error) {
	v, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, malformed("form: %v", err)
	}
	for k, vs := range v {
		if len(vs) > 1 {
			return nil, malformed("field %q appears %d times", clip(k), len(vs))
		}
	}
	return v, nil
}

// ErrNotAddressed marks a validly signed webhook that is not about this
// tenant's Twilio sender: another account's, or another number's. The
// ingress answers 403.
var ErrNotAddressed = errors.New("twilio webhook is not for this tenant's sender")

// CheckAddressed checks that a signed webhook belongs to the tenant's
// Twilio account and sender: AccountSid is the tenant's account, and the
// sender's number is To of a customer message, From of a status callback.
// The signature alone proves only that someone holding the auth token
// signed these fields; with keys and values run together a captured
// request can be re-cut into other fields, and one auth token may serve
// several senders (subaccounts keep their own). Both checks compare whole
// values, so a re-cut that moves either boundary is refused.
func CheckAddressed(accountSID, sender string, form url.Values) error {
	if got := form.Get("AccountSid"); got != accountSID {
		return fmt.Errorf("%w: AccountSid %q is not the tenant's account", ErrNotAddressed, clip(got))
	}
	field := "To"
	if st := form.Get("MessageStatus"); st != "" && st != "received" {
		field = "From" // a status callback: Parley sent the message
	}
	// The same number, whether or not the configured sender carries the
	// "whatsapp:" prefix (Twilio's webhooks always do).
	if got := form.Get(field); strings.TrimPrefix(got, "whatsapp:") != strings.TrimPrefix(sender, "whatsapp:") || got == "" {
		return fmt.Errorf("%w: %s %q is not the tenant's sender", ErrNotAddressed, field, clip(got))
	}
	return nil
}

// Normalize turns a Twilio WhatsApp webhook form into a wire.Inbound:
//
//   - a status callback (MessageStatus present) about a message Parley sent
//     becomes an Inbound_Status; its customer is To, because Parley was
//     the sender;
//   - anything else is a customer message, an Inbound_Message from From,
//     with Body, ProfileName, up to MaxMedia media and an optional shared
//     location.
//
// Phone numbers lose their "whatsapp:" prefix and must be E.164. Every
// error wraps ErrMalformed. tenant is the tenant the webhook URL named,
// receivedAt the moment the ingress accepted the request and newID makes
// Parley's event id; Normalize calls it once, only on success.
//
// Unknown fields are ignored: Twilio adds parameters without notice.
func Normalize(tenant string, form url.Values, receivedAt time.Time, newID func() string) (*wire.Inbound, error) {
	sid := form.Get("MessageSid")
	if sid == "" {
		sid = form.Get("SmsMessageSid")
	}
	if sid == "" {
		return nil, malformed("MessageSid missing")
	}
	if !messageSID.MatchString(sid) {
		return nil, malformed("MessageSid %q is not a Twilio message SID", clip(sid))
	}
	in := &wire.Inbound{
		Tenant:       tenant,
		Channel:      Channel,
		ReceivedAtMs: receivedAt.UnixMilli(),
	}
	var err error
	// Inbound messages carry SmsStatus=received and no MessageStatus; a
	// MessageStatus of "received" is treated as a message all the same.
	if st := form.Get("MessageStatus"); st != "" && st != "received" {
		err = normalizeStatus(in, sid, st, form)
	} else {
		err = normalizeMessage(in, sid, form)
	}
	if err != nil {
		return nil, err
	}
	in.Id = newID()
	return in, nil
}

func normalizeStatus(in *wire.Inbound, sid, st string, form url.Values) error {
	st = strings.ToLower(st)
	if !status.MatchString(st) {
		return malformed("MessageStatus %q", clip(st))
	}
	code := form.Get("ErrorCode")
	if code != "" && !errorCode.MatchString(code) {
		return malformed("ErrorCode %q", clip(code))
	}
	// Parley sent the message, so the customer is the recipient.
	phone, err := whatsappNumber("To", form.Get("To"))
	if err != nil {
		return err
	}
	in.Phone = phone
	in.Kind = &wire.Inbound_Status{Status: &wire.DeliveryStatus{
		ProviderId: sid,
		Status:     st,
		ErrorCode:  code,
	}}
	return nil
}

func normalizeMessage(in *wire.Inbound, sid string, form url.Values) error {
	phone, err := whatsappNumber("From", form.Get("From"))
	if err != nil {
		return err
	}
	to, err := whatsappNumber("To", form.Get("To"))
	if err != nil {
		return err
	}
	msg := &wire.CustomerMessage{
		ProviderId:  sid,
		Text:        form.Get("Body"),
		ProfileName: form.Get("ProfileName"),
		To:          to,
		// A quick-reply button's payload, or a list picker row's id.
		ReplyId: cmp.Or(form.Get("ButtonPayload"), form.Get("ListId")),
	}
	// Protobuf strings must be valid UTF-8 or the record cannot be
	// encoded; refuse here (400) instead of failing later (500).
	for _, f := range [...]struct{ name, v string }{{"Body", msg.Text}, {"ProfileName", msg.ProfileName}, {"ButtonPayload or ListId", msg.ReplyId}} {
		if !utf8.ValidString(f.v) {
			return malformed("%s is not valid UTF-8", f.name)
		}
	}
	if msg.Media, err = media(form); err != nil {
		return err
	}
	if msg.Location, err = location(form); err != nil {
		return err
	}
	// A message with no text, media or location (a sticker or contact card
	// Twilio does not forward in full) is still accepted: the customer
	// wrote, and that opens WhatsApp's 24-hour window.
	in.Phone = phone
	in.Kind = &wire.Inbound_Message{Message: msg}
	return nil
}

// media reads NumMedia and the MediaUrl{N}/MediaContentType{N} pairs.
func media(form url.Values) ([]*wire.Media, error) {
	n := form.Get("NumMedia")
	if n == "" {
		return nil, nil
	}
	if !numMedia.MatchString(n) {
		return nil, malformed("NumMedia %q", clip(n))
	}
	count, _ := strconv.Atoi(n) // cannot fail: one or two digits
	if count > MaxMedia {
		return nil, malformed("NumMedia %d exceeds %d", count, MaxMedia)
	}
	var out []*wire.Media
	for i := range count {
		field := "MediaUrl" + strconv.Itoa(i)
		raw := form.Get(field)
		if raw == "" {
			return nil, malformed("%s missing (NumMedia %d)", field, count)
		}
		// Whoever fetches the media later needs an absolute http(s) URL
		// (Twilio's are https://api.twilio.com/...).
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || !utf8.ValidString(raw) {
			return nil, malformed("%s %q is not an http(s) URL", field, clip(raw))
		}
		ct := form.Get("MediaContentType" + strconv.Itoa(i))
		if !utf8.ValidString(ct) {
			return nil, malformed("MediaContentType%d is not valid UTF-8", i)
		}
		out = append(out, &wire.Media{Url: raw, ContentType: ct})
	}
	return out, nil
}

// location reads a shared WhatsApp location: Latitude and Longitude, and
// the place's Label (name) and Address when the customer picked a place
// rather than dropping a pin.
func location(form url.Values) (*wire.Location, error) {
	lat, lon := form.Get("Latitude"), form.Get("Longitude")
	if lat == "" && lon == "" {
		return nil, nil
	}
	la, err1 := strconv.ParseFloat(lat, 64)
	lo, err2 := strconv.ParseFloat(lon, 64)
	// Written so that NaN, which compares false to everything, fails.
	if err1 != nil || err2 != nil || !(la >= -90 && la <= 90) || !(lo >= -180 && lo <= 180) {
		return nil, malformed("location %q,%q", clip(lat), clip(lon))
	}
	label, address := strings.TrimSpace(form.Get("Label")), strings.TrimSpace(form.Get("Address"))
	if !utf8.ValidString(label) || !utf8.ValidString(address) {
		return nil, malformed("location Label or Address is not valid UTF-8")
	}
	// One label for the session: the place's name and its address, without
	// saying the name twice ("Trafalgar Square" + "Trafalgar Square,
	// London").
	switch {
	case label == "" || strings.Contains(address, label):
		label = address
	case address != "" && !strings.Contains(label, address):
		label += ", " + address
	}
	return &wire.Location{Latitude: la, Longitude: lo, Label: label}, nil
}

// whatsappNumber turns "whatsapp:+447700900123" into "+447700900123". The
// prefix is required: this channel speaks WhatsApp only, and replies go out
// to "whatsapp:"+number, which would fail for an SMS sender.
func whatsappNumber(field, v string) (string, error) {
	n, ok := strings.CutPrefix(v, "whatsapp:")
	if !ok || !e164.Valid(n) {
		return "", malformed("%s %q is not a WhatsApp E.164 address", field, clip(v))
	}
	return n, nil
}

// clip shortens a hostile value before it goes into an error message, which
// the ingress logs and returns to the caller.
func clip(s string) string {
	const limit = 40
	if len(s) <= limit {
		return strings.ToValidUTF8(s, "\uFFFD")
	}
	return strings.ToValidUTF8(s[:limit], "\uFFFD") + "…"
}
