package main

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/parleyhq/parley/bus"
	"github.com/parleyhq/parley/channels/twilio/twiliotest"
	"github.com/parleyhq/parley/internal/clustertest"
	"github.com/parleyhq/parley/internal/seal"
	"github.com/parleyhq/parley/tenants"
	"github.com/parleyhq/parley/tenants/configlog"
	"github.com/parleyhq/parley/wire"
)

// bravo is a tenant the YAML files do not know: it exists only on
// parley.config.
func bravo(c *clustertest.Cluster) tenants.Tenant {
	return tenants.Tenant{
		ID: "bravo", Name: "Bravo Cleaning", TimeZone: "Europe/London", APIRateLimit: 1000,
		Twilio: &tenants.Twilio{AccountSID: twiliotest.TestAccountSID, AuthToken: twiliotest.TestAuthToken,
			From: twiliotest.SandboxFrom, APIBaseURL: c.Twilio.URL()},
		Backend: tenants.BackendConfig{Kind: "http", BaseURL: c.Backend.URL(), Token: clustertest.BackendToken},
		Brain:   tenants.BrainConfig{Kind: "rules"},
	}
}

// waitWebhook posts a signed webhook for tenant to n until it is
// acknowledged (200) and returns how long that took.
func waitWebhook(t *testing.T, c *clustertest.Cluster, n *clustertest.Node, tenant, phone string, limit time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		status, err := c.PostTwilioTenant(n, tenant, phone, "hi", clustertest.NewMessageSID())
		if err == nil && status == http.StatusOK {
			return time.Since(start)
		}
		if time.Since(start) > limit {
			t.Fatalf("webhook for %s on %s: %d %v after %v", tenant, n, status, err, time.Since(start))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// configBytes is every key and value on parley.config.
func configBytes(t *testing.T, brokers []string) []byte {
	t.Helper()
	var mu sync.Mutex
	var raw []byte
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := bus.Follow(ctx, brokers, nil, wire.TopicConfig, slog.New(slog.DiscardHandler), func(k, v []byte) {
		mu.Lock()
		raw = append(append(raw, k...), v...)
		mu.Unlock()
	}, nil); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	return raw
}

// TestTenantOnTheConfigTopicServedByEveryNode: a tenant written to
// parley.config (as node n1 would) answers a signed webhook on n2 within
// a second, no restart; both nodes restarted still serve it; its
// credentials are not readable on the topic.
func TestTenantOnTheConfigTopicServedByEveryNode(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{Nodes: 2})
	n1, n2 := c.Nodes[0], c.Nodes[1]
	brokers := []string{c.Broker.Addr}
	if status, _ := c.PostTwilioTenant(n2, "bravo", "+447700900701", "hi", clustertest.NewMessageSID()); status != http.StatusNotFound {
		t.Fatalf("bravo before it exists: %d, want 404", status)
	}

	key, err := seal.ParseKey(clustertest.SecretsKey())
	if err != nil {
		t.Fatal(err)
	}
	box, err := seal.New(key)
	if err != nil {
		t.Fatal(err)
	}
	value, err := configlogEncode(box, bravo(c))
	if err != nil {
		t.Fatal(err)
	}
	p := bus.NewProducer(brokers, bus.ProducerOptions{})
	defer p.Close()
	written := time.Now()
	if err := p.Produce(context.Background(), value); err != nil {
		t.Fatal(err)
	}
	took := waitWebhook(t, c, n2, "bravo", "+447700900701", time.Second)
	t.Logf("tenant written to parley.config: signed webhook acknowledged on n2 after %v (%v after the write)", took, time.Since(written))
	if _, err := c.NextReply("+447700900701", 20*time.Second); err != nil {
		t.Fatalf("bravo's customer got no answer: %v", err)
	}
	waitWebhook(t, c, n1, "bravo", "+447700900702", time.Second)

	c.RestartAll()
	for i, n := range c.Nodes {
		phone := []string{"+447700900703", "+447700900704"}[i]
		waitWebhook(t, c, n, "bravo", phone, time.Second)
		if _, err := c.NextReply(phone, 30*time.Second); err != nil {
			t.Fatalf("after the restart, bravo's customer on %s got no answer: %v", n, err)
		}
	}

	raw := configBytes(t, brokers)
	if !bytes.Contains(raw, []byte("tenant/bravo")) || !bytes.Contains(raw, []byte("tenant/"+clustertest.Tenant)) {
		t.Fatalf("parley.config lacks the tenants (%d bytes)", len(raw))
	}
	for _, s := range []string{twiliotest.TestAuthToken, clustertest.BackendToken} {
		if bytes.Contains(raw, []byte(s)) {
			t.Errorf("parley.config holds a credential in the clear")
		}
	}
}

// configlogEncode is the record a node writes for t.
func configlogEncode(box *seal.Box, t tenants.Tenant) (kafka.Message, error) {
	v, err := configlog.EncodeTenant(box, t)
	return kafka.Message{Topic: wire.TopicConfig, Key: configlog.TenantKey(t.ID), Value: v}, err
}
