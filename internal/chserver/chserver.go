// Package chserver runs a local ClickHouse server as a child process: the
// store behind `parley dev` and the tests. It writes its own config.xml and
// users.xml under one directory (data, tmp, logs, config), listens on
// 127.0.0.1 only, and works with Debian's clickhouse-server 18.16 as well as
// the single `clickhouse` binary of current releases.
package chserver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/parleyhq/parley/internal/retry"
)

// ErrNotFound is returned by Start when no ClickHouse binary is installed.
var ErrNotFound = errors.New("clickhouse-server not found: install Debian's clickhouse-server (apt-get install clickhouse-server) or set clickhouse.addr")

// Options configure a server.
type Options struct {
	// Dir holds everything the server writes: config, data, tmp, logs.
	// Required. Starting again on the same Dir keeps the data.
	Dir string
	// Binary is the server executable. Empty looks up clickhouse-server
	// (PATH, /usr/sbin, /usr/bin), then the single `clickhouse` binary of
	// newer releases, run with its `server` subcommand.
	Binary string
	// TCPPort is the native protocol port, HTTPPort the HTTP one; 0 picks a
	// free port.
	TCPPort  int
	HTTPPort int
	// CertFile and KeyFile (PEM), when set, open a secure native port
	// (TLS) besides the plaintext one: TLSPort, 0 picking a free one.
	// With CAFile, clients must present a certificate it signed.
	CertFile, KeyFile, CAFile string
	TLSPort                   int
	// Password is the "default" user's; empty: none.
	Password string
	// StartTimeout bounds the wait for /ping. Default 30s.
	StartTimeout time.Duration
}

// Server is a running ClickHouse child process.
type Server struct {
	opts   Options // resolved: binary and ports filled in
	args   []string
	cmd    *exec.Cmd
	exited chan struct{} // closed when the process has exited
	err    error         // Wait's result, valid after exited
	stop   sync.Once
}

// Start writes the configuration and starts the server, returning once it
// answers /ping on the HTTP port.
func Start(ctx context.Context, o Options) (*Server, error) {
	if o.Dir == "" {
		return nil, errors.New("chserver: Options.Dir is required")
	}
	dir, err := filepath.Abs(o.Dir)
	if err != nil {
		return nil, err
	}
	o.Dir = dir
	if o.StartTimeout == 0 {
		o.StartTimeout = 30 * time.Second
	}
	bin, args, err := findBinary(o.Binary)
	if err != nil {
		return nil, err
	}
	o.Binary = bin
	for _, sub := range []string{"data", "tmp", "log", "user_files", "format_schemas"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			return nil, fmt.Errorf("chserver: %w", err)
		}
	}
	killStale(dir)

	// Ports picked here can be taken by someone else before the server
	// binds them; then pick again. Ports the caller chose are kept.
	pick := o.TCPPort == 0 || o.HTTPPort == 0 || (o.CertFile != "" && o.TLSPort == 0)
	var s *Server
	err = retry.Backoff{MaxAttempts: 3}.Do(ctx, func(int) (err error) {
		ro := o
		if ro.TCPPort == 0 {
			if ro.TCPPort, err = freePort(); err != nil {
				return retry.Permanent(err)
			}
		}
		if ro.HTTPPort == 0 {
			for ro.HTTPPort == 0 || ro.HTTPPort == ro.TCPPort {
				if ro.HTTPPort, err = freePort(); err != nil {
					return retry.Permanent(err)
				}
			}
		}
		if ro.CertFile != "" && ro.TLSPort == 0 {
			for ro.TLSPort == 0 || ro.TLSPort == ro.TCPPort || ro.TLSPort == ro.HTTPPort {
				if ro.TLSPort, err = freePort(); err != nil {
					return retry.Permanent(err)
				}
			}
		}
		s, err = start(ctx, ro, args)
		if err != nil && (!pick || !strings.Contains(err.Error(), "Address already in use")) {
			return retry.Permanent(err)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return s, nil
}

func start(ctx context.Context, o Options, prefix []string) (*Server, error) {
	if err := writeConfig(o); err != nil {
		return nil, err
	}
	s := &Server{opts: o, exited: make(chan struct{})}
	s.args = append(append([]string{}, prefix...), "--config-file="+filepath.Join(o.Dir, "config.xml"))
	out, err := os.OpenFile(filepath.Join(o.Dir, "log", "stdout.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("chserver: %w", err)
	}
	defer out.Close() // the child keeps its own copy of the descriptor
	s.cmd = exec.Command(o.Binary, s.args...)
	s.cmd.Dir = o.Dir
	s.cmd.Stdout = out
	s.cmd.Stderr = out
	s.cmd.SysProcAttr = sysProcAttr()

	// The child is started and waited for by one goroutine locked to its
	// OS thread: on Linux the parent-death signal follows the thread that
	// forked, so that thread must live as long as the child does, and no
	// other goroutine may end it early.
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if err := s.cmd.Start(); err != nil {
			runtime.UnlockOSThread()
			started <- err
			return
		}
		started <- nil
		s.err = s.cmd.Wait()
		runtime.UnlockOSThread()
		close(s.exited)
	}()
	if err := <-started; err != nil {
		return nil, fmt.Errorf("chserver: start %s: %w", o.Binary, err)
	}
	_ = os.WriteFile(filepath.Join(o.Dir, "clickhouse.pid"), []byte(strconv.Itoa(s.cmd.Process.Pid)), 0o644)

	if err := s.waitReady(ctx); err != nil {
		_ = s.Stop()
		return nil, err
	}
	return s, nil
}

// waitReady polls /ping until it answers, the process exits, the timeout
// passes or ctx ends.
func (s *Server) waitReady(ctx context.Context) error {
	deadline := time.Now().Add(s.opts.StartTimeout)
	// No keep-alive: an idle connection left open would hold up the
	// server's shutdown by seconds.
	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	url := s.HTTPURL() + "/ping"
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := client.Do(req)
		if err == nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 64))
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && bytes.HasPrefix(body, []byte("Ok.")) {
				return nil
			}
		}
		select {
		case <-s.exited:
			return fmt.Errorf("chserver: %s exited during start (%v)%s", s.opts.Binary, s.err, s.logTail())
		case <-ctx.Done():
			return fmt.Errorf("chserver: start: %w%s", ctx.Err(), s.logTail())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("chserver: no answer on %s within %s%s", url, s.opts.StartTimeout, s.logTail())
		}
	}
}

// Addr is the native protocol address, host:port.
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.opts.TCPPort)) }

// TLSAddr is the secure native protocol address (TLS), host:port; empty
// without Options.CertFile.
func (s *Server) TLSAddr() string {
	if s.opts.TLSPort == 0 {
		return ""
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.opts.TLSPort))
}

// HTTPURL is the base URL of the HTTP interface.
func (s *Server) HTTPURL() string {
	return "http://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(s.opts.HTTPPort))
}

// Options are the options the server runs with, ports and binary resolved:
// Start(ctx, s.Options()) after Stop brings the same server back on the
// same data and addresses.
func (s *Server) Options() Options { return s.opts }

// Exited is closed when the server process has exited.
func (s *Server) Exited() <-chan struct{} { return s.exited }

// Stop asks the server to shut down (SIGTERM), waits up to 15s, then kills
// its whole process group. It is safe to call more than once.
func (s *Server) Stop() error {
	var err error
	s.stop.Do(func() {
		if s.cmd == nil || s.cmd.Process == nil {
			return
		}
		pid := s.cmd.Process.Pid
		signalGroup(pid, false)
		select {
		case <-s.exited:
		case <-time.After(15 * time.Second):
			signalGroup(pid, true)
			select {
			case <-s.exited:
			case <-time.After(5 * time.Second):
				err = fmt.Errorf("chserver: pid %d did not exit after SIGKILL", pid)
				return
			}
		}
		// Anything the server left in its group (helper bridges) goes too.
		signalGroup(pid, true)
		_ = os.Remove(filepath.Join(s.opts.Dir, "clickhouse.pid"))
	})
	return err
}

// findBinary resolves the executable and the arguments before
// --config-file: none for clickhouse-server, "server" for the single
// `clickhouse` binary.
func findBinary(explicit string) (string, []string, error) {
	argsFor := func(path string) []string {
		if filepath.Base(path) == "clickhouse" {
			return []string{"server"}
		}
		return nil
	}
	if explicit != "" {
		path, err := exec.LookPath(explicit)
		if err != nil {
			return "", nil, fmt.Errorf("%w (%s: %v)", ErrNotFound, explicit, err)
		}
		return path, argsFor(path), nil
	}
	candidates := []string{"clickhouse-server", "/usr/sbin/clickhouse-server", "/usr/bin/clickhouse-server",
		"clickhouse", "/usr/bin/clickhouse", "/usr/local/bin/clickhouse"}
	for _, c := range candidates {
		if path, err := exec.LookPath(c); err == nil {
			return path, argsFor(path), nil
		}
	}
	return "", nil, ErrNotFound
}

// freePort asks the kernel for a free loopback port.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("chserver: pick a port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// logTail is the end of the server's logs, for error messages: why it did
// not start is almost always in there.
func (s *Server) logTail() string {
	var b strings.Builder
	for _, name := range []string{"clickhouse-server.err.log", "stdout.log"} {
		t := tailLines(filepath.Join(s.opts.Dir, "log", name), 15)
		if t != "" {
			fmt.Fprintf(&b, "\n--- %s ---\n%s", name, t)
		}
	}
	if b.Len() == 0 {
		return " (no log output in " + filepath.Join(s.opts.Dir, "log") + ")"
	}
	return b.String()
}

func tailLines(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	const limit = 8 << 10
	st, err := f.Stat()
	if err != nil {
		return ""
	}
	off := max(0, st.Size()-limit)
	buf := make([]byte, st.Size()-off)
	if _, err := f.ReadAt(buf, off); err != nil && !errors.Is(err, io.EOF) {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(buf), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// killStale stops a server left running on dir by a process that died
// without stopping it (kill -9 of `parley dev` on a system without a
// parent-death signal): otherwise the new server finds the data directory
// locked. The pid file is trusted only if that process's command line
// names this dir's config, so a recycled pid is never killed.
func killStale(dir string) {
	raw, err := os.ReadFile(filepath.Join(dir, "clickhouse.pid"))
	if err != nil {
		return
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(raw)))
	if err != nil || pid <= 1 {
		return
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || !bytes.Contains(cmdline, []byte(filepath.Join(dir, "config.xml"))) {
		return
	}
	signalGroup(pid, true)
	for range 100 {
		if !alive(pid) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
}
