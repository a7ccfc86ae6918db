package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/parleyhq/parley/internal/browsertest"
	"github.com/parleyhq/parley/internal/clustertest"
)

func TestDevAdminKeyIsKeptAndPrivate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	first, err := devAdminKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	if first.Role != "admin" || len(first.Tenants) != 1 || first.Tenants[0] != "*" || len(first.Key.Reveal()) < 32 {
		t.Fatalf("key %+v", first)
	}
	fi, err := os.Stat(filepath.Join(dir, devKeyFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", fi, err)
	}
	again, err := devAdminKey(dir)
	if err != nil || again.Key != first.Key {
		t.Fatalf("second start: %v, same key %v", err, again.Key == first.Key)
	}
	// A file too short to be a key (truncated, edited by hand) is replaced.
	if err := os.WriteFile(filepath.Join(dir, devKeyFile), []byte("short\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if k, err := devAdminKey(dir); err != nil || k.Key == first.Key || len(k.Key.Reveal()) < 32 {
		t.Fatalf("after a short file: %v %v", k, err)
	}
	if strings.Contains(fmt.Sprintf("%v %+v", first, first), first.Key.Reveal()) {
		t.Fatal("the key prints in the clear")
	}
}

var dashboardLink = regexp.MustCompile(`dashboard +(http://\S+)/dashboard#key=(\S+)`)

// startDev runs `parley dev` without a file at addr on dataDir and
// returns the dashboard link's base URL and key once it is running.
func startDev(t *testing.T, addr, dataDir string) (base, key string, stop func()) {
	t.Helper()
	cmd := exec.Command(clustertest.Binary(t), "dev", "--addr", addr, "--data-dir", dataDir)
	stdout, _ := cmd.StdoutPipe()
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	stop = func() { once.Do(func() { stopParley(t, cmd, &stderr) }) }
	// A test that fails before it stops the process must not leave it
	// (and the ClickHouse it started) running.
	t.Cleanup(stop)
	found := make(chan []string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if m := dashboardLink.FindStringSubmatch(sc.Text()); m != nil {
				found <- m
				break
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
	}()
	select {
	case m := <-found:
		return m[1], m[2], stop
	case <-time.After(90 * time.Second):
		stop()
		t.Fatalf("parley dev printed no dashboard link\nstderr:\n%s", stderr.String())
	}
	return "", "", nil
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestDevFirstLook is a newcomer's first minute: `parley dev` without a
// file prints a dashboard link carrying a development admin key; the key
// reaches the API, the link opens the dashboard signed in (and leaves the
// address bar without the key), and a restart prints the same key.
func TestDevFirstLook(t *testing.T) {
	dataDir := t.TempDir()
	addr := freeAddr(t)
	base, key, stop := startDev(t, addr, dataDir)
	if base != "http://"+addr {
		t.Fatalf("link base %q, want http://%s", base, addr)
	}

	tenantsWith := func(key string) (int, []string) {
		req, _ := http.NewRequest(http.MethodGet, base+"/api/v1/tenants", nil)
		req.Header.Set("Authorization", "Bearer "+key)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var body struct {
			Tenants []struct {
				ID string `json:"id"`
			} `json:"tenants"`
		}
		_ = json.NewDecoder(res.Body).Decode(&body)
		var ids []string
		for _, tn := range body.Tenants {
			ids = append(ids, tn.ID)
		}
		return res.StatusCode, ids
	}
	if status, ids := tenantsWith(key); status != http.StatusOK || len(ids) != 1 || ids[0] != "demo" {
		t.Fatalf("tenants with the printed key: %d %v", status, ids)
	}
	if status, _ := tenantsWith("not-the-dev-key-at-all"); status != http.StatusUnauthorized {
		t.Fatalf("tenants with another key: %d", status)
	}

	ctx := browsertest.New(t)
	c, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := chromedp.Do(c, chromedp.Navigate(base+"/dashboard#key="+key)); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Run(c, chromedp.Poll[bool](`document.body.dataset.view === 'app' && document.getElementById('tenant').value === 'demo'`,
		chromedp.WithPollingInterval(50*time.Millisecond))); err != nil {
		t.Fatalf("dashboard did not open signed in: %v", err)
	}
	address, err := chromedp.Run(c, chromedp.Evaluate[string](`location.href`))
	if err != nil || strings.Contains(address, key) {
		t.Fatalf("address bar after sign-in: %q %v", address, err)
	}
	stop()

	_, again, stop := startDev(t, addr, dataDir)
	defer stop()
	if again != key {
		t.Fatal("a restart on the same data directory printed another key")
	}
}

// stopParley stops a `parley dev` or `parley serve` the test started with
// SIGINT, as a person would (Ctrl-C), and kills it if it does not stop
// within 30 s; a failed test shows its stderr.
func stopParley(t *testing.T, cmd *exec.Cmd, stderr *strings.Builder) {
	_ = cmd.Process.Signal(os.Interrupt)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		t.Errorf("parley %s did not stop on SIGINT within 30s", cmd.Args[1])
	}
	if t.Failed() {
		t.Logf("stderr:\n%s", stderr.String())
	}
}
