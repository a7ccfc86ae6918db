package ingress

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/parleyhq/parley/channels/meta"
	"github.com/parleyhq/parley/channels/meta/metatest"
	"github.com/parleyhq/parley/tenants"
)

// limitsServer is an ingress with a Twilio and a Meta tenant and no broker:
// the requests of these tests never get as far as producing.
func limitsServer(t *testing.T, o Options) string {
	t.Helper()
	reg, err := tenants.NewRegistry([]tenants.Tenant{
		{ID: "acme", Twilio: &tenants.Twilio{AccountSID: "AC1", AuthToken: token, From: "whatsapp:+14155238886"}},
		{ID: "beta", Meta: &meta.Config{PhoneNumberID: metatest.TestPhoneNumberID, AccessToken: metatest.TestAccessToken,
			AppSecret: metatest.TestAppSecret, VerifyToken: metatest.TestVerifyToken}},
	})
	if err != nil {
		t.Fatal(err)
	}
	o.PublicBaseURL, o.Tenants, o.Providers = "https://parley.example.com", reg, providers()
	s := New(o)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(ln)
	t.Cleanup(func() { _ = s.Shutdown(context.Background()) })
	return ln.Addr().String()
}

// openBody sends a POST's headers announcing a body of size bytes, and
// the first sent bytes of it, then stalls, as a slow or hostile client.
func openBody(t *testing.T, addr, path string, size, sent int) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: parley\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", path, size, strings.Repeat("x", sent))
	return c
}

// status reads the response's status code, or fails after timeout.
func status(t *testing.T, c net.Conn, timeout time.Duration) int {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(timeout))
	res, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("no answer within %s: %v", timeout, err)
	}
	res.Body.Close()
	return res.StatusCode
}

// TestRouteCapAppliesBeforeTheBodyIsRead: a body over its route's cap is
// refused by its Content-Length once its first 8 KiB arrived (fasthttp's
// read-ahead), though it is under the largest cap of any route (Meta's
// 3 MiB): the rest is not read or buffered before the answer.
func TestRouteCapAppliesBeforeTheBodyIsRead(t *testing.T) {
	addr := limitsServer(t, Options{})
	c := openBody(t, addr, "/webhooks/twilio/acme", 1<<20, 8<<10)
	if got := status(t, c, 3*time.Second); got != http.StatusRequestEntityTooLarge {
		t.Fatalf("status %d, want 413", got)
	}
}

// TestSlowBodiesHoldLittleMemory: 60 unauthenticated clients announce
// 3 MiB Meta bodies and stall. Only MaxLargeBodies of them are read at
// once (the others get 503 and, from a real provider, a retry), and what
// the server holds grows with what was sent, not with what was announced.
func TestSlowBodiesHoldLittleMemory(t *testing.T) {
	const clients, slots = 60, 4
	addr := limitsServer(t, Options{MaxLargeBodies: slots, ReadTimeout: 5 * time.Second})
	before := heapInUse()
	conns := make([]net.Conn, clients)
	for i := range conns {
		conns[i] = openBody(t, addr, "/webhooks/meta", 3<<20-1, 100<<10)
	}
	// The clients that got a slot are still being read (no answer); the
	// others were answered at once.
	var mu sync.Mutex
	var wg sync.WaitGroup
	refused := 0
	for _, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
			res, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err == nil && res.StatusCode == http.StatusServiceUnavailable {
				mu.Lock()
				refused++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	grown := heapInUse() - before
	t.Logf("%d clients announcing 3 MiB, 100 KiB sent each: %d refused with 503, heap grew %.1f MiB", clients, refused, float64(grown)/(1<<20))
	if refused != clients-slots {
		t.Errorf("%d of %d clients over the %d slots got 503", refused, clients-slots, slots)
	}
	// 4 bodies of 3 MiB at most, and buffers: well under what 60 bodies
	// of 3 MiB (180 MiB) would hold.
	if grown > 40<<20 {
		t.Errorf("heap grew %.1f MiB", float64(grown)/(1<<20))
	}
}

// TestTricklingClientIsCutOff: a client sending its body a byte at a time
// is cut off at ReadTimeout instead of holding its connection.
func TestTricklingClientIsCutOff(t *testing.T) {
	addr := limitsServer(t, Options{ReadTimeout: 500 * time.Millisecond})
	c := openBody(t, addr, "/webhooks/meta", 200<<10, 1)
	start := time.Now()
	go func() {
		for range 50 {
			if _, err := c.Write([]byte("x")); err != nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	}()
	_ = c.SetReadDeadline(time.Now().Add(4 * time.Second))
	_, err := http.ReadResponse(bufio.NewReader(c), nil)
	if took := time.Since(start); took > 3*time.Second {
		t.Fatalf("connection held %.1fs (err %v)", took.Seconds(), err)
	}
}

// TestConnectionsPerIPAreCapped: past MaxConnsPerIP, a client address gets
// no more connections served.
func TestConnectionsPerIPAreCapped(t *testing.T) {
	addr := limitsServer(t, Options{MaxConnsPerIP: 3})
	var held []net.Conn
	for range 3 {
		held = append(held, openBody(t, addr, "/webhooks/meta", 200<<10, 1))
	}
	time.Sleep(100 * time.Millisecond)
	res, err := http.Get("http://" + addr + "/healthz")
	if err == nil {
		defer res.Body.Close()
		if res.StatusCode == http.StatusOK {
			t.Fatalf("a fourth connection from the same address was served: %d", res.StatusCode)
		}
	}
	for _, c := range held {
		c.Close()
	}
}

func heapInUse() int64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapInuse)
}

// TestOperatorListenerKeepsDetailsOffThePublicOne: with Operator set, the
// public listener answers /metrics 404 and /readyz without the failing
// dependency's error text; the operator handler has both.
func TestOperatorListenerKeepsDetailsOffThePublicOne(t *testing.T) {
	secret := "dial tcp 10.1.2.3:9000: clickhouse 24.8.1 refused"
	checks := []Check{{Name: "clickhouse", Fn: func(context.Context) error { return errors.New(secret) }}}
	get := func(base, path string) (int, string) {
		res, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	for _, tc := range []struct {
		name     string
		operator bool
	}{{"one listener", false}, {"operator listener", true}} {
		t.Run(tc.name, func(t *testing.T) {
			pub := "http://" + limitsServer(t, Options{Operator: tc.operator, Checks: checks})
			code, body := get(pub, "/readyz")
			if code != 503 || strings.Contains(body, secret) != !tc.operator || !strings.Contains(body, "clickhouse") {
				t.Errorf("public /readyz: %d %q", code, body)
			}
			if code, _ := get(pub, "/metrics"); (code == 200) != !tc.operator {
				t.Errorf("public /metrics: %d", code)
			}
			if !tc.operator {
				return
			}
			s := New(Options{Operator: true, Checks: checks, Providers: providers()})
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			srv := &fasthttp.Server{Handler: s.OperatorHandler}
			go srv.Serve(ln)
			t.Cleanup(func() { _ = srv.Shutdown() })
			op := "http://" + ln.Addr().String()
			if code, body := get(op, "/readyz"); code != 503 || !strings.Contains(body, secret) {
				t.Errorf("operator /readyz: %d %q", code, body)
			}
			if code, body := get(op, "/metrics"); code != 200 || !strings.Contains(body, "parley_http_requests_total") {
				t.Errorf("operator /metrics: %d", code)
			}
		})
	}
}
