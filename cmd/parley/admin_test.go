package main

import (
	"bytes"
	"net/http"
	"testing"
	"time"

	"github.com/parleyhq/parley/channels/twilio/twiliotest"
	"github.com/parleyhq/parley/internal/clustertest"
)

// bravoBody is bravo as the admin API takes it.
func bravoBody(c *clustertest.Cluster) map[string]any {
	return map[string]any{
		"id": "bravo", "name": "Bravo Cleaning", "time_zone": "Europe/London", "api_rate_limit": 1000,
		"twilio": map[string]any{"account_sid": twiliotest.TestAccountSID, "auth_token": twiliotest.TestAuthToken,
			"from": twiliotest.SandboxFrom, "api_base_url": c.Twilio.URL()},
		"backend": map[string]any{"kind": "http", "base_url": c.Backend.URL(), "token": clustertest.BackendToken},
		"brain":   map[string]any{"kind": "rules"},
	}
}

// keyWorks reports whether key is accepted by n (GET /api/v1/tenants
// takes any known key).
func keyWorks(t *testing.T, c *clustertest.Cluster, n *clustertest.Node, key string) bool {
	t.Helper()
	r, err := c.Call(n, http.MethodGet, "tenants", key, nil)
	if err != nil {
		t.Fatal(err)
	}
	if r.Status != http.StatusOK && r.Status != http.StatusUnauthorized {
		t.Fatalf("GET /api/v1/tenants on %s: %s", n, r)
	}
	return r.Status == http.StatusOK
}

// within polls ok every 10 ms until it holds, failing after limit; it
// returns how long that took.
func within(t *testing.T, what string, limit time.Duration, ok func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !ok() {
		if time.Since(start) > limit {
			t.Fatalf("%s: not within %v", what, limit)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return time.Since(start)
}

// TestAdminChangesReachEveryNode (issue 13): two processes on one broker.
// A tenant created through n1's API answers a signed webhook on n2 within
// a second; a key created on n1 works on n2 within a second, and once
// revoked on n1 is refused on n2 within a second; after both nodes
// restart the tenant and the surviving key are there and the revoked key
// stays refused; no credential or key is readable on parley.config; a
// tenant deleted on n1 is a 404 on n2 within a second.
func TestAdminChangesReachEveryNode(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{Nodes: 2})
	n1, n2 := c.Nodes[0], c.Nodes[1]

	r, err := c.Call(n1, http.MethodPost, "tenants", clustertest.AdminKey, bravoBody(c))
	if err != nil || r.Status != http.StatusCreated {
		t.Fatalf("create bravo on n1: %v %s", err, r)
	}
	if bytes.Contains(r.Body, []byte(twiliotest.TestAuthToken)) || bytes.Contains(r.Body, []byte(clustertest.BackendToken)) {
		t.Fatalf("the answer holds a credential: %s", r.Body)
	}
	took := waitWebhook(t, c, n2, "bravo", "+447700900711", time.Second)
	t.Logf("tenant created on n1: signed webhook acknowledged on n2 after %v", took)
	if _, err := c.NextReply("+447700900711", 20*time.Second); err != nil {
		t.Fatalf("bravo's customer got no answer: %v", err)
	}

	newKey := func(name string) (id, secret string) {
		t.Helper()
		r, err := c.Call(n1, http.MethodPost, "keys", clustertest.AdminKey,
			map[string]any{"name": name, "role": "agent", "tenants": []string{"bravo"}})
		var made struct{ ID, Key string }
		if err != nil || r.Status != http.StatusCreated || r.JSON(&made) != nil || made.Key == "" {
			t.Fatalf("create key %s on n1: %v %s", name, err, r)
		}
		return made.ID, made.Key
	}
	keptID, kept := newKey("bravo-crm")
	revokedID, revoked := newKey("bravo-old")
	took = within(t, "a key made on n1 accepted on n2", time.Second, func() bool { return keyWorks(t, c, n2, kept) })
	t.Logf("key created on n1: accepted on n2 after %v", took)
	within(t, "the second key on n2", time.Second, func() bool { return keyWorks(t, c, n2, revoked) })

	if r, err := c.Call(n1, http.MethodDelete, "keys/"+revokedID, clustertest.AdminKey, nil); err != nil || r.Status != http.StatusNoContent {
		t.Fatalf("revoke on n1: %v %s", err, r)
	}
	took = within(t, "a key revoked on n1 refused on n2", time.Second, func() bool { return !keyWorks(t, c, n2, revoked) })
	t.Logf("key revoked on n1: refused on n2 after %v", took)

	for _, n := range c.Nodes {
		if _, err := c.Stop(n); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range c.Nodes {
		c.Restart(n)
	}
	for _, n := range c.Nodes {
		if _, err := c.WaitReady(n, 90*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	for i, n := range c.Nodes {
		if !keyWorks(t, c, n, kept) || keyWorks(t, c, n, revoked) {
			t.Fatalf("after the restart, on %s: the kept key works %v, the revoked one %v", n, keyWorks(t, c, n, kept), keyWorks(t, c, n, revoked))
		}
		phone := []string{"+447700900712", "+447700900713"}[i]
		waitWebhook(t, c, n, "bravo", phone, time.Second)
		if _, err := c.NextReply(phone, 30*time.Second); err != nil {
			t.Fatalf("after the restart, bravo's customer on %s got no answer: %v", n, err)
		}
	}
	var listed struct {
		Items []struct{ ID, Name string }
	}
	if r, err := c.Call(n2, http.MethodGet, "keys", clustertest.AdminKey, nil); err != nil || r.JSON(&listed) != nil ||
		bytes.Contains(r.Body, []byte(kept)) {
		t.Fatalf("GET /keys on n2: %v %s", err, r)
	}
	found := false
	for _, k := range listed.Items {
		found = found || k.ID == keptID
	}
	if !found {
		t.Fatalf("n2 does not list the kept key: %+v", listed.Items)
	}

	raw := configBytes(t, []string{c.Broker.Addr})
	for _, s := range []string{twiliotest.TestAuthToken, clustertest.BackendToken, kept, revoked} {
		if bytes.Contains(raw, []byte(s)) {
			t.Errorf("parley.config holds a credential or key in the clear")
		}
	}

	if r, err := c.Call(n1, http.MethodDelete, "tenants/bravo", clustertest.AdminKey, nil); err != nil || r.Status != http.StatusNoContent {
		t.Fatalf("delete bravo on n1: %v %s", err, r)
	}
	took = within(t, "bravo deleted on n1: 404 on n2", time.Second, func() bool {
		status, _ := c.PostTwilioTenant(n2, "bravo", "+447700900714", "hi", clustertest.NewMessageSID())
		return status == http.StatusNotFound
	})
	t.Logf("tenant deleted on n1: its webhooks 404 on n2 after %v", took)
}
