package loadgen

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/parleyhq/parley/channels/twilio"
)

var hook = Webhook{
	PublicBaseURL: "https://parley.example.com",
	Path:          "/webhooks/twilio/acme",
	AuthToken:     "0123456789abcdef0123456789abcdef",
	AccountSID:    AccountSID(1),
	To:            "whatsapp:+14155238886",
}

// The forms must be what the ingress accepts (signed, normalisable) and
// distinct, or the benchmark would measure rejections or one hot key.
func TestFormsAreValidAndDistinct(t *testing.T) {
	reqs := Forms(500, 7, hook)
	sids, froms := map[string]bool{}, map[string]bool{}
	for i, r := range reqs {
		form, err := twilio.ParseForm(r.Body)
		if err != nil {
			t.Fatalf("form %d: %v", i, err)
		}
		if !twilio.ValidSignature(hook.AuthToken, hook.PublicBaseURL+hook.Path, form, r.Signature) {
			t.Fatalf("form %d: signature does not verify", i)
		}
		in, err := twilio.Normalize("acme", form, time.Now(), func() string { return "id" })
		if err != nil {
			t.Fatalf("form %d: %v", i, err)
		}
		sids[form.Get("MessageSid")] = true
		froms[in.Phone] = true
	}
	if len(sids) != len(reqs) || len(froms) != len(reqs) {
		t.Fatalf("%d distinct SIDs and %d distinct senders in %d forms", len(sids), len(froms), len(reqs))
	}
	again := Forms(500, 7, hook)
	if string(again[42].Body) != string(reqs[42].Body) {
		t.Fatal("same seed, different forms")
	}
}

func TestSummarise(t *testing.T) {
	var s []time.Duration
	for i := 100; i >= 1; i-- {
		s = append(s, time.Duration(i)*time.Millisecond)
	}
	l := Summarise(s)
	if l.N != 100 || l.P50 != 50*time.Millisecond || l.P99 != 99*time.Millisecond ||
		l.Max != 100*time.Millisecond || l.Mean != 50500*time.Microsecond {
		t.Fatalf("%+v", l)
	}
	if (Summarise(nil) != Latency{}) {
		t.Fatal("empty input")
	}
}

// Run counts 200s as accepted and everything else by status, only inside
// the window, and stops on time.
func TestRunCountsAndStops(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	srv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		n++ // fasthttp serves one connection per goroutine; Conns is 1
		if n%4 == 0 {
			ctx.SetStatusCode(fasthttp.StatusServiceUnavailable)
		}
	}}
	go srv.Serve(ln)
	defer srv.Shutdown()

	var opened, closed bool
	start := time.Now()
	res, err := Run(context.Background(), Config{
		Addr: ln.Addr().String(), Path: hook.Path, Conns: 1,
		Warmup: 100 * time.Millisecond, Duration: 300 * time.Millisecond, Timeout: time.Second,
		OnWindowStart: func() { opened = true },
		OnWindowEnd:   func() { closed = true },
	}, Forms(10, 1, hook))
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("run took %s", took)
	}
	if !opened || !closed {
		t.Fatal("window hooks not called")
	}
	if res.Accepted == 0 || res.Statuses[503] == 0 || res.Failed != 0 {
		t.Fatalf("%+v", res)
	}
	// One in four answers is a 503, give or take the window's edges.
	if ratio := float64(res.Statuses[503]) / float64(res.Accepted+res.Rejected); ratio < 0.2 || ratio > 0.3 {
		t.Fatalf("503 share %.2f", ratio)
	}
	if res.Latency.N != int(res.Accepted) {
		t.Fatalf("latency samples %d, accepted %d", res.Latency.N, res.Accepted)
	}
}

// A paced run sends about Rate requests per second, each at its own path
// when it names one, and logs every request when asked.
func TestPacedRunWithPathsAndLog(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	paths := make(chan string, 10000)
	srv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) { paths <- string(ctx.Path()) }}
	go srv.Serve(ln)
	defer srv.Shutdown()

	reqs := []Request{Message(hook, "SM00000000000000000000000000000001", "447700900001", "Sam", "hi"),
		Status(hook, "SM00000000000000000000000000000002", "447700900001", "read")}
	res, err := Run(context.Background(), Config{
		Addr: ln.Addr().String(), Path: hook.Path, Conns: 8, Rate: 200, Log: true,
		Warmup: 100 * time.Millisecond, Duration: 500 * time.Millisecond, Timeout: time.Second,
	}, reqs)
	if err != nil {
		t.Fatal(err)
	}
	// 200/s over 0.5 s is 100 in the window, give or take the edges.
	if res.Accepted < 80 || res.Accepted > 120 {
		t.Fatalf("paced at 200/s, %d accepted in 0.5 s", res.Accepted)
	}
	if len(res.Log) < int(res.Accepted) || len(res.Log) != len(paths) {
		t.Fatalf("%d logged, %d accepted, %d served", len(res.Log), res.Accepted, len(paths))
	}
	close(paths)
	seen := map[string]int{}
	for p := range paths {
		seen[p]++
	}
	if seen[hook.Path] == 0 || seen[StatusPath(hook)] == 0 || len(seen) != 2 {
		t.Fatalf("paths %v", seen)
	}
	for _, s := range res.Log {
		if s.Status != 200 || s.End < s.Start || (s.Req != 0 && s.Req != 1) {
			t.Fatalf("logged %+v", s)
		}
	}
}
