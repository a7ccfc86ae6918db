package chtest

import (
	"context"
	"strings"
	"testing"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"
)

func TestMain(m *testing.M) { Main(m) }

func TestSharedServerAndOwnDatabases(t *testing.T) {
	addr := ForTest(t)
	if again := ForTest(t); again != addr {
		t.Fatalf("second call gave %s, want the shared %s", again, addr)
	}
	a, b := Database(t, addr), Database(t, addr)
	if a == b {
		t.Fatalf("two databases named %s", a)
	}
	conn, err := ch.Open(&ch.Options{Addr: []string{addr}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var n uint64
	if err := conn.QueryRow(ctx, "SELECT count() FROM system.databases WHERE name IN (?, ?)", a, b).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 2 {
		t.Fatalf("%d of the 2 databases exist", n)
	}
}

func TestEnvAddrWins(t *testing.T) {
	t.Setenv(EnvAddr, "127.0.0.1:1")
	if got := ForTest(t); got != "127.0.0.1:1" {
		t.Fatalf("ForTest = %s, want the address from %s", got, EnvAddr)
	}
}

func TestSanitize(t *testing.T) {
	cases := map[string]string{
		"TestX":                   "testx",
		"TestSink/restart_(slow)": "testsink_restart__slow_",
		strings.Repeat("a", 100):  strings.Repeat("a", 40),
	}
	for in, want := range cases {
		if got := sanitize(in); got != want {
			t.Errorf("sanitize(%q) = %q, want %q", in, got, want)
		}
	}
}
