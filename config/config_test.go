package config

import (
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// issueExample is the configuration file users are told works.
const issueExample = `
http:
  addr: 127.0.0.1:8080
  public_base_url: https://parley.example.com   # the URL Twilio signs; default: http://<addr>
kafka:
  brokers: []            # empty: embedded broker (dev only)
clickhouse:
  addr: ""               # empty: local child server (dev only); else host:port, native protocol
  database: parley
tenants:
  - id: acme
    name: Acme Cleaning
    twilio:
      account_sid: AC00000000000000000000000000000001
      auth_token: ${ACME_TWILIO_TOKEN}          # ${VAR} is read from the environment
      from: "whatsapp:+14155238886"
      api_base_url: http://127.0.0.1:9999       # optional: a Twilio-compatible API (tests, sandboxes)
    backend: { kind: demo }
    brain: { kind: rules }
`

func TestIssueExampleParses(t *testing.T) {
	t.Setenv("ACME_TWILIO_TOKEN", "0123456789abcdef0123456789abcdef")
	c, err := Parse([]byte(issueExample))
	if err != nil {
		t.Fatal(err)
	}
	tw := c.Tenants[0].Twilio
	if tw.AuthToken.Reveal() != "0123456789abcdef0123456789abcdef" || tw.APIBaseURL != "http://127.0.0.1:9999" {
		t.Fatalf("twilio %+v", tw)
	}
	if c.HTTP.PublicBaseURL != "https://parley.example.com" || c.HTTP.MaxBodyBytes != 64<<10 || c.HTTP.MetaMaxBodyBytes != 3<<20 || c.ClickHouse.Database != "parley" {
		t.Fatalf("defaults %+v", c.HTTP)
	}
	// Printing or serialising the config never shows the token.
	for _, s := range []string{fmt.Sprintf("%v %+v %#v", c, c, c), mustJSON(t, c)} {
		if strings.Contains(s, "0123456789abcdef0123") {
			t.Fatalf("secret leaked: %s", s)
		}
	}
}

func mustJSON(t *testing.T, v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestParseErrors(t *testing.T) {
	cases := []struct {
		name, yaml, want string
	}{
		{"unset variable", issueExample, "ACME_TWILIO_TOKEN"},
		{"unknown key", "htp:\n  addr: x\n", "htp"},
		{"bad public url", "http:\n  public_base_url: parley.example.com\n", "public_base_url"},
		{"bad tenant id", "tenants:\n  - id: Acme Co\n    simulator: true\n", "tenant id"},
		{"duplicate tenant", "tenants:\n  - {id: a, simulator: true}\n  - {id: a, simulator: true}\n", "twice"},
		{"two tenants on one meta number", "tenants:\n" +
			"  - {id: a, meta: {phone_number_id: \"1065\", access_token: t, app_secret: s, verify_token: v}}\n" +
			"  - {id: b, meta: {phone_number_id: \"1065\", access_token: t, app_secret: s, verify_token: v}}\n", "configured for tenants a and b"},
		{"unknown brain", "tenants:\n  - {id: a, simulator: true, brain: {kind: magic}}\n", "brain"},
		{"negative body cap", "http:\n  meta_max_body_bytes: -1\n", "meta_max_body_bytes"},
		{"negative retention", "clickhouse:\n  retention_days: -1\n", "retention_days"},
		{"janitor too often", "clickhouse:\n  janitor_every: 10ms\n", "janitor_every"},
		{"janitor not a duration", "clickhouse:\n  janitor_every: often\n", "often"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.yaml))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want mention of %q", err, tc.want)
			}
		})
	}
}

func TestDevConfig(t *testing.T) {
	c := Dev("", "")
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if len(c.Kafka.Brokers) != 0 || c.ClickHouse.Addr != "" || c.Tenants[0].ID != "demo" || !c.Tenants[0].Sim {
		t.Fatalf("dev config %+v", c)
	}
}

func TestClickHouseRetentionAndJanitor(t *testing.T) {
	cases := []struct {
		name, yaml string
		days       int
		every      time.Duration
	}{
		{"defaults", "", DefaultRetentionDays, 10 * time.Minute},
		{"set", "clickhouse:\n  retention_days: 90\n  janitor_every: 1m30s\n", 90, 90 * time.Second},
		{"keep everything", "clickhouse:\n  retention_days: 0\n", 0, 10 * time.Minute},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse([]byte(tc.yaml))
			if err != nil {
				t.Fatal(err)
			}
			if c.ClickHouse.Retention() != tc.days || c.ClickHouse.JanitorEvery != tc.every {
				t.Fatalf("retention %d, janitor every %s; want %d, %s", c.ClickHouse.Retention(), c.ClickHouse.JanitorEvery, tc.days, tc.every)
			}
		})
	}
}

func TestKafkaSessionTimeout(t *testing.T) {
	cases := []struct {
		name, yaml string
		want       time.Duration
	}{
		{"default", "", 10 * time.Second},
		{"Apache Kafka's minimum", "kafka:\n  session_timeout: 6s\n", 6 * time.Second},
		{"longer", "kafka:\n  session_timeout: 45s\n", 45 * time.Second},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse([]byte(tc.yaml))
			if err != nil {
				t.Fatal(err)
			}
			if c.Kafka.SessionTimeout != tc.want {
				t.Fatalf("session timeout %s, want %s", c.Kafka.SessionTimeout, tc.want)
			}
		})
	}
	// Below the broker's minimum the error says why, naming the broker
	// setting an operator would look up.
	for _, v := range []string{"5s", "5999ms", "-10s"} {
		_, err := Parse([]byte("kafka:\n  session_timeout: " + v + "\n"))
		if err == nil || !strings.Contains(err.Error(), "kafka.session_timeout") || !strings.Contains(err.Error(), "group.min.session.timeout.ms") {
			t.Fatalf("session_timeout %s: err = %v", v, err)
		}
	}
	if _, err := Parse([]byte("kafka:\n  session_timeout: soon\n")); err == nil || !strings.Contains(err.Error(), "soon") {
		t.Fatalf("not a duration: err = %v", err)
	}
	if c := Dev("", ""); c.Kafka.SessionTimeout != DefaultSessionTimeout {
		t.Fatalf("dev session timeout %s", c.Kafka.SessionTimeout)
	}
}

func TestNodeID(t *testing.T) {
	c, err := Parse([]byte("node_id: n1\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.NodeID != "n1" {
		t.Fatalf("node id %q", c.NodeID)
	}
	// Unset: host name and pid, so two processes on one machine differ.
	c, err = Parse(nil)
	if err != nil {
		t.Fatal(err)
	}
	host, _ := os.Hostname()
	suffix := "-" + strconv.Itoa(os.Getpid())
	if !strings.HasSuffix(c.NodeID, suffix) || !strings.HasPrefix(c.NodeID, nodeIDBad.ReplaceAllString(host, "-")) {
		t.Fatalf("default node id %q, want %s%s", c.NodeID, host, suffix)
	}
	if !nodeIDOK.MatchString(c.NodeID) || len(c.NodeID) > maxNodeID {
		t.Fatalf("default node id %q is not a valid one", c.NodeID)
	}
	if Dev("", "").NodeID == "" {
		t.Fatal("dev config without a node id")
	}
	for _, bad := range []string{`"node 1"`, `"n1/a"`, strings.Repeat("n", maxNodeID+1)} {
		if _, err := Parse([]byte("node_id: " + bad + "\n")); err == nil || !strings.Contains(err.Error(), "node_id") {
			t.Fatalf("node_id %s: err = %v", bad, err)
		}
	}
}
