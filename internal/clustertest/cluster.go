package clustertest

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/parleyhq/parley/channels/twilio/twiliotest"
	"github.com/parleyhq/parley/internal/chtest"
	"github.com/parleyhq/parley/internal/seal"
	"github.com/parleyhq/parley/wire"
)

// The tenant every node serves, and the API key that may do anything.
const (
	Tenant   = "acme"
	AdminKey = "clustertest-admin-key-0123456789"
)

// Options shape a cluster.
type Options struct {
	// Nodes is how many `parley serve` processes run. Default 3.
	Nodes int
	// SessionTimeout is written as kafka.session_timeout; zero leaves the
	// key out, so the nodes run on the default.
	SessionTimeout time.Duration
	// Partitions of the topics the nodes create. Default 8.
	Partitions int
	// Debug runs the nodes with PARLEY_DEBUG=1 (debug logs).
	Debug bool
	// Env is added to every node's environment (NAME=value).
	Env []string
}

// Cluster is a running broker, ClickHouse database, local Twilio, test
// backend and the nodes.
// clusterSecretsKey is the PARLEY_SECRETS_KEY of every test cluster's
// nodes.
var clusterSecretsKey = seal.NewKey()

// SecretsKey is the PARLEY_SECRETS_KEY the nodes share.
func SecretsKey() string { return clusterSecretsKey }

type Cluster struct {
	t        testing.TB
	Bin      string
	Dir      string // configs, logs and data; kept when the test fails
	Broker   *Broker
	Twilio   *twiliotest.Server
	Backend  *Backend
	CHAddr   string
	Database string
	Nodes    []*Node
	Opts     Options

	http  *http.Client
	inbox *inbox
	rr    atomic.Uint64 // spreads Deliver over the nodes
}

// Node is one `parley serve` process with its own config file, HTTP port,
// data dir and log.
type Node struct {
	ID     string // node_id: n1, n2, ...
	Addr   string // http.addr, 127.0.0.1:port, kept across restarts
	Config string // path of its YAML
	Log    string // path of its log (every run appended)
	p      *process
}

// URL is the node's base URL (also its public_base_url, which Twilio
// signs).
func (n *Node) URL() string { return "http://" + n.Addr }

// Running reports whether the node's process is up.
func (n *Node) Running() bool { return n.p.running() }

// Tail is the last lines of the node's log.
func (n *Node) Tail(lines int) string { return n.p.tail(lines) }

func (n *Node) String() string { return n.ID }

// Start builds the binary (once per test binary), starts everything and
// returns when every node answers /readyz. Everything stops when t ends.
func Start(t testing.TB, o Options) *Cluster {
	t.Helper()
	if o.Nodes == 0 {
		o.Nodes = 3
	}
	if o.Partitions == 0 {
		o.Partitions = 8
	}
	dir, err := os.MkdirTemp("", "parley-cluster-")
	if err != nil {
		t.Fatal(err)
	}
	c := &Cluster{
		t: t, Bin: Binary(t), Dir: dir, Opts: o,
		http: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64, IdleConnTimeout: 30 * time.Second}},
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("clustertest: keeping %s (configs, logs, data)", dir)
			return
		}
		_ = os.RemoveAll(dir)
	})
	c.CHAddr = chtest.ForTest(t)
	c.Database = chtest.Database(t, c.CHAddr)
	c.Twilio = twiliotest.Start(t, twiliotest.TestAccountSID, twiliotest.TestAuthToken)
	c.inbox = followTwilio(t, c.Twilio)
	c.Backend = StartBackend(t)
	c.Broker = StartBroker(t, c.Bin, filepath.Join(dir, "broker"), "127.0.0.1:0", filepath.Join(dir, "broker.log"))

	for i := range o.Nodes {
		c.Nodes = append(c.Nodes, c.newNode(fmt.Sprintf("n%d", i+1)))
	}
	// Registered after the servers above, so it runs before their
	// cleanups: the nodes die before what they talk to closes.
	t.Cleanup(func() {
		if t.Failed() {
			c.printTails(80)
		}
		var wg sync.WaitGroup
		for _, n := range c.Nodes {
			wg.Add(1)
			go func() { defer wg.Done(); n.p.kill9() }()
		}
		wg.Wait()
		c.Broker.Kill9()
		c.http.CloseIdleConnections()
	})

	// The first node alone, so one process creates the topics and
	// migrates the ClickHouse schema; the others find both done.
	start := time.Now()
	c.start(c.Nodes[0])
	if _, err := c.WaitReady(c.Nodes[0], 90*time.Second); err != nil {
		t.Fatalf("clustertest: %v", err)
	}
	for _, n := range c.Nodes[1:] {
		c.start(n)
	}
	for _, n := range c.Nodes[1:] {
		if _, err := c.WaitReady(n, 90*time.Second); err != nil {
			t.Fatalf("clustertest: %v", err)
		}
	}
	// Start from a quiet cluster: the session role's partitions settled.
	if err := c.WaitGroupStable(wire.GroupActors, len(c.Nodes), o.Partitions, 60*time.Second); err != nil {
		t.Fatalf("clustertest: %v", err)
	}
	t.Logf("clustertest: broker %s, %d nodes ready and their sessions' partitions assigned in %.1fs (logs in %s)", c.Broker.Addr, len(c.Nodes), time.Since(start).Seconds(), dir)
	return c
}

// freeAddr finds a loopback port nobody listens on. Another process could
// take it before the node does; on a test machine that is rare enough, and
// a node must know its own public URL before it starts.
func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func (c *Cluster) newNode(id string) *Node {
	c.t.Helper()
	n := &Node{
		ID:     id,
		Addr:   freeAddr(c.t),
		Config: filepath.Join(c.Dir, id+".yaml"),
		Log:    filepath.Join(c.Dir, id+".log"),
	}
	if err := os.WriteFile(n.Config, []byte(c.config(n)), 0o600); err != nil {
		c.t.Fatal(err)
	}
	n.p = &process{name: id, bin: c.Bin, args: []string{"serve", "--config", n.Config}, env: c.baseEnv(), logPath: n.Log}
	return n
}

// config is the YAML a user would write for this node: the same tenant on
// every node, its Twilio pointed at the local one, its business over HTTP.
func (c *Cluster) config(n *Node) string {
	var session string
	if c.Opts.SessionTimeout > 0 {
		session = fmt.Sprintf("  session_timeout: %s\n", c.Opts.SessionTimeout)
	}
	return fmt.Sprintf(`node_id: %s
http:
  addr: %s
  public_base_url: %s
kafka:
  brokers: [%s]
  partitions: %d
%sclickhouse:
  addr: %s
  database: %s
data_dir: %s
api_keys:
  - { key: %q, tenants: ["*"], role: admin }
tenants:
  - id: %s
    name: Acme Cleaning
    api_rate_limit: 1000
    time_zone: Europe/London
    twilio:
      account_sid: %s
      auth_token: %s
      from: %q
      api_base_url: %s
    backend: { kind: http, base_url: %q, token: %q }
    brain: { kind: rules }
`, n.ID, n.Addr, n.URL(), c.Broker.Addr, c.Opts.Partitions, session, c.CHAddr, c.Database,
		filepath.Join(c.Dir, n.ID+"-data"), AdminKey, Tenant,
		twiliotest.TestAccountSID, twiliotest.TestAuthToken, twiliotest.SandboxFrom, c.Twilio.URL(),
		c.Backend.URL(), BackendToken)
}

func (c *Cluster) start(n *Node) {
	c.t.Helper()
	if err := n.p.start(); err != nil {
		c.t.Fatalf("clustertest: start %s: %v", n, err)
	}
}

// WaitReady polls the node's /readyz until it answers 200 and returns how
// long that took, or fails when the process exits or timeout passes.
func (c *Cluster) WaitReady(n *Node, timeout time.Duration) (time.Duration, error) {
	start := time.Now()
	last := "no answer"
	for {
		if !n.Running() {
			return time.Since(start), fmt.Errorf("%s is not running (%v); last /readyz: %s\n%s", n, n.p.exitError(), last, n.Tail(30))
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, n.URL()+"/readyz", nil)
		res, err := c.http.Do(req)
		if err == nil {
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				cancel()
				return time.Since(start), nil
			}
			last = fmt.Sprintf("%d %s", res.StatusCode, strings.TrimSpace(string(b)))
		} else {
			last = err.Error()
		}
		cancel()
		if time.Since(start) > timeout {
			return time.Since(start), fmt.Errorf("%s not ready within %s; last /readyz: %s", n, timeout, last)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Readyz asks the node's /readyz once and returns its status and body;
// the error is for no answer (not listening yet, or gone). A node listens
// before its sessions are ready: the body then names what it waits for
// ("sessions: joining the sessions group").
func (c *Cluster) Readyz(n *Node) (int, string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, n.URL()+"/readyz", nil)
	res, err := c.http.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return res.StatusCode, string(b), err
}

// WaitExit waits up to timeout for the node's process to end on its own
// (a crash test's PARLEY_FAULT kills it) and returns how it ended:
// ProcessState.Sys() is a syscall.WaitStatus that tells a SIGKILL from an
// exit.
func (c *Cluster) WaitExit(n *Node, timeout time.Duration) (*os.ProcessState, error) {
	return n.p.wait(timeout)
}

// RunLog is what the node's current (or last) run has logged so far.
func (n *Node) RunLog() string { return n.p.runLog() }

// Kill9 kills the node with SIGKILL and waits until the process is gone:
// no graceful stop, no LeaveGroup, nothing flushed.
func (c *Cluster) Kill9(n *Node) {
	c.t.Helper()
	if !n.Running() {
		c.t.Fatalf("clustertest: kill -9 %s: not running", n)
	}
	n.p.kill9()
}

// Stop sends SIGTERM, Parley's graceful stop, and waits up to 45 s (the
// engine allows itself 30 s) for the process to exit. It returns how long
// the stop took and an error when the exit was not clean.
func (c *Cluster) Stop(n *Node) (time.Duration, error) {
	start := time.Now()
	err := n.p.signal(syscall.SIGTERM, 45*time.Second)
	if err != nil {
		err = fmt.Errorf("%s: graceful stop: %w", n, err)
	}
	return time.Since(start), err
}

// Restart starts the node again with the same config, port, data dir and
// log, after Kill9 or Stop. It does not wait: WaitReady does.
func (c *Cluster) Restart(n *Node) {
	c.t.Helper()
	c.start(n)
}

// RestartAll stops every node (SIGTERM), starts them all again and waits
// until each is ready: the whole cluster restarted, as after a full
// outage or a deploy that stops everything.
func (c *Cluster) RestartAll() {
	c.t.Helper()
	for _, n := range c.Nodes {
		if _, err := c.Stop(n); err != nil {
			c.t.Fatal(err)
		}
	}
	for _, n := range c.Nodes {
		c.Restart(n)
	}
	for _, n := range c.Nodes {
		if _, err := c.WaitReady(n, 90*time.Second); err != nil {
			c.t.Fatal(err)
		}
	}
}

// SetEnv sets environment variables (NAME=value) for the node's next
// starts, after those of Options.Env: e.g. PARLEY_FAULT=before-commit
// before a Restart makes that run kill itself at a crash point. SetEnv
// with none goes back to Options.Env.
func (c *Cluster) SetEnv(n *Node, kv ...string) {
	n.p.mu.Lock()
	n.p.env = append(c.baseEnv(), kv...)
	n.p.mu.Unlock()
}

// baseEnv is what every node runs with besides the test's environment.
func (c *Cluster) baseEnv() []string {
	// Every node shares the key that seals one-time codes on Kafka.
	env := append([]string{seal.EnvKey + "=" + clusterSecretsKey}, c.Opts.Env...)
	if c.Opts.Debug {
		env = append(env, "PARLEY_DEBUG=1")
	}
	return env
}

// Up lists the nodes whose process is running.
func (c *Cluster) Up() []*Node {
	var up []*Node
	for _, n := range c.Nodes {
		if n.Running() {
			up = append(up, n)
		}
	}
	return up
}

func (c *Cluster) printTails(lines int) {
	for _, n := range c.Nodes {
		c.t.Logf("clustertest: last %d lines of %s (%s):\n%s", lines, n, n.Log, n.Tail(lines))
	}
	c.t.Logf("clustertest: last 20 lines of the broker's log:\n%s", c.Broker.Tail(20))
}
