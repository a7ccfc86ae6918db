package ingress

import (
	"context"
	"fmt"
	"net"
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
