package config

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/parleyhq/parley/tenants"
)

// TLS configures a client's TLS connection (to Kafka brokers, to
// ClickHouse). The files are PEM; in Kubernetes they are a mounted Secret.
// Paths are not secrets; the key file's content is never read into the
// configuration, so nothing printable holds it.
type TLS struct {
	// Enabled turns TLS on. It is implied by any of the fields below.
	Enabled bool `yaml:"enabled" json:"enabled"`
	// CAFile holds the certificates that may sign the server's; empty
	// trusts the system's roots.
	CAFile string `yaml:"ca_file" json:"ca_file,omitempty"`
	// CertFile and KeyFile are the client certificate and its key, for a
	// server that asks for one (mutual TLS). Both or neither.
	CertFile string `yaml:"cert_file" json:"cert_file,omitempty"`
	KeyFile  string `yaml:"key_file" json:"key_file,omitempty"`
	// ServerName is the name the server's certificate must carry; default:
	// the host name dialled.
	ServerName string `yaml:"server_name" json:"server_name,omitempty"`
}

// On reports whether TLS is configured.
func (t TLS) On() bool {
	return t.Enabled || t.CAFile != "" || t.CertFile != "" || t.KeyFile != "" || t.ServerName != ""
}

// Build loads the files and returns the client's tls.Config, or nil when
// TLS is off. what names the setting in errors ("kafka.tls").
func (t TLS) Build(what string) (*tls.Config, error) {
	if !t.On() {
		return nil, nil
	}
	c := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: t.ServerName}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("%s.ca_file: %w", what, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s.ca_file %s: no PEM certificate in it", what, t.CAFile)
		}
		c.RootCAs = pool
	}
	switch {
	case t.CertFile != "" && t.KeyFile != "":
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			// The error names the files and the mismatch, never the key.
			return nil, fmt.Errorf("%s.cert_file/key_file: %w", what, err)
		}
		c.Certificates = []tls.Certificate{cert}
	case t.CertFile != "" || t.KeyFile != "":
		return nil, fmt.Errorf("%s: cert_file and key_file go together (a client certificate needs its key)", what)
	}
	return c, nil
}

// SASL configures SASL authentication to the Kafka brokers.
type SASL struct {
	// Mechanism is PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512; empty: no SASL.
	// PLAIN sends the password as it is: use it over TLS only.
	Mechanism string `yaml:"mechanism" json:"mechanism,omitempty"`
	Username  string `yaml:"username" json:"username,omitempty"`
	// Password is a credential: write it as ${VAR}. It prints masked.
	Password tenants.Secret `yaml:"password" json:"password,omitempty"`
}

// SASL mechanisms Parley's Kafka clients speak.
const (
	SASLPlain       = "PLAIN"
	SASLScramSHA256 = "SCRAM-SHA-256"
	SASLScramSHA512 = "SCRAM-SHA-512"
)

func (s *SASL) validate() error {
	if s.Mechanism == "" {
		if s.Username != "" || s.Password != "" {
			return errors.New("kafka.sasl: username and password without a mechanism (PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512)")
		}
		return nil
	}
	s.Mechanism = strings.ToUpper(s.Mechanism)
	switch s.Mechanism {
	case SASLPlain, SASLScramSHA256, SASLScramSHA512:
	default:
		return fmt.Errorf("kafka.sasl.mechanism %q: want PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512", s.Mechanism)
	}
	if s.Username == "" || s.Password == "" {
		return fmt.Errorf("kafka.sasl: %s needs a username and a password", s.Mechanism)
	}
	return nil
}
