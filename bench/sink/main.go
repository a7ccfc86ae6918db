// Command sink measures Parley's analytics path on a real ClickHouse:
//
//	go run ./bench/sink                      # both parts below
//	go run ./bench/sink -part sink           # sink rows/s vs the raw insert ceiling
//	go run ./bench/sink -part summary        # dashboard summary time over 10M message rows
//	go run ./bench/sink -clickhouse 127.0.0.1:9000   # an existing server instead of a local child
//
// Sink: N events (the mix the sessions emit) are produced to parley.events
// on the embedded broker (bus.StartEmbedded, as `parley dev`). Then, in the
// same run and on the same server, alternately: the ceiling, clickhouse-go
// batch inserts of exactly those rows, already decoded and split by table,
// from memory, with nothing else to do; and Parley's Sink (a fresh
// consumer group, so it reads the whole topic) until every row is in
// ClickHouse. The figure is rows/s of each and their ratio.
//
// Summary: 10M message rows for one tenant over 30 days (plus the
// conversation, sign-in and usage rows that go with them) generated
// server-side with INSERT … SELECT FROM system.numbers; closed days
// compacted as the janitor does, today's partition written in many small
// inserts with replays, as the sink leaves it. Then the dashboard summary
// (analytics.Querier.Summary, the API's query) for the default 7 days and
// for 30 days, repeatedly; p50/p95/max.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"time"

	"github.com/parleyhq/parley/internal/chserver"
)

type options struct {
	part        string
	clickhouse  string
	events      int
	batch       int
	rounds      int
	rows        int
	days        int
	runs        int
	keep        bool
	verbose     bool
	partitions  int
	ceilingSize int
	cpuprofile  string
	flush       time.Duration
}

func main() {
	var o options
	flag.StringVar(&o.part, "part", "all", "all | sink | summary")
	flag.StringVar(&o.clickhouse, "clickhouse", "", "native address of a running ClickHouse (default: start one from the installed binary)")
	flag.IntVar(&o.events, "events", 1_000_000, "sink: events produced and inserted")
	flag.IntVar(&o.batch, "batch", 0, "sink: SinkOptions.BatchSize (0: the sink's default)")
	flag.DurationVar(&o.flush, "flush", 0, "sink: SinkOptions.FlushEvery (0: the sink's default)")
	flag.IntVar(&o.ceilingSize, "ceiling-batch", 0, "sink: rows per insert of the ceiling (0: the sink's batch size)")
	flag.IntVar(&o.rounds, "rounds", 3, "sink: ceiling/sink rounds, alternating; medians are reported")
	flag.IntVar(&o.partitions, "partitions", 8, "sink: partitions of parley.events")
	flag.IntVar(&o.rows, "rows", 10_000_000, "summary: message rows")
	flag.IntVar(&o.days, "days", 30, "summary: days the rows span (the retention)")
	flag.IntVar(&o.runs, "runs", 50, "summary: measured runs per query")
	flag.BoolVar(&o.verbose, "v", false, "summary: log each query part's time")
	flag.BoolVar(&o.keep, "keep", false, "keep the benchmark databases")
	flag.StringVar(&o.cpuprofile, "cpuprofile", "", "sink: write a CPU profile of this process during the sink runs")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err := run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "bench/sink:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, o options) error {
	addr := o.clickhouse
	if addr == "" {
		dir, err := os.MkdirTemp("", "parley-bench-sink-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		srv, err := chserver.Start(ctx, chserver.Options{Dir: filepath.Join(dir, "clickhouse")})
		if err != nil {
			return err
		}
		defer srv.Stop()
		addr = srv.Addr()
	}
	fmt.Printf("machine: %d CPUs, %s/%s, %s\n", runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, time.Now().UTC().Format(time.RFC3339))
	if o.part == "all" || o.part == "sink" {
		if err := benchSink(ctx, addr, o); err != nil {
			return fmt.Errorf("sink: %w", err)
		}
	}
	if o.part == "all" || o.part == "summary" {
		if err := benchSummary(ctx, addr, o); err != nil {
			return fmt.Errorf("summary: %w", err)
		}
	}
	return nil
}
