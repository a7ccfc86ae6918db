package chserver

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"
)

func TestStartStopRestartKeepsDataAndAddress(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := t.TempDir()
	s, err := Start(ctx, Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	for _, f := range []string{"config.xml", "users.xml", "data", "log/clickhouse-server.log"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("expected %s under Dir: %v", f, err)
		}
	}
	run(t, ctx, s.Addr(), "CREATE TABLE default.kept (x UInt32) ENGINE = MergeTree ORDER BY x")

	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := s.Stop(); err != nil { // idempotent
		t.Fatal(err)
	}
	select {
	case <-s.Exited():
	default:
		t.Fatal("Stop returned before the process exited")
	}
	if _, err := http.Get(s.HTTPURL() + "/ping"); err == nil {
		t.Fatal("server still answers after Stop")
	}

	s2, err := Start(ctx, s.Options())
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Stop()
	if s2.Addr() != s.Addr() {
		t.Fatalf("restart moved from %s to %s", s.Addr(), s2.Addr())
	}
	run(t, ctx, s2.Addr(), "SELECT count() FROM default.kept")
}

func TestTwoServersSideBySide(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	a, err := Start(ctx, Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Stop()
	b, err := Start(ctx, Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Stop()
	if a.Addr() == b.Addr() {
		t.Fatal("two servers on one address")
	}
	run(t, ctx, a.Addr(), "SELECT 1")
	run(t, ctx, b.Addr(), "SELECT 1")
}

func TestStartFailures(t *testing.T) {
	ctx := context.Background()
	t.Run("missing binary", func(t *testing.T) {
		t.Setenv("PATH", t.TempDir())
		_, err := Start(ctx, Options{Dir: t.TempDir(), Binary: "/nonexistent/clickhouse-server"})
		if !errors.Is(err, ErrNotFound) {
			t.Fatalf("err = %v, want ErrNotFound", err)
		}
		if !strings.Contains(err.Error(), "apt-get install clickhouse-server") {
			t.Fatalf("error does not say how to install: %v", err)
		}
	})
	t.Run("binary exits at once", func(t *testing.T) {
		bin := filepath.Join(t.TempDir(), "clickhouse-server")
		script := "#!/bin/sh\necho 'DB::Exception: something is wrong' >&2\nexit 3\n"
		if err := os.WriteFile(bin, []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
		_, err := Start(ctx, Options{Dir: t.TempDir(), Binary: bin})
		if err == nil || !strings.Contains(err.Error(), "exited during start") || !strings.Contains(err.Error(), "something is wrong") {
			t.Fatalf("err = %v, want the exit and the log tail", err)
		}
	})
	t.Run("no Dir", func(t *testing.T) {
		if _, err := Start(ctx, Options{}); err == nil {
			t.Fatal("started without a Dir")
		}
	})
}

func TestFindBinary(t *testing.T) {
	bin := t.TempDir()
	for _, name := range []string{"clickhouse", "clickhouse-server"} {
		if err := os.WriteFile(filepath.Join(bin, name), []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	cases := []struct {
		explicit string
		path     string
		args     []string
	}{
		{filepath.Join(bin, "clickhouse"), filepath.Join(bin, "clickhouse"), []string{"server"}},
		{filepath.Join(bin, "clickhouse-server"), filepath.Join(bin, "clickhouse-server"), nil},
	}
	for _, c := range cases {
		path, args, err := findBinary(c.explicit)
		if err != nil || path != c.path || !reflect.DeepEqual(args, c.args) {
			t.Errorf("findBinary(%q) = %q %q %v, want %q %q", c.explicit, path, args, err, c.path, c.args)
		}
	}
	// Without clickhouse-server anywhere, the single binary on PATH is
	// found and run as `clickhouse server` (unless the system has one).
	onlySingle := t.TempDir()
	if err := os.WriteFile(filepath.Join(onlySingle, "clickhouse"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", onlySingle)
	path, args, err := findBinary("")
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Base(path) == "clickhouse" && !reflect.DeepEqual(args, []string{"server"}) {
		t.Fatalf("single binary %s run with %q", path, args)
	}
}

func TestConfigEscapesDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a&b<c")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := writeConfig(Options{Dir: dir, TCPPort: 1, HTTPPort: 2}); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(dir, "config.xml"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(raw), "a&amp;b&lt;c/data/") {
		t.Fatalf("path not escaped:\n%s", raw)
	}
	for _, absent := range []string{"interserver_http_port", "mysql_port", "postgresql_port", "0.0.0.0", "::"} {
		if strings.Contains(string(raw), absent) {
			t.Errorf("config mentions %s", absent)
		}
	}
}

func run(t *testing.T, ctx context.Context, addr, query string) {
	t.Helper()
	conn, err := ch.Open(&ch.Options{Addr: []string{addr}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.Exec(ctx, query); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
}
