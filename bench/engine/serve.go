package main

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/parleyhq/parley/bench/internal/baseline"
	"github.com/parleyhq/parley/config"
	"github.com/parleyhq/parley/engine"
	"github.com/parleyhq/parley/tenants"
)

// Targets.
const (
	targetBaseline    = "baseline"
	targetEngine      = "engine"
	targetNoChangelog = "engine-nochangelog"
)

var knownTargets = []string{targetBaseline, targetEngine, targetNoChangelog}

// serveChild is the -serve mode: run one target, say where it listens on
// stdout ("ready addr=… clickhouse=… chpid=…"), then follow the parent's
// commands on stdin ("cpu-start FILE", "cpu-stop") until stdin closes
// (also when the parent dies), and shut down cleanly.
func serveChild(target, twilioURL, backendURL string) error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	var (
		stop  func() error
		ready = "ready addr=" + ln.Addr().String()
	)
	switch target {
	case targetBaseline:
		shutdown := baseline.Serve(ln, publicBaseURL, authToken)
		stop = func() error {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			return shutdown(ctx)
		}
	case targetEngine, targetNoChangelog:
		dir, err := os.MkdirTemp("", "parley-bench-engine-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		e, err := startEngine(dir, ln, twilioURL, backendURL, target == targetNoChangelog)
		if err != nil {
			return err
		}
		stop = func() error { e.Close(); return nil }
		ready += " clickhouse=" + e.ClickHouseAddr() + " brokers=" + strings.Join(e.Brokers(), ",") + " kafkadir=" + filepath.Join(dir, "kafka")
		if b, err := os.ReadFile(filepath.Join(dir, "clickhouse", "clickhouse.pid")); err == nil {
			ready += " chpid=" + strings.TrimSpace(string(b))
		}
	default:
		return fmt.Errorf("unknown target %q", target)
	}
	fmt.Println(ready)

	var profile *os.File
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		cmd, arg, _ := strings.Cut(sc.Text(), " ")
		switch cmd {
		case "cpu-start":
			if profile != nil {
				continue
			}
			f, err := os.Create(arg)
			if err != nil {
				fmt.Fprintln(os.Stderr, "cpu profile:", err)
				continue
			}
			if err := pprof.StartCPUProfile(f); err != nil {
				fmt.Fprintln(os.Stderr, "cpu profile:", err)
				f.Close()
				continue
			}
			profile = f
		case "cpu-stop":
			if profile != nil {
				pprof.StopCPUProfile()
				profile.Close()
				profile = nil
			}
		}
	}
	if profile != nil {
		pprof.StopCPUProfile()
		profile.Close()
	}
	return stop()
}

// startEngine runs the whole engine as `parley dev` does (engine.Start
// with Embed: the embedded broker in dir, a ClickHouse child process),
// with the dev configuration's demo tenant and the bench's tenant, whose
// replies go to the bench's provider and whose business system is the
// bench's (every number has a profile). The sender's rate limit is off:
// the provider answers at once and the bench measures the engine, not the
// 80/s a real sender number is allowed.
func startEngine(dir string, ln net.Listener, twilioURL, backendURL string, skipChangelog bool) (*engine.Engine, error) {
	cfg := config.Dev("", "")
	cfg.DataDir = dir
	cfg.HTTP.PublicBaseURL = publicBaseURL
	noLimit := 0.0
	cfg.Tenants = append(cfg.Tenants, tenants.Tenant{
		ID:   tenantID,
		Name: "Acme Cleaning",
		Twilio: &tenants.Twilio{
			AccountSID: accountSID,
			AuthToken:  tenants.Secret(authToken),
			From:       senderNumber,
			APIBaseURL: twilioURL,
		},
		Backend:  tenants.BackendConfig{Kind: "http", BaseURL: backendURL, Token: tenants.Secret(backendToken)},
		Brain:    tenants.BrainConfig{Kind: "rules"},
		Outbound: tenants.OutboundConfig{RateLimit: &noLimit},
	})
	// Errors only: a role that falls behind would otherwise log per
	// message and the logging would become the bottleneck.
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	return engine.Start(ctx, cfg, engine.Options{Embed: true, Listener: ln, Logger: logger, SkipChangelog: skipChangelog})
}

// ready is what the child's ready line says.
type ready struct {
	addr, clickhouse, kafkaDir string
	brokers                    []string
	chpid                      int
}

// readyLine parses the child's ready line.
func readyLine(s string) (r ready, err error) {
	rest, ok := strings.CutPrefix(strings.TrimSpace(s), "ready ")
	if !ok {
		return r, fmt.Errorf("child said %q", s)
	}
	for f := range strings.FieldsSeq(rest) {
		k, v, _ := strings.Cut(f, "=")
		switch k {
		case "addr":
			r.addr = v
		case "clickhouse":
			r.clickhouse = v
		case "chpid":
			r.chpid, _ = strconv.Atoi(v)
		case "brokers":
			r.brokers = strings.Split(v, ",")
		case "kafkadir":
			r.kafkaDir = v
		}
	}
	if r.addr == "" {
		return r, fmt.Errorf("child said %q", s)
	}
	return r, nil
}
