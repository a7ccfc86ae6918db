package metatest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/parleyhq/parley/channels/meta"
)

// SignedWebhook returns the X-Hub-Signature-256 header value Meta would
// send with payload, signed with appSecret.
func SignedWebhook(appSecret string, payload []byte) (header string) {
	return meta.Signature(appSecret, payload)
}

// Change is one "messages" change of a webhook payload: what happened on
// one business number.
type Change struct {
	PhoneNumberID string // metadata.phone_number_id
	DisplayNumber string // metadata.display_phone_number, digits
	// Contacts and Messages are customers' messages; Statuses reports on
	// messages the business sent. Each is a JSON object in Meta's shape;
	// TextMessage and StatusUpdate make the common ones.
	Contacts []map[string]any
	Messages []map[string]any
	Statuses []map[string]any
}

// Payload builds a webhook body: one entry per change, each with its own
// WhatsApp Business Account id, as Meta batches events of several numbers.
// The JSON is Meta's shape, written here independently of the meta
// package's types so that tests of the parser check it against the
// documented form and not against itself.
func Payload(changes ...Change) []byte {
	entries := make([]map[string]any, 0, len(changes))
	for i, c := range changes {
		value := map[string]any{
			"messaging_product": "whatsapp",
			"metadata": map[string]string{
				"display_phone_number": c.DisplayNumber,
				"phone_number_id":      c.PhoneNumberID,
			},
		}
		if len(c.Contacts) > 0 {
			value["contacts"] = c.Contacts
		}
		if len(c.Messages) > 0 {
			value["messages"] = c.Messages
		}
		if len(c.Statuses) > 0 {
			value["statuses"] = c.Statuses
		}
		entries = append(entries, map[string]any{
			"id":      strconv.Itoa(102290129340398 + i),
			"changes": []map[string]any{{"value": value, "field": "messages"}},
		})
	}
	b, err := json.Marshal(map[string]any{"object": "whatsapp_business_account", "entry": entries})
	if err != nil {
		panic(err) // maps of strings and numbers always encode
	}
	return b
}

// Contact is a customer's profile for Change.Contacts; phone is E.164
// ("+447700900123") or digits.
func Contact(phone, name string) map[string]any {
	return map[string]any{"profile": map[string]string{"name": name}, "wa_id": digits(phone)}
}

// TextMessage is a customer's text message for Change.Messages.
func TextMessage(wamid, from, text string) map[string]any {
	return map[string]any{
		"from":      digits(from),
		"id":        wamid,
		"timestamp": strconv.FormatInt(time.Now().Unix(), 10),
		"type":      "text",
		"text":      map[string]string{"body": text},
	}
}

// StatusUpdate is a status for Change.Statuses: "sent", "delivered",
// "read" or "failed" with errorCode (0 for none) of the message wamid sent
// to recipient.
func StatusUpdate(wamid, recipient, status string, errorCode int) map[string]any {
	s := map[string]any{
		"id":           wamid,
		"status":       status,
		"timestamp":    strconv.FormatInt(time.Now().Unix(), 10),
		"recipient_id": digits(recipient),
	}
	if errorCode != 0 {
		s["errors"] = []map[string]any{{
			"code":       errorCode,
			"title":      "Error " + strconv.Itoa(errorCode),
			"message":    "Error " + strconv.Itoa(errorCode),
			"error_data": map[string]string{"details": "scripted by metatest"},
		}}
	}
	return s
}

// TextWebhook is a whole webhook body carrying one text message from a
// customer to the business number phoneNumberID.
func TextWebhook(phoneNumberID, wamid, from, profileName, text string) []byte {
	return Payload(Change{
		PhoneNumberID: phoneNumberID,
		DisplayNumber: TestDisplayNumber,
		Contacts:      []map[string]any{Contact(from, profileName)},
		Messages:      []map[string]any{TextMessage(wamid, from, text)},
	})
}

// StatusWebhook is a whole webhook body carrying one status of a message
// the business number phoneNumberID sent.
func StatusWebhook(phoneNumberID, wamid, recipient, status string, errorCode int) []byte {
	return Payload(Change{
		PhoneNumberID: phoneNumberID,
		DisplayNumber: TestDisplayNumber,
		Statuses:      []map[string]any{StatusUpdate(wamid, recipient, status, errorCode)},
	})
}

// Post delivers payload to webhookURL as Meta does — POST, JSON, signed
// with appSecret in X-Hub-Signature-256 — and returns the HTTP status the
// receiver answered.
func Post(ctx context.Context, webhookURL, appSecret string, payload []byte) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, webhookURL, bytes.NewReader(payload))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "facebookexternalua")
	req.Header.Set(meta.SignatureHeader, SignedWebhook(appSecret, payload))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// DeliverStatus plays Meta's part after a send: it POSTs a signed status
// webhook for m ("sent", "delivered", "read", "failed" with errorCode) to
// webhookURL. An answer other than 200 is an error.
func (s *Server) DeliverStatus(ctx context.Context, webhookURL, appSecret string, m Message, status string, errorCode int) error {
	code, err := Post(ctx, webhookURL, appSecret, StatusWebhook(m.PhoneNumberID, m.ID, m.To, status, errorCode))
	if err != nil {
		return err
	}
	if code != http.StatusOK {
		return fmt.Errorf("metatest: status webhook to %s answered %d", webhookURL, code)
	}
	return nil
}

func digits(phone string) string { return strings.TrimPrefix(phone, "+") }
