package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/parleyhq/parley/bus"
)

// brokerCmd runs `parley broker`: the embedded Kafka-protocol broker of
// `parley dev` (kfake) on its own, so several `parley serve` nodes on one
// machine (a laptop, the multi-process tests) can share one Kafka. It is a
// development broker: one node, loopback only, no replication; production
// runs Apache Kafka or Redpanda.
//
// It creates no topics: Parley nodes create theirs, with the partition
// count of their configuration, as they do against a real Kafka. Records,
// topics and committed offsets live in --data-dir and survive a restart,
// including kill -9 (kfake writes a batch before acknowledging it).
func brokerCmd(args []string) error {
	fs := flag.NewFlagSet("broker", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:9092", "listen address, 127.0.0.1:PORT (port 0 picks a free one)")
	dataDir := fs.String("data-dir", filepath.Join(".parley", "broker"), "where topics, records and offsets are kept")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("broker: unexpected argument %q", fs.Arg(0))
	}
	port, err := loopbackPort(*addr)
	if err != nil {
		return err
	}
	if *dataDir == "" {
		return fmt.Errorf("broker: --data-dir is empty: the broker keeps its data there")
	}
	dir, err := filepath.Abs(*dataDir)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	// kfake does not guard its directory; two brokers writing one would
	// corrupt each other's segments (a restart racing a process that has
	// not exited yet does exactly that).
	unlock, err := lockDir(dir)
	if err != nil {
		return err
	}
	defer unlock()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	b, err := bus.StartEmbedded(dir, port)
	if err != nil {
		return err
	}
	fmt.Printf(`
Parley broker is running (development: one node, loopback, no replication).
  kafka        %s
  data dir     %s
Point nodes at it with kafka.brokers: [%s]. Press Ctrl-C to stop.
`, b.Addrs()[0], dir, b.Addrs()[0])
	<-ctx.Done()
	fmt.Println("\nstopping…")
	done := make(chan struct{})
	// Close flushes the state kfake keeps in memory (group sessions,
	// producer ids) to the data dir; records are on disk already.
	go func() { b.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		return fmt.Errorf("broker did not stop within 30s")
	}
	fmt.Println("stopped.")
	return nil
}

// loopbackPort checks that addr is a loopback host and a port, and returns
// the port. kfake listens on 127.0.0.1 only: accepting another host would
// print an address nobody can reach, or bind something else than asked.
func loopbackPort(addr string) (int, error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return 0, fmt.Errorf("broker: --addr %q: want 127.0.0.1:PORT", addr)
	}
	if host != "127.0.0.1" && host != "localhost" {
		return 0, fmt.Errorf("broker: --addr %q: the development broker listens on 127.0.0.1 only (want 127.0.0.1:PORT); run Apache Kafka or Redpanda for other hosts", addr)
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 0 || port > 65535 {
		return 0, fmt.Errorf("broker: --addr %q: port %q is not 0-65535 (want 127.0.0.1:PORT)", addr, p)
	}
	return port, nil
}
