// Package clustertest runs Parley as a user runs a cluster on one machine,
// for tests: the real binary built once, `parley broker` as a process with
// a data dir, several `parley serve` processes sharing it, the test
// ClickHouse (internal/chtest), a local Twilio (twiliotest) and a tenant
// backend over HTTP in which every phone number has exactly one enabled
// profile, so sign-in is always: write, get a code, send it, signed in.
//
// Nodes are processes, not goroutines, because what a cluster must survive
// happens to processes: kill -9 leaves no deferred call, no flushed buffer
// and no LeaveGroup; SIGTERM runs the graceful stop. Each process logs to a
// file; when a test fails the tail of every log is printed and the files
// are kept.
//
// Use it from TestMain, which also stops the shared ClickHouse:
//
//	func TestMain(m *testing.M) { clustertest.Main(m) }
//
// then
//
//	c := clustertest.Start(t, clustertest.Options{Nodes: 3, SessionTimeout: 6 * time.Second})
//	if err := c.SignIn(c.Nodes[0], "+447700900001"); err != nil { ... }
//	c.Kill9(c.Nodes[1])
//
// Helpers that tests call from several goroutines (posting, reading
// replies, API calls) return errors; those that change the cluster (Start,
// Kill9, Stop, Restart) fail the test themselves and belong to the test's
// goroutine.
package clustertest

import (
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/parleyhq/parley/internal/chtest"
)

var build struct {
	once sync.Once
	dir  string
	bin  string
	out  []byte
	err  error
}

// Main runs the tests, then stops the shared ClickHouse and removes the
// built binary.
func Main(m *testing.M) {
	code := m.Run()
	chtest.Stop()
	if build.dir != "" {
		_ = os.RemoveAll(build.dir)
	}
	os.Exit(code)
}

// Binary builds cmd/parley once per test binary and returns its path. It
// is built without the race detector whatever the test runs with: the
// nodes are the system under test, not the test, and instrumented they
// would run several times slower on the 2 cores the timings are set for.
func Binary(t testing.TB) string {
	t.Helper()
	build.once.Do(func() {
		build.dir, build.err = os.MkdirTemp("", "parley-clustertest-bin-")
		if build.err != nil {
			return
		}
		build.bin = filepath.Join(build.dir, "parley")
		cmd := exec.Command("go", "build", "-o", build.bin, "github.com/parleyhq/parley/cmd/parley")
		build.out, build.err = cmd.CombinedOutput()
	})
	if build.err != nil {
		t.Fatalf("clustertest: go build ./cmd/parley: %v\n%s", build.err, build.out)
	}
	return build.bin
}
