package meta

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/parleyhq/parley/channels/providertest"
	"github.com/parleyhq/parley/internal/e164"
	"github.com/parleyhq/parley/wire"
)

// Two tenants' business numbers, as in testdata: acme's is Meta's example
// number, beta's another number of the same agency.
const (
	acmeNumberID = "106540352242922"
	betaNumberID = "107655329552231"
	acmeSecret   = "0123456789abcdef0123456789abcdef"
	betaSecret   = "fedcba9876543210fedcba9876543210"
)

var receivedAt = time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)

// testdata/*.json (providertest.TestdataFiles) are webhook bodies in
// Meta's documented shapes.
func load(t testing.TB, name string) []byte {
	t.Helper()
	return providertest.Load(t, name)
}

func tenantOf(known map[string]string) func(string) (string, bool) {
	return func(id string) (string, bool) {
		t, ok := known[id]
		return t, ok
	}
}

var bothTenants = map[string]string{acmeNumberID: "acme", betaNumberID: "beta"}

// ids hands out evt-1, evt-2, … and counts the calls.
type ids struct{ n int }

func (c *ids) next() string { c.n++; return fmt.Sprint("evt-", c.n) }

// Normalize stamps each record with Parley's envelope: an id of its own
// from newID, the time it was received and the channel. What the payloads
// normalise to is in incoming_test.go, through the webhook route.
func TestNormalizeEnvelope(t *testing.T) {
	for _, f := range providertest.TestdataFiles(t) {
		t.Run(f, func(t *testing.T) {
			p, err := Parse(load(t, f))
			if err != nil {
				t.Fatal(err)
			}
			var c ids
			got, _ := Normalize(p, tenantOf(bothTenants), receivedAt, c.next)
			if c.n != len(got) {
				t.Fatalf("newID called %d times for %d records", c.n, len(got))
			}
			for i, in := range got {
				if in.Id != fmt.Sprint("evt-", i+1) || in.Channel != Channel || in.ReceivedAtMs != receivedAt.UnixMilli() {
					t.Fatalf("record %d: envelope %v", i, in)
				}
			}
		})
	}
}

func TestChannelName(t *testing.T) {
	// wire.Inbound.channel documents twilio | meta | sim | api.
	if Channel != "meta" {
		t.Fatalf("Channel %q", Channel)
	}
}

// The ingress path end to end: signed bodies, tenants found by number,
// each number's tenant proving the payload with its own app secret.
func TestAccept(t *testing.T) {
	numbers := map[string]Number{
		acmeNumberID: {Tenant: "acme", AppSecret: acmeSecret},
		betaNumberID: {Tenant: "beta", AppSecret: betaSecret},
	}
	lookup := func(m map[string]Number) func(string) (Number, bool) {
		return func(id string) (Number, bool) { n, ok := m[id]; return n, ok }
	}
	text := load(t, "text_message.json")
	two := load(t, "two_numbers.json")
	sameApp := map[string]Number{
		acmeNumberID: {Tenant: "acme", AppSecret: acmeSecret},
		betaNumberID: {Tenant: "beta", AppSecret: acmeSecret},
	}
	onlyAcme := map[string]Number{acmeNumberID: numbers[acmeNumberID]}
	cases := []struct {
		name    string
		body    []byte
		sig     string
		numbers map[string]Number
		tenants []string // of the records, in order
		is      error
		status  int
	}{
		{"signed by the tenant's app", text, Signature(acmeSecret, text), numbers, []string{"acme"}, nil, 200},
		{"no signature", text, "", numbers, nil, ErrBadSignature, 403},
		{"signed by another tenant's app", text, Signature(betaSecret, text), numbers, nil, ErrBadSignature, 403},
		{"signed over another body", text, Signature(acmeSecret, two), numbers, nil, ErrBadSignature, 403},
		// One app for both numbers: both tenants' changes are proven.
		{"two numbers of one app", two, Signature(acmeSecret, two), sameApp, []string{"acme", "beta", "beta"}, nil, 200},
		// Two apps: a payload signed by acme's app cannot speak for beta's
		// number, and is not half-accepted either.
		{"acme's app naming beta's number", two, Signature(acmeSecret, two), numbers, nil, ErrBadSignature, 403},
		{"beta's app naming acme's number", two, Signature(betaSecret, two), numbers, nil, ErrBadSignature, 403},
		// Numbers Parley does not serve are reported, the rest accepted.
		{"one number unknown", two, Signature(acmeSecret, two), onlyAcme, []string{"acme"}, ErrUnknownNumber, 200},
		{"all numbers unknown", load(t, "unknown_number.json"), "sha256=00", numbers, nil, ErrUnknownNumber, 404},
		{"not json", []byte("hub.mode=subscribe"), "", numbers, nil, ErrMalformed, 400},
		{"nothing for sessions", load(t, "template_status_update.json"), "", numbers, nil, nil, 200},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var c ids
			got, err := Accept(tc.body, tc.sig, lookup(tc.numbers), receivedAt, c.next)
			if tc.is == nil && err != nil || tc.is != nil && !errors.Is(err, tc.is) {
				t.Fatalf("error %v, want %v", err, tc.is)
			}
			var tenants []string
			for _, in := range got {
				tenants = append(tenants, in.Tenant)
			}
			if !slices.Equal(tenants, tc.tenants) {
				t.Fatalf("tenants %v, want %v", tenants, tc.tenants)
			}
			if s := ResponseStatus(len(got), err); s != tc.status {
				t.Fatalf("status %d, want %d", s, tc.status)
			}
		})
	}
}

// Each distinct app secret is tried once, however many numbers share it.
func TestAuthenticateLooksUpEachNumberOnce(t *testing.T) {
	two := load(t, "two_numbers.json")
	p, err := Parse(two)
	if err != nil {
		t.Fatal(err)
	}
	var asked []string
	tenantOf, err := Authenticate(p, two, Signature(acmeSecret, two), func(id string) (Number, bool) {
		asked = append(asked, id)
		return Number{Tenant: bothTenants[id], AppSecret: acmeSecret}, true
	})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(asked, []string{acmeNumberID, betaNumberID}) {
		t.Fatalf("asked %v", asked)
	}
	if tn, ok := tenantOf(betaNumberID); !ok || tn != "beta" {
		t.Fatalf("beta → %q %v", tn, ok)
	}
	if _, ok := tenantOf("999"); ok {
		t.Fatal("tenantOf knows a number the payload did not name")
	}
}

// mutate loads a testdata payload as generic JSON, lets f change it, and
// returns the new body.
func mutate(t testing.TB, name string, f func(p map[string]any)) []byte {
	t.Helper()
	var p map[string]any
	if err := json.Unmarshal(load(t, name), &p); err != nil {
		t.Fatal(err)
	}
	f(p)
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func value(p map[string]any) map[string]any {
	entry := p["entry"].([]any)[0].(map[string]any)
	return entry["changes"].([]any)[0].(map[string]any)["value"].(map[string]any)
}

func item(p map[string]any, list string) map[string]any {
	return value(p)[list].([]any)[0].(map[string]any)
}

func firstMessage(p map[string]any) map[string]any { return item(p, "messages") }
func firstStatus(p map[string]any) map[string]any  { return item(p, "statuses") }

func normalizeBody(t *testing.T, body []byte) ([]*wire.Inbound, error) {
	t.Helper()
	p, err := Parse(body)
	if err != nil {
		return nil, err
	}
	var c ids
	out, err := Normalize(p, tenantOf(bothTenants), receivedAt, c.next)
	if c.n != len(out) {
		t.Fatalf("newID called %d times for %d records", c.n, len(out))
	}
	return out, err
}

func TestNormalizeVariants(t *testing.T) {
	one := func(check func(*wire.Inbound) bool) func([]*wire.Inbound) bool {
		return func(out []*wire.Inbound) bool { return len(out) == 1 && check(out[0]) }
	}
	cases := []struct {
		name   string
		file   string
		mutate func(map[string]any)
		check  func([]*wire.Inbound) bool
	}{
		{"no contacts: no profile name", "text_message.json",
			func(p map[string]any) { delete(value(p), "contacts") },
			one(func(in *wire.Inbound) bool { return in.GetMessage().GetProfileName() == "" })},
		{"lone contact with another wa_id is still the sender", "text_message.json",
			func(p map[string]any) { item(p, "contacts")["wa_id"] = "5215512345678" },
			one(func(in *wire.Inbound) bool { return in.GetMessage().GetProfileName() == "Sheena Nelson" })},
		{"several contacts: matched by wa_id", "text_message.json",
			func(p map[string]any) {
				value(p)["contacts"] = []any{
					map[string]any{"profile": map[string]any{"name": "Other"}, "wa_id": "447700900999"},
					map[string]any{"profile": map[string]any{"name": "Right"}, "wa_id": "16505551234"},
				}
			},
			one(func(in *wire.Inbound) bool { return in.GetMessage().GetProfileName() == "Right" })},
		{"from with a plus is tolerated", "text_message.json",
			func(p map[string]any) { firstMessage(p)["from"] = "+16505551234" },
			one(func(in *wire.Inbound) bool { return in.Phone == "+16505551234" })},
		{"unreadable display number leaves To empty", "text_message.json",
			func(p map[string]any) { value(p)["metadata"].(map[string]any)["display_phone_number"] = "Acme Salon" },
			one(func(in *wire.Inbound) bool { return in.GetMessage().GetTo() == "" && in.Tenant == "acme" })},
		{"formatted display number", "text_message.json",
			func(p map[string]any) {
				value(p)["metadata"].(map[string]any)["display_phone_number"] = "+1 (555) 078-3881"
			},
			one(func(in *wire.Inbound) bool { return in.GetMessage().GetTo() == "+15550783881" })},
		{"text type without text", "text_message.json",
			func(p map[string]any) { delete(firstMessage(p), "text") },
			one(func(in *wire.Inbound) bool { m := in.GetMessage(); return m != nil && m.Text == "" })},
		{"video with caption", "image_message.json",
			func(p map[string]any) {
				m := firstMessage(p)
				m["type"] = "video"
				m["video"] = map[string]any{"id": "77", "mime_type": "video/mp4", "caption": "look"}
				delete(m, "image")
			},
			one(func(in *wire.Inbound) bool {
				m := in.GetMessage()
				return m.Text == "look" && len(m.Media) == 1 && m.Media[0].Url == "meta-media:77" && m.Media[0].ContentType == "video/mp4"
			})},
		{"location: a dropped pin", "location_message.json",
			func(p map[string]any) {
				l := firstMessage(p)["location"].(map[string]any)
				delete(l, "name")
				delete(l, "address")
				delete(l, "url")
			},
			one(func(in *wire.Inbound) bool { l := in.GetMessage().GetLocation(); return l != nil && l.Label == "" })},
		{"location: name and a different address", "location_message.json",
			func(p map[string]any) { firstMessage(p)["location"].(map[string]any)["name"] = "National Gallery" },
			one(func(in *wire.Inbound) bool {
				return in.GetMessage().GetLocation().GetLabel() == "National Gallery, Trafalgar Square, London WC2N 5DN"
			})},
		{"interactive flow answer", "interactive_button_reply.json",
			func(p map[string]any) {
				firstMessage(p)["interactive"] = map[string]any{"type": "nfm_reply",
					"nfm_reply": map[string]any{"name": "flow", "body": "Sent", "response_json": `{"a":1}`}}
			},
			one(func(in *wire.Inbound) bool { return in.GetMessage().GetText() == "Sent" })},
		{"interactive of an unknown kind", "interactive_button_reply.json",
			func(p map[string]any) {
				firstMessage(p)["interactive"] = map[string]any{"type": "call_permission_reply"}
			},
			one(func(in *wire.Inbound) bool { m := in.GetMessage(); return m != nil && m.Text == "" })},
		{"a type Meta adds later", "text_message.json",
			func(p map[string]any) { firstMessage(p)["type"] = "hologram"; firstMessage(p)["hologram"] = 1 },
			one(func(in *wire.Inbound) bool { m := in.GetMessage(); return m != nil && m.Text == "" })},
		{"system notice is left out", "text_message.json",
			func(p map[string]any) { firstMessage(p)["type"] = "system" },
			func(out []*wire.Inbound) bool { return len(out) == 0 }},
		{"status in capitals", "status_delivered.json",
			func(p map[string]any) { firstStatus(p)["status"] = "DELIVERED" },
			one(func(in *wire.Inbound) bool { return in.GetStatus().GetStatus() == "delivered" })},
		{"status Meta adds later passes through", "status_delivered.json",
			func(p map[string]any) { firstStatus(p)["status"] = "played" },
			one(func(in *wire.Inbound) bool { return in.GetStatus().GetStatus() == "played" })},
		{"failed without errors", "status_failed_131047.json",
			func(p map[string]any) { delete(firstStatus(p), "errors") },
			one(func(in *wire.Inbound) bool { s := in.GetStatus(); return s.Status == "failed" && s.ErrorCode == "" })},
		{"group status is left out", "status_delivered.json",
			func(p map[string]any) {
				firstStatus(p)["recipient_type"] = "group"
				firstStatus(p)["recipient_id"] = "120363"
			},
			func(out []*wire.Inbound) bool { return len(out) == 0 }},
		{"invalid UTF-8 becomes U+FFFD and still encodes", "text_message.json",
			func(p map[string]any) {}, // replaced below on the raw body
			one(func(in *wire.Inbound) bool { return strings.Contains(in.GetMessage().GetText(), "\uFFFD") })},
		{"unknown fields are ignored", "text_message.json",
			func(p map[string]any) {
				p["something_new"] = []any{1, "x"}
				value(p)["also_new"] = map[string]any{"k": true}
				firstMessage(p)["referral"] = map[string]any{"source_url": "https://fb.me/x"}
			},
			one(func(in *wire.Inbound) bool { return in.GetMessage().GetText() == "Does it come in another color?" })},
		{"messages then statuses of one change, in order", "text_message.json",
			func(p map[string]any) {
				v := value(p)
				m := firstMessage(p)
				second := map[string]any{"from": "447700900123", "id": "wamid.second", "type": "text",
					"text": map[string]any{"body": "two"}}
				v["messages"] = []any{m, second}
				v["statuses"] = []any{map[string]any{"id": "wamid.out", "status": "read", "recipient_id": "16505551234"}}
			},
			func(out []*wire.Inbound) bool {
				return len(out) == 3 && out[0].GetMessage().GetText() == "Does it come in another color?" &&
					out[1].GetMessage().GetText() == "two" && out[1].Phone == "+447700900123" &&
					out[2].GetStatus().GetStatus() == "read" && out[2].Id == "evt-3"
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			body := mutate(t, tc.file, tc.mutate)
			if strings.HasPrefix(tc.name, "invalid UTF-8") {
				body = []byte(strings.Replace(string(body), "another", "an\xffother", 1))
			}
			out, err := normalizeBody(t, body)
			if err != nil {
				t.Fatal(err)
			}
			if !tc.check(out) {
				t.Fatalf("got %v", out)
			}
			for _, in := range out {
				if _, err := proto.Marshal(in); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

func TestParseRejectsMalformed(t *testing.T) {
	cases := []struct {
		name, body string
	}{
		{"empty", ""},
		{"not json", "object=whatsapp_business_account"},
		{"truncated", `{"object":"whatsapp_business_account","entry":[`},
		{"array", `[{"object":"whatsapp_business_account"}]`},
		{"null", `null`},
		{"no object", `{"entry":[]}`},
		{"another object", `{"object":"page","entry":[]}`},
		{"instagram", `{"object":"instagram","entry":[]}`},
		{"trailing data", `{"object":"whatsapp_business_account","entry":[]} {}`},
		{"trailing garbage", `{"object":"whatsapp_business_account","entry":[]}}`},
		{"entry not a list", `{"object":"whatsapp_business_account","entry":{}}`},
		{"messages change without value", `{"object":"whatsapp_business_account","entry":[{"changes":[{"field":"messages"}]}]}`},
		{"latitude a string", string(mutate(t, "location_message.json", func(p map[string]any) {
			firstMessage(p)["location"].(map[string]any)["latitude"] = "51.5"
		}))},
		{"messages not a list", string(mutate(t, "text_message.json", func(p map[string]any) { value(p)["messages"] = "hi" }))},
		{"error code a string", string(mutate(t, "status_failed_131047.json", func(p map[string]any) {
			firstStatus(p)["errors"].([]any)[0].(map[string]any)["code"] = "131047"
		}))},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Parse([]byte(tc.body))
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("got %v, %v; want ErrMalformed", p, err)
			}
			if len(err.Error()) > 200 {
				t.Fatalf("error echoes too much input: %q", err)
			}
		})
	}
	// Other fields are not checked: their shapes are not ours.
	if _, err := Parse([]byte(`{"object":"whatsapp_business_account","entry":[{"changes":[{"field":"account_update","value":{"messages":"not a list"}}]}]}`)); err != nil {
		t.Fatal(err)
	}
}

func TestNormalizeRefusesUnreadableItems(t *testing.T) {
	cases := []struct {
		name   string
		file   string
		mutate func(map[string]any)
		detail string // in the error message
	}{
		{"no from", "text_message.json", func(p map[string]any) { delete(firstMessage(p), "from") }, "from"},
		{"from not a number", "text_message.json", func(p map[string]any) { firstMessage(p)["from"] = "sheena" }, "from"},
		{"from a business-scoped user id", "text_message.json", func(p map[string]any) { firstMessage(p)["from"] = "US.13491208655302741918" }, "from"},
		{"from too long", "text_message.json", func(p map[string]any) { firstMessage(p)["from"] = "1650555123456789" }, "from"},
		{"from country code 0", "text_message.json", func(p map[string]any) { firstMessage(p)["from"] = "06505551234" }, "from"},
		{"from with spaces", "text_message.json", func(p map[string]any) { firstMessage(p)["from"] = "1 650 555 1234" }, "from"},
		{"no id", "text_message.json", func(p map[string]any) { delete(firstMessage(p), "id") }, "id"},
		{"id with a space", "text_message.json", func(p map[string]any) { firstMessage(p)["id"] = "wamid. x" }, "id"},
		{"id huge", "text_message.json", func(p map[string]any) { firstMessage(p)["id"] = "wamid." + strings.Repeat("A", 1000) }, "id"},
		{"image without image", "image_message.json", func(p map[string]any) { delete(firstMessage(p), "image") }, "image"},
		{"media without id", "document_message.json", func(p map[string]any) {
			delete(firstMessage(p)["document"].(map[string]any), "id")
		}, "document id"},
		{"media id that is a path", "audio_message.json", func(p map[string]any) {
			firstMessage(p)["audio"].(map[string]any)["id"] = "../../me/accounts"
		}, "audio id"},
		{"location without location", "location_message.json", func(p map[string]any) { delete(firstMessage(p), "location") }, "location"},
		{"latitude out of range", "location_message.json", func(p map[string]any) {
			firstMessage(p)["location"].(map[string]any)["latitude"] = 91
		}, "location"},
		{"longitude out of range", "location_message.json", func(p map[string]any) {
			firstMessage(p)["location"].(map[string]any)["longitude"] = -180.5
		}, "location"},
		{"status without id", "status_read.json", func(p map[string]any) { delete(firstStatus(p), "id") }, "id"},
		{"status not a word", "status_read.json", func(p map[string]any) { firstStatus(p)["status"] = "re ad" }, "status"},
		{"status empty", "status_read.json", func(p map[string]any) { firstStatus(p)["status"] = "" }, "status"},
		{"status to no number", "status_read.json", func(p map[string]any) { delete(firstStatus(p), "recipient_id") }, "recipient_id"},
		{"no phone_number_id", "text_message.json", func(p map[string]any) {
			delete(value(p)["metadata"].(map[string]any), "phone_number_id")
		}, "phone_number_id"},
		{"phone_number_id not digits", "text_message.json", func(p map[string]any) {
			value(p)["metadata"].(map[string]any)["phone_number_id"] = "1065 OR 1=1"
		}, "phone_number_id"},
		{"another messaging product", "text_message.json", func(p map[string]any) { value(p)["messaging_product"] = "instagram" }, "messaging_product"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, err := normalizeBody(t, mutate(t, tc.file, tc.mutate))
			if len(out) != 0 || !errors.Is(err, ErrMalformed) {
				t.Fatalf("got %v, %v; want ErrMalformed", out, err)
			}
			if errors.Is(err, ErrUnknownNumber) {
				t.Fatalf("%v also matches ErrUnknownNumber", err)
			}
			if !strings.Contains(err.Error(), tc.detail) {
				t.Fatalf("error %q does not mention %q", err, tc.detail)
			}
			if len(err.Error()) > 250 {
				t.Fatalf("error echoes too much input: %q", err)
			}
			if s := ResponseStatus(len(out), err); s != http.StatusBadRequest {
				t.Fatalf("status %d", s)
			}
		})
	}
}

// One unreadable item does not hold the rest of its batch hostage.
func TestNormalizeKeepsTheReadableRest(t *testing.T) {
	body := mutate(t, "text_message.json", func(p map[string]any) {
		v := value(p)
		good := firstMessage(p)
		bad := map[string]any{"from": "nobody", "id": "wamid.bad", "type": "text", "text": map[string]any{"body": "x"}}
		v["messages"] = []any{bad, good}
	})
	out, err := normalizeBody(t, body)
	if len(out) != 1 || out[0].GetMessage().GetText() != "Does it come in another color?" || out[0].Id != "evt-1" {
		t.Fatalf("got %v", out)
	}
	var ne *NormalizeError
	if !errors.As(err, &ne) || ne.Refused != 1 || !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "message 0") {
		t.Fatalf("error %v", err)
	}
	if s := ResponseStatus(len(out), err); s != http.StatusOK {
		t.Fatalf("status %d", s)
	}
}

func TestNormalizeUnknownNumbers(t *testing.T) {
	p, err := Parse(load(t, "two_numbers.json"))
	if err != nil {
		t.Fatal(err)
	}
	var c ids
	out, err := Normalize(p, tenantOf(map[string]string{betaNumberID: "beta"}), receivedAt, c.next)
	if len(out) != 2 || out[0].Tenant != "beta" || out[1].Tenant != "beta" {
		t.Fatalf("got %v", out)
	}
	var ne *NormalizeError
	if !errors.As(err, &ne) || !slices.Equal(ne.UnknownNumbers, []string{acmeNumberID}) || errors.Is(err, ErrMalformed) {
		t.Fatalf("error %v", err)
	}
	// Nothing known: no records, 404.
	out, err = Normalize(p, tenantOf(nil), receivedAt, c.next)
	if len(out) != 0 || !errors.Is(err, ErrUnknownNumber) || ResponseStatus(0, err) != http.StatusNotFound {
		t.Fatalf("got %v, %v", out, err)
	}
	if !errors.As(err, &ne) || !slices.Equal(ne.UnknownNumbers, []string{acmeNumberID, betaNumberID}) {
		t.Fatalf("error %v", err)
	}
	// A tenantOf that answers ok with no tenant is not trusted.
	out, err = Normalize(p, func(string) (string, bool) { return "", true }, receivedAt, c.next)
	if len(out) != 0 || !errors.Is(err, ErrUnknownNumber) {
		t.Fatalf("got %v, %v", out, err)
	}
}

// A payload of many bad items makes a bounded error.
func TestNormalizeErrorIsBounded(t *testing.T) {
	body := mutate(t, "text_message.json", func(p map[string]any) {
		var msgs []any
		for i := range 500 {
			msgs = append(msgs, map[string]any{"from": strings.Repeat("x", 100), "id": fmt.Sprint("wamid.", i), "type": "text"})
		}
		value(p)["messages"] = msgs
	})
	out, err := normalizeBody(t, body)
	var ne *NormalizeError
	if len(out) != 0 || !errors.As(err, &ne) || ne.Refused != 500 || len(ne.Malformed) != maxReported {
		t.Fatalf("got %d records, %v", len(out), err)
	}
	if n := len(err.Error()); n > 2000 {
		t.Fatalf("error is %d bytes", n)
	}
}

func TestResponseStatus(t *testing.T) {
	cases := []struct {
		n    int
		err  error
		want int
	}{
		{0, nil, 200},
		{3, nil, 200},
		{1, &NormalizeError{UnknownNumbers: []string{"1"}}, 200},
		{1, &NormalizeError{Refused: 1}, 200},
		{0, &NormalizeError{UnknownNumbers: []string{"1"}}, 404},
		{0, &NormalizeError{Refused: 1}, 400},
		// Unreadable items of a known tenant outweigh unknown numbers: a
		// fix on Parley's side and Meta's redelivery recover them.
		{0, &NormalizeError{UnknownNumbers: []string{"1"}, Refused: 1}, 400},
		{0, malformed("x"), 400},
		{0, fmt.Errorf("%w for phone_number_id 1", ErrBadSignature), 403},
		{0, errors.New("broker down"), 500},
	}
	for _, tc := range cases {
		if got := ResponseStatus(tc.n, tc.err); got != tc.want {
			t.Errorf("ResponseStatus(%d, %v) = %d, want %d", tc.n, tc.err, got, tc.want)
		}
	}
}

func TestMediaID(t *testing.T) {
	if id, ok := MediaID("meta-media:1003383421387256"); !ok || id != "1003383421387256" {
		t.Fatalf("%q %v", id, ok)
	}
	for _, u := range []string{"", "meta-media:", "https://api.twilio.com/x", "meta-media:../x", "META-MEDIA:1"} {
		if id, ok := MediaID(u); ok {
			t.Errorf("MediaID(%q) = %q", u, id)
		}
	}
}

// FuzzParseAndNormalize feeds arbitrary bodies through the ingress path.
// Whatever comes in: no panic; errors are the package's; every record has
// an E.164 phone, a provider id, Parley's envelope, the tenant of the
// number its change named, and encodes as protobuf.
//
//	go test ./channels/meta -run '^$' -fuzz FuzzParseAndNormalize -fuzztime 30s
func FuzzParseAndNormalize(f *testing.F) {
	for _, name := range providertest.TestdataFiles(f) {
		f.Add(load(f, name))
	}
	f.Add([]byte(`{"object":"whatsapp_business_account","entry":[{"changes":[{"field":"messages","value":{"metadata":{"phone_number_id":"106540352242922"},"messages":[{"from":"+0","id":" ","type":"image","image":{}}]}}]}]}`))
	f.Add([]byte(`{"object":"whatsapp_business_account","entry":[{"changes":[{"field":"messages","value":{"metadata":{"phone_number_id":"107655329552231"},"statuses":[{"id":"w","status":"FAILED","recipient_id":"447700900123","errors":[{"code":-1}]}]}}]}]}`))
	f.Add([]byte(`{"object":"whatsapp_business_account","entry":[{"changes":[{"field":"messages","value":{"metadata":{"phone_number_id":"106540352242922"},"messages":[{"from":"447700900123","id":"w","type":"location","location":{"latitude":1e308,"longitude":-1e308}}]}}]}]}`))
	f.Add([]byte(`{"object":"whatsapp_business_account","entry":[{"changes":[{"field":"messages","value":null}]}]}`))
	f.Add([]byte(`{"object":"whatsapp_business_account"}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(`"\ud800"`))
	f.Fuzz(func(t *testing.T, body []byte) {
		p, err := Parse(body)
		if providertest.Refused(t, err, ErrMalformed, "Parse") {
			return
		}
		// Which tenants each provider id may belong to, from the changes
		// that carry it.
		allowed := map[string][]string{}
		for _, e := range p.Entry {
			for _, c := range e.Changes {
				if c.Messages == nil {
					continue
				}
				tn, ok := bothTenants[c.Messages.Metadata.PhoneNumberID]
				if !ok {
					continue
				}
				for _, m := range c.Messages.Messages {
					allowed[m.ID] = append(allowed[m.ID], tn)
				}
				for _, s := range c.Messages.Statuses {
					allowed[s.ID] = append(allowed[s.ID], tn)
				}
			}
		}
		calls := 0
		out, err := Normalize(p, tenantOf(bothTenants), receivedAt, func() string { calls++; return "evt" })
		if err != nil && !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrUnknownNumber) {
			t.Fatalf("Normalize error is neither ErrMalformed nor ErrUnknownNumber: %v", err)
		}
		if calls != len(out) {
			t.Fatalf("newID called %d times for %d records", calls, len(out))
		}
		if s := ResponseStatus(len(out), err); s != 200 && s != 400 && s != 404 {
			t.Fatalf("status %d", s)
		}
		for _, in := range out {
			id := providertest.CheckRecord(t, in, Channel, "evt")
			if to := in.GetMessage().GetTo(); to != "" && !e164.Valid(to) {
				t.Fatalf("to %q is not E.164", to)
			}
			for _, m := range in.GetMessage().GetMedia() {
				if _, ok := MediaID(m.Url); !ok {
					t.Fatalf("media url %q", m.Url)
				}
			}
			if s := in.GetStatus(); s != nil && s.GetStatus() == "" {
				t.Fatal("empty status")
			}
			if !slices.Contains(allowed[id], in.Tenant) {
				t.Fatalf("record %s went to %q; its changes belong to %v", id, in.Tenant, allowed[id])
			}
			if in.ReceivedAtMs != receivedAt.UnixMilli() {
				t.Fatalf("envelope %v", in)
			}
		}
	})
}
