package chtest

import (
	"context"
	"testing"
	"time"

	"github.com/parleyhq/parley/internal/chserver"
	"github.com/parleyhq/parley/internal/tlstest"
)

// StartTLS starts a server of t's own whose native protocol also listens
// with TLS (Server.TLSAddr) on pki's server certificate, the "default"
// user's password set; with requireClientCert, a TLS client must present a
// certificate pki signed. It stops when t ends.
func StartTLS(t testing.TB, pki *tlstest.PKI, password string, requireClientCert bool) *chserver.Server {
	t.Helper()
	o := chserver.Options{Dir: t.TempDir(), CertFile: pki.ServerCert, KeyFile: pki.ServerKey, Password: password}
	if requireClientCert {
		o.CAFile = pki.CAFile
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s, err := chserver.Start(ctx, o)
	if err != nil {
		t.Fatalf("chtest: TLS server: %v", err)
	}
	t.Cleanup(func() { _ = s.Stop() })
	return s
}
