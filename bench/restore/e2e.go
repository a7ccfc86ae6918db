package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/parleyhq/parley/bench/internal/procstat"
	"github.com/parleyhq/parley/bus"
	"github.com/parleyhq/parley/internal/chserver"
)

// e2eResult is a real node restarting: `parley broker` on the data
// directory the bench wrote and `parley serve`, timed until /readyz says
// 200; once with the broker started first, once with both started at the
// same moment (a machine coming back up runs both at once).
type e2eResult struct {
	Skipped string   `json:"skipped,omitempty"`
	Error   string   `json:"error,omitempty"`
	Runs    []e2eRun `json:"runs,omitempty"`
}

type e2eRun struct {
	Order string `json:"order"` // "broker first" or "together"
	// BrokerStartS is from exec of `parley broker` to it answering a
	// metadata request (broker first only); ServeReadyS from exec of
	// `parley serve` to its first 200 on /readyz; ReadyS from the
	// first exec to that 200.
	BrokerStartS float64 `json:"broker_start_s,omitempty"`
	ServeReadyS  float64 `json:"serve_ready_s"`
	ReadyS       float64 `json:"ready_s"`
	// RestoreLog are the node's "sessions restored" log lines.
	RestoreLog []string `json:"restore_log,omitempty"`
	ServeRSS   uint64   `json:"serve_rss_bytes"`
}

// endToEnd runs the end-to-end restart; whatever is missing (a parley
// binary with a broker command, ClickHouse) makes it a skip, said why.
func endToEnd(ctx context.Context, o options, c config) (res e2eResult) {
	dir := filepath.Join(o.dir, "e2e")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		res.Error = err.Error()
		return res
	}
	bin := filepath.Join(dir, "parley")
	progress("e2e: building the parley binary")
	root, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}").Output()
	if err != nil {
		res.Skipped = "cannot find the module root: " + err.Error()
		return res
	}
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/parley")
	build.Dir = strings.TrimSpace(string(root))
	if out, err := build.CombinedOutput(); err != nil {
		res.Skipped = "cmd/parley does not build: " + firstLine(string(out))
		return res
	}
	help, _ := exec.Command(bin, "help").CombinedOutput()
	if !strings.Contains(string(help), "parley broker") {
		res.Skipped = "parley has no broker command"
		return res
	}
	progress("e2e: starting ClickHouse")
	ch, err := chserver.Start(ctx, chserver.Options{Dir: filepath.Join(dir, "clickhouse")})
	if errors.Is(err, chserver.ErrNotFound) {
		res.Skipped = err.Error()
		return res
	}
	if err != nil {
		res.Error = "clickhouse: " + err.Error()
		return res
	}
	defer ch.Stop()

	fail := func(err error) e2eResult {
		res.Error = err.Error()
		return res
	}
	kport, err := freePort()
	if err != nil {
		return fail(err)
	}
	hport, err := freePort()
	if err != nil {
		return fail(err)
	}
	kaddr := fmt.Sprintf("127.0.0.1:%d", kport)

	cfg := filepath.Join(dir, "parley.yaml")
	yaml := fmt.Sprintf(`http:
  addr: 127.0.0.1:%d
kafka:
  brokers: [%s]
  partitions: %d
clickhouse:
  addr: %s
data_dir: %s
node_id: bench-restore
tenants:
  - id: %s
    name: Bench
    simulator: true
    backend: { kind: demo }
    brain: { kind: rules }
`, hport, kaddr, c.Partitions, ch.Addr(), filepath.Join(dir, "node"), tenantID)
	if err := os.WriteFile(cfg, []byte(yaml), 0o644); err != nil {
		return fail(err)
	}
	for k, order := range []string{"broker first", "together"} {
		run, err := e2eOnce(ctx, order, bin, dir, fmt.Sprint(k), o.brokerDir, kaddr, cfg, hport)
		if err != nil {
			return fail(err)
		}
		res.Runs = append(res.Runs, run)
	}
	return res
}

// e2eOnce starts the broker and the node in the given order, waits for
// /readyz 200, and stops both.
func e2eOnce(ctx context.Context, order, bin, dir, tag, brokerDir, kaddr, cfg string, hport int) (run e2eRun, err error) {
	run.Order = order
	t0 := time.Now()
	bk, err := startProc(filepath.Join(dir, "broker."+tag+".log"), bin, "broker", "--addr", kaddr, "--data-dir", brokerDir)
	if err != nil {
		return run, err
	}
	defer bk.terminate()
	if order == "broker first" {
		for {
			// A dial first: once a kafka-go metadata request was
			// refused, its shared transport keeps answering
			// "connection refused" for that address for seconds after
			// the broker listens (measured: 2.5 s), which would be
			// timed as the broker's start.
			err := dialOK(kaddr)
			if err == nil {
				pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
				err = bus.Ping(pctx, []string{kaddr}, nil)
				cancel()
			}
			if err == nil {
				break
			}
			if bk.exited() || ctx.Err() != nil || time.Since(t0) > 5*time.Minute {
				return run, fmt.Errorf("parley broker at %s does not answer (log %s): %w", kaddr, bk.log, err)
			}
			time.Sleep(10 * time.Millisecond)
		}
		run.BrokerStartS = time.Since(t0).Seconds()
		progress("e2e (%s): parley broker up in %.2fs", order, run.BrokerStartS)
	}

	t1 := time.Now()
	srv, err := startProc(filepath.Join(dir, "serve."+tag+".log"), bin, "serve", "--config", cfg)
	if err != nil {
		return run, err
	}
	defer srv.terminate()
	url := fmt.Sprintf("http://127.0.0.1:%d/readyz", hport)
	hc := &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	last := ""
	for {
		resp, err := hc.Get(url)
		if err == nil {
			body := make([]byte, 512)
			n, _ := resp.Body.Read(body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
			if s := strings.TrimSpace(string(body[:n])); s != last {
				last = s
				progress("e2e (%s): /readyz %d after %.2fs: %s", order, resp.StatusCode, time.Since(t1).Seconds(), strings.ReplaceAll(s, "\n", "; "))
			}
		}
		if srv.exited() {
			return run, fmt.Errorf("parley serve exited (log %s)", srv.log)
		}
		if bk.exited() {
			return run, fmt.Errorf("parley broker exited (log %s)", bk.log)
		}
		if ctx.Err() != nil || time.Since(t1) > 10*time.Minute {
			return run, fmt.Errorf("parley serve not ready after %v (log %s)", time.Since(t1).Round(time.Second), srv.log)
		}
		time.Sleep(20 * time.Millisecond)
	}
	run.ServeReadyS = time.Since(t1).Seconds()
	run.ReadyS = time.Since(t0).Seconds()
	run.ServeRSS = procstat.StatusBytes(fmt.Sprint(srv.cmd.Process.Pid), "VmRSS:")
	progress("e2e (%s): parley serve ready in %.2fs, %.2fs from the first exec", order, run.ServeReadyS, run.ReadyS)
	srv.terminate()
	bk.terminate()
	run.RestoreLog = grepLog(srv.log, "sessions restored")
	return run, nil
}

// proc is a parley process with its output in a log file.
type proc struct {
	cmd  *exec.Cmd
	log  string
	done chan struct{}
}

func startProc(log, bin string, args ...string) (*proc, error) {
	f, err := os.Create(log)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &proc{cmd: cmd, log: log, done: make(chan struct{})}
	go func() { cmd.Wait(); close(p.done) }()
	return p, nil
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// terminate sends SIGTERM and waits up to 45 s, then kills.
func (p *proc) terminate() {
	if p.exited() {
		return
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(45 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
	}
}

func dialOK(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err == nil {
		c.Close()
	}
	return err
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func grepLog(path, s string) []string {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if strings.Contains(sc.Text(), s) {
			out = append(out, sc.Text())
		}
	}
	return out
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	return l
}
