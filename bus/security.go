package bus

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"
	kafkasasl "github.com/segmentio/kafka-go/sasl"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/parleyhq/parley/internal/mask"
)

// Security is how every Kafka client Parley makes reaches a secured
// cluster: TLS, SASL, both, or neither (a nil *Security is plaintext, what
// the embedded broker speaks). It is the one place both client libraries
// are configured from: franz-go's kgo (consumer groups, the sessions'
// transactions, changelog reads, the replies tail, the sender's writer)
// takes KgoOpts; segmentio/kafka-go (the ingress producer, topic creation,
// readiness, the sender's ledger) takes Transport or Dialer.
type Security struct {
	// TLS, when set, wraps every connection (RootCAs, client certificate,
	// ServerName as configured; an empty ServerName is the host dialled).
	TLS *tls.Config
	// SASL, when set, authenticates every connection.
	SASL *SASL

	once      sync.Once
	transport *kafka.Transport
}

// SASL is a SASL login: Mechanism is "PLAIN", "SCRAM-SHA-256" or
// "SCRAM-SHA-512". It prints with the password masked.
type SASL struct {
	Mechanism string
	Username  string
	Password  string
}

// String masks the password.
func (s SASL) String() string {
	return fmt.Sprintf("{Mechanism:%s Username:%s Password:%s}", s.Mechanism, s.Username, mask.Secret(s.Password))
}

// GoString masks the password.
func (s SASL) GoString() string { return "bus.SASL" + s.String() }

// mechanism is franz-go's implementation of the login; kafka-go runs the
// same one through kafkaMechanism, so both libraries speak SCRAM with one
// implementation (kafka-go's own needs a further module).
func (s *SASL) mechanism() (sasl.Mechanism, error) {
	switch s.Mechanism {
	case "PLAIN":
		return plain.Auth{User: s.Username, Pass: s.Password}.AsMechanism(), nil
	case "SCRAM-SHA-256":
		return scram.Auth{User: s.Username, Pass: s.Password}.AsSha256Mechanism(), nil
	case "SCRAM-SHA-512":
		return scram.Auth{User: s.Username, Pass: s.Password}.AsSha512Mechanism(), nil
	}
	return nil, fmt.Errorf("kafka SASL mechanism %q: want PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512", s.Mechanism)
}

// Validate reports a SASL mechanism Parley cannot speak.
func (s *Security) Validate() error {
	if s == nil || s.SASL == nil {
		return nil
	}
	_, err := s.SASL.mechanism()
	return err
}

// KgoOpts are the options a franz-go client needs to reach the cluster:
// none for a nil Security.
func (s *Security) KgoOpts() []kgo.Opt {
	if s == nil {
		return nil
	}
	var opts []kgo.Opt
	if s.TLS != nil {
		opts = append(opts, kgo.DialTLSConfig(s.TLS.Clone()))
	}
	if s.SASL != nil {
		if m, err := s.SASL.mechanism(); err == nil {
			opts = append(opts, kgo.SASL(m))
		}
	}
	return opts
}

// Transport is the kafka-go transport for kafka.Client and kafka.Writer:
// nil (kafka-go's default) for a nil Security, else one transport shared by
// every client of this Security, so they share its connection pool.
func (s *Security) Transport() kafka.RoundTripper {
	if s == nil || (s.TLS == nil && s.SASL == nil) {
		return nil
	}
	s.once.Do(func() {
		s.transport = &kafka.Transport{
			Dial:        (&net.Dialer{Timeout: 3 * time.Second}).DialContext,
			TLS:         s.tlsClone(),
			SASL:        s.kafkaMechanism(),
			IdleTimeout: 30 * time.Second,
		}
	})
	return s.transport
}

// Dialer is the kafka-go dialer for kafka.Reader and kafka.Conn.
func (s *Security) Dialer() *kafka.Dialer {
	d := &kafka.Dialer{Timeout: 10 * time.Second, DualStack: true}
	if s != nil {
		d.TLS = s.tlsClone()
		d.SASLMechanism = s.kafkaMechanism()
	}
	return d
}

// Client is a kafka-go client of the cluster at brokers.
func (s *Security) Client(brokers []string, timeout time.Duration) *kafka.Client {
	return &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: timeout, Transport: s.Transport()}
}

func (s *Security) tlsClone() *tls.Config {
	if s.TLS == nil {
		return nil
	}
	return s.TLS.Clone()
}

func (s *Security) kafkaMechanism() kafkasasl.Mechanism {
	if s.SASL == nil {
		return nil
	}
	m, err := s.SASL.mechanism()
	if err != nil {
		return nil
	}
	return kafkaMechanism{m}
}

// kafkaMechanism runs a franz-go SASL mechanism for kafka-go: both are the
// same challenge-response loop under different names.
type kafkaMechanism struct{ m sasl.Mechanism }

func (k kafkaMechanism) Name() string { return k.m.Name() }

func (k kafkaMechanism) Start(ctx context.Context) (kafkasasl.StateMachine, []byte, error) {
	host := ""
	if md := kafkasasl.MetadataFromContext(ctx); md != nil {
		host = net.JoinHostPort(md.Host, fmt.Sprint(md.Port))
	}
	sess, first, err := k.m.Authenticate(ctx, host)
	if err != nil {
		return nil, nil, err
	}
	return kafkaSession{sess}, first, nil
}

type kafkaSession struct{ s sasl.Session }

func (k kafkaSession) Next(_ context.Context, challenge []byte) (bool, []byte, error) {
	done, resp, err := k.s.Challenge(challenge)
	if err == nil && done && len(resp) > 0 {
		// franz-go may end with a message it writes without awaiting an
		// answer; kafka-go's loop has no such step. PLAIN and SCRAM
		// never do it.
		return false, nil, errors.New("kafka SASL: mechanism ends with a message kafka-go cannot send")
	}
	return done, resp, err
}

// explain names the likely setting behind an error of the first request to
// the brokers. A broker that refuses a login or a plaintext client mostly
// just hangs up (kfake always does; Kafka answers a failed SASL login
// with SASL_AUTHENTICATION_FAILED, which already says so), and kafka-go then
// reports only "unexpected EOF".
func (s *Security) explain(err error) error {
	if err == nil || !(errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)) {
		return err
	}
	switch {
	case s != nil && s.SASL != nil:
		cert := ""
		if s.TLS != nil && len(s.TLS.Certificates) == 0 {
			cert = ", or a client certificate it wants (kafka.tls.cert_file)"
		}
		return fmt.Errorf("kafka: the broker hung up on the %s login of user %q: wrong username or password (kafka.sasl), a mechanism it does not allow%s? (%w)",
			s.SASL.Mechanism, s.SASL.Username, cert, err)
	case s == nil || s.TLS == nil:
		return fmt.Errorf("kafka: the broker hung up at once: does it want TLS (kafka.tls) or a SASL login (kafka.sasl)? (%w)", err)
	}
	return fmt.Errorf("kafka: the broker hung up: does it want a SASL login (kafka.sasl)? (%w)", err)
}
