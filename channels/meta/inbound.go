package meta

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/parleyhq/parley/internal/e164"
	"github.com/parleyhq/parley/wire"
)

var (
	// ErrMalformed marks a webhook, or a part of one, Parley cannot read:
	// not JSON, not a WhatsApp Business webhook, or a message or status
	// without a usable id or customer number. The ingress answers 400 when
	// nothing of the payload could be accepted.
	ErrMalformed = errors.New("malformed meta webhook")
	// ErrUnknownNumber marks changes about a phone_number_id no tenant
	// has. When no change of a payload belongs to a tenant, the ingress
	// answers 404 (Meta retries for days, which leaves time to add the
	// tenant); when some do, the others are accepted and the unknown ids
	// only reported.
	ErrUnknownNumber = errors.New("meta webhook for an unknown phone_number_id")
	// ErrBadSignature marks a payload whose X-Hub-Signature-256 does not
	// verify with the app secret of a tenant it names. The ingress
	// answers 403 and accepts none of it.
	ErrBadSignature = errors.New("meta webhook signature does not verify")
)

func malformed(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, a...))
}

// MediaURLPrefix starts the wire.Media.Url of media received through Meta:
// "meta-media:<media id>". The webhook carries only the id; the file is
// fetched from the Graph API (GET /{version}/{media id}, then the URL it
// returns) with the tenant's access token, so the URL cannot be stored
// ready to use.
const MediaURLPrefix = "meta-media:"

// MediaID returns the Graph media id of a wire.Media.Url this package
// made, and false for any other URL.
func MediaID(mediaURL string) (string, bool) {
	id, ok := strings.CutPrefix(mediaURL, MediaURLPrefix)
	if !ok || !mediaID.MatchString(id) {
		return "", false
	}
	return id, true
}

var (
	// providerID is a wamid ("wamid." and base64, about 60 characters). It
	// becomes the deduplication key, so anything empty, huge or with
	// spaces or control characters is refused rather than carried along.
	providerID = regexp.MustCompile(`^[\x21-\x7e]{1,256}$`)
	// mediaID is a Graph object id (digits today); it goes into a URL
	// path, so dots only between other characters: "..", "." or a
	// trailing dot would make the path climb out of the API version.
	mediaID = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}(\.[A-Za-z0-9_-]{1,63})?$`)
	// groupID is a group's id: base64-like text, bounded.
	groupID = regexp.MustCompile(`^[A-Za-z0-9_=+/.-]{1,256}$`)
	// status is a lower-case status word. Statuses Meta adds later pass
	// through to the session, which ignores those it does not know.
	status = regexp.MustCompile(`^[a-z][a-z_-]{0,31}$`)
)

// Number is what the webhook needs to know about one business number.
type Number struct {
	Tenant string
	// AppSecret is the secret of the Meta app the number's webhooks come
	// from (Config.AppSecret).
	AppSecret string
}

// Accept is the whole of POST /webhooks/meta after the body is read: it
// parses body, checks signature (the X-Hub-Signature-256 header) against
// the app secret of every tenant the payload names, and normalises the
// changes for those tenants. lookup finds a business number's tenant by
// phone_number_id. receivedAt and newID are as for Normalize.
//
// Errors wrap ErrMalformed, ErrBadSignature or ErrUnknownNumber; records
// may come with an error (see Normalize). ResponseStatus says what to
// answer.
func Accept(body []byte, signature string, lookup func(phoneNumberID string) (Number, bool), receivedAt time.Time, newID func() string) ([]*wire.Inbound, error) {
	p, err := Parse(body)
	if err != nil {
		return nil, err
	}
	tenantOf, err := Authenticate(p, body, signature, lookup)
	if err != nil {
		return nil, err
	}
	return Normalize(p, tenantOf, receivedAt, newID)
}

// SignedByAny says whether signature verifies body with one of secrets.
// The ingress asks it before parsing anything: an unsigned or forged body
// costs one HMAC per distinct app secret, not a JSON decode of up to
// 3 MiB. Authenticate then checks each named number against its own
// tenant's secret.
func SignedByAny(body []byte, signature string, secrets []string) bool {
	for _, s := range secrets {
		if ValidSignature(s, body, signature) {
			return true
		}
	}
	return false
}

// Authenticate checks the webhook signature for every business number p
// names that lookup knows, and returns the tenantOf function for Normalize,
// which knows exactly those numbers.
//
// Every known number must verify: one Meta app signs a whole payload, so a
// payload that verifies with tenant A's secret but names tenant B's number
// is either forged by someone holding A's secret or B is configured with
// the wrong secret. Either way none of it is taken (ErrBadSignature, 403):
// B's events must not be accepted on A's word, and a 403 makes Meta retry,
// so a configuration fix loses nothing. Each distinct secret is tried once.
//
// Numbers lookup does not know are left to Normalize (ErrUnknownNumber).
func Authenticate(p *Payload, body []byte, signature string, lookup func(phoneNumberID string) (Number, bool)) (func(phoneNumberID string) (string, bool), error) {
	tenants := map[string]string{}
	verified := map[string]bool{}
	ids := p.PhoneNumberIDs()
	if len(ids) > MaxPhoneNumberIDs {
		return nil, malformed("the payload names more than %d business numbers", MaxPhoneNumberIDs)
	}
	for _, id := range ids {
		if !phoneNumberID.MatchString(id) {
			continue // Normalize refuses it
		}
		n, ok := lookup(id)
		if !ok || n.Tenant == "" {
			continue
		}
		good, seen := verified[n.AppSecret]
		if !seen {
			good = ValidSignature(n.AppSecret, body, signature)
			verified[n.AppSecret] = good
		}
		if !good {
			return nil, fmt.Errorf("%w for phone_number_id %s", ErrBadSignature, id)
		}
		tenants[id] = n.Tenant
	}
	return func(id string) (string, bool) {
		t, ok := tenants[id]
		return t, ok
	}, nil
}

// ResponseStatus is the HTTP status the ingress answers a webhook with,
// given how many records it accepted (and produced) and Accept's error:
//
//   - 200 when err is nil, or when anything was accepted: the rest was
//     for numbers Parley does not serve, or could not be read, and
//     Meta's redelivery of the whole payload would not change that;
//   - 403 for ErrBadSignature, 400 for ErrMalformed, 404 for
//     ErrUnknownNumber, when nothing was accepted: Meta retries these for
//     up to seven days;
//   - 500 for any other error.
func ResponseStatus(accepted int, err error) int {
	switch {
	case err == nil || accepted > 0:
		return http.StatusOK
	case errors.Is(err, ErrBadSignature):
		return http.StatusForbidden
	case errors.Is(err, ErrMalformed):
		return http.StatusBadRequest
	case errors.Is(err, ErrUnknownNumber):
		return http.StatusNotFound
	default:
		return http.StatusInternalServerError
	}
}

// NormalizeError tells what Normalize left out of a payload. It matches
// ErrUnknownNumber when changes were about unknown numbers and
// ErrMalformed when items could not be read.
type NormalizeError struct {
	// UnknownNumbers are the phone_number_ids no tenant has, once each,
	// in payload order (at most maxReported).
	UnknownNumbers []string
	// Malformed says why each refused item was refused (at most
	// maxReported; Refused counts them all).
	Malformed []string
	Refused   int
}

// maxReported bounds the lists in a NormalizeError: a hostile or huge
// payload must not make a huge error, which the ingress logs.
const maxReported = 10

func (e *NormalizeError) Error() string {
	var b strings.Builder
	b.WriteString("meta webhook:")
	if len(e.UnknownNumbers) > 0 {
		b.WriteString(" unknown phone_number_id ")
		b.WriteString(strings.Join(e.UnknownNumbers, ", "))
		if e.Refused > 0 {
			b.WriteString(";")
		}
	}
	if e.Refused > 0 {
		fmt.Fprintf(&b, " %d refused: %s", e.Refused, strings.Join(e.Malformed, "; "))
		if e.Refused > len(e.Malformed) {
			b.WriteString("; …")
		}
	}
	return b.String()
}

// Is makes errors.Is(err, ErrUnknownNumber) and errors.Is(err,
// ErrMalformed) say which kinds of trouble the payload had.
func (e *NormalizeError) Is(target error) bool {
	switch target {
	case ErrUnknownNumber:
		return len(e.UnknownNumbers) > 0
	case ErrMalformed:
		return e.Refused > 0
	}
	return false
}

func (e *NormalizeError) unknown(id string) {
	if len(e.UnknownNumbers) < maxReported && !slices.Contains(e.UnknownNumbers, id) {
		e.UnknownNumbers = append(e.UnknownNumbers, id)
	}
}

func (e *NormalizeError) refuse(where string, err error) {
	e.Refused++
	if len(e.Malformed) < maxReported {
		e.Malformed = append(e.Malformed, where+": "+strings.TrimPrefix(err.Error(), ErrMalformed.Error()+": "))
	}
}

// Normalize turns the "messages" changes of a parsed payload into
// wire.Inbound records, in payload order:
//
//   - each change belongs to the tenant tenantOf returns for its
//     metadata.phone_number_id, so a payload about several numbers yields
//     records for several tenants, each for its own;
//   - a customer message becomes an Inbound_Message from "+"+from: text,
//     media as "meta-media:<id>" with its caption as the text, a location,
//     the title of a reply button or list row, the text of a template's
//     quick-reply button; types Parley cannot show (contacts, order,
//     unsupported, …) come through with no text, because the customer
//     still wrote and that opens WhatsApp's 24-hour window;
//   - reactions and system notices (a changed number) are left out: they
//     are not messages to answer;
//   - a status becomes an Inbound_Status for "+"+recipient_id, with the
//     first error's code for failures (131047: outside the window).
//
// tenantOf is only asked about well-formed ids. receivedAt is the moment
// the ingress accepted the request, and newID makes Parley's event id; it
// is called once per record returned.
//
// Items that cannot be read are refused one by one, and changes for
// unknown numbers skipped, so that the rest of a batch is not held hostage;
// the returned records are then accompanied by a *NormalizeError, which
// matches ErrUnknownNumber or ErrMalformed (see ResponseStatus). The error
// is nil when everything was taken or deliberately left out.
func Normalize(p *Payload, tenantOf func(phoneNumberID string) (tenant string, ok bool), receivedAt time.Time, newID func() string) ([]*wire.Inbound, error) {
	var (
		out []*wire.Inbound
		rep NormalizeError
	)
	emit := func(tenant, to, phone string, kind func(*wire.Inbound)) {
		in := &wire.Inbound{
			Tenant:       tenant,
			To:           to,
			Phone:        phone,
			Channel:      Channel,
			ReceivedAtMs: receivedAt.UnixMilli(),
		}
		kind(in)
		in.Id = newID()
		out = append(out, in)
	}
	for ei, e := range p.Entry {
		for ci, c := range e.Changes {
			v := c.Messages
			if v == nil {
				continue // another field, or a payload not from Parse
			}
			where := fmt.Sprintf("entry %d change %d", ei, ci)
			id := v.Metadata.PhoneNumberID
			if !phoneNumberID.MatchString(id) {
				rep.refuse(where, malformed("phone_number_id %q", clip(id)))
				continue
			}
			tenant, ok := tenantOf(id)
			if !ok || tenant == "" {
				rep.unknown(id)
				continue
			}
			if mp := v.MessagingProduct; mp != "" && mp != "whatsapp" {
				rep.refuse(where, malformed("messaging_product %q", clip(mp)))
				continue
			}
			to := displayNumber(v.Metadata.DisplayPhoneNumber)
			for mi := range v.Messages {
				phone, msg, err := normalizeMessage(&v.Messages[mi], v.Contacts, to)
				switch {
				case err != nil:
					rep.refuse(fmt.Sprintf("%s message %d", where, mi), err)
				case msg != nil:
					emit(tenant, id, phone, func(in *wire.Inbound) { in.Kind = &wire.Inbound_Message{Message: msg} })
				}
			}
			for si := range v.Statuses {
				phone, st, err := normalizeStatus(&v.Statuses[si])
				switch {
				case err != nil:
					rep.refuse(fmt.Sprintf("%s status %d", where, si), err)
				case st != nil:
					emit(tenant, id, phone, func(in *wire.Inbound) { in.Kind = &wire.Inbound_Status{Status: st} })
				}
			}
		}
	}
	if rep.Refused > 0 || len(rep.UnknownNumbers) > 0 {
		return out, &rep
	}
	return out, nil
}

// normalizeMessage returns the customer's number and the message, or a nil
// message for a type that is deliberately left out.
func normalizeMessage(m *Message, contacts []Contact, to string) (string, *wire.CustomerMessage, error) {
	switch m.Type {
	case "reaction", "system":
		return "", nil, nil
	}
	if !providerID.MatchString(m.ID) {
		return "", nil, malformed("id %q is not a message id", clip(m.ID))
	}
	phone, err := waNumber("from", m.From)
	if err != nil {
		return "", nil, err
	}
	if m.GroupID != "" && !groupID.MatchString(m.GroupID) {
		return "", nil, malformed("group_id %q", clip(m.GroupID))
	}
	msg := &wire.CustomerMessage{
		ProviderId:  m.ID,
		ProfileName: profileName(contacts, phone),
		To:          to,
		GroupId:     m.GroupID,
	}
	media := func(kind string, o *MediaObject) error {
		if o == nil {
			return malformed("type %s without %s", kind, kind)
		}
		if !mediaID.MatchString(o.ID) {
			return malformed("%s id %q", kind, clip(o.ID))
		}
		msg.Media = []*wire.Media{{Url: MediaURLPrefix + o.ID, ContentType: o.MimeType}}
		msg.Text = o.Caption
		return nil
	}
	switch m.Type {
	case "text":
		if m.Text != nil {
			msg.Text = m.Text.Body
		}
	case "image":
		err = media(m.Type, m.Image)
	case "document":
		err = media(m.Type, m.Document)
	case "audio":
		err = media(m.Type, m.Audio)
	case "video":
		err = media(m.Type, m.Video)
	case "sticker":
		err = media(m.Type, m.Sticker)
	case "location":
		msg.Location, err = location(m.Location)
	case "interactive":
		msg.Text, msg.ReplyId = interactiveChoice(m.Interactive)
		if i := m.Interactive; i != nil && i.Type == "nfm_reply" && i.NfmReply != nil {
			msg.FlowResponse, err = flowResponse(i.NfmReply.ResponseJSON)
		}
	case "button":
		// A quick-reply button of a template: Text is what the customer
		// saw and pressed; Payload is the business's own value.
		if m.Button != nil {
			msg.Text, msg.ReplyId = m.Button.Text, m.Button.Payload
		}
	}
	if err != nil {
		return "", nil, err
	}
	return phone, msg, nil
}

// MaxFlowResponse bounds a Flow answer's JSON: a form's fields, not a
// file.
const MaxFlowResponse = 16 << 10

// flowResponse checks a Flow's response_json, a JSON object, and returns
// it compact: it is kept with the message and given to the brain.
func flowResponse(raw string) (string, error) {
	if raw == "" {
		return "", nil
	}
	if len(raw) > MaxFlowResponse {
		return "", malformed("nfm_reply response_json of %d bytes, more than %d", len(raw), MaxFlowResponse)
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal([]byte(raw), &obj); err != nil {
		return "", malformed("nfm_reply response_json is not a JSON object")
	}
	var b bytes.Buffer
	if err := json.Compact(&b, []byte(raw)); err != nil {
		return "", malformed("nfm_reply response_json is not a JSON object")
	}
	return b.String(), nil
}

// interactiveChoice is what the customer chose: as they saw it, and the
// id the business gave the button or row.
func interactiveChoice(i *Interactive) (text, id string) {
	switch {
	case i == nil:
		return "", ""
	case i.Type == "button_reply" && i.ButtonReply != nil:
		return i.ButtonReply.Title, i.ButtonReply.ID
	case i.Type == "list_reply" && i.ListReply != nil:
		return i.ListReply.Title, i.ListReply.ID
	case i.Type == "nfm_reply" && i.NfmReply != nil:
		return i.NfmReply.Body, ""
	}
	return "", ""
}

// profileName is the WhatsApp name of the contact who sent from phone. A
// batch can hold several customers' messages, so the contact is matched by
// wa_id; a lone contact whose wa_id differs (Meta rewrites some countries'
// numbers) is still the sender.
func profileName(contacts []Contact, phone string) string {
	for _, c := range contacts {
		if "+"+strings.TrimPrefix(c.WaID, "+") == phone {
			return c.Profile.Name
		}
	}
	if len(contacts) == 1 {
		return contacts[0].Profile.Name
	}
	return ""
}

func normalizeStatus(s *Status) (string, *wire.DeliveryStatus, error) {
	if rt := s.RecipientType; rt != "" && rt != "individual" {
		// A group message: Parley speaks with one customer at a time.
		return "", nil, nil
	}
	if !providerID.MatchString(s.ID) {
		return "", nil, malformed("id %q is not a message id", clip(s.ID))
	}
	st := strings.ToLower(s.Status)
	if !status.MatchString(st) {
		return "", nil, malformed("status %q", clip(s.Status))
	}
	// Parley sent the message, so the customer is the recipient.
	phone, err := waNumber("recipient_id", s.RecipientID)
	if err != nil {
		return "", nil, err
	}
	ds := &wire.DeliveryStatus{ProviderId: s.ID, Status: st}
	if len(s.Errors) > 0 && s.Errors[0].Code > 0 {
		ds.ErrorCode = strconv.Itoa(s.Errors[0].Code)
	}
	return phone, ds, nil
}

// location reads a shared location. The place's name and address become
// one label, without saying the name twice ("Trafalgar Square" and
// "Trafalgar Square, London"), as the twilio channel does.
func location(l *Location) (*wire.Location, error) {
	if l == nil {
		return nil, malformed("type location without location")
	}
	// Written so that NaN, which compares false to everything, fails
	// (JSON has no NaN, but a Payload need not come from JSON).
	if !(l.Latitude >= -90 && l.Latitude <= 90) || !(l.Longitude >= -180 && l.Longitude <= 180) {
		return nil, malformed("location %v,%v", l.Latitude, l.Longitude)
	}
	label, address := strings.TrimSpace(l.Name), strings.TrimSpace(l.Address)
	switch {
	case label == "" || strings.Contains(address, label):
		label = address
	case address != "" && !strings.Contains(label, address):
		label += ", " + address
	}
	return &wire.Location{Latitude: l.Latitude, Longitude: l.Longitude, Label: label}, nil
}

// waNumber turns a wa_id ("447700900123") into E.164 ("+447700900123").
// Meta sends digits only; a leading '+' is tolerated.
func waNumber(field, v string) (string, error) {
	n := "+" + strings.TrimPrefix(v, "+")
	if !e164.Valid(n) {
		return "", malformed("%s %q is not a WhatsApp number", field, clip(v))
	}
	return n, nil
}

// displayNumber is the business number in E.164, or "" when Meta's display
// form cannot be read as one. It is informational: the tenant comes from
// phone_number_id, so an odd display number does not refuse the message.
func displayNumber(v string) string {
	n := strings.Map(func(r rune) rune {
		switch r {
		case ' ', '-', '(', ')', '.', '+':
			return -1
		}
		return r
	}, v)
	if n = "+" + n; e164.Valid(n) {
		return n
	}
	return ""
}

// clip shortens a hostile value before it goes into an error message, which
// the ingress logs and may return to the caller.
func clip(s string) string { return clipN(s, 40) }

func clipN(s string, limit int) string {
	if len(s) <= limit {
		return strings.ToValidUTF8(s, "\uFFFD")
	}
	return strings.ToValidUTF8(s[:limit], "\uFFFD") + "…"
}
