package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/parleyhq/parley/internal/tlstest"
)

func TestKafkaAndClickHouseSecurity(t *testing.T) {
	pki := tlstest.New(t)
	t.Setenv("KAFKA_PASSWORD", "kafka-password-0123456789")
	t.Setenv("CLICKHOUSE_PASSWORD", "clickhouse-password-0123456789")
	c, err := Parse([]byte(fmt.Sprintf(`
kafka:
  brokers: [kafka-0.kafka:9093]
  tls: { ca_file: %s, cert_file: %s, key_file: %s, server_name: kafka.internal }
  sasl: { mechanism: scram-sha-512, username: parley, password: "${KAFKA_PASSWORD}" }
clickhouse:
  addr: clickhouse:9440
  password: ${CLICKHOUSE_PASSWORD}
  tls: { enabled: true, ca_file: %s }
`, pki.CAFile, pki.ClientCert, pki.ClientKey, pki.CAFile)))
	if err != nil {
		t.Fatal(err)
	}
	k := c.Kafka
	if k.SASL.Mechanism != SASLScramSHA512 || k.SASL.Username != "parley" || k.SASL.Password.Reveal() != "kafka-password-0123456789" {
		t.Fatalf("sasl %+v", k.SASL)
	}
	tc, err := k.TLS.Build("kafka.tls")
	if err != nil || tc.RootCAs == nil || len(tc.Certificates) != 1 || tc.ServerName != "kafka.internal" {
		t.Fatalf("kafka tls %+v, %v", tc, err)
	}
	ch, err := c.ClickHouse.TLS.Build("clickhouse.tls")
	if err != nil || ch == nil || ch.RootCAs == nil || len(ch.Certificates) != 0 {
		t.Fatalf("clickhouse tls %+v, %v", ch, err)
	}
	if off, _ := (TLS{}).Build("x"); off != nil {
		t.Fatal("TLS on without a setting")
	}
	// Passwords never print.
	for _, s := range []string{fmt.Sprintf("%v %+v %#v", c, c, c), mustJSON(t, c)} {
		if strings.Contains(s, "password-0123") {
			t.Fatalf("secret leaked: %s", s)
		}
	}
}

func TestSecurityErrors(t *testing.T) {
	pki := tlstest.New(t)
	notPEM := filepath.Join(t.TempDir(), "ca.crt")
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct{ name, yaml, want string }{
		{"unknown mechanism", "kafka:\n  sasl: {mechanism: GSSAPI, username: u, password: p}\n", "kafka.sasl.mechanism"},
		{"no password", "kafka:\n  sasl: {mechanism: PLAIN, username: u}\n", "needs a username and a password"},
		{"credentials, no mechanism", "kafka:\n  sasl: {username: u, password: p}\n", "without a mechanism"},
		{"missing CA file", "kafka:\n  tls: {ca_file: /nonexistent/ca.crt}\n", "kafka.tls.ca_file"},
		{"CA file not PEM", "clickhouse:\n  tls: {ca_file: " + notPEM + "}\n", "clickhouse.tls.ca_file"},
		{"cert without key", "kafka:\n  tls: {cert_file: " + pki.ClientCert + "}\n", "go together"},
		{"key of another cert", "kafka:\n  tls: {cert_file: " + pki.ClientCert + ", key_file: " + pki.ServerKey + "}\n", "kafka.tls.cert_file/key_file"},
		{"unknown tls key", "kafka:\n  tls: {ca: x}\n", "ca"},
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
