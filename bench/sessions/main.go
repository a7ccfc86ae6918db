// Command sessions measures what a session costs on one node: the real
// session actor on the real placement (actors.NewSessions, an
// actors.Placement), with the rules brain and a bench backend that has a
// profile for every number. Kafka is excluded: the producer discards the
// records and acknowledges at once, so the memory measured is the
// sessions' own.
//
//	go run ./bench/sessions -n 100000
//	go run ./bench/sessions -n 1000000 -json
//
// Phases, in one process:
//
//  1. Activation. -drivers goroutines (one message in flight each) sign N
//     fresh numbers in: "hi" (activation, profile lookup, one-time code in
//     the outbound record, read back by the producer), then the code. A
//     second pass sends each signed-in session the -extra messages, so it
//     remembers several provider ids as a typical customer's does.
//  2. Memory, live: after collecting garbage, heap (MemStats.HeapAlloc) and
//     RSS (VmRSS) above the baseline taken before any session, per session,
//     with all N sessions live idle actors (no sweeper runs yet).
//  3. Quiet stream: fresh numbers at -rate sessions/s for -quiet, each
//     signing in and chatting; Send→Ack latency with N live idle sessions
//     and nothing else happening. Then the same stream again while
//     runtime.GC runs one full collection, which with N live actors takes
//     seconds: the cost of a collection alone, to set beside phase 4,
//     which may contain one.
//  4. Passivation under load: once every session has been idle for -idle,
//     the placement's sweeper starts with IdleAfter = -idle and its first
//     sweep finds them all idle at once. The same stream of fresh numbers
//     runs meanwhile; its latency is split into before the first session
//     went dormant, during the mass passivation and after the last one.
//     The stream's own sessions cannot time out before the sweeper's fifth
//     check, so "all dormant" is exact: the dormant count reaches the
//     number of sessions live before the sweep. Latency is also given per
//     second, with the collector's and other processes' CPU in that second.
//  5. Memory, dormant: when every session (the stream's too) is dormant,
//     the same measurement again, per dormant session.
//  6. Resume check: -resume dormant sessions are written to again and must
//     answer by name (still signed in after passivation).
//
// Latency is Send→Ack (Placement.Deliver to the delivery's acknowledgement) and,
// for the streams' first messages, from the moment the session was due to
// start: that figure includes any stall of the whole process, which
// Send→Ack alone hides (coordinated omission).
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"runtime/trace"
	"strings"
	"sync/atomic"
	"time"
)

type options struct {
	n       int
	drivers int
	workers int
	extra   []string
	rate    float64
	quiet   time.Duration
	idle    time.Duration
	tail    time.Duration
	resume  int
	json    bool
	out     string
	memprof string
	trace   string
}

func main() {
	var (
		o     options
		extra string
	)
	flag.IntVar(&o.n, "n", 100_000, "sessions to create")
	flag.IntVar(&o.drivers, "drivers", 64, "concurrent drivers during activation (one message in flight each)")
	flag.StringVar(&extra, "extra", "hello,help", "messages each session gets after signing in (comma-separated)")
	flag.Float64Var(&o.rate, "rate", 2000, "fresh sessions per second in the quiet and passivation streams")
	flag.IntVar(&o.workers, "workers", 256, "goroutines serving the streams (concurrent sessions at most)")
	flag.DurationVar(&o.quiet, "quiet", 5*time.Second, "length of the quiet stream")
	flag.DurationVar(&o.idle, "idle", 30*time.Second, "IdleAfter for the passivation phase; mass passivation must finish within it")
	flag.DurationVar(&o.tail, "tail", 2*time.Second, "stream keeps running this long after the last session went dormant")
	flag.IntVar(&o.resume, "resume", 1000, "dormant sessions written to again at the end")
	flag.BoolVar(&o.json, "json", false, "print results as JSON")
	flag.StringVar(&o.out, "o", "", "also write the JSON report to this file")
	flag.StringVar(&o.memprof, "memprofile", "", "write heap profiles <path>.live and <path>.dormant")
	flag.StringVar(&o.trace, "trace", "", "write execution traces of the activation and passivation phases to <path>.activation, <path>.passivation")
	flag.Parse()
	if extra != "" {
		o.extra = strings.Split(extra, ",")
	}
	if o.n < 1 || o.drivers < 1 || o.workers < 1 || o.rate <= 0 || o.idle < time.Second {
		fmt.Fprintln(os.Stderr, "sessions: need -n, -drivers, -workers ≥ 1, -rate > 0, -idle ≥ 1s")
		os.Exit(2)
	}
	r, err := run(o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "sessions:", err)
		os.Exit(1)
	}
	js, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		fmt.Fprintln(os.Stderr, "sessions:", err)
		os.Exit(1)
	}
	js = append(js, '\n')
	if o.out != "" {
		if err := os.WriteFile(o.out, js, 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "sessions:", err)
			os.Exit(1)
		}
	}
	if o.json {
		os.Stdout.Write(js)
		return
	}
	r.print(os.Stdout)
}

func run(o options) (*report, error) {
	b, err := newBench(o.drivers+o.workers, o.extra, o.idle)
	if err != nil {
		return nil, err
	}
	defer b.close()
	r := &report{
		Machine: machineInfo(),
		Config: config{
			N: o.n, Drivers: o.drivers, Extra: o.extra, Messages: 2 + len(o.extra),
			StreamRate: o.rate, StreamWorkers: o.workers, QuietS: o.quiet.Seconds(),
			IdleAfterS: o.idle.Seconds(), SweepEveryS: sweepEvery(o.idle).Seconds(),
		},
		Note:  "Kafka excluded: the producer discards records and acknowledges at once; memory is the sessions' own (actor, state, placement).",
		State: referenceState(o.extra),
	}

	base := settle()
	r.Memory.Baseline = base
	progress("baseline: heap %s, rss %s", mib(base.HeapAlloc), mib(base.RSS))

	// 1. Activation.
	if err := startTrace(o.trace, "activation"); err != nil {
		return nil, err
	}
	smp := startSampler()
	cpu0 := readCPU()
	progress("activation: signing in %d sessions with %d drivers", o.n, o.drivers)
	wall, hs, errs, first := b.closedLoop(o.drivers, 0, o.n, b.signIn)
	a := &r.Activation
	a.SignInS = wall.Seconds()
	a.SessionsPerS = float64(o.n) / wall.Seconds()
	a.First = hs[kindFirst].summary()
	a.Code = hs[kindCode].summary()
	all := &hist{}
	all.merge(hs[kindFirst])
	all.merge(hs[kindCode])
	a.Errors += errs
	a.FirstError = errString(first)
	progress("activation: %d signed in in %.1fs (%.0f sessions/s), %d errors", o.n-int(errs), wall.Seconds(), a.SessionsPerS, errs)
	if len(o.extra) > 0 {
		wall, hs, errs, first = b.closedLoop(o.drivers, 0, o.n, b.chat)
		a.ChatS = wall.Seconds()
		a.ChatMsgsPerS = float64(o.n*len(o.extra)) / wall.Seconds()
		a.Later = hs[kindExtra].summary()
		all.merge(hs[kindExtra])
		a.Errors += errs
		if a.FirstError == "" {
			a.FirstError = errString(first)
		}
		progress("activation: %d later messages in %.1fs (%.0f/s), %d errors", o.n*len(o.extra), wall.Seconds(), a.ChatMsgsPerS, errs)
	}
	a.All = all.summary()
	a.Records = b.producer.records.Load()
	a.Peaks = smp.finish()
	a.CPU = cpuSince(cpu0)
	stopTrace(o.trace)

	// 2. Memory with every session a live idle actor.
	live := settle()
	liveN, dormN := b.placement.Counts()
	r.Memory.Live = perSession(live, base, liveN)
	r.Memory.Live.Live, r.Memory.Live.Dormant = liveN, dormN
	progress("live: %d live %d dormant; heap %.0f B/session, rss %.0f B/session", liveN, dormN, r.Memory.Live.HeapPerSession, r.Memory.Live.RSSPerSession)
	if err := heapProfile(o.memprof, "live"); err != nil {
		return nil, err
	}

	// 3. Quiet stream.
	progress("quiet stream: %.0f fresh sessions/s for %v", o.rate, o.quiet)
	stop := make(chan struct{})
	time.AfterFunc(o.quiet, func() { close(stop) })
	qStart := time.Now()
	cpu0 = readCPU()
	q := b.stream(o.rate, o.n, o.drivers, o.workers, stop)
	qEnd := time.Now()
	r.Quiet = streamReport(q, q.hists(qStart, qEnd), qEnd.Sub(qStart))
	r.Quiet.CPU = cpuSince(cpu0)
	progress("quiet stream: %d sessions, p50 %.2f ms p99 %.2f ms", q.started, r.Quiet.All.P50Ms, r.Quiet.All.P99Ms)
	next := o.n + q.started + q.skipped

	// 3b. The same stream while a full garbage collection runs: with N
	// live actors the collector's mark phase takes seconds, and the mass
	// passivation below may overlap one. This separates what the
	// collector costs from what passivation itself does.
	progress("quiet stream with a forced GC cycle")
	stop = make(chan struct{})
	go func() {
		time.Sleep(o.quiet / 4)
		t0 := time.Now()
		runtime.GC()
		r.QuietGC.GCS = time.Since(t0).Seconds()
		time.Sleep(max(o.quiet-time.Since(t0)-o.quiet/4, o.quiet/4))
		close(stop)
	}()
	qStart = time.Now()
	cpu0 = readCPU()
	q = b.stream(o.rate, next, o.drivers, o.workers, stop)
	qEnd = time.Now()
	r.QuietGC.streamRep = streamReport(q, q.hists(qStart, qEnd), qEnd.Sub(qStart))
	r.QuietGC.CPU = cpuSince(cpu0)
	next += q.started + q.skipped
	progress("quiet stream with GC (%.1fs): %d sessions, p50 %.2f ms p99 %.2f ms; first from schedule p99 %.2f ms",
		r.QuietGC.GCS, q.started, r.QuietGC.All.P50Ms, r.QuietGC.All.P99Ms, r.QuietGC.Scheduled.P99Ms)

	// 4. Passivation under load.
	before, _ := b.placement.Counts()
	p := &r.Passivation
	p.Sessions = before
	// The sweeper's first check comes sweepEvery after it starts; by then
	// every session must have been idle for IdleAfter (placement keeps
	// whole seconds, hence the extra second).
	wait := o.idle - sweepEvery(o.idle) + time.Second + 100*time.Millisecond
	progress("passivation: waiting %v so that all %d sessions are idle for IdleAfter=%v at the sweeper's first check", wait.Round(time.Millisecond), before, o.idle)
	time.Sleep(wait)
	if err := startTrace(o.trace, "passivation"); err != nil {
		return nil, err
	}

	smp = startSampler()
	stop = make(chan struct{})
	sweepStart := time.Now()
	cpu0 = readCPU()
	stopSweeper := b.placement.StartSweeper(o.idle)
	defer stopSweeper()
	sdone := make(chan *streamResult, 1)
	go func() { sdone <- b.stream(o.rate, next, o.drivers, o.workers, stop) }()
	// The stream's sessions, the first of which was sent as the sweeper
	// started, are not idle for IdleAfter before its fifth check: until
	// then the dormant sessions are exactly the ones live before.
	window := sweepStart.Add(o.idle + sweepEvery(o.idle) - 200*time.Millisecond)
	var firstDormant, lastDormant time.Time
	var counts []countAt
	for {
		_, dormant := b.placement.Counts()
		now := time.Now()
		counts = append(counts, countAt{now, dormant, readCPU()})
		if firstDormant.IsZero() && dormant > 0 {
			firstDormant = now
			progress("passivation: first session dormant %.2fs after the sweeper started", now.Sub(sweepStart).Seconds())
		}
		if lastDormant.IsZero() && dormant >= before {
			lastDormant = now
			progress("passivation: all %d dormant %.2fs after the first", before, now.Sub(firstDormant).Seconds())
		}
		if !lastDormant.IsZero() && now.Sub(lastDormant) >= o.tail || now.After(window) {
			close(stop)
			break
		}
		// Counts locks every shard: polled often enough to time the end
		// within a few tens of milliseconds, rarely enough not to add to
		// the contention it measures.
		time.Sleep(20 * time.Millisecond)
	}
	s := <-sdone
	sEnd := time.Now()
	p.CPU = cpuSince(cpu0)
	stopTrace(o.trace)
	p.Peaks = smp.finish()
	p.Completed = !lastDormant.IsZero()
	if !firstDormant.IsZero() {
		p.FirstDormantS = firstDormant.Sub(sweepStart).Seconds()
	}
	if p.Completed {
		p.DurationS = lastDormant.Sub(firstDormant).Seconds()
		p.RatePerS = float64(before) / lastDormant.Sub(firstDormant).Seconds()
	} else {
		_, dormant := b.placement.Counts()
		p.DurationS = window.Sub(firstDormant).Seconds()
		p.DormantAtWindowEnd = dormant
		progress("passivation: NOT finished within the %.1fs window: %d of %d dormant", window.Sub(sweepStart).Seconds(), dormant, before)
	}
	end := lastDormant
	if end.IsZero() {
		end = sEnd
	}
	begin := firstDormant
	if begin.IsZero() {
		begin = sEnd
	}
	p.Stream = streamReport(s, s.hists(sweepStart, sEnd), sEnd.Sub(sweepStart))
	p.Before = summaries(s.hists(sweepStart, begin), begin.Sub(sweepStart))
	p.During = summaries(s.hists(begin, end.Add(time.Nanosecond)), end.Sub(begin))
	p.After = summaries(s.hists(end.Add(time.Nanosecond), sEnd), sEnd.Sub(end))
	p.Timeline = timeline(s, counts, sweepStart, sEnd)
	progress("passivation stream: during p50 %.2f ms p99 %.2f ms (%d msgs); quiet p99 %.2f ms",
		p.During.All.P50Ms, p.During.All.P99Ms, p.During.All.N, r.Quiet.All.P99Ms)
	s, q = nil, nil // the samples are not part of the sessions' memory

	// 5. Memory with every session dormant (the stream's too, once idle).
	progress("dormant: waiting for the stream's sessions to passivate")
	deadline := time.Now().Add(2*o.idle + 30*time.Second)
	for {
		l, _ := b.placement.Counts()
		if l == 0 {
			break
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%d sessions still live %v after the stream stopped", l, 2*o.idle+30*time.Second)
		}
		time.Sleep(100 * time.Millisecond)
	}
	p.AllDormantS = time.Since(sweepStart).Seconds()
	stopSweeper()
	dormant := settle()
	liveN, dormN = b.placement.Counts()
	r.Memory.Dormant = perSession(dormant, base, dormN)
	r.Memory.Dormant.Live, r.Memory.Dormant.Dormant = liveN, dormN
	progress("dormant: %d live %d dormant; heap %.0f B/session, rss %.0f B/session", liveN, dormN, r.Memory.Dormant.HeapPerSession, r.Memory.Dormant.RSSPerSession)
	if err := heapProfile(o.memprof, "dormant"); err != nil {
		return nil, err
	}

	// 6. Dormant sessions resume signed in.
	if o.resume > 0 {
		k := min(o.resume, o.n)
		step := o.n / k
		var greeted atomic.Int64
		wall, hs, errs, first := b.closedLoop(min(o.drivers, k), 0, k, func(sl, i int, rec record) error {
			at := time.Now()
			reply, lat, err := b.say(sl, i*step, 100, "hello")
			if err != nil {
				return err
			}
			rec(kindFirst, at, lat)
			if strings.Contains(reply, "Hello "+firstName) {
				greeted.Add(1)
			}
			return nil
		})
		r.Resume = resumeReport{Sessions: k, Greeted: int(greeted.Load()), Errors: errs, FirstError: errString(first), Seconds: wall.Seconds(), Latency: hs[kindFirst].summary()}
		progress("resume: %d of %d dormant sessions answered by name", greeted.Load(), k)
	}
	r.Timeouts = b.timeouts.Load()
	r.ProducerBadSlots = b.producer.badSlots.Load()
	return r, nil
}

// sweepEvery mirrors Placement.StartSweeper's check interval.
func sweepEvery(idle time.Duration) time.Duration {
	return min(max(idle/4, 10*time.Millisecond), time.Minute)
}

func heapProfile(prefix, name string) error {
	if prefix == "" {
		return nil
	}
	f, err := os.Create(prefix + "." + name)
	if err != nil {
		return err
	}
	defer f.Close()
	runtime.GC()
	return pprof.Lookup("heap").WriteTo(f, 0)
}

var traceFile *os.File

func startTrace(path, phase string) error {
	if path == "" {
		return nil
	}
	f, err := os.Create(path + "." + phase)
	if err != nil {
		return err
	}
	traceFile = f
	return trace.Start(f)
}

func stopTrace(path string) {
	if path == "" || traceFile == nil {
		return
	}
	trace.Stop()
	traceFile.Close()
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func mib(b uint64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }
