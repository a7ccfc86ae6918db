package clustertest

import (
	"fmt"
	"path/filepath"
	"regexp"
	"syscall"
	"testing"
	"time"
)

// Broker is a `parley broker` process: the development Kafka-protocol
// broker, persisted in Dir.
type Broker struct {
	// Addr is the host:port it listens on; a restart keeps it, so the
	// nodes' configuration stays right.
	Addr string
	Dir  string
	p    *process
}

// brokerAddr is the line `parley broker` prints its address on.
var brokerAddr = regexp.MustCompile(`(?m)^\s*kafka\s+(127\.0\.0\.1:\d+)\s*$`)

// StartBroker runs `bin broker --addr addr --data-dir dir` ("127.0.0.1:0"
// picks a free port) with its log in logPath (default dir + ".log"), waits
// until it prints its address, and kills it when t ends.
func StartBroker(t testing.TB, bin, dir, addr, logPath string) *Broker {
	t.Helper()
	if logPath == "" {
		logPath = filepath.Clean(dir) + ".log"
	}
	b := &Broker{Dir: dir, p: &process{name: "broker", bin: bin, logPath: logPath}}
	t.Cleanup(b.p.kill9)
	if err := b.run(addr); err != nil {
		t.Fatalf("clustertest: %v\n%s", err, b.p.tail(30))
	}
	return b
}

func (b *Broker) run(addr string) error {
	b.p.args = []string{"broker", "--addr", addr, "--data-dir", b.Dir}
	if err := b.p.start(); err != nil {
		return err
	}
	got, err := b.p.waitLog(brokerAddr, 30*time.Second)
	if err != nil {
		return err
	}
	if b.Addr != "" && got != b.Addr {
		return fmt.Errorf("broker came back on %s, was %s", got, b.Addr)
	}
	b.Addr = got
	return nil
}

// Kill9 kills the broker with SIGKILL and waits until it is gone.
func (b *Broker) Kill9() { b.p.kill9() }

// Stop sends SIGTERM and waits for the broker to exit; an exit status
// other than 0 is an error.
func (b *Broker) Stop() error { return b.p.signal(syscall.SIGTERM, 30*time.Second) }

// Restart starts the broker again on the same address and data dir, after
// Kill9 or Stop.
func (b *Broker) Restart(t testing.TB) {
	t.Helper()
	if err := b.run(b.Addr); err != nil {
		t.Fatalf("clustertest: restart broker: %v\n%s", err, b.p.tail(30))
	}
}

// Running reports whether the process is up.
func (b *Broker) Running() bool { return b.p.running() }

// Tail is the last n lines of the broker's log.
func (b *Broker) Tail(n int) string { return b.p.tail(n) }
