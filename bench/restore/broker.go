package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/parleyhq/parley/bench/internal/child"

	"github.com/parleyhq/parley/bench/internal/procstat"
	"github.com/parleyhq/parley/bus"
)

// brokerChild is the -role broker mode: the embedded broker exactly as
// `parley dev` starts it (bus.StartEmbedded on a data directory), in a
// process of its own so that it can be stopped, killed and started again
// on the same directory as a restarted machine would, and so that its
// memory stays out of the restoring node's figures. It says where it
// listens and stops cleanly (flushing its state) when stdin closes.
func brokerChild(dir string) error {
	b, err := bus.StartEmbedded(dir, 0)
	if err != nil {
		return err
	}
	fmt.Printf("listening %s\n", b.Addrs()[0])
	io.Copy(io.Discard, os.Stdin)
	b.Close()
	return nil
}

// broker is the parent's handle on the broker process.
type broker struct {
	c    *child.Process
	addr string
	// Started is from exec to the broker answering a metadata request
	// (bus.Ping) with parley.sessions in it: when a node could start.
	Started time.Duration
}

func startBroker(ctx context.Context, dir string) (*broker, error) {
	t0 := time.Now()
	c, err := child.Start(child.Options{DropUnread: false}, "-role", "broker", "-dir", dir)
	if err != nil {
		return nil, err
	}
	l, err := c.Line(ctx, 5*time.Minute)
	if err != nil {
		c.Kill()
		return nil, fmt.Errorf("broker: %w", err)
	}
	addr, ok := strings.CutPrefix(l, "listening ")
	if !ok {
		c.Kill()
		return nil, fmt.Errorf("%w: %q", errNoAddr, l)
	}
	for {
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err := bus.Ping(pctx, []string{addr}, nil)
		cancel()
		if err == nil {
			break
		}
		if ctx.Err() != nil || time.Since(t0) > 5*time.Minute {
			c.Kill()
			return nil, fmt.Errorf("broker at %s does not answer: %w", addr, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return &broker{c: c, addr: addr, Started: time.Since(t0)}, nil
}

func (b *broker) brokers() []string { return []string{b.addr} }

// stop stops the broker cleanly and says how long that took.
func (b *broker) stop() (time.Duration, error) {
	t0 := time.Now()
	err := b.c.Stop(2 * time.Minute)
	return time.Since(t0), err
}

func (b *broker) rss() uint64 { return procstat.StatusBytes(fmt.Sprint(b.c.Pid()), "VmRSS:") }
