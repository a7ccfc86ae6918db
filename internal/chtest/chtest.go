// Package chtest gives tests a real ClickHouse server: the one named by
// PARLEY_TEST_CLICKHOUSE, or one started from the installed binary and
// shared by every test of the test binary. Tests never skip for want of
// ClickHouse: they fail and say how to install it.
//
// Use it from TestMain so the shared server stops when the tests end:
//
//	func TestMain(m *testing.M) { chtest.Main(m) }
//
// and give each test its own database:
//
//	addr := chtest.ForTest(t)
//	db := chtest.Database(t, addr)
package chtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"

	"github.com/parleyhq/parley/internal/chserver"
)

// EnvAddr names an already running server (native host:port) to use
// instead of starting one: CI may start one up front.
const EnvAddr = "PARLEY_TEST_CLICKHOUSE"

// tmpPrefix names the shared server's directories, so a later run can
// remove those a killed run left behind.
const tmpPrefix = "parley-chtest-"

var shared struct {
	once   sync.Once
	mu     sync.Mutex
	server *chserver.Server
	dir    string
	addr   string
	err    error
}

// ForTest returns the native address of a ClickHouse server for t. The
// first call in a test binary starts the shared server (unless
// PARLEY_TEST_CLICKHOUSE is set); when that fails, every caller fails with
// the reason.
func ForTest(t testing.TB) string {
	t.Helper()
	if addr := os.Getenv(EnvAddr); addr != "" {
		return addr
	}
	shared.once.Do(startShared)
	if shared.err != nil {
		t.Fatalf("chtest: %v", shared.err)
	}
	return shared.addr
}

func startShared() {
	removeAbandoned()
	dir, err := os.MkdirTemp("", tmpPrefix)
	if err != nil {
		shared.err = err
		return
	}
	_ = os.WriteFile(filepath.Join(dir, "owner.pid"), []byte(strconv.Itoa(os.Getpid())), 0o644)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s, err := chserver.Start(ctx, chserver.Options{Dir: dir})
	if err != nil {
		_ = os.RemoveAll(dir)
		shared.err = err
		return
	}
	shared.mu.Lock()
	shared.server, shared.dir, shared.addr = s, dir, s.Addr()
	shared.mu.Unlock()
}

// Stop stops the shared server, if one was started, and removes its
// data. Main calls it; a TestMain of its own should too.
func Stop() {
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.server != nil {
		_ = shared.server.Stop()
		_ = os.RemoveAll(shared.dir)
		shared.server = nil
	}
}

// Main runs the tests and then stops the shared server.
func Main(m *testing.M) {
	code := m.Run()
	Stop()
	os.Exit(code)
}

// removeAbandoned deletes the directories of shared servers whose test
// binary is gone (killed before Stop; the server itself died with it by
// the parent-death signal). A directory without its owner's pid yet may
// belong to a binary starting right now: it is left alone.
func removeAbandoned() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), tmpPrefix+"*"))
	for _, d := range dirs {
		raw, err := os.ReadFile(filepath.Join(d, "owner.pid"))
		if err != nil {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(raw)))
		if err != nil || pid == os.Getpid() {
			continue
		}
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			_ = os.RemoveAll(d)
		}
	}
}

// Database creates a database of its own for t on the server at addr and
// drops it when t ends (kept if t failed, to look at).
func Database(t testing.TB, addr string) string {
	t.Helper()
	var suffix [4]byte
	_, _ = rand.Read(suffix[:])
	name := "test_" + sanitize(t.Name()) + "_" + hex.EncodeToString(suffix[:])
	conn, err := ch.Open(&ch.Options{Addr: []string{addr}, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatalf("chtest: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := conn.Exec(ctx, "CREATE DATABASE `"+name+"`"); err != nil {
		_ = conn.Close()
		t.Fatalf("chtest: create database on %s: %v", addr, err)
	}
	t.Cleanup(func() {
		defer conn.Close()
		if t.Failed() {
			t.Logf("chtest: keeping database %s on %s", name, addr)
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := conn.Exec(ctx, "DROP DATABASE IF EXISTS `"+name+"`"); err != nil {
			t.Logf("chtest: drop database %s: %v", name, err)
		}
	})
	return name
}

// sanitize keeps a test name usable (and short) as an identifier.
func sanitize(name string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(name) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
		if b.Len() >= 40 {
			break
		}
	}
	return b.String()
}
