// Package bus is Parley's Kafka plumbing: the embedded development broker,
// topic creation, the group-committing producer and the ordered consumer that
// commits offsets only for finished work.
package bus

import (
	"fmt"
	"os"

	"github.com/twmb/franz-go/pkg/kfake"
)

// Embedded is a Kafka-protocol broker inside the process (kfake). It is for
// `parley dev` and tests only: one node, loopback, no replication.
type Embedded struct {
	cluster *kfake.Cluster
}

// StartEmbedded starts a broker listening on 127.0.0.1:port (0 picks a free
// port). With a non-empty dataDir it keeps topics, records and committed
// offsets across restarts, including kill -9.
func StartEmbedded(dataDir string, port int) (*Embedded, error) {
	opts := []kfake.Opt{kfake.Ports(port), kfake.DefaultNumPartitions(8)}
	if dataDir != "" {
		if err := os.MkdirAll(dataDir, 0o755); err != nil {
			return nil, err
		}
		// SyncWrites: a record the ingress acknowledged must survive a
		// crash of the process that holds the broker.
		opts = append(opts, kfake.DataDir(dataDir), kfake.SyncWrites())
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
