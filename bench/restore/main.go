// Command restore measures how fast a node gets its sessions back from the
// changelog (docs/sessions.md): N signed-in sessions' encoded states are
// written to parley.sessions on the embedded broker, then read back with
// bus.ReadPartitions into an actors.Placement, as actors.Router.restore
// does when the group assigns a node its partitions; then the same after
// the broker restarts on its data directory, as after a machine restart,
// once stopped cleanly and once killed with SIGKILL.
//
//	go run ./bench/restore                      # 1,000,000 sessions
//	go run ./bench/restore -sessions 100000 -json
//
// Processes: this one writes and orchestrates; the broker
// (bus.StartEmbedded, as `parley dev` runs it) and each restoring node run
// as children (the program re-executed with -role), so a restore starts in
// a fresh process as a restarted node does, and its memory is its own.
//
// Phases:
//
//  1. Write. States are built by driving the pure core (conversation.State
//     .Apply: "hi", the profile found, the code, delivery reports, a short
//     chat, the brain's memory) for distinct numbers, one goroutine per
//     core. Then produced with franz-go's kgo, each record in
//     wire.Partition(key): every session's final state and, for -overwrite
//     of them, an earlier state (waiting for the code) 1000 sessions
//     before it, then -erase × N more keys with a state and a tombstone,
//     so the restore reads more records than it keeps sessions and meets
//     tombstones.
//  2. Restore, broker warm: a node reads every partition to its end into
//     its placement (Restore for a state, Forget for a tombstone); the
//     same read with no placement (the Kafka leg alone) and with a copy of
//     each value (what keeping the fetch buffers costs) as diagnostics.
//  3. Restart: the broker is stopped cleanly, started again on the same
//     directory, and a fresh node restores; "ready" is from the broker's
//     exec to the node's last session restored. Then the same after
//     SIGKILL of the broker (no clean shutdown: kfake replays its
//     segments).
//  4. End to end, when the pieces exist: `parley broker` on the same data
//     directory, a ClickHouse child, and `parley serve` timed until
//     /readyz answers 200, once with the broker started first and once
//     with both started together (-e2e=false skips it).
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/parleyhq/parley/bus"
)

type options struct {
	sessions   int
	partitions int
	overwrite  float64
	erase      float64
	dir        string // work directory
	brokerDir  string // the broker's data directory, dir/broker
	keep       bool
	timeout    time.Duration
	diagnose   bool
	kill9      bool
	e2e        bool
	json       bool
	out        string
}

func main() {
	var (
		o       options
		role    string
		brokers string
		mode    string
	)
	flag.IntVar(&o.sessions, "sessions", 1_000_000, "sessions to write and restore")
	flag.IntVar(&o.partitions, "partitions", 8, "partitions of the topics")
	flag.Float64Var(&o.overwrite, "overwrite", 0.10, "fraction of sessions written twice (an earlier state, then the final one)")
	flag.Float64Var(&o.erase, "erase", 0.01, "further keys, as a fraction of -sessions, written and then erased (tombstone)")
	flag.StringVar(&o.dir, "dir", "", "work directory: the broker's data in DIR/broker, the end-to-end run's files in DIR/e2e (default: a new temp directory, removed at the end)")
	flag.BoolVar(&o.keep, "keep", false, "keep the temp data directory")
	flag.DurationVar(&o.timeout, "timeout", 25*time.Minute, "the whole run stops after this")
	flag.BoolVar(&o.diagnose, "diagnose", true, "also restore with no placement (read only) and with copied values")
	flag.BoolVar(&o.kill9, "kill9", true, "also restart the broker after SIGKILL")
	flag.BoolVar(&o.e2e, "e2e", true, "also time `parley serve` to /readyz 200, if the parley binary has a broker command and ClickHouse is installed")
	flag.BoolVar(&o.json, "json", false, "print results as JSON")
	flag.StringVar(&o.out, "o", "", "also write the JSON report to this file")
	flag.StringVar(&role, "role", "", "internal: broker or restore (child processes)")
	flag.StringVar(&brokers, "brokers", "", "internal: the restore child's broker")
	flag.StringVar(&mode, "mode", modePlacement, "internal: the restore child's mode")
	flag.Parse()

	var err error
	switch role {
	case "broker":
		err = brokerChild(o.dir)
	case "restore":
		err = restoreChild(strings.Split(brokers, ","), o.partitions, mode)
	case "":
		if o.sessions < 1 || o.partitions < 1 || o.overwrite < 0 || o.overwrite > 1 || o.erase < 0 {
			fmt.Fprintln(os.Stderr, "restore: need -sessions, -partitions ≥ 1, 0 ≤ -overwrite ≤ 1, -erase ≥ 0")
			os.Exit(2)
		}
		var r *report
		r, err = run(o)
		if r != nil {
			js, _ := json.MarshalIndent(r, "", "  ")
			js = append(js, '\n')
			if o.out != "" {
				if werr := os.WriteFile(o.out, js, 0o644); werr != nil && err == nil {
					err = werr
				}
			}
			if o.json {
				os.Stdout.Write(js)
			} else {
				r.print(os.Stdout)
			}
		}
	default:
		err = fmt.Errorf("unknown role %q", role)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "restore:", err)
		os.Exit(1)
	}
}

func run(o options) (*report, error) {
	ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
	defer cancel()
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()

	if o.dir == "" {
		d, err := os.MkdirTemp("", "parley-bench-restore-")
		if err != nil {
			return nil, err
		}
		o.dir = d
		if !o.keep {
			defer os.RemoveAll(d)
		}
	}
	o.brokerDir = filepath.Join(o.dir, "broker")
	r := &report{Machine: machineInfo(), Config: config{
		Sessions: o.sessions, Partitions: o.partitions, Overwrite: o.overwrite, Erase: o.erase, DataDir: o.brokerDir,
	}}

	// 1. Write.
	b, err := startBroker(ctx, o.brokerDir)
	if err != nil {
		return nil, err
	}
	defer func() {
		if b != nil {
			b.stop()
		}
	}()
	progress("broker up at %s in %v", b.addr, b.Started.Round(time.Millisecond))
	if _, err := bus.EnsureParleyTopics(ctx, b.brokers(), nil, o.partitions, 1); err != nil {
		return nil, err
	}
	progress("building %d sessions' states with the core (%d goroutines)", o.sessions, runtime.GOMAXPROCS(0))
	t0 := time.Now()
	ds, err := build(o.sessions, o.overwrite, o.erase, time.Now())
	if err != nil {
		return nil, err
	}
	g := &r.Generate
	g.Seconds = time.Since(t0).Seconds()
	g.SessionsPS = float64(o.sessions+ds.erased) / g.Seconds
	r.Config.Records, r.Config.Overwritten, r.Config.Erased = len(ds.records), ds.overwrites, ds.erased
	r.Config.MeanStateBytes = float64(ds.finalBytes) / float64(ds.sessions)
	progress("built %d records (%d overwrites, %d erased keys) in %.1fs; mean final state %.0f B",
		len(ds.records), ds.overwrites, ds.erased, g.Seconds, r.Config.MeanStateBytes)
	cpuB := processCPU(b.c.Pid())
	r.Write, err = write(ctx, b.brokers(), o.partitions, ds)
	if err != nil {
		return r, err
	}
	r.Write.BrokerCPUCores = (processCPU(b.c.Pid()) - cpuB).Seconds() / r.Write.Seconds
	ds = nil
	runtime.GC()
	r.Write.DataDirBytes = dirSize(o.brokerDir)
	r.Write.BrokerRSS = b.rss()
	progress("wrote %d records in %.1fs: %.0f records/s, %.1f MiB/s; data dir %.0f MiB, broker RSS %.0f MiB",
		r.Write.Records, r.Write.Seconds, r.Write.PerS, r.Write.MiBPerS, mibf(r.Write.DataDirBytes), mibf(int64(r.Write.BrokerRSS)))

	// 2. Restore with the broker warm.
	modes := []string{modePlacement}
	if o.diagnose {
		modes = []string{modeRead, modePlacement, modeCopy}
	}
	for _, m := range modes {
		res, _, err := runRestore(ctx, b, o.partitions, m)
		if err != nil {
			return r, err
		}
		if err := check(res, r.Config); err != nil {
			return r, err
		}
		r.Warm = append(r.Warm, res)
		progress("restore (%s): %d records in %.2fs, %.0f records/s, %d sessions; %.0f B heap, %.0f B RSS per session",
			m, res.Records, res.Seconds, res.RecordsPS, res.Sessions, res.HeapPerSession, res.RSSPerSession)
	}

	// 3. Restarts.
	kinds := []string{"stop"}
	if o.kill9 {
		kinds = append(kinds, "kill -9")
	}
	for _, kind := range kinds {
		rs := restart{Kind: kind}
		if kind == "stop" {
			d, err := b.stop()
			if err != nil {
				return r, fmt.Errorf("broker stop: %w", err)
			}
			rs.StopS = d.Seconds()
		} else {
			b.c.Kill()
		}
		b = nil
		t0 := time.Now()
		nb, err := startBroker(ctx, o.brokerDir)
		if err != nil {
			return r, err
		}
		b = nb
		rs.BrokerStartS = b.Started.Seconds()
		rs.BrokerRSS = b.rss()
		res, at, err := runRestore(ctx, b, o.partitions, modePlacement)
		if err != nil {
			return r, err
		}
		if err := check(res, r.Config); err != nil {
			return r, err
		}
		rs.Restore = res
		rs.ReadyS = at.Sub(t0).Seconds()
		r.Restarts = append(r.Restarts, rs)
		progress("restart after %s: broker up in %.2fs, restore %.2fs; ready %.2fs after the broker's start",
			kind, rs.BrokerStartS, res.Seconds, rs.ReadyS)
	}

	// 4. End to end.
	if o.e2e {
		d, err := b.stop()
		b = nil
		if err != nil {
			return r, fmt.Errorf("broker stop: %w", err)
		}
		progress("broker stopped in %v for the end-to-end run", d.Round(time.Millisecond))
		r.EndToEnd = endToEnd(ctx, o, r.Config)
	}
	return r, ctx.Err()
}

// check holds a restore to the dataset: every record read, every session
// held, none of the erased ones.
func check(res restoreResult, c config) error {
	if res.Records != c.Records || res.Tombstones != c.Erased {
		return fmt.Errorf("restore (%s) read %d records, %d tombstones; wrote %d, %d", res.Mode, res.Records, res.Tombstones, c.Records, c.Erased)
	}
	if res.Mode != modeRead && res.Sessions != c.Sessions {
		return fmt.Errorf("restore (%s) holds %d sessions; wrote %d", res.Mode, res.Sessions, c.Sessions)
	}
	if res.SampleBadStates > 0 {
		return fmt.Errorf("restore (%s): %d of %d sampled states undecodable", res.Mode, res.SampleBadStates, res.Sampled)
	}
	return nil
}

// logTo is where progress goes (stderr, so -json output stays clean).
var logTo io.Writer = os.Stderr

func progress(format string, args ...any) {
	fmt.Fprintf(logTo, "%s  "+format+"\n", append([]any{time.Now().Format("15:04:05.000")}, args...)...)
}

func mibf(b int64) float64 { return float64(b) / (1 << 20) }
