package main

import (
	"context"
	"io"
	"log/slog"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttputil"

	"github.com/parleyhq/parley/bench/loadgen"
)

// quietLogger drops the ingress's per-request warnings, which would
// otherwise dominate a benchmark that overloads the broker.
var quietLogger = slog.New(slog.NewTextHandler(io.Discard, nil))

// inmemory serves target on an in-memory listener and returns a client
// dialling it; no sockets, so the figures show the handlers' cost without
// the kernel's loopback TCP.
func inmemory(tb testing.TB, target string, conns int) *fasthttp.HostClient {
	tb.Helper()
	ln := fasthttputil.NewInmemoryListener()
	srv, err := startTarget(target, ln, 8, quietLogger)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.stop(ctx); err != nil {
			tb.Error(err)
		}
	})
	return &fasthttp.HostClient{
		Addr:                      "bench",
		Dial:                      func(string) (net.Conn, error) { return ln.Dial() },
		MaxConns:                  conns,
		MaxIdemponentCallAttempts: 1,
		ReadTimeout:               10 * time.Second,
		WriteTimeout:              10 * time.Second,
	}
}

func post(hc *fasthttp.HostClient, req *fasthttp.Request, resp *fasthttp.Response, r loadgen.Request) (int, error) {
	req.Header.Set("X-Twilio-Signature", r.Signature)
	req.SetBodyRaw(r.Body)
	err := hc.Do(req, resp)
	return resp.StatusCode(), err
}

func newRequest() *fasthttp.Request {
	req := fasthttp.AcquireRequest()
	req.SetRequestURI("http://bench" + webhookPath)
	req.Header.SetMethod(fasthttp.MethodPost)
	req.Header.SetContentType("application/x-www-form-urlencoded")
	return req
}

// TestTargetsAccept keeps the benchmark honest: every target answers the
// generated webhooks 200 and refuses a forged one, so the program measures
// accepted work, not fast rejections.
func TestTargetsAccept(t *testing.T) {
	reqs := loadgen.Forms(20, 1, webhook())
	for _, target := range knownTargets {
		t.Run(target, func(t *testing.T) {
			hc := inmemory(t, target, 4)
			req, resp := newRequest(), fasthttp.AcquireResponse()
			defer fasthttp.ReleaseRequest(req)
			defer fasthttp.ReleaseResponse(resp)
			for i, r := range reqs {
				code, err := post(hc, req, resp, r)
				if err != nil || code != fasthttp.StatusOK {
					t.Fatalf("form %d: status %d, err %v, body %q", i, code, err, resp.Body())
				}
			}
			forged := loadgen.Request{Body: reqs[0].Body, Signature: reqs[1].Signature}
			if code, err := post(hc, req, resp, forged); err != nil || code != fasthttp.StatusForbidden {
				t.Fatalf("forged signature: status %d, err %v, want 403", code, err)
			}
		})
	}
}

// benchTarget posts signed webhooks from 64 concurrent clients per
// GOMAXPROCS; ns/op is wall time per accepted request, i.e. 1/throughput.
func benchTarget(b *testing.B, target string) {
	const perProc = 64
	reqs := loadgen.Forms(4096, 1, webhook())
	hc := inmemory(b, target, perProc*8)
	var next atomic.Int64
	b.SetParallelism(perProc)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		req, resp := newRequest(), fasthttp.AcquireResponse()
		defer fasthttp.ReleaseRequest(req)
		defer fasthttp.ReleaseResponse(resp)
		for pb.Next() {
			r := reqs[int(next.Add(1))%len(reqs)]
			if code, err := post(hc, req, resp, r); err != nil || code != fasthttp.StatusOK {
				b.Errorf("status %d, err %v", code, err)
				return
			}
		}
	})
}

// BenchmarkBaselineHandler: parse the form, check the signature, 200.
func BenchmarkBaselineHandler(b *testing.B) { benchTarget(b, targetBaseline) }

// BenchmarkParleyIngress: the ingress with the embedded broker as `parley
// dev` runs it (data directory, fsync per batch).
func BenchmarkParleyIngress(b *testing.B) { benchTarget(b, targetParley) }

// BenchmarkParleyIngressMemBroker: the same with a broker that keeps
// records in memory only.
func BenchmarkParleyIngressMemBroker(b *testing.B) { benchTarget(b, targetParleyMem) }

// BenchmarkParleyIngressNoKafka: the ingress with a producer that
// acknowledges at once: HTTP, signature, normalising and encoding only.
func BenchmarkParleyIngressNoKafka(b *testing.B) { benchTarget(b, targetParleyNoop) }
