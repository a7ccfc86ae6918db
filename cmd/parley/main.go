// Command parley is the one Parley binary:
//
//	parley dev     [--config FILE | --addr A --data-dir D]   everything in one process, embedding what is not configured
//	parley serve   --config FILE     all roles against configured Kafka and ClickHouse
//	parley migrate --config FILE     apply the ClickHouse schema and exit
//	parley broker  [--addr 127.0.0.1:9092] [--data-dir D]   a development Kafka-protocol broker
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/parleyhq/parley/config"
	"github.com/parleyhq/parley/engine"
	"github.com/parleyhq/parley/internal/seal"
	chsink "github.com/parleyhq/parley/sinks/clickhouse"
)

const usage = `usage:
  parley dev     [--config FILE]   run everything locally; embeds Kafka and ClickHouse when not configured
                 [--addr A] [--data-dir D]   without a file: where to listen and keep data; prints a
                                   development admin key and the dashboard link that carries it
  parley serve   --config FILE     run all roles against configured Kafka and ClickHouse
  parley migrate --config FILE     apply the ClickHouse schema and exit
  parley forget  --tenant T --phone +E164 --config FILE   erase a customer (GDPR)
  parley broker  [--addr 127.0.0.1:9092] [--data-dir .parley/broker]
                                   a development Kafka-protocol broker that several nodes share
  parley keygen                    print a new PARLEY_SECRETS_KEY (every node of a cluster needs the same)
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	cmd, args := os.Args[1], os.Args[2:]
	var err error
	switch cmd {
	case "dev":
		err = run(args, true)
	case "serve":
		err = run(args, false)
	case "migrate":
		err = migrate(args)
	case "forget":
		err = forget(args)
	case "broker":
		err = brokerCmd(args)
	case "keygen":
		fmt.Println(seal.NewKey())
	case "help", "-h", "--help":
		fmt.Print(usage)
		return
	default:
		fmt.Fprintf(os.Stderr, "unknown command %q\n%s", cmd, usage)
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "parley:", err)
		os.Exit(1)
	}
}

// loadConfig reads --config FILE; dev without one runs on config.Dev, at
// --addr and with --data-dir when given. fromFile says which it was.
func loadConfig(name string, args []string, dev bool) (cfg *config.Config, fromFile bool, err error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	path := fs.String("config", "", "config file (YAML)")
	var addr, dataDir *string
	if dev {
		addr = fs.String("addr", "", "listen address without --config (default 127.0.0.1:8080)")
		dataDir = fs.String("data-dir", "", "data directory without --config (default .parley)")
	}
	if err := fs.Parse(args); err != nil {
		return nil, false, err
	}
	if *path == "" {
		if !dev {
			return nil, false, fmt.Errorf("%s needs --config FILE", name)
		}
		return config.Dev(*addr, *dataDir), false, nil
	}
	if dev && (*addr != "" || *dataDir != "") {
		return nil, false, fmt.Errorf("--addr and --data-dir are for dev without --config: set http.addr and data_dir in the file")
	}
	cfg, err = config.Load(*path)
	return cfg, err == nil, err
}

func logger() *slog.Logger {
	level := slog.LevelInfo
	if os.Getenv("PARLEY_DEBUG") != "" {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
}

func run(args []string, dev bool) error {
	name := "serve"
	if dev {
		name = "dev"
	}
	cfg, fromFile, err := loadConfig(name, args, dev)
	if err != nil {
		return err
	}
	// Without a file nobody has a key for the dashboard: make one, kept in
	// the data directory, and print the link that carries it.
	var devKey string
	if dev && !fromFile {
		k, err := devAdminKey(cfg.DataDir)
		if err != nil {
			return err
		}
		cfg.APIKeys = append(cfg.APIKeys, k)
		devKey = k.Key.Reveal()
	}
	log := logger()
	slog.SetDefault(log)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	e, err := engine.Start(ctx, cfg, engine.Options{Embed: dev, Logger: log})
	if err != nil {
		return err
	}
	dataDir, _ := filepath.Abs(cfg.DataDir)
	fmt.Printf(`
Parley is running (%s).
  webhooks     %s/webhooks/twilio/{tenant}
  simulator    %s/simulator
  health       %s/healthz   %s/readyz   %s/metrics
  kafka        %v
  clickhouse   %s (database %s)
  data dir     %s
`, name, e.URL(), e.URL(), e.URL(), e.URL(), e.URL(), e.Brokers(), e.ClickHouseAddr(), cfg.ClickHouse.Database, dataDir)
	if devKey != "" {
		fmt.Printf(`  dashboard    %s/dashboard#key=%s
  admin key    %s (development only; kept in %s)
`, e.URL(), devKey, devKey, filepath.Join(dataDir, devKeyFile))
	}
	fmt.Println("Press Ctrl-C to stop.")
	<-ctx.Done()
	fmt.Println("\nstopping…")
	done := make(chan struct{})
	go func() { e.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		return fmt.Errorf("did not stop within 30s")
	}
	fmt.Println("stopped.")
	return nil
}

func migrate(args []string) error {
	cfg, _, err := loadConfig("migrate", args, false)
	if err != nil {
		return err
	}
	if cfg.ClickHouse.Addr == "" {
		return fmt.Errorf("migrate needs clickhouse.addr")
	}
	// No deadline: a migration that rebuilds a rollup (9) scans the stored
	// events, which on a large database takes as long as it takes; Ctrl-C
	// stops it, and the next run starts the step again.
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	// Open migrates the schema.
	storeCfg, err := engine.StoreConfig(cfg, cfg.ClickHouse.Addr, logger())
	if err != nil {
		return err
	}
	store, err := chsink.Open(ctx, storeCfg)
	if err != nil {
		return err
	}
	defer store.Close()
	fmt.Println("schema up to date in database", cfg.ClickHouse.Database)
	return nil
}
