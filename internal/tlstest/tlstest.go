// Package tlstest makes a throwaway certificate authority for tests of
// TLS connections: a CA, a server certificate for loopback (and any names
// given) and a client certificate, each written as PEM files too, so the
// configuration under test reads them as a deployment would.
package tlstest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// PKI is a CA and the certificates it signed, with their files.
type PKI struct {
	// CAFile is the CA certificate; ServerCert/ServerKey and
	// ClientCert/ClientKey are certificates it signed and their keys.
	CAFile, ServerCert, ServerKey, ClientCert, ClientKey string
	CA                                                   *x509.CertPool
	server, client                                       tls.Certificate
}

// New makes a CA and certificates under t.TempDir(). The server
// certificate is valid for 127.0.0.1, ::1, localhost and names.
func New(t testing.TB, names ...string) *PKI {
	t.Helper()
	dir := t.TempDir()
	caKey := newKey(t)
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "Parley test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	p := &PKI{CA: x509.NewCertPool(), CAFile: filepath.Join(dir, "ca.crt")}
	p.CA.AddCert(ca)
	writePEM(t, p.CAFile, "CERTIFICATE", caDER)

	leaf := func(serial int64, cn string, usage x509.ExtKeyUsage, dns []string, ips []net.IP, name string) (tls.Certificate, string, string) {
		key := newKey(t)
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial),
			Subject:      pkix.Name{CommonName: cn},
			NotBefore:    time.Now().Add(-time.Hour),
			NotAfter:     time.Now().Add(24 * time.Hour),
			KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
			ExtKeyUsage:  []x509.ExtKeyUsage{usage},
			DNSNames:     dns,
			IPAddresses:  ips,
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		keyDER, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		certFile, keyFile := filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
		writePEM(t, certFile, "CERTIFICATE", der)
		writePEM(t, keyFile, "PRIVATE KEY", keyDER)
		c, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			t.Fatal(err)
		}
		return c, certFile, keyFile
	}
	p.server, p.ServerCert, p.ServerKey = leaf(2, "parley-test-server", x509.ExtKeyUsageServerAuth,
		append([]string{"localhost"}, names...), []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}, "server")
	p.client, p.ClientCert, p.ClientKey = leaf(3, "parley-test-client", x509.ExtKeyUsageClientAuth, nil, nil, "client")
	return p
}

// Server is a listener's configuration: its certificate, and client
// certificates from this CA required when requireClient.
func (p *PKI) Server(requireClient bool) *tls.Config {
	c := &tls.Config{Certificates: []tls.Certificate{p.server}, MinVersion: tls.VersionTLS12}
	if requireClient {
		c.ClientAuth = tls.RequireAndVerifyClientCert
		c.ClientCAs = p.CA
	}
	return c
}

// Client is a client's configuration trusting this CA, with the client
// certificate.
func (p *PKI) Client() *tls.Config {
	return &tls.Config{RootCAs: p.CA, Certificates: []tls.Certificate{p.client}, MinVersion: tls.VersionTLS12}
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func writePEM(t testing.TB, path, typ string, der []byte) {
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}
