package engine

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/parleyhq/parley/channels/meta/metatest"
	"github.com/parleyhq/parley/channels/twilio"
	"github.com/parleyhq/parley/channels/twilio/twiliotest"
	"github.com/parleyhq/parley/config"
	"github.com/parleyhq/parley/internal/chtest"
	"github.com/parleyhq/parley/internal/kafkatest"
	"github.com/parleyhq/parley/wire"
)

const (
	acmeSID   = "AC00000000000000000000000000000001"
	acmeToken = "0123456789abcdef0123456789abcdef"
	publicURL = "https://parley.example.com"
)

// harness is a running engine configured as a user would for `parley
// serve`: a real Kafka-protocol broker over TCP, a real ClickHouse server, and
// a local server speaking Twilio's Messages API.
type harness struct {
	engine *Engine
	twilio *twiliotest.Server
	meta   *metatest.Server
	db     string
}

func TestMain(m *testing.M) { chtest.Main(m) }

func startHarness(t *testing.T) *harness {
	t.Helper()
	broker := kafkatest.Start(t, 0)
	tw := twiliotest.New(acmeSID, acmeToken)
	t.Cleanup(tw.Close)
	graph := metatest.Start(t, metatest.TestAccessToken)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	chAddr := chtest.ForTest(t)
	db := chtest.Database(t, chAddr)
	t.Setenv("ACME_TWILIO_TOKEN", acmeToken)
	cfg, err := config.Parse([]byte(fmt.Sprintf(`
http:
  addr: 127.0.0.1:0
  public_base_url: %s   # the URL Twilio signs
kafka:
  brokers: [%s]
  partitions: 4
clickhouse:
  addr: %s
  database: %s
  retention_days: 30
  janitor_every: 1s
api_keys:
  - { key: "admin-key-0123456789", tenants: ["*"], role: admin }
  - { key: "acme-agent-key-0123456789", tenants: ["acme"], role: agent }
  - { key: "analyst-key-0123456789", tenants: ["acme"], role: analyst }
tenants:
  - id: acme
    name: Acme Cleaning
    api_rate_limit: 5
    templates:
      booking_reminder: { content_sid: HX0123456789abcdef0123456789abcdef, language: en_GB }
    twilio:
      account_sid: %s
      auth_token: ${ACME_TWILIO_TOKEN}          # ${VAR} is read from the environment
      from: "whatsapp:+14155238886"
      api_base_url: %s
    backend: { kind: demo }
    brain: { kind: rules }
  - id: demo
    name: Demo Cleaning Co
    simulator: true
    backend: { kind: demo }
    brain: { kind: rules }
  - id: beta
    name: Beta Cleaners
    meta:
      phone_number_id: "%s"
      access_token: %s
      app_secret: %s
      verify_token: %s
      api_base_url: %s
    backend: { kind: demo }
    brain: { kind: rules }
  - id: viahttp
    name: Demo over HTTP
    simulator: true
    backend: { kind: http, base_url: "http://%s%s", token: %s }
`, publicURL, broker.Addrs()[0], chAddr, db, acmeSID, tw.URL(),
		metatest.TestPhoneNumberID, metatest.TestAccessToken, metatest.TestAppSecret, metatest.TestVerifyToken, graph.URL(),
		ln.Addr(), DemoBackendPath, DemoBackendToken)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// Embed: the config names broker and ClickHouse, so only the demo
	// business is added, served over HTTP as `parley dev` does.
	e, err := Start(ctx, cfg, Options{Embed: true, Listener: ln, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		e.Close()
	})
	return &harness{engine: e, twilio: tw, meta: graph, db: db}
}

// sendWhatsApp posts a signed Twilio inbound webhook as Twilio would.
func (h *harness) sendWhatsApp(t *testing.T, sid, from, body string) {
	t.Helper()
	form := url.Values{
		"MessageSid": {sid}, "SmsMessageSid": {sid}, "AccountSid": {acmeSID},
		"From": {"whatsapp:" + from}, "To": {"whatsapp:+14155238886"},
		"Body": {body}, "NumMedia": {"0"}, "ProfileName": {"Sam"},
	}
	path := "/webhooks/twilio/acme"
	req, _ := http.NewRequest(http.MethodPost, h.engine.URL()+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Twilio-Signature", twilio.Signature(acmeToken, publicURL+path, form))
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || !strings.Contains(string(b), "<Response/>") {
		t.Fatalf("webhook answered %d %q", res.StatusCode, b)
	}
}

// eventually polls fn until it returns nil or the timeout passes.
func eventually(t *testing.T, timeout time.Duration, fn func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := fn()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestSignedWebhookGetsReplyThroughTwilioAndBothMessagesLandInClickHouse(t *testing.T) {
	h := startHarness(t)
	sid := "SM0123456789abcdef0123456789abcdef"
	h.sendWhatsApp(t, sid, "+447700900456", "Hello")

	got := h.twilio.WaitFor(1, 30*time.Second)
	if len(got) != 1 {
		t.Fatalf("local Twilio got %d messages, want 1", len(got))
	}
	m := got[0]
	if m.To != "whatsapp:+447700900456" || m.From != "whatsapp:+14155238886" || m.User != acmeSID || m.Password != acmeToken {
		t.Fatalf("reply sent as %+v", m)
	}
	if m.Body == "" {
		t.Fatal("empty reply")
	}
	if m.StatusCallback != publicURL+"/webhooks/twilio/acme/status" {
		t.Fatalf("status callback %q", m.StatusCallback)
	}

	// Twilio redelivers: the duplicate is acknowledged but not answered twice.
	h.sendWhatsApp(t, sid, "+447700900456", "Hello")

	ctx := context.Background()
	eventually(t, 30*time.Second, func() error {
		var in, out uint64
		row := h.engine.Store().Conn().QueryRow(ctx, fmt.Sprintf(
			"SELECT countIf(direction = 'in'), countIf(direction = 'out') FROM %s.messages FINAL WHERE tenant = 'acme' AND phone = '+447700900456'", h.db))
		if err := row.Scan(&in, &out); err != nil {
			return err
		}
		if in != 1 || out != 1 {
			return fmt.Errorf("messages in ClickHouse: in=%d out=%d, want 1 and 1", in, out)
		}
		return nil
	})
	var body, provider string
	if err := h.engine.Store().Conn().QueryRow(ctx, fmt.Sprintf(
		"SELECT body, provider_id FROM %s.messages FINAL WHERE direction = 'in'", h.db)).Scan(&body, &provider); err != nil {
		t.Fatal(err)
	}
	if body != "Hello" || provider != sid {
		t.Fatalf("inbound row body %q provider id %q", body, provider)
	}
	if n := len(h.twilio.Messages()); n != 1 {
		t.Fatalf("duplicate webhook answered: %d replies", n)
	}
}

func TestReadyz(t *testing.T) {
	h := startHarness(t)
	res, err := http.Get(h.engine.URL() + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || !strings.Contains(string(b), "kafka: ok") || !strings.Contains(string(b), "clickhouse: ok") {
		t.Fatalf("readyz %d %q", res.StatusCode, b)
	}
}

func TestSimulatorPageRoundTrip(t *testing.T) {
	h := startHarness(t)
	page, err := http.Get(h.engine.URL() + "/simulator")
	if err != nil {
		t.Fatal(err)
	}
	html, _ := io.ReadAll(page.Body)
	page.Body.Close()
	if page.StatusCode != 200 || !strings.Contains(string(html), "EventSource") {
		t.Fatalf("simulator page %d", page.StatusCode)
	}

	events, err := http.Get(h.engine.URL() + "/simulator/api/events?tenant=demo&phone=%2B447700900456")
	if err != nil {
		t.Fatal(err)
	}
	defer events.Body.Close()
	res, err := http.Post(h.engine.URL()+"/simulator/api/send", "application/json",
		strings.NewReader(`{"tenant":"demo","phone":"+447700900456","text":"hello"}`))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusAccepted {
		t.Fatalf("send answered %d", res.StatusCode)
	}
	// The stream brings the customer's line, then the reply.
	live := readStreamUntil(t, events.Body, "verification code")
	if i, j := strings.Index(live, `"text":"hello","at"`), strings.Index(live, "verification code"); i < 0 || i > j || !strings.Contains(live, `"customer":true`) {
		t.Fatalf("stream %q: want the customer's line, then the reply", live)
	}
	// A page opened later (a reload) gets the whole conversation.
	again, err := http.Get(h.engine.URL() + "/simulator/api/events?tenant=demo&phone=%2B447700900456")
	if err != nil {
		t.Fatal(err)
	}
	defer again.Body.Close()
	if replay := readStreamUntil(t, again.Body, "verification code"); !strings.Contains(replay, `"text":"hello"`) {
		t.Fatalf("after a reload the stream replays %q, without the customer's line", replay)
	}

	// Bad input is refused with a clear status.
	for body, want := range map[string]int{
		`{"tenant":"demo","phone":"0151/12345678","text":"hi"}`: 400,
		`{"tenant":"acme","phone":"+447700900456","text":"hi"}`: 404,
		`not json`: 400,
	} {
		res, err := http.Post(h.engine.URL()+"/simulator/api/send", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != want {
			t.Fatalf("%s: %d, want %d", body, res.StatusCode, want)
		}
	}
}

func TestBackendOverHTTP(t *testing.T) {
	h := startHarness(t)
	events, err := http.Get(h.engine.URL() + "/simulator/api/events?tenant=viahttp&phone=%2B447700900456")
	if err != nil {
		t.Fatal(err)
	}
	defer events.Body.Close()
	res, err := http.Post(h.engine.URL()+"/simulator/api/send", "application/json",
		strings.NewReader(`{"tenant":"viahttp","phone":"+447700900456","text":"hello"}`))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	// Sam Patel was found through the HTTP contract: a code was sent.
	readStreamUntil(t, events.Body, "verification code")
	// The demo business refuses a wrong token.
	req, _ := http.NewRequest(http.MethodGet, h.engine.URL()+DemoBackendPath+"services", nil)
	req.Header.Set("Authorization", "Bearer wrong")
	r2, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	r2.Body.Close()
	if r2.StatusCode != http.StatusUnauthorized {
		t.Fatalf("wrong token: %d", r2.StatusCode)
	}
}

func TestSignedMetaWebhookGetsReplyThroughTheGraphAPI(t *testing.T) {
	h := startHarness(t)
	h.postMeta(t, metatest.TextWebhook(metatest.TestPhoneNumberID, "wamid.HBgLNDQ3NzAwOTAwNDU2FQIAEhgUM0E", "447700900456", "Sam", "Hello"))
	got := h.meta.WaitFor(1, 30*time.Second)
	if len(got) != 1 || got[0].To != "447700900456" || !strings.Contains(got[0].Text, "verification code") {
		t.Fatalf("Graph API got %+v", got)
	}
	eventually(t, 30*time.Second, func() error {
		var n uint64
		if err := h.engine.Store().Conn().QueryRow(context.Background(), fmt.Sprintf(
			"SELECT count() FROM %s.messages FINAL WHERE tenant = 'beta'", h.db)).Scan(&n); err != nil {
			return err
		}
		if n != 2 {
			return fmt.Errorf("%d beta messages in ClickHouse, want 2", n)
		}
		return nil
	})
}

// What a Meta webhook carries besides text reaches the message log: the
// id of the reply button pressed, next to its title; a photo as its
// caption, a line naming the attachment, and the reference to fetch it by.
func TestMetaMessagesAreLoggedWithTheirIDs(t *testing.T) {
	cases := []struct {
		file, body, replyID, media string
	}{
		{"interactive_button_reply.json", "Sí, confirmo", "confirm-booking-8841", ""},
		{"image_message.json", "¿Tenéis este corte? 💇\n[image/jpeg]", "", "meta-media:1003383421387256"},
	}
	for _, tc := range cases {
		t.Run(tc.file, func(t *testing.T) {
			h := startHarness(t)
			h.postMetaFile(t, tc.file)
			eventually(t, 30*time.Second, func() error {
				var body, replyID, media string
				err := h.engine.Store().Conn().QueryRow(context.Background(), fmt.Sprintf(
					"SELECT body, reply_id, media FROM %s.messages FINAL WHERE tenant = 'beta' AND direction = 'in'", h.db)).Scan(&body, &replyID, &media)
				if err != nil {
					return err
				}
				if body != tc.body || replyID != tc.replyID || media != tc.media {
					return fmt.Errorf("logged %q with reply id %q and media %q", body, replyID, media)
				}
				return nil
			})
		})
	}
}

func TestTwilioStatusCallbackBecomesADeliveryRow(t *testing.T) {
	h := startHarness(t)
	h.sendWhatsApp(t, "SM0123456789abcdef0123456789abcd77", "+447700900456", "Hello")
	reply := h.twilio.WaitFor(1, 30*time.Second)[0]
	for _, status := range []string{"sent", "delivered", "read", "read"} { // Twilio redelivers
		form := url.Values{
			"MessageSid": {reply.SID}, "MessageStatus": {status}, "AccountSid": {acmeSID},
			"To": {"whatsapp:+447700900456"}, "From": {"whatsapp:+14155238886"}, "ChannelPrefix": {"whatsapp"},
		}
		path := "/webhooks/twilio/acme/status"
		req, _ := http.NewRequest(http.MethodPost, h.engine.URL()+path, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("X-Twilio-Signature", twilio.Signature(acmeToken, publicURL+path, form))
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != 200 {
			t.Fatalf("status callback %s: %d", status, res.StatusCode)
		}
	}
	eventually(t, 30*time.Second, func() error {
		rows, err := h.engine.Store().Conn().Query(context.Background(), fmt.Sprintf(
			"SELECT status FROM %s.deliveries FINAL WHERE tenant = 'acme' AND provider_id = '%s' ORDER BY status", h.db, reply.SID))
		if err != nil {
			return err
		}
		defer rows.Close()
		var got []string
		for rows.Next() {
			var s string
			if err := rows.Scan(&s); err != nil {
				return err
			}
			got = append(got, s)
		}
		// queued comes from the sender, the rest from Twilio; the repeated
		// "read" is one row.
		if strings.Join(got, ",") != "delivered,queued,read,sent" {
			return fmt.Errorf("delivery rows %v", got)
		}
		return nil
	})
}

// The engine runs the janitor: a day older than the retention is dropped
// while the engine runs (on 18.16, which has no TTL, only the janitor
// does it), and today's rows stay.
func TestJanitorDropsExpiredDays(t *testing.T) {
	h := startHarness(t)
	store := h.engine.Store()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	old := time.Now().AddDate(0, 0, -40).UnixMilli()
	now := time.Now().UnixMilli()
	evs := []*wire.Event{
		{Id: "old-1", Tenant: "acme", Phone: "+447700900123", AtMs: old,
			Kind: &wire.Event_Message{Message: &wire.MessageLog{Direction: "in", MessageId: "old-1", Channel: "twilio", Body: "hello from long ago"}}},
		{Id: "new-1", Tenant: "acme", Phone: "+447700900123", AtMs: now,
			Kind: &wire.Event_Message{Message: &wire.MessageLog{Direction: "in", MessageId: "new-1", Channel: "twilio", Body: "hello"}}},
	}
	if err := store.WriteEvents(ctx, evs); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, func() error {
		var oldRows, newRows uint64
		if err := store.Conn().QueryRow(ctx, "SELECT countIf(event_id = 'old-1'), countIf(event_id = 'new-1') FROM messages").Scan(&oldRows, &newRows); err != nil {
			return err
		}
		if oldRows != 0 || newRows != 1 {
			return fmt.Errorf("old rows %d (want 0), today's %d (want 1)", oldRows, newRows)
		}
		return nil
	})
}

// readStreamUntil reads a simulator event stream until want appears (30 s
// at most) and returns what it read.
func readStreamUntil(t *testing.T, body io.Reader, want string) string {
	t.Helper()
	got := make(chan string, 1)
	go func() {
		buf := make([]byte, 4096)
		var acc string
		for {
			n, err := body.Read(buf)
			acc += string(buf[:n])
			if strings.Contains(acc, want) || err != nil {
				got <- acc
				return
			}
		}
	}()
	select {
	case acc := <-got:
		if !strings.Contains(acc, want) {
			t.Fatalf("stream ended without %q: %q", want, acc)
		}
		return acc
	case <-time.After(30 * time.Second):
		t.Fatalf("no %q on the simulator stream", want)
		return ""
	}
}

// postMetaFile posts one of channels/meta's testdata webhooks.
func (h *harness) postMetaFile(t *testing.T, name string) {
	t.Helper()
	body, err := os.ReadFile("../channels/meta/testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	h.postMeta(t, body)
}

// postMeta posts a Meta webhook body signed with the test app secret, as
// Meta does, and wants 200.
func (h *harness) postMeta(t *testing.T, body []byte) {
	t.Helper()
	code, err := metatest.Post(context.Background(), h.engine.URL()+"/webhooks/meta", metatest.TestAppSecret, body)
	if err != nil {
		t.Fatal(err)
	}
	if code != 200 {
		t.Fatalf("webhook: %d", code)
	}
}

// TestServeRefusesSimulatorTenants: serve (no Embed) does not run the
// simulator, whose page lets anyone post as any phone, unless the config
// allows it; it says so before connecting to anything.
func TestServeRefusesSimulatorTenants(t *testing.T) {
	cfg := config.Dev("", "") // the demo tenant is a simulator tenant
	cfg.Kafka.Brokers = []string{"127.0.0.1:1"}
	cfg.ClickHouse.Addr = "127.0.0.1:1"
	_, err := Start(context.Background(), cfg, Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err == nil || !strings.Contains(err.Error(), "allow_simulator") {
		t.Fatalf("serve with a simulator tenant: %v", err)
	}
}
