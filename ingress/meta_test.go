package ingress

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/parleyhq/parley/bus"
	"github.com/parleyhq/parley/channels/meta"
	"github.com/parleyhq/parley/channels/meta/metatest"
	"github.com/parleyhq/parley/internal/kafkatest"
	"github.com/parleyhq/parley/tenants"
	"github.com/parleyhq/parley/wire"
)

// startMeta serves two Meta tenants; it returns the server's URL and the
// broker's addresses.
func startMeta(t *testing.T) (string, []string) {
	t.Helper()
	b := kafkatest.Start(t, 2, wire.TopicInbound)
	other := meta.Config{PhoneNumberID: "200000000000001", AccessToken: "EAAGother000000000000000000", AppSecret: "ffffffffffffffffffffffffffffffff", VerifyToken: "other-verify-token"}
	reg, err := tenants.NewRegistry([]tenants.Tenant{
		{ID: "acme", Meta: &meta.Config{PhoneNumberID: metatest.TestPhoneNumberID, AccessToken: metatest.TestAccessToken, AppSecret: metatest.TestAppSecret, VerifyToken: metatest.TestVerifyToken}},
		{ID: "beta", Meta: &other},
	})
	if err != nil {
		t.Fatal(err)
	}
	p := bus.NewProducer(b.Addrs(), bus.ProducerOptions{})
	t.Cleanup(func() { p.Close() })
	s := New(Options{PublicBaseURL: "https://parley.example.com", Tenants: reg, Producer: p, Providers: providers()})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(ln)
	t.Cleanup(func() { _ = s.Shutdown(context.Background()) })
	return "http://" + ln.Addr().String(), b.Addrs()
}

func TestMetaHandshake(t *testing.T) {
	base, _ := startMeta(t)
	cases := []struct {
		query string
		want  int
		body  string
	}{
		{"hub.mode=subscribe&hub.verify_token=" + metatest.TestVerifyToken + "&hub.challenge=1158201444", 200, "1158201444"},
		{"hub.mode=subscribe&hub.verify_token=other-verify-token&hub.challenge=42", 200, "42"},
		{"hub.mode=subscribe&hub.verify_token=wrong&hub.challenge=42", 403, ""},
		{"hub.mode=unsubscribe&hub.verify_token=" + metatest.TestVerifyToken + "&hub.challenge=42", 403, ""},
	}
	for _, tc := range cases {
		res, err := http.Get(base + "/webhooks/meta?" + tc.query)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != tc.want || (tc.want == 200 && string(b) != tc.body) {
			t.Fatalf("%s: %d %q", tc.query, res.StatusCode, b)
		}
	}
}

func TestMetaWebhookStatuses(t *testing.T) {
	base, _ := startMeta(t)
	good := metatest.TextWebhook(metatest.TestPhoneNumberID, "wamid.HBgLMTU1NTA3ODM4ODEVAgASGBQzQUVCMkE2", "447700900456", "Sam", "hello")
	unknown := metatest.TextWebhook("999999999999999", "wamid.HBgLMTU1NTA3ODM4ODEVAgASGBQzQUVCMkE3", "447700900456", "Sam", "hello")
	cases := []struct {
		name string
		body []byte
		sig  string
		want int
	}{
		{"signed", good, metatest.SignedWebhook(metatest.TestAppSecret, good), 200},
		{"signed with another tenant's secret", good, metatest.SignedWebhook("ffffffffffffffffffffffffffffffff", good), 403},
		{"unsigned", good, "", 403},
		{"unknown number", unknown, metatest.SignedWebhook(metatest.TestAppSecret, unknown), 404},
		{"malformed", []byte("{not json"), metatest.SignedWebhook(metatest.TestAppSecret, []byte("{not json")), 400},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, base+"/webhooks/meta", strings.NewReader(string(tc.body)))
			req.Header.Set("Content-Type", "application/json")
			if tc.sig != "" {
				req.Header.Set(meta.SignatureHeader, tc.sig)
			}
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != tc.want {
				t.Fatalf("status %d (%s), want %d", res.StatusCode, b, tc.want)
			}
		})
	}
}

// Meta batches events and documents webhook payloads of up to 3 MB: a
// batch far over the other routes' 64 KiB is accepted whole, every event
// on the topic before the 200; one over 3 MiB is 413.
func TestMetaLargeBatches(t *testing.T) {
	base, brokers := startMeta(t)
	const n = 1000
	change := metatest.Change{PhoneNumberID: metatest.TestPhoneNumberID, DisplayNumber: metatest.TestDisplayNumber}
	for i := range n {
		phone := fmt.Sprintf("+4477009%05d", i)
		change.Contacts = append(change.Contacts, metatest.Contact(phone, "Sam"))
		change.Messages = append(change.Messages, metatest.TextMessage(fmt.Sprintf("wamid.batch%06d", i), phone, "hello from a busy moment"))
	}
	batch := metatest.Payload(change)
	if len(batch) < 128<<10 {
		t.Fatalf("batch is %d bytes; the test wants one well over 64 KiB", len(batch))
	}
	code, err := metatest.Post(context.Background(), base+"/webhooks/meta", metatest.TestAppSecret, batch)
	if err != nil || code != 200 {
		t.Fatalf("batch of %d bytes: status %d, err %v", len(batch), code, err)
	}
	var total int64
	for _, c := range kafkatest.Ends(t, brokers, wire.TopicInbound) {
		total += c
	}
	if total != n {
		t.Fatalf("%d records on parley.inbound after the 200, want %d", total, n)
	}

	huge := metatest.TextWebhook(metatest.TestPhoneNumberID, "wamid.huge", "+447700900456", "Sam", strings.Repeat("x", 3<<20))
	code, err = metatest.Post(context.Background(), base+"/webhooks/meta", metatest.TestAppSecret, huge)
	if err != nil || code != 413 {
		t.Fatalf("%d bytes: status %d, err %v; want 413", len(huge), code, err)
	}
}
