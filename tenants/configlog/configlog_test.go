package configlog

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/parleyhq/parley/apikeys"
	"github.com/parleyhq/parley/bus"
	"github.com/parleyhq/parley/internal/kafkatest"
	"github.com/parleyhq/parley/internal/seal"
	"github.com/parleyhq/parley/tenants"
	"github.com/parleyhq/parley/wire"
)

const (
	twilioToken = "twiliotokenSECRETtwiliotoken001"
	metaToken   = "EAAmetaACCESStokenSECRET0001"
	appSecret   = "appSECRETvalue0000000000001"
	verifyToken = "verifyTOKENsecret0001"
)

func box(t testing.TB) *seal.Box {
	t.Helper()
	k, err := seal.ParseKey(seal.NewKey())
	if err != nil {
		t.Fatal(err)
	}
	b, err := seal.New(k)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func twilioTenant(id string) tenants.Tenant {
	return tenants.Tenant{ID: id, Name: "Tenant " + id, Twilio: &tenants.Twilio{
		AccountSID: "AC00000000000000000000000000000001", AuthToken: twilioToken, From: "whatsapp:+14155238886",
	}, Backend: tenants.BackendConfig{Kind: "demo"}, Brain: tenants.BrainConfig{Kind: "rules"},
		Webhook: &tenants.Webhook{URL: "https://hooks.example/" + id, Secret: "webhookSECRET0001"}}
}

func metaTenant(id, number string) tenants.Tenant {
	return tenants.Tenant{ID: id, Name: "Meta " + id, Meta: &tenants.Meta{
		PhoneNumberID: number, AccessToken: metaToken, AppSecret: appSecret, VerifyToken: verifyToken,
	}}
}

func TestRecordSealsCredentials(t *testing.T) {
	b := box(t)
	several := twilioTenant("several")
	several.MoreNumbers = []tenants.Number{
		{Twilio: &tenants.Twilio{AccountSID: "AC00000000000000000000000000000002", AuthToken: "twiliotokenSECRETmore00002", From: "whatsapp:+14155230002"}},
		{Meta: &tenants.Meta{PhoneNumberID: "106540352242999", AccessToken: "EAAmoreACCESStokenSECRET02", AppSecret: "moreAPPsecret000000002", VerifyToken: "moreVERIFY0002"}},
	}
	for _, in := range []tenants.Tenant{twilioTenant("acme"), metaTenant("beta", "106540352242922"), several} {
		v, err := EncodeTenant(b, in)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range []string{twilioToken, metaToken, appSecret, verifyToken, "webhookSECRET0001",
			"twiliotokenSECRETmore00002", "EAAmoreACCESStokenSECRET02", "moreAPPsecret000000002", "moreVERIFY0002"} {
			if bytes.Contains(v, []byte(s)) {
				t.Errorf("%s: record holds %q in the clear: %s", in.ID, s, v)
			}
		}
		out, err := DecodeTenant(b, TenantKey(in.ID), v)
		if err != nil {
			t.Fatal(err)
		}
		if !sameTenant(b, in, out) || fmt.Sprint(out.Twilio) != fmt.Sprint(in.Twilio) {
			t.Errorf("round trip: %+v, want %+v", out, in)
		}
		if out.Twilio != nil && out.Twilio.AuthToken != twilioToken || out.Meta != nil && out.Meta.AppSecret != appSecret {
			t.Errorf("%s: credentials not restored", in.ID)
		}
		if len(in.MoreNumbers) > 0 && (len(out.MoreNumbers) != 2 || out.MoreNumbers[0].Twilio.AuthToken != "twiliotokenSECRETmore00002" ||
			out.MoreNumbers[1].Meta.AppSecret != "moreAPPsecret000000002" || out.MoreNumbers[1].Meta.VerifyToken != "moreVERIFY0002") {
			t.Errorf("%s: more numbers' credentials not restored: %+v", in.ID, out.MoreNumbers)
		}
		if _, err := DecodeTenant(box(t), TenantKey(in.ID), v); err == nil {
			t.Errorf("%s: opened with another key", in.ID)
		}
		if _, err := DecodeTenant(b, TenantKey("other"), v); err == nil {
			t.Errorf("%s: accepted under another tenant's key", in.ID)
		}
	}
}

// syncBuffer is a log that tests read while nodes write it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type node struct {
	keys *apikeys.Set
	reg  *tenants.Registry
	log  *Log
	logs *syncBuffer
	stop context.CancelFunc
}

func startNode(t testing.TB, brokers []string, b *seal.Box, file ...tenants.Tenant) *node {
	t.Helper()
	reg, err := tenants.NewRegistry(append([]tenants.Tenant(nil), file...))
	if err != nil {
		t.Fatal(err)
	}
	p := bus.NewProducer(brokers, bus.ProducerOptions{})
	t.Cleanup(func() { _ = p.Close() })
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	logs := &syncBuffer{}
	keys, err := apikeys.New([]apikeys.Key{{Key: fileKey, Tenants: []string{"*"}, Role: apikeys.RoleAdmin}})
	if err != nil {
		t.Fatal(err)
	}
	l, err := Start(ctx, Options{Brokers: brokers, Producer: p, Box: b, Registry: reg, Keys: keys, File: file,
		Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	return &node{keys: keys, reg: reg, log: l, logs: logs, stop: cancel}
}

// fileKey is the key of every test node's configuration.
const fileKey = "file-admin-key-000000000001"

// TestKeysCreatedRotatedAndRevokedOnEveryNode: a key written on node a
// authorizes on node b (the goal: within a second, logged; the test
// waits up to 10 s, so that a loaded machine does not fail it); rotated, it keeps working until
// its overlap ends; revoked, b refuses it within a second; a node started
// afterwards knows the rotation and the revocation; the topic holds no
// key.
func TestKeysCreatedRotatedAndRevokedOnEveryNode(t *testing.T) {
	brokers := parleyBroker(t)
	b := box(t)
	a, c := startNode(t, brokers, b), startNode(t, brokers, b)
	ctx := context.Background()

	secret, st, err := apikeys.Generate("acme-bot", apikeys.RoleAgent, []string{"acme"}, "test", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := a.log.PutKey(ctx, st); err != nil {
		t.Fatal(err)
	}
	took := waitUntil(t, "key created on a, accepted on c", 10*time.Second, func() bool {
		_, err := c.keys.Authorize("Bearer "+secret, "acme", apikeys.MessagesSend)
		return err == nil
	})
	t.Logf("key created on one node authorizes on the other after %v", took)

	secret2, st2, err := apikeys.Generate("acme-bot", apikeys.RoleAgent, []string{"acme"}, "test", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	st.ExpiresAt = time.Now().Add(time.Hour)
	for _, s := range []apikeys.Stored{st2, st} {
		if err := a.log.PutKey(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	waitUntil(t, "rotation reaches c", 10*time.Second, func() bool {
		k, ok := c.keys.Stored(st.ID)
		_, err := c.keys.Identify("Bearer " + secret2)
		return ok && !k.ExpiresAt.IsZero() && err == nil
	})
	if _, err := c.keys.Identify("Bearer " + secret); err != nil {
		t.Fatalf("rotated key inside its overlap: %v", err)
	}
	// Used on c, listed as used on a once c told it.
	usedAt := time.Now()
	if err := c.log.TellUses(ctx, usedAt.Add(-time.Minute)); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "c's use of the key listed on a", 10*time.Second, func() bool {
		for _, k := range a.keys.List(&apikeys.Key{Tenants: []string{"*"}, Role: apikeys.RoleAdmin}) {
			if k.ID == st.ID && k.LastUsedAt != nil && !k.LastUsedAt.Before(usedAt.Add(-time.Second)) {
				return true
			}
		}
		return false
	})

	if err := a.log.DeleteKey(ctx, st2.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := a.keys.Identify("Bearer " + secret2); !errors.Is(err, apikeys.ErrBadKey) {
		t.Fatalf("revoked key on the node that revoked it: %v", err)
	}
	took = waitUntil(t, "key revoked on a, refused on c", 10*time.Second, func() bool {
		_, err := c.keys.Identify("Bearer " + secret2)
		return errors.Is(err, apikeys.ErrBadKey)
	})
	t.Logf("key revoked on one node is refused on the other after %v", took)

	late := startNode(t, brokers, b)
	if _, err := late.keys.Identify("Bearer " + secret2); !errors.Is(err, apikeys.ErrBadKey) {
		t.Fatalf("a node started later takes the revoked key: %v", err)
	}
	if k, ok := late.keys.Stored(st.ID); !ok || !k.ExpiresAt.Equal(st.ExpiresAt) {
		t.Fatalf("a node started later lacks the rotated key: %+v %v", k, ok)
	}
	raw := readAll(t, brokers)
	for _, s := range []string{secret, secret2} {
		if bytes.Contains(raw, []byte(s)) {
			t.Fatal("parley.config holds an API key")
		}
	}
	if !bytes.Contains(raw, APIKeyKey(st.ID)) {
		t.Fatal("no key record on parley.config")
	}
}

func parleyBroker(t testing.TB) []string {
	t.Helper()
	br := kafkatest.Start(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := bus.EnsureParleyTopics(ctx, br.Addrs(), nil, 4, 1); err != nil {
		t.Fatal(err)
	}
	return br.Addrs()
}

func waitUntil(t *testing.T, what string, limit time.Duration, ok func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !ok() {
		if time.Since(start) > limit {
			t.Fatalf("%s: not within %v", what, limit)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return time.Since(start)
}

func TestNodesFollowTheTopic(t *testing.T) {
	brokers := parleyBroker(t)
	b := box(t)
	a := startNode(t, brokers, b, twilioTenant("acme"))
	if !strings.Contains(a.logs.String(), "tenant from the config file written to the topic") {
		t.Errorf("seeding not logged:\n%s", a.logs)
	}
	n2 := startNode(t, brokers, b)
	if got := n2.reg.Get("acme"); got == nil || got.Twilio.AuthToken != twilioToken {
		t.Fatalf("node 2 did not load the seeded tenant: %+v", got)
	}

	// A tenant created through node 1 is on node 2 within a second.
	ctx := context.Background()
	if err := a.log.PutTenant(ctx, metaTenant("beta", "106540352242922")); err != nil {
		t.Fatal(err)
	}
	took := waitUntil(t, "beta on node 2", time.Second, func() bool { return n2.reg.Get("beta") != nil })
	t.Logf("created on node 1, applied on node 2 after %v", took)

	// A second tenant on beta's Meta number is refused on every node.
	if err := a.log.PutTenant(ctx, metaTenant("gamma", "106540352242922")); !errors.Is(err, tenants.ErrNumberTaken) {
		t.Errorf("a second tenant on one Meta number: %v, want ErrNumberTaken", err)
	}
	if n2.reg.Get("gamma") != nil {
		t.Error("node 2 applied a second tenant on one Meta number")
	}

	if err := a.log.DeleteTenant(ctx, "beta"); err != nil {
		t.Fatal(err)
	}
	took = waitUntil(t, "beta deleted on node 2", time.Second, func() bool { return n2.reg.Get("beta") == nil })
	t.Logf("deleted on node 1, gone on node 2 after %v", took)
	if err := a.log.PutTenant(ctx, metaTenant("delta", "106540352242999")); err != nil {
		t.Fatal(err)
	}

	// Restart both: the topic keeps everything; a file that changed
	// acme wins over the topic, and says so.
	a.stop()
	n2.stop()
	changed := twilioTenant("acme")
	changed.Name = "Acme Renamed"
	r1 := startNode(t, brokers, b, changed)
	r2 := startNode(t, brokers, b)
	for _, n := range []*node{r1, r2} {
		if n.reg.Get("delta") == nil || n.reg.Get("beta") != nil || n.reg.Get("gamma") != nil {
			t.Errorf("after restart: %v", ids(n.reg))
		}
	}
	if got := r1.reg.Get("acme"); got == nil || got.Name != "Acme Renamed" {
		t.Errorf("the file did not win: %+v", got)
	}
	if !strings.Contains(r1.logs.String(), "its definition replaces the one on the topic") {
		t.Errorf("the file's win is not logged:\n%s", r1.logs)
	}
	waitUntil(t, "the file's acme on node 2", time.Second, func() bool {
		got := r2.reg.Get("acme")
		return got != nil && got.Name == "Acme Renamed"
	})
	for _, n := range []*node{r1, r2} {
		for _, s := range []string{twilioToken, metaToken, appSecret, verifyToken} {
			if strings.Contains(n.logs.String(), s) {
				t.Errorf("a credential is in the log")
			}
		}
	}

	// The topic's bytes hold no credential.
	raw := readAll(t, brokers)
	if len(raw) == 0 {
		t.Fatal("nothing read from the topic")
	}
	for _, s := range []string{twilioToken, metaToken, appSecret, verifyToken} {
		if bytes.Contains(raw, []byte(s)) {
			t.Errorf("parley.config holds %q in the clear", s)
		}
	}
}

func ids(r *tenants.Registry) []string {
	var out []string
	for _, t := range r.All() {
		out = append(out, t.ID)
	}
	return out
}

func readAll(t *testing.T, brokers []string) []byte {
	t.Helper()
	var mu sync.Mutex
	var raw []byte
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	err := bus.Follow(ctx, brokers, nil, wire.TopicConfig, slog.New(slog.DiscardHandler), func(k, v []byte) {
		mu.Lock()
		raw = append(append(raw, k...), v...)
		mu.Unlock()
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	return raw
}

// BenchmarkLoad10kTenants: a node starting against a parley.config of
// 10,000 tenants (half Twilio, half Meta), until its registry holds them.
func BenchmarkLoad10kTenants(b *testing.B) {
	const n = 10000
	brokers := parleyBroker(b)
	bx := box(b)
	p := bus.NewProducer(brokers, bus.ProducerOptions{})
	defer p.Close()
	msgs := make([]kafka.Message, 0, n)
	for i := range n {
		t := twilioTenant(fmt.Sprintf("t%05d", i))
		if i%2 == 1 {
			t = metaTenant(fmt.Sprintf("t%05d", i), fmt.Sprintf("1065%08d", i))
		}
		v, err := EncodeTenant(bx, t)
		if err != nil {
			b.Fatal(err)
		}
		msgs = append(msgs, kafka.Message{Topic: wire.TopicConfig, Key: TenantKey(t.ID), Value: v})
	}
	if err := p.Produce(context.Background(), msgs...); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		nd := startNode(b, brokers, bx)
		if got := nd.reg.Len(); got != n {
			b.Fatalf("loaded %d tenants, want %d", got, n)
		}
		b.ReportMetric(time.Since(start).Seconds(), "s/load")
		nd.stop()
	}
}

// TestRecordOfTheReleaseBefore: a record as the release before wrote it
// (credentials of the one number at the top level of the sealed JSON)
// still opens, with every credential in place.
func TestRecordOfTheReleaseBefore(t *testing.T) {
	b := box(t)
	pub := []byte(`{"id":"acme","name":"Acme","twilio":{"account_sid":"AC00000000000000000000000000000001","auth_token":"","from":"whatsapp:+14155238886"},"backend":{"kind":"demo"},"brain":{"kind":"rules"}}`)
	plain := []byte(`{"twilio_auth_token":"` + twilioToken + `","backend_token":"backendSECRET0001"}`)
	value, err := json.Marshal(record{V: 1, Tenant: pub, Sealed: b.Seal(plain, TenantKey("acme"))})
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeTenant(b, TenantKey("acme"), value)
	if err != nil || got.Twilio.AuthToken != twilioToken || got.Backend.Token != "backendSECRET0001" {
		t.Fatalf("decoded %+v, %v", got, err)
	}
}
