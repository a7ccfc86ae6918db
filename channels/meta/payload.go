package meta

import (
	"bytes"
	"encoding/json"
	"io"
	"strings"
)

// ObjectWhatsApp is the "object" of every WhatsApp Business webhook.
const ObjectWhatsApp = "whatsapp_business_account"

// FieldMessages is the change field that carries messages and statuses.
// An app subscribed to other fields (account_update,
// message_template_status_update, …) receives them at the same URL, in
// other shapes.
const FieldMessages = "messages"

// Payload is a WhatsApp Business webhook as Meta documents it:
//
//	{"object": "whatsapp_business_account",
//	 "entry": [{"id": "<WABA id>",
//	            "changes": [{"field": "messages",
//	                         "value": {"messaging_product": "whatsapp",
//	                                   "metadata": {"display_phone_number", "phone_number_id"},
//	                                   "contacts": [...], "messages": [...], "statuses": [...]}}]}]}
//
// Only what Parley uses is decoded; unknown fields are ignored, because
// Meta adds fields without notice.
type Payload struct {
	Object string  `json:"object"`
	Entry  []Entry `json:"entry"`
}

// Entry is one WhatsApp Business Account's changes.
type Entry struct {
	ID      string   `json:"id"` // WhatsApp Business Account id
	Changes []Change `json:"changes"`
}

// Change is one change notification. Value is kept raw because its shape
// depends on Field; Parse decodes it into Messages when Field is
// FieldMessages.
type Change struct {
	Field string          `json:"field"`
	Value json.RawMessage `json:"value"`
	// Messages is Value decoded, for Field "messages"; nil otherwise.
	Messages *Value `json:"-"`
}

// Value is the value of a "messages" change: what happened on one business
// number.
type Value struct {
	MessagingProduct string    `json:"messaging_product"`
	Metadata         Metadata  `json:"metadata"`
	Contacts         []Contact `json:"contacts"`
	Messages         []Message `json:"messages"`
	Statuses         []Status  `json:"statuses"`
}

// Metadata names the business number a change is about.
type Metadata struct {
	DisplayPhoneNumber string `json:"display_phone_number"` // digits, no '+'
	PhoneNumberID      string `json:"phone_number_id"`
}

// Contact is the customer's WhatsApp profile.
type Contact struct {
	Profile struct {
		Name string `json:"name"`
	} `json:"profile"`
	WaID string `json:"wa_id"` // the customer's number, digits without '+'
}

// Message is one message a customer sent. Type says which of the typed
// fields is set.
type Message struct {
	From string `json:"from"` // wa_id of the sender
	ID   string `json:"id"`   // "wamid.…"
	// GroupID is set for a message written in a group the business
	// number is in (Meta's groups webhook).
	GroupID   string `json:"group_id,omitempty"`
	Timestamp string `json:"timestamp"`
	Type      string `json:"type"`

	Text *struct {
		Body string `json:"body"`
	} `json:"text,omitempty"`
	Image       *MediaObject `json:"image,omitempty"`
	Document    *MediaObject `json:"document,omitempty"`
	Audio       *MediaObject `json:"audio,omitempty"`
	Video       *MediaObject `json:"video,omitempty"`
	Sticker     *MediaObject `json:"sticker,omitempty"`
	Location    *Location    `json:"location,omitempty"`
	Interactive *Interactive `json:"interactive,omitempty"`
	Button      *struct {
		Payload string `json:"payload"`
		Text    string `json:"text"`
	} `json:"button,omitempty"`
	Reaction *struct {
		MessageID string `json:"message_id"`
		Emoji     string `json:"emoji"`
	} `json:"reaction,omitempty"`
	// Context is set when the customer replied to, or pressed a button on,
	// an earlier message.
	Context *struct {
		From string `json:"from"`
		ID   string `json:"id"`
	} `json:"context,omitempty"`
	Errors []Error `json:"errors,omitempty"`
}

// MediaObject is an image, document, audio, video or sticker. The file is
// not in the webhook: it is fetched from the Graph API by ID, with the
// tenant's access token.
type MediaObject struct {
	ID       string `json:"id"`
	MimeType string `json:"mime_type"`
	SHA256   string `json:"sha256,omitempty"`
	Caption  string `json:"caption,omitempty"`  // image, video, document
	Filename string `json:"filename,omitempty"` // document
	Voice    bool   `json:"voice,omitempty"`    // audio recorded in WhatsApp
}

// Location is a shared location: a dropped pin, or a place with a name
// and address.
type Location struct {
	Latitude  float64 `json:"latitude"`
	Longitude float64 `json:"longitude"`
	Name      string  `json:"name,omitempty"`
	Address   string  `json:"address,omitempty"`
	URL       string  `json:"url,omitempty"`
}

// Interactive is the customer's answer to an interactive message: a reply
// button or a list row.
type Interactive struct {
	Type        string `json:"type"` // button_reply | list_reply | nfm_reply
	ButtonReply *struct {
		ID    string `json:"id"`
		Title string `json:"title"`
	} `json:"button_reply,omitempty"`
	ListReply *struct {
		ID          string `json:"id"`
		Title       string `json:"title"`
		Description string `json:"description,omitempty"`
	} `json:"list_reply,omitempty"`
	// NfmReply is a WhatsApp Flow's answer.
	NfmReply *struct {
		Name         string `json:"name"`
		Body         string `json:"body"`
		ResponseJSON string `json:"response_json"`
	} `json:"nfm_reply,omitempty"`
}

// Status is a report on a message the business sent.
type Status struct {
	ID            string  `json:"id"`     // the wamid the send returned
	Status        string  `json:"status"` // sent | delivered | read | failed | …
	Timestamp     string  `json:"timestamp"`
	RecipientID   string  `json:"recipient_id"` // the customer's wa_id
	RecipientType string  `json:"recipient_type,omitempty"`
	Errors        []Error `json:"errors,omitempty"`
}

// Error is an error Meta attaches to a status or message.
type Error struct {
	Code      int    `json:"code"`
	Title     string `json:"title"`
	Message   string `json:"message,omitempty"`
	ErrorData struct {
		Details string `json:"details"`
	} `json:"error_data"`
}

// Parse decodes a webhook body. It fails, with an error wrapping
// ErrMalformed, on anything that is not one JSON object of a WhatsApp
// Business webhook, and on a "messages" change whose value does not have
// Meta's types. Changes of other fields are kept raw and not checked.
//
// Invalid UTF-8 inside JSON strings is replaced with U+FFFD by the
// decoder, so every string Parse returns is valid UTF-8 (as protobuf
// needs).
func Parse(body []byte) (*Payload, error) {
	var p Payload
	d := json.NewDecoder(bytes.NewReader(body))
	if err := d.Decode(&p); err != nil {
		return nil, malformed("%s", decodeError(err))
	}
	// One object and nothing after it: trailing data would be outside
	// what the decoder read but inside what Meta signed.
	if _, err := d.Token(); err != io.EOF {
		return nil, malformed("data after the JSON object")
	}
	if p.Object != ObjectWhatsApp {
		return nil, malformed("object %q is not %q", clip(p.Object), ObjectWhatsApp)
	}
	for i := range p.Entry {
		for j := range p.Entry[i].Changes {
			c := &p.Entry[i].Changes[j]
			if c.Field != FieldMessages {
				continue
			}
			v := new(Value)
			if err := json.Unmarshal(c.Value, v); err != nil {
				return nil, malformed("entry %d change %d: %s", i, j, decodeError(err))
			}
			c.Messages = v
		}
	}
	return &p, nil
}

// MaxPhoneNumberIDs bounds the distinct business numbers one payload may
// name. Meta batches the changes of one app's numbers, a handful at a
// time; a payload naming more is not Meta's, and bounding it bounds the
// lookups and signature checks it can cause.
const MaxPhoneNumberIDs = 64

// PhoneNumberIDs lists, once each and in payload order, the business
// numbers whose messages and statuses p carries. It stops at
// MaxPhoneNumberIDs+1: more than MaxPhoneNumberIDs is refused anyway.
func (p *Payload) PhoneNumberIDs() []string {
	var ids []string
	seen := map[string]struct{}{}
	for _, e := range p.Entry {
		for _, c := range e.Changes {
			if c.Messages == nil || c.Messages.Metadata.PhoneNumberID == "" {
				continue
			}
			id := c.Messages.Metadata.PhoneNumberID
			if _, dup := seen[id]; dup {
				continue
			}
			seen[id] = struct{}{}
			ids = append(ids, id)
			if len(ids) > MaxPhoneNumberIDs {
				return ids
			}
		}
	}
	return ids
}

// decodeError is a JSON decoding error as the 400 answer shows it. The
// decoder's messages name the offending character or the field path of
// Parley's own types, not the input, but are bounded all the same.
func decodeError(err error) string {
	msg := err.Error()
	for {
		rest, ok := strings.CutPrefix(msg, "json: ")
		if !ok {
			break
		}
		msg = rest
	}
	return "json: " + clipN(msg, 120)
}
