package main

import (
	"sync"
	"sync/atomic"
	"time"
)

// closedLoop runs fn for sessions [from, to) on `drivers` goroutines, each
// with one message in flight; driver d uses slot d. It returns the wall
// time, per-kind latencies, and the first error with the error count.
func (b *bench) closedLoop(drivers, from, to int, fn func(sl, i int, rec record) error) (time.Duration, [kinds]*hist, int64, error) {
	var (
		next     atomic.Int64
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
		errs     atomic.Int64
		hs       [kinds]*hist
	)
	for k := range hs {
		hs[k] = &hist{}
	}
	next.Store(int64(from))
	start := time.Now()
	for d := range drivers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var local [kinds]hist
			rec := func(kind int, _ time.Time, lat time.Duration) { local[kind].add(lat) }
			for {
				i := int(next.Add(1) - 1)
				if i >= to {
					break
				}
				if err := fn(d, i, rec); err != nil {
					errs.Add(1)
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
				}
			}
			mu.Lock()
			for k := range hs {
				hs[k].merge(&local[k])
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	return time.Since(start), hs, errs.Load(), firstErr
}

// sample is one message of an open-loop stream.
type sample struct {
	at   time.Time // sent
	lat  time.Duration
	kind int8
	// late is how long after its scheduled start the session's first
	// message was sent; late+lat is the latency a customer saw, free of
	// coordinated omission (the generator stalling with the system).
	late time.Duration
}

// streamResult is what an open-loop stream of fresh sessions saw.
type streamResult struct {
	started  int
	samples  []sample
	lag      hist // start delay of sessions behind schedule (coordinated omission check)
	skipped  int  // sessions not started: the worker pool was saturated
	errs     int64
	firstErr error
}

// stream starts fresh sessions from index `from` at `rate` per second,
// each signing in and chatting (the whole flow, message after message),
// until stop is closed. Sessions run on `workers` goroutines using slots
// [slot0, slot0+workers).
func (b *bench) stream(rate float64, from, slot0, workers int, stop <-chan struct{}) *streamResult {
	type job struct {
		i   int
		due time.Time
	}
	jobs := make(chan job, workers)
	res := &streamResult{}
	var (
		mu sync.Mutex
		wg sync.WaitGroup
	)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var (
				local []sample
				lag   hist
				errs  int64
				first error
			)
			for j := range jobs {
				lag.add(time.Since(j.due))
				rec := func(kind int, at time.Time, lat time.Duration) {
					var late time.Duration
					if kind == kindFirst {
						late = at.Sub(j.due)
					}
					local = append(local, sample{at, lat, int8(kind), late})
				}
				err := b.signIn(slot0+w, j.i, rec)
				if err == nil {
					err = b.chat(slot0+w, j.i, rec)
				}
				if err != nil {
					errs++
					if first == nil {
						first = err
					}
				}
			}
			mu.Lock()
			res.samples = append(res.samples, local...)
			res.lag.merge(&lag)
			res.errs += errs
			if res.firstErr == nil {
				res.firstErr = first
			}
			mu.Unlock()
		}()
	}
	start := time.Now()
	t := time.NewTicker(time.Millisecond)
	sent := 0
loop:
	for {
		select {
		case <-stop:
			break loop
		case now := <-t.C:
			due := int(rate * now.Sub(start).Seconds())
			for ; sent < due; sent++ {
				j := job{i: from + sent, due: start.Add(time.Duration(float64(sent) / rate * float64(time.Second)))}
				select {
				case jobs <- j:
				default:
					// Every worker is busy: the system is far behind. Count
					// it rather than queue without bound.
					res.skipped++
				}
			}
		}
	}
	t.Stop()
	close(jobs)
	wg.Wait()
	res.started = sent - res.skipped
	return res
}

// Indexes of streamResult.hists beyond the kinds.
const (
	histAll       = kinds     // every message
	histScheduled = kinds + 1 // first messages, from their scheduled start
	nHists        = kinds + 2
)

// hists splits a stream's samples by send time: [from, to) per kind, all
// kinds together, and first messages timed from their scheduled start.
func (r *streamResult) hists(from, to time.Time) [nHists]*hist {
	var hs [nHists]*hist
	for k := range hs {
		hs[k] = &hist{}
	}
	in := func(t time.Time) bool { return !t.Before(from) && t.Before(to) }
	for _, s := range r.samples {
		if in(s.at) {
			hs[s.kind].add(s.lat)
			hs[histAll].add(s.lat)
		}
		// By when it was due, so a session held back by a stall counts
		// in the stretch that held it back.
		if s.kind == kindFirst && in(s.at.Add(-s.late)) {
			hs[histScheduled].add(s.late + s.lat)
		}
	}
	return hs
}

// countAt is the dormant count observed at one moment.
type countAt struct {
	at      time.Time
	dormant int
	cpu     cpuSnap
}

// Second is one second of the passivation phase: how many sessions were
// dormant at its end, and what the stream's messages sent in it saw.
type Second struct {
	T          int     `json:"t_s"`
	Dormant    int     `json:"dormant"`
	Msgs       uint64  `json:"msgs"`
	P99Ms      float64 `json:"p99_ms"`
	MaxMs      float64 `json:"max_ms"`
	SchedP99Ms float64 `json:"first_from_schedule_p99_ms"`
	SchedMaxMs float64 `json:"first_from_schedule_max_ms"`
	// OtherCores is what other processes on the machine used in this
	// second: a stall with OtherCores near the core count is noise.
	OtherCores float64 `json:"other_cores"`
	GCCores    float64 `json:"gc_cores"`
}

// timeline cuts the passivation phase into seconds from the sweeper's start.
func timeline(r *streamResult, counts []countAt, from, to time.Time) []Second {
	var out []Second
	c, prev := 0, 0
	for t := from; t.Before(to); t = t.Add(time.Second) {
		end := t.Add(time.Second)
		hs := r.hists(t, end)
		for c+1 < len(counts) && counts[c+1].at.Before(end) {
			c++
		}
		sec := Second{T: len(out), Msgs: hs[histAll].n}
		if c < len(counts) {
			sec.Dormant = counts[c].dormant
			if prev >= 0 && c > prev {
				u := cpuBetween(counts[prev].cpu, counts[c].cpu)
				sec.OtherCores, sec.GCCores = u.Other, u.GC
			}
			prev = c
		}
		all, first := hs[histAll].summary(), hs[histScheduled].summary()
		sec.P99Ms, sec.MaxMs = all.P99Ms, all.MaxMs
		sec.SchedP99Ms, sec.SchedMaxMs = first.P99Ms, first.MaxMs
		out = append(out, sec)
	}
	return out
}
