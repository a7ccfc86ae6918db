// Package bus is Parley's Kafka plumbing: the embedded development broker,
// topic creation, the group-committing producer and the ordered consumer that
// commits offsets only for finished work.
package bus

import (
	"crypto/tls"
	"fmt"
	"os"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
)

// Embedded is a Kafka-protocol broker inside the process (kfake). It is for
// `parley dev` and tests only: one node, loopback, no replication.
type Embedded struct {
	cluster *kfake.Cluster
}

// StartEmbedded starts a broker listening on 127.0.0.1:port (0 picks a free
// port; kfake listens on loopback only). With a non-empty dataDir it keeps
// topics, records and committed offsets across restarts, including kill -9.
func StartEmbedded(dataDir string, port int) (*Embedded, error) {
	return StartEmbeddedWith(EmbeddedOptions{DataDir: dataDir, Port: port})
}

// EmbeddedOptions configure an embedded broker.
type EmbeddedOptions struct {
	DataDir string
	Port    int
	// TLS, when set, makes the listener speak TLS only (its certificate;
	// ClientAuth and ClientCAs to ask for client certificates).
	TLS *tls.Config
	// Users, when any, turns SASL on: every connection must log in as one
	// of them (PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512) before anything else.
	// Tests of the secured clients use it; the ports stay on loopback.
	Users []SASL
}

// StartEmbeddedWith is StartEmbedded with TLS and SASL as the options say.
func StartEmbeddedWith(o EmbeddedOptions) (*Embedded, error) {
	dataDir := o.DataDir
	opts := []kfake.Opt{
		kfake.Ports(o.Port),
		kfake.DefaultNumPartitions(8),
		// Apache Kafka's default group.min.session.timeout.ms, stated
		// rather than inherited: nodes ask for their configured
		// kafka.session_timeout (10 s by default, never below 6 s), and
		// a development broker stricter or looser than a real one would
		// hide a setting production refuses.
		kfake.GroupMinSessionTimeout(6 * time.Second),
	}
	if dataDir != "" {
		if err := os.MkdirAll(dataDir, 0o755); err != nil {
			return nil, err
		}
		// No SyncWrites: kfake writes every batch to its segment file
		// before it acknowledges, so an acknowledged record survives a
		// crash (even kill -9) of the process holding the broker; an fsync
		// per batch would only add protection against the machine itself
		// failing, at ten times the cost per webhook. Production gets that
		// protection from a replicated Kafka cluster, not from this
		// development broker.
		opts = append(opts, kfake.DataDir(dataDir))
	}
	if o.TLS != nil {
		opts = append(opts, kfake.TLS(o.TLS))
	}
	if len(o.Users) > 0 {
		opts = append(opts, kfake.EnableSASL())
		for _, u := range o.Users {
			if _, err := u.mechanism(); err != nil {
				return nil, fmt.Errorf("embedded broker: %w", err)
			}
			opts = append(opts, kfake.Superuser(u.Mechanism, u.Username, u.Password))
		}
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		return nil, fmt.Errorf("embedded broker: %w", err)
	}
	return &Embedded{cluster: c}, nil
}

// Addrs are the host:port addresses clients bootstrap from.
func (e *Embedded) Addrs() []string { return e.cluster.ListenAddrs() }

// Close stops the broker, flushing its data directory.
func (e *Embedded) Close() { e.cluster.Close() }
