package loadgen

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

// Config is one load run against one target.
type Config struct {
	// Addr is the target's host:port (loopback).
	Addr string
	// Path is the request path, "/webhooks/twilio/acme".
	Path string
	// Conns is the number of concurrent keep-alive connections, each
	// driven by its own closed-loop worker: at most Conns requests are in
	// flight, so the server's latency sets the throughput it gets.
	Conns int
	// Warmup runs before measuring: connections open, the server's and
	// the broker's lazy start-up (metadata, buffers, GC pacing) settles.
	Warmup time.Duration
	// Duration is the measurement window.
	Duration time.Duration
	// Timeout bounds one request. It also bounds how long Run overruns
	// Warmup+Duration while the last requests finish.
	Timeout time.Duration
	// OnWindowStart and OnWindowEnd, if set, run when the measurement
	// window opens and closes, to sample the server's CPU time over
	// exactly the window.
	OnWindowStart, OnWindowEnd func()
	// Rate, if positive, paces the load: requests start at Rate per
	// second in total, as an open loop would send them, with at most
	// Conns in flight (a request waits for a free connection when all
	// are busy). Zero is the closed loop: each connection sends its next
	// request as soon as the last one is answered.
	Rate float64
	// Log keeps one Sent per request in Result.Log, warm-up and the
	// requests that end after the window included, for benchmarks that
	// follow each request further (the reply it caused).
	Log bool
}

// Sent is one request as Config.Log records it: which of the requests it
// was (its index in the slice given to Run), when it was sent and answered
// (Unix nanoseconds) and the status (0 for a transport error).
type Sent struct {
	Req        int32
	Status     int16
	Start, End int64
}

// Result is what one run measured. Only requests that completed inside the
// measurement window count.
type Result struct {
	Conns    int           `json:"conns"`
	Window   time.Duration `json:"-"`
	Accepted int64         `json:"accepted"`
	// Rejected are responses with a status other than 200, by status.
	Rejected int64         `json:"rejected"`
	Statuses map[int]int64 `json:"statuses,omitempty"`
	// Failed are requests with no response (timeout, reset, refused).
	Failed     int64  `json:"failed"`
	FirstError string `json:"first_error,omitempty"`
	// Latency is over accepted requests.
	Latency Latency `json:"latency"`
	// WindowStart and WindowEnd are when the measurement window opened
	// and closed.
	WindowStart time.Time `json:"-"`
	WindowEnd   time.Time `json:"-"`
	// Log is every request when Config.Log is set, worker by worker.
	Log []Sent `json:"-"`
}

// AcceptedPerSec is the throughput that counts: webhooks answered 200.
func (r Result) AcceptedPerSec() float64 {
	if r.Window <= 0 {
		return 0
	}
	return float64(r.Accepted) / r.Window.Seconds()
}

// Errors are all requests not answered 200.
func (r Result) Errors() int64 { return r.Rejected + r.Failed }

// Latency summarises a latency distribution.
type Latency struct {
	N    int           `json:"n"`
	Mean time.Duration `json:"mean_ns"`
	P50  time.Duration `json:"p50_ns"`
	P90  time.Duration `json:"p90_ns"`
	P99  time.Duration `json:"p99_ns"`
	P999 time.Duration `json:"p999_ns"`
	Max  time.Duration `json:"max_ns"`
}

// Summarise sorts samples in place and describes them.
func Summarise(samples []time.Duration) Latency {
	if len(samples) == 0 {
		return Latency{}
	}
	slices.Sort(samples)
	var sum time.Duration
	for _, s := range samples {
		sum += s
	}
	// Nearest-rank percentile: the smallest sample that at least p of
	// all samples do not exceed.
	at := func(p float64) time.Duration {
		i := int(p*float64(len(samples))+0.999999) - 1
		return samples[max(0, min(i, len(samples)-1))]
	}
	return Latency{
		N:    len(samples),
		Mean: sum / time.Duration(len(samples)),
		P50:  at(0.50),
		P90:  at(0.90),
		P99:  at(0.99),
		P999: at(0.999),
		Max:  samples[len(samples)-1],
	}
}

// workerStats is one worker's tally; workers never share counters, so the
// hot loop has no atomics or locks.
type workerStats struct {
	accepted  int64
	statuses  [600]int64
	odd       int64 // status codes outside 0..599
	failed    int64
	firstErr  error
	latencies []time.Duration
	log       []Sent
}

// Run drives cfg.Addr with reqs, cycling through them, and returns once
// Warmup+Duration has passed and every worker finished its last request. It
// stops early, with ctx's error, when ctx ends.
func Run(ctx context.Context, cfg Config, reqs []Request) (Result, error) {
	if len(reqs) == 0 {
		return Result{}, errors.New("loadgen: no requests")
	}
	if cfg.Conns <= 0 {
		return Result{}, errors.New("loadgen: Conns must be positive")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	hc := &fasthttp.HostClient{
		Addr:     cfg.Addr,
		MaxConns: cfg.Conns,
		// POST is not idempotent and a retry would hide a failure.
		MaxIdemponentCallAttempts: 1,
		ReadTimeout:               cfg.Timeout,
		WriteTimeout:              cfg.Timeout,
		NoDefaultUserAgentHeader:  true,
		// The headers are already canonical; skip re-normalising them.
		DisableHeaderNamesNormalizing: true,
	}
	defer hc.CloseIdleConnections()

	var stop atomic.Bool
	done := make(chan struct{})
	defer close(done)
	go func() {
		select {
		case <-ctx.Done():
			stop.Store(true)
		case <-done:
		}
	}()

	t0 := time.Now()
	tStart := t0.Add(cfg.Warmup)
	tEnd := tStart.Add(cfg.Duration)

	// The window hooks run at the window's edges, from their own
	// goroutine, so that no worker pays for them.
	var hooks sync.WaitGroup
	hooks.Go(func() {
		t := time.NewTimer(time.Until(tStart))
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return
		}
		if cfg.OnWindowStart != nil {
			cfg.OnWindowStart()
		}
		t.Reset(time.Until(tEnd))
		select {
		case <-t.C:
		case <-ctx.Done():
			return
		}
		if cfg.OnWindowEnd != nil {
			cfg.OnWindowEnd()
		}
	})

	var pace chan struct{}
	if cfg.Rate > 0 {
		pace = make(chan struct{})
		hooks.Go(func() { paceLoad(pace, cfg.Rate, t0, tEnd, &stop) })
	}
	stats := make([]workerStats, cfg.Conns)
	var wg sync.WaitGroup
	for w := range cfg.Conns {
		wg.Go(func() {
			// Worker w walks forms w, w+Conns, ... so that concurrent
			// requests carry different senders, as real traffic does.
			work(hc, "http://"+cfg.Addr, cfg.Path, reqs, w, cfg.Conns, tStart, tEnd, cfg.Log, pace, &stop, &stats[w])
		})
	}
	wg.Wait()
	hooks.Wait()
	if err := ctx.Err(); err != nil {
		return Result{}, err
	}

	res := Result{Conns: cfg.Conns, Window: cfg.Duration, Statuses: map[int]int64{}, WindowStart: tStart, WindowEnd: tEnd}
	var all []time.Duration
	for i := range stats {
		s := &stats[i]
		res.Accepted += s.accepted
		res.Failed += s.failed
		for code, n := range s.statuses {
			if n > 0 && code != fasthttp.StatusOK {
				res.Statuses[code] += n
				res.Rejected += n
			}
		}
		res.Rejected += s.odd
		if s.firstErr != nil && res.FirstError == "" {
			res.FirstError = s.firstErr.Error()
		}
		all = append(all, s.latencies...)
		res.Log = append(res.Log, s.log...)
	}
	res.Latency = Summarise(all)
	return res, nil
}

// paceLoad hands out rate turns per second from t0 until tEnd (or stop),
// then closes pace.
func paceLoad(pace chan<- struct{}, rate float64, t0, tEnd time.Time, stop *atomic.Bool) {
	defer close(pace)
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	given := 0
	for now := range tick.C {
		if !now.Before(tEnd) || stop.Load() {
			return
		}
		for due := int(now.Sub(t0).Seconds() * rate); given < due; given++ {
			select {
			case pace <- struct{}{}:
			case <-time.After(time.Until(tEnd)):
				return
			}
		}
	}
}

// work is one worker: send, wait for the answer, send the next (at once
// in the closed loop, at its turn when pace is set).
func work(hc *fasthttp.HostClient, base, path string, reqs []Request, first, stride int,
	tStart, tEnd time.Time, log bool, pace <-chan struct{}, stop *atomic.Bool, s *workerStats) {
	req := fasthttp.AcquireRequest()
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	uri := base + path
	req.SetRequestURI(uri)
	current := path
	req.Header.SetMethod(fasthttp.MethodPost)
	req.Header.SetContentType("application/x-www-form-urlencoded")
	// A closed-loop worker completes about Duration/latency requests;
	// reserving room up front keeps append from copying during the run.
	s.latencies = make([]time.Duration, 0, 4096)
	if log {
		s.log = make([]Sent, 0, 4096)
	}

	i := first % len(reqs)
	for !stop.Load() {
		if pace != nil {
			if _, ok := <-pace; !ok {
				return
			}
		}
		begin := time.Now()
		if !begin.Before(tEnd) {
			return
		}
		r := &reqs[i]
		ri := i
		i = (i + stride) % len(reqs)
		if p := cmp.Or(r.Path, path); p != current {
			uri, current = base+p, p
			req.SetRequestURI(uri)
		}
		req.Header.Set("X-Twilio-Signature", r.Signature)
		// SetBodyRaw shares the pre-built body instead of copying it.
		req.SetBodyRaw(r.Body)
		err := hc.Do(req, resp)
		end := time.Now()
		if log {
			sent := Sent{Req: int32(ri), Start: begin.UnixNano(), End: end.UnixNano()}
			if err == nil {
				sent.Status = int16(resp.StatusCode())
			}
			s.log = append(s.log, sent)
		}
		// Count what completes inside the window: before it is warm-up,
		// after it is the drain.
		inWindow := !end.Before(tStart) && end.Before(tEnd)
		if err != nil {
			if inWindow {
				s.failed++
				if s.firstErr == nil {
					s.firstErr = fmt.Errorf("%s: %w", uri, err)
				}
			}
			// A refused or reset connection fails at once; pausing keeps
			// a dead target from turning the worker into a busy loop.
			time.Sleep(time.Millisecond)
			continue
		}
		if !inWindow {
			continue
		}
		code := resp.StatusCode()
		switch {
		case code == fasthttp.StatusOK:
			s.accepted++
			s.latencies = append(s.latencies, end.Sub(begin))
		case code >= 0 && code < len(s.statuses):
			s.statuses[code]++
		default:
			s.odd++
		}
	}
}
