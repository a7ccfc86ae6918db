// Command ingress measures Parley's webhook ingress against the floor any
// Twilio webhook endpoint has: a bare fasthttp handler that parses the form,
// checks the signature and answers 200.
//
//	go run ./bench/ingress                        # baseline, then parley; 2s warm-up + 10s each
//	go run ./bench/ingress -json                  # the same, as JSON
//	go run ./bench/ingress -rounds 3              # interleaved 3 times, median summary
//	go run ./bench/ingress -cpuprofile cpu.pprof  # also cpu.<target>.pprof per server
//	go run ./bench/ingress -targets baseline,parley,parley-nofsync,parley-mem,parley-noop
//
// The diagnostic targets are described in servers.go and bench/README.md.
//
// Each target runs in its own child process (this program re-executed with
// -serve), started just before its run and stopped after it, while this
// process generates the load. Separate processes keep the load generator's
// allocations out of the server's garbage collector, as with wrk, and let the
// server's CPU time be read from /proc: CPU per accepted request is the
// figure least disturbed by the generator sharing the cores.
//
// Load is closed-loop: -conns keep-alive connections, each with one request
// in flight, cycling through -forms distinct signed WhatsApp message
// webhooks. Only requests that complete inside the measurement window count.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/parleyhq/parley/bench/internal/procstat"
	"github.com/parleyhq/parley/bench/loadgen"
)

type options struct {
	duration   time.Duration
	warmup     time.Duration
	conns      int
	forms      int
	seed       uint64
	targets    []string
	partitions int
	timeout    time.Duration
	rounds     int
	json       bool
	cpuprofile string
}

func main() {
	var (
		o       options
		targets string
		serve   string
	)
	flag.DurationVar(&o.duration, "duration", 10*time.Second, "measurement window per target")
	flag.DurationVar(&o.warmup, "warmup", 2*time.Second, "warm-up per target before measuring")
	flag.IntVar(&o.conns, "conns", 256, "concurrent keep-alive connections (one request in flight each)")
	flag.IntVar(&o.forms, "forms", 20000, "distinct signed webhooks to cycle through")
	flag.Uint64Var(&o.seed, "seed", 1, "seed for the generated webhooks")
	flag.StringVar(&targets, "targets", "baseline,parley", "comma-separated targets: "+strings.Join(knownTargets, ", "))
	flag.IntVar(&o.partitions, "partitions", 8, "partitions of parley.inbound on the embedded broker")
	flag.DurationVar(&o.timeout, "timeout", 10*time.Second, "per-request timeout")
	flag.IntVar(&o.rounds, "rounds", 1, "run the targets this many times, interleaved; the summary is the median")
	flag.BoolVar(&o.json, "json", false, "print results as JSON")
	flag.StringVar(&o.cpuprofile, "cpuprofile", "", "write each server's CPU profile to this path with the target name inserted (cpu.pprof -> cpu.parley.pprof)")
	flag.StringVar(&serve, "serve", "", "internal: serve one target and wait for stdin to close")
	flag.Parse()

	if serve != "" {
		if err := serveChild(serve, o.partitions, o.cpuprofile); err != nil {
			fmt.Fprintln(os.Stderr, "serve:", err)
			os.Exit(1)
		}
		return
	}

	for t := range strings.SplitSeq(targets, ",") {
		t = strings.TrimSpace(t)
		if t == "" {
			continue
		}
		if !slices.Contains(knownTargets, t) {
			fmt.Fprintf(os.Stderr, "unknown target %q (known: %s)\n", t, strings.Join(knownTargets, ", "))
			os.Exit(2)
		}
		o.targets = append(o.targets, t)
	}
	if len(o.targets) == 0 || o.conns <= 0 || o.forms <= 0 || o.duration <= 0 || o.rounds <= 0 {
		fmt.Fprintln(os.Stderr, "need at least one target, and positive -conns, -forms, -duration and -rounds")
		os.Exit(2)
	}

	// Ctrl-C stops the run; the children are stopped on the way out.
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	rep, err := run(ctx, o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
	if o.json {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		return
	}
	rep.print(os.Stdout)
}

// run measures every target -rounds times, interleaving the targets so that
// a burst of outside load on the machine hits all of them alike.
func run(ctx context.Context, o options) (*report, error) {
	reqs := loadgen.Forms(o.forms, o.seed, webhook())
	rep := &report{
		Machine:    procstat.DescribeMachine(),
		Conns:      o.conns,
		WarmupS:    o.warmup.Seconds(),
		DurationS:  o.duration.Seconds(),
		Rounds:     o.rounds,
		Forms:      o.forms,
		FormBytes:  loadgen.MeanBodyBytes(reqs),
		Partitions: o.partitions,
	}
	for round := 1; round <= o.rounds; round++ {
		for _, t := range o.targets {
			if !o.json {
				fmt.Fprintf(os.Stderr, "round %d/%d, %s: %d conns, %s warm-up + %s ...\n",
					round, o.rounds, t, o.conns, o.warmup, o.duration)
			}
			r, err := runTarget(ctx, o, t, round, reqs)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", t, err)
			}
			rep.Runs = append(rep.Runs, r)
		}
	}
	rep.summarise(o.targets)
	return rep, nil
}

// runTarget starts the target's server process, loads it, and stops it.
func runTarget(ctx context.Context, o options, target string, round int, reqs []loadgen.Request) (targetResult, error) {
	exe, err := os.Executable()
	if err != nil {
		return targetResult{}, err
	}
	args := []string{"-serve", target, "-partitions", strconv.Itoa(o.partitions)}
	profile := ""
	if o.cpuprofile != "" {
		ext := filepath.Ext(o.cpuprofile)
		profile = strings.TrimSuffix(o.cpuprofile, ext) + "." + target
		if o.rounds > 1 {
			profile += "." + strconv.Itoa(round)
		}
		profile += ext
		args = append(args, "-cpuprofile", profile)
	}
	cmd := exec.Command(exe, args...)
	cmd.Stderr = os.Stderr
	// Its own process group keeps a terminal's Ctrl-C from killing the
	// server outright: this process stops it through stdin instead, so it
	// removes its broker's temp directory on the way out.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return targetResult{}, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return targetResult{}, err
	}
	if err := cmd.Start(); err != nil {
		return targetResult{}, err
	}
	// However this ends, the child goes: closing stdin asks it to shut
	// down, and a child that does not within the grace period is killed.
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stopped := false
	stopChild := func() error {
		if stopped {
			return nil
		}
		stopped = true
		stdin.Close()
		select {
		case err := <-exited:
			return err
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			<-exited
			return errors.New("server did not stop within 30s; killed")
		}
	}
	defer stopChild()

	addr, err := readAddr(ctx, stdout)
	if err != nil {
		return targetResult{}, err
	}
	// Whatever else the child prints is drained so that it never blocks
	// on a full pipe.
	go io.Copy(io.Discard, stdout)

	// CPU clocks read at the window's edges: the server's, this
	// process's (the load generator), and the whole machine's, so that
	// load from outside the benchmark shows up in the report.
	type clocks struct {
		server, self time.Duration
		machine      procstat.MachineCPU
		err          error
	}
	read := func() (c clocks) {
		c.server, c.err = procstat.ProcessCPU(cmd.Process.Pid)
		c.self = procstat.SelfCPU()
		var err error
		c.machine, err = procstat.ReadMachineCPU()
		c.err = errors.Join(c.err, err)
		return c
	}
	var c0, c1 clocks
	res, err := loadgen.Run(ctx, loadgen.Config{
		Addr:          addr,
		Path:          webhookPath,
		Conns:         o.conns,
		Warmup:        o.warmup,
		Duration:      o.duration,
		Timeout:       o.timeout,
		OnWindowStart: func() { c0 = read() },
		OnWindowEnd:   func() { c1 = read() },
	}, reqs)
	if err != nil {
		return targetResult{}, err
	}
	if err := stopChild(); err != nil {
		return targetResult{}, fmt.Errorf("server exit: %w", err)
	}

	window := o.duration.Seconds()
	r := targetResult{
		Target:         target,
		Round:          round,
		AcceptedPerSec: res.AcceptedPerSec(),
		Accepted:       res.Accepted,
		Errors:         res.Errors(),
		Statuses:       res.Statuses,
		Failed:         res.Failed,
		FirstError:     res.FirstError,
		Latency:        res.Latency,
		LoadgenCPU:     (c1.self - c0.self).Seconds() / window,
		Profile:        profile,
	}
	if c0.err == nil && c1.err == nil {
		r.ServerCPU = (c1.server - c0.server).Seconds() / window
		if res.Accepted > 0 {
			r.ServerCPUPerReq = float64((c1.server - c0.server).Microseconds()) / float64(res.Accepted)
		}
		busy, steal := c1.machine.Sub(c0.machine)
		r.OtherCPU = max(0, busy.Seconds()/window-r.ServerCPU-r.LoadgenCPU)
		r.StealCPU = steal.Seconds() / window
	}
	return r, nil
}

// readAddr waits for the child's "listening <addr>" line.
func readAddr(ctx context.Context, stdout io.Reader) (string, error) {
	type line struct {
		s   string
		err error
	}
	got := make(chan line, 1)
	go func() {
		s, err := bufio.NewReader(stdout).ReadString('\n')
		got <- line{s, err}
	}()
	select {
	case l := <-got:
		if l.err != nil {
			return "", fmt.Errorf("server did not start: %w", l.err)
		}
		addr, ok := strings.CutPrefix(strings.TrimSpace(l.s), "listening ")
		if !ok {
			return "", fmt.Errorf("server said %q", l.s)
		}
		return addr, nil
	case <-time.After(60 * time.Second):
		return "", errors.New("server did not start within 60s")
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// serveChild is the -serve mode: serve one target on a loopback port, say
// where, and shut down cleanly when the parent closes stdin (also when the
// parent dies, since its end of the pipe closes then too).
func serveChild(target string, partitions int, cpuprofile string) error {
	if cpuprofile != "" {
		f, err := os.Create(cpuprofile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	// Errors only: a broker that falls behind would otherwise log one
	// warning per request and the logging would become the bottleneck;
	// the load generator counts the 503s anyway.
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	srv, err := startTarget(target, ln, partitions, logger)
	if err != nil {
		ln.Close()
		return err
	}
	fmt.Printf("listening %s\n", ln.Addr())
	io.Copy(io.Discard, os.Stdin)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	return srv.stop(ctx)
}
