package clickhouse

import (
	"context"
	"crypto/tls"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parleyhq/parley/internal/chtest"
	"github.com/parleyhq/parley/internal/tlstest"
)

const chPassword = "ch-password-never-logged-0123"

// The store reaches a server over TLS only (its secure native port, a
// self-signed CA made here, a client certificate required) with a
// password; a wrong password, an untrusted CA, a missing client
// certificate, the wrong server name and TLS against the plaintext port
// each fail with the reason, and the password is in no error or log line.
func TestStoreOverTLS(t *testing.T) {
	pki := tlstest.New(t, "clickhouse.test")
	srv := chtest.StartTLS(t, pki, chPassword, true)
	var logs syncBuilder
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	base := Config{Addr: srv.TLSAddr(), Database: "parley_tls", Username: "default", Password: chPassword, TLS: pki.Client(), Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}

	s, err := Open(ctx, base)
	if err != nil {
		t.Fatalf("open over TLS: %v", err)
	}
	if err := s.WriteEvents(ctx, makeEvents("tls", 3)); err != nil {
		t.Fatalf("write over TLS: %v", err)
	}
	var n uint64
	if err := s.Conn().QueryRow(ctx, "SELECT count() FROM messages").Scan(&n); err != nil || n == 0 {
		t.Fatalf("messages over TLS: %d, %v", n, err)
	}
	_ = s.Close()

	other := tlstest.New(t)
	withTLS := func(f func(c *tls.Config)) Config {
		c := base
		c.TLS = pki.Client()
		f(c.TLS)
		return c
	}
	cases := []struct {
		name string
		cfg  Config
		want []string
	}{
		{"wrong password", func() Config { c := base; c.Password = "wrong-" + chPassword; return c }(), []string{"Wrong password"}},
		{"untrusted CA", withTLS(func(c *tls.Config) { c.RootCAs = other.CA }), []string{"certificate signed by unknown authority"}},
		// TLS 1.3: the server's refusal comes after the client's handshake
		// ends, as an alert or, when the server closes first, a reset.
		{"no client certificate", withTLS(func(c *tls.Config) { c.Certificates = nil }), []string{"certificate required", "connection reset", "EOF", "bad certificate"}},
		{"wrong server name", withTLS(func(c *tls.Config) { c.ServerName = "other.test" }), []string{"not other.test"}},
		{"TLS to the plaintext port", func() Config { c := base; c.Addr = srv.Addr(); return c }(), []string{"tls", "EOF", "record"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			defer cancel()
			s, err := Open(ctx, tc.cfg)
			if err == nil {
				_ = s.Close()
				t.Fatal("connected")
			}
			t.Logf("%v", err)
			msg := err.Error()
			if strings.Contains(msg, chPassword) {
				t.Fatalf("password in the error: %v", err)
			}
			found := false
			for _, w := range tc.want {
				found = found || strings.Contains(msg, w)
			}
			if !found {
				t.Fatalf("error %q says none of %q", msg, tc.want)
			}
		})
	}
	if strings.Contains(logs.String(), chPassword) {
		t.Fatalf("password logged: %s", logs.String())
	}
}

// syncBuilder is a strings.Builder the store's goroutines may log to.
type syncBuilder struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuilder) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuilder) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
