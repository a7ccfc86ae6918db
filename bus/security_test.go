package bus

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/parleyhq/parley/internal/tlstest"
	"github.com/parleyhq/parley/wire"
)

const testPassword = "s3cret-password-never-logged"

var mechanisms = []string{"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"}

// startSecuredBroker starts the embedded broker with TLS only (client
// certificates required) and SASL on, one user per mechanism.
func startSecuredBroker(t *testing.T, pki *tlstest.PKI) []string {
	t.Helper()
	var users []SASL
	for _, m := range mechanisms {
		users = append(users, SASL{Mechanism: m, Username: "parley-" + strings.ToLower(m), Password: testPassword})
	}
	b, err := StartEmbeddedWith(EmbeddedOptions{DataDir: t.TempDir(), TLS: pki.Server(true), Users: users})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b.Addrs()
}

func secured(pki *tlstest.PKI, mech, password string) *Security {
	return &Security{TLS: pki.Client(), SASL: &SASL{Mechanism: mech, Username: "parley-" + strings.ToLower(mech), Password: password}}
}

// Every kind of client Parley makes — kafka-go's (topic creation, Ping,
// the group-commit producer, a Reader through Dialer) and kgo's (a consumer
// group, the transactional processor, ReadPartitions, Tail) — reaches a
// broker that speaks only TLS with client certificates and SASL, with each
// mechanism.
func TestSecuredClientsReachATLSAndSASLBroker(t *testing.T) {
	pki := tlstest.New(t)
	brokers := startSecuredBroker(t, pki)
	for _, mech := range mechanisms {
		t.Run(mech, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			sec := secured(pki, mech, testPassword)
			if err := Ping(ctx, brokers, sec); err != nil {
				t.Fatalf("ping: %v", err)
			}
			if _, err := EnsureParleyTopics(ctx, brokers, sec, 2, 1); err != nil {
				t.Fatalf("parley topics: %v", err)
			}
			in, out := "in-"+mech, "out-"+mech
			if err := ensureTopics(ctx, brokers, sec, 1, 1, map[string]map[string]string{in: nil, out: nil}); err != nil {
				t.Fatal(err)
			}

			// The replies tail follows out from its end.
			var mu sync.Mutex
			var tailed []string
			if err := Tail(ctx, brokers, sec, out, slog.Default(), func(_, v []byte) {
				mu.Lock()
				tailed = append(tailed, string(v))
				mu.Unlock()
			}); err != nil {
				t.Fatalf("tail: %v", err)
			}

			p := NewProducer(brokers, ProducerOptions{Security: sec})
			defer p.Close()
			const n = 5
			for i := range n {
				if err := p.Produce(ctx, kafka.Message{Topic: in, Key: []byte("k"), Value: []byte(fmt.Sprint(i))}); err != nil {
					t.Fatalf("produce: %v", err)
				}
			}

			// A consumer group reads them.
			c := NewConsumer(ConsumerOptions{Brokers: brokers, Security: sec, Topic: in, Group: "g-" + mech, CommitEvery: 10 * time.Millisecond})
			got := make(chan string, n)
			runCtx, stop := context.WithCancel(ctx)
			ran := make(chan struct{})
			go func() {
				defer close(ran)
				_ = c.Run(runCtx, func(_ context.Context, m kafka.Message, done func()) { got <- string(m.Value); done() })
			}()
			for range n {
				select {
				case <-got:
				case <-ctx.Done():
					t.Fatal("consumer read nothing")
				}
			}
			stop()
			<-ran

			// The transactional processor copies in to out.
			proc := NewProcessor(ProcessorOptions{Brokers: brokers, Security: sec, Topic: in, Group: "p-" + mech,
				TransactionalID: "p-" + mech, SessionTimeout: 6 * time.Second})
			pctx, pstop := context.WithCancel(ctx)
			pran := make(chan struct{})
			go func() {
				defer close(pran)
				_ = proc.Run(pctx, func(_ context.Context, recs []*kgo.Record, tx *Txn) {
					for _, r := range recs {
						tx.Produce(&kgo.Record{Topic: out, Partition: r.Partition, Value: r.Value})
					}
				})
			}()
			var read int
			for ctx.Err() == nil {
				read = 0
				if _, err := ReadPartitions(ctx, brokers, sec, out, []int32{0}, time.Second, func(int32, []byte, []byte) { read++ }); err != nil {
					t.Fatalf("read partitions: %v", err)
				}
				if read >= n {
					break
				}
				time.Sleep(100 * time.Millisecond)
			}
			pstop()
			<-pran
			if read != n {
				t.Fatalf("read %d committed outputs, want %d", read, n)
			}
			for ctx.Err() == nil {
				mu.Lock()
				k := len(tailed)
				mu.Unlock()
				if k == n {
					break
				}
				time.Sleep(50 * time.Millisecond)
			}
			if ctx.Err() != nil {
				t.Fatalf("tail saw %d of %d outputs", len(tailed), n)
			}

			// kafka-go's Reader through the Dialer.
			r := kafka.NewReader(kafka.ReaderConfig{Brokers: brokers, Topic: in, Partition: 0, Dialer: sec.Dialer(), MaxWait: 100 * time.Millisecond})
			defer r.Close()
			m, err := r.ReadMessage(ctx)
			if err != nil || string(m.Value) != "0" {
				t.Fatalf("reader: %q %v", m.Value, err)
			}
		})
	}
	if err := Ping(context.Background(), []string{brokers[0]}, &Security{TLS: pki.Client(), SASL: &SASL{Mechanism: "GSSAPI"}}); err == nil {
		t.Fatal("an unknown mechanism connected")
	}
}

// A wrong password, a CA that did not sign the broker's certificate, a
// missing client certificate and a server name the certificate does not
// carry each fail, with the reason in the error, and the password appears
// in no error, log line or printout.
func TestSecuredClientsFailClearly(t *testing.T) {
	pki := tlstest.New(t)
	brokers := startSecuredBroker(t, pki)
	other := tlstest.New(t)
	wrongCA := secured(pki, "SCRAM-SHA-256", testPassword)
	wrongCA.TLS = &tls.Config{RootCAs: other.CA, Certificates: pki.Client().Certificates}
	noClientCert := secured(pki, "SCRAM-SHA-256", testPassword)
	noClientCert.TLS = &tls.Config{RootCAs: pki.CA}
	wrongName := secured(pki, "SCRAM-SHA-256", testPassword)
	wrongName.TLS.ServerName = "kafka.example.net"

	cases := []struct {
		name string
		sec  *Security
		want []string // the error holds one of these
	}{
		{"wrong password SCRAM", secured(pki, "SCRAM-SHA-512", "wrong-"+testPassword), []string{"wrong username or password"}},
		{"wrong password PLAIN", secured(pki, "PLAIN", "wrong-"+testPassword), []string{"wrong username or password"}},
		{"untrusted CA", wrongCA, []string{"certificate signed by unknown authority"}},
		{"no client certificate", noClientCert, []string{"certificate required", "bad certificate", "EOF", "connection reset"}},
		{"wrong server name", wrongName, []string{"not kafka.example.net"}},
		{"plaintext", nil, []string{"does it want TLS"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var logs bytes.Buffer
			log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			errs := map[string]error{}
			errs["ping (kafka-go)"] = Ping(ctx, brokers, tc.sec)
			_, errs["parley topics (kafka-go)"] = EnsureParleyTopics(ctx, brokers, tc.sec, 1, 1)
			p := NewProducer(brokers, ProducerOptions{Security: tc.sec})
			errs["produce (kafka-go)"] = p.Produce(ctx, kafka.Message{Topic: wire.TopicInbound, Value: []byte("x")})
			_ = p.Close()
			_, errs["read partitions (kgo)"] = ReadPartitions(ctx, brokers, tc.sec, wire.TopicInbound, []int32{0}, 0, func(int32, []byte, []byte) {})
			errs["tail (kgo)"] = Tail(ctx, brokers, tc.sec, wire.TopicReplies, log, func(_, _ []byte) {})
			for what, err := range errs {
				if err == nil {
					t.Fatalf("%s: connected", what)
				}
				if strings.Contains(err.Error(), testPassword) {
					t.Fatalf("%s: password in the error: %v", what, err)
				}
				// What the operator sees: readiness and the start-up topic check.
				if (what == "ping (kafka-go)" || what == "parley topics (kafka-go)") && !containsAny(err.Error(), tc.want) {
					t.Errorf("%s: error %q says none of %q", what, err, tc.want)
				}
				t.Logf("%s: %v", what, err)
			}
			if strings.Contains(logs.String(), testPassword) {
				t.Fatalf("password logged: %s", logs.String())
			}
		})
	}

	// Printing a Security never shows the password.
	s := secured(pki, "SCRAM-SHA-512", testPassword)
	for _, out := range []string{fmt.Sprintf("%v %+v %#v %s", s.SASL, s.SASL, s.SASL, *s.SASL), fmt.Sprintf("%+v", s)} {
		if strings.Contains(out, testPassword) {
			t.Fatalf("password printed: %s", out)
		}
	}
}

func containsAny(s string, subs []string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}
