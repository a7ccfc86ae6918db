// Command engine measures the whole engine as `parley dev` runs it (every
// role: ingress, sessions with their changelog, sender, ClickHouse sink)
// under signed Twilio webhooks from many customers, against the bare
// fasthttp parse-and-verify handler, and the same engine with the session
// changelog left out (engine.Options.SkipChangelog), to give the
// changelog's cost on whole-engine throughput in one run.
//
//	go run ./bench/engine                       # baseline, engine, engine-nochangelog: 2 s + 15 s each, drain, paced 1 s + 10 s
//	go run ./bench/engine -json                 # the same, as JSON
//	go run ./bench/engine -cpuprofile /tmp/cpu.pprof   # + /tmp/cpu.<target>[.paced].pprof of each window, and CPU by role
//	go run ./bench/engine -rounds 2             # targets interleaved twice, median summary
//
// Each target runs in its own child process (this program re-executed with
// -serve), started before its run and stopped after it. The engine targets
// call engine.Start with Embed: the embedded broker in a temp data dir and
// a ClickHouse child process, as `parley dev`; its tenant's replies go to a
// Twilio-compatible provider in this process that answers at once and
// records each reply's number and arrival time, and its business system
// (backend kind http) is served from this process too, with a profile for
// every number. This process is thus the outside world: customers, Twilio
// and the business.
//
// Before the load, -signed-in customers sign in through the engine (hi,
// the code from the reply, the greeting). The load is closed-loop: -conns
// keep-alive connections, one request in flight each, for -warmup +
// -duration, over pre-built signed webhooks mixed by -mix: new customers'
// first messages (one reply each: the code), signed-in customers'
// questions (one reply each, from the rules brain, most after a call to
// the business's system), and status callbacks on the signed-in
// customers' replies (no reply). Then the drain: until every accepted
// message has its reply, or -drain passes. Then, on the same engine, the
// paced load: -paced-fraction (half) of the rate the closed loop
// sustained, for -paced, open loop: webhook→reply latency below
// saturation.
//
// With -cpuprofile each child profiles exactly the windows, and the report
// splits the profile by role (roles.go: ingress, broker, sessions, sender,
// sink, ...), in µs of CPU per accepted webhook.
package main

import (
	"cmp"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/parleyhq/parley/bench/internal/child"

	ch "github.com/ClickHouse/clickhouse-go/v2"

	"github.com/parleyhq/parley/bench/internal/procstat"
	"github.com/parleyhq/parley/bench/loadgen"
)

type options struct {
	duration time.Duration
	warmup   time.Duration
	drain    time.Duration
	paced    time.Duration
	// pacedFraction of the closed loop's sustained rate is the paced
	// load's.
	pacedFraction float64
	conns         int
	forms         int
	signedIn      int
	mix           [3]float64
	seed          uint64
	timeout       time.Duration
	rounds        int
	targets       []string
	json          bool
	out           string
	cpuprofile    string
}

func main() {
	var (
		o                            options
		targets, mix                 string
		serve, twilioURL, backendURL string
	)
	flag.DurationVar(&o.duration, "duration", 15*time.Second, "measurement window per target")
	flag.DurationVar(&o.warmup, "warmup", 2*time.Second, "warm-up per target before measuring")
	flag.DurationVar(&o.drain, "drain", 30*time.Second, "after the load, wait at most this long for the replies to catch up")
	flag.DurationVar(&o.paced, "paced", 10*time.Second, "after the drain, load each engine this long at -paced-fraction of the rate it sustained, for latency below saturation (0: no paced load)")
	flag.Float64Var(&o.pacedFraction, "paced-fraction", 0.5, "the paced load's rate, as a fraction of the closed loop's sustained rate (accepted/s, less if the replies lagged)")
	flag.IntVar(&o.conns, "conns", 256, "concurrent keep-alive connections (one request in flight each)")
	flag.IntVar(&o.forms, "forms", 250000, "distinct signed webhooks (a run that needs more reuses them: duplicates)")
	flag.IntVar(&o.signedIn, "signed-in", 5000, "customers signed in before the load (they ask the questions)")
	flag.StringVar(&mix, "mix", "30,50,20", "weights of new customers' first messages, signed-in customers' questions, status callbacks")
	flag.Uint64Var(&o.seed, "seed", 1, "seed for the generated webhooks")
	flag.DurationVar(&o.timeout, "timeout", 10*time.Second, "per-request timeout")
	flag.IntVar(&o.rounds, "rounds", 1, "run the targets this many times, interleaved; the summary is the median")
	flag.StringVar(&targets, "targets", strings.Join(knownTargets, ","), "comma-separated targets: "+strings.Join(knownTargets, ", "))
	flag.BoolVar(&o.json, "json", false, "print results as JSON")
	flag.StringVar(&o.out, "o", "", "also write the results as JSON to this file")
	flag.StringVar(&o.cpuprofile, "cpuprofile", "", "write each child's CPU profile over the window to this path with the target inserted (cpu.pprof -> cpu.engine.pprof)")
	flag.StringVar(&serve, "serve", "", "internal: serve one target and follow commands on stdin")
	flag.StringVar(&twilioURL, "twilio-url", "", "internal: the provider's base URL")
	flag.StringVar(&backendURL, "backend-url", "", "internal: the business system's base URL")
	flag.Parse()

	if serve != "" {
		if err := serveChild(serve, twilioURL, backendURL); err != nil {
			fmt.Fprintln(os.Stderr, "serve:", err)
			os.Exit(1)
		}
		return
	}
	for t := range strings.SplitSeq(targets, ",") {
		if t = strings.TrimSpace(t); t == "" {
			continue
		}
		if !slices.Contains(knownTargets, t) {
			fmt.Fprintf(os.Stderr, "unknown target %q (known: %s)\n", t, strings.Join(knownTargets, ", "))
			os.Exit(2)
		}
		o.targets = append(o.targets, t)
	}
	parts := strings.Split(mix, ",")
	for i := range o.mix {
		if len(parts) != 3 {
			break
		}
		o.mix[i], _ = strconv.ParseFloat(strings.TrimSpace(parts[i]), 64)
	}
	if len(parts) != 3 || o.mix[0] < 0 || o.mix[1] < 0 || o.mix[2] < 0 || o.mix[0]+o.mix[1]+o.mix[2] <= 0 {
		fmt.Fprintln(os.Stderr, "-mix wants three non-negative weights: new,question,status")
		os.Exit(2)
	}
	if len(o.targets) == 0 || o.conns <= 0 || o.forms <= 0 || o.duration <= 0 || o.rounds <= 0 || o.signedIn <= 0 {
		fmt.Fprintln(os.Stderr, "need at least one target, and positive -conns, -forms, -duration, -rounds and -signed-in")
		os.Exit(2)
	}

	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	rep, err := run(ctx, o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
	if o.out != "" {
		b, err := json.MarshalIndent(rep, "", "  ")
		if err == nil {
			err = os.WriteFile(o.out, append(b, '\n'), 0o644)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
	}
	if o.json {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		return
	}
	rep.print(os.Stdout)
}

// world is what the targets talk to, shared by every run.
type world struct {
	provider *provider
	business *business
	load     *load
}

func run(ctx context.Context, o options) (*report, error) {
	began := time.Now()
	p, err := startProvider()
	if err != nil {
		return nil, err
	}
	defer p.close()
	b, err := startBusiness()
	if err != nil {
		return nil, err
	}
	defer b.close()
	w := &world{provider: p, business: b, load: buildLoad(o.forms, o.signedIn, o.mix, o.seed)}
	rep := &report{
		Machine:   procstat.DescribeMachine(),
		Conns:     o.conns,
		WarmupS:   o.warmup.Seconds(),
		DurationS: o.duration.Seconds(),
		DrainS:    o.drain.Seconds(),
		Rounds:    o.rounds,
		Forms:     o.forms,
		FormBytes: loadgen.MeanBodyBytes(w.load.forms),
		SignedIn:  o.signedIn,
		Mix:       o.mix,
	}
	for round := 1; round <= o.rounds; round++ {
		for _, t := range o.targets {
			if !o.json {
				fmt.Fprintf(os.Stderr, "round %d/%d, %s: %d conns, %s warm-up + %s ...\n",
					round, o.rounds, t, o.conns, o.warmup, o.duration)
			}
			r, err := runTarget(ctx, o, w, t, round)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", t, err)
			}
			if !o.json {
				fmt.Fprintf(os.Stderr, "  %s\n", r.oneLine())
			}
			rep.Runs = append(rep.Runs, r)
		}
	}
	rep.summarise(o.targets)
	rep.TotalS = time.Since(began).Seconds()
	return rep, nil
}

// clocks are the CPU times (and the engine's counters) read at an edge
// of the window.
type clocks struct {
	child, clickhouse, self time.Duration
	machine                 procstat.MachineCPU
	rows                    chRows
	metrics                 metrics
	at                      time.Time
}

type chRows struct {
	Messages   uint64 `json:"messages"`
	Deliveries uint64 `json:"deliveries"`
}

func (r chRows) total() uint64 { return r.Messages + r.Deliveries }

func runTarget(ctx context.Context, o options, w *world, target string, round int) (res targetResult, err error) {
	res = targetResult{Target: target, Round: round}
	w.provider.reset()
	start := time.Now()
	c, err := child.Start(child.Options{DropUnread: true}, "-serve", target, "-twilio-url", w.provider.URL(), "-backend-url", w.business.URL())
	if err != nil {
		return res, err
	}
	defer func() {
		if serr := c.Stop(60 * time.Second); serr != nil && err == nil {
			err = fmt.Errorf("child exit: %w", serr)
		}
	}()
	line, err := c.Line(ctx, 3*time.Minute)
	if err != nil {
		return res, err
	}
	rd, err := readyLine(line)
	if err != nil {
		return res, err
	}
	addr, chAddr, chPID := rd.addr, rd.clickhouse, rd.chpid
	res.StartS = time.Since(start).Seconds()
	engine := target != targetBaseline

	var db ch.Conn
	if chAddr != "" {
		db, err = ch.Open(&ch.Options{Addr: []string{chAddr}})
		if err != nil {
			return res, err
		}
		defer db.Close()
	}
	countRows := func() chRows {
		var r chRows
		if db == nil {
			return r
		}
		qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		_ = db.QueryRow(qctx, "SELECT (SELECT count() FROM parley.messages), (SELECT count() FROM parley.deliveries)").Scan(&r.Messages, &r.Deliveries)
		return r
	}

	l := w.load
	if engine {
		t0 := time.Now()
		sids, err := signIn(ctx, addr, w.provider, l.signedIn, 128, 30*time.Second)
		if err != nil {
			return res, fmt.Errorf("sign-in: %w", err)
		}
		res.SignInS = time.Since(t0).Seconds()
		l.withStatuses(sids)
		w.provider.reset()
	} else {
		l.withStatuses(nil)
	}
	businessCalls0, businessConns0, providerConns0 := w.business.calls.Load(), w.business.conns.Load(), w.provider.conns.Load()

	profile := ""
	if o.cpuprofile != "" {
		ext := filepath.Ext(o.cpuprofile)
		profile = strings.TrimSuffix(o.cpuprofile, ext) + "." + target
		if o.rounds > 1 {
			profile += "." + strconv.Itoa(round)
		}
		profile += ext
		if profile, err = filepath.Abs(profile); err != nil {
			return res, err
		}
		if err := os.MkdirAll(filepath.Dir(profile), 0o755); err != nil {
			return res, err
		}
	}
	read := func() clocks {
		k := clocks{at: time.Now(), self: procstat.SelfCPU()}
		k.child, _ = procstat.ProcessCPU(c.Pid())
		if chPID > 0 {
			k.clickhouse, _ = procstat.ProcessCPU(chPID)
		}
		k.machine, _ = procstat.ReadMachineCPU()
		return k
	}
	var c0, c1 clocks
	var lag *lagSampler
	if engine {
		lag = sampleLag(addr, time.Now())
	}
	lr, err := loadgen.Run(ctx, loadgen.Config{
		Addr:     addr,
		Path:     webhookPath,
		Conns:    o.conns,
		Warmup:   o.warmup,
		Duration: o.duration,
		Timeout:  o.timeout,
		Log:      true,
		OnWindowStart: func() {
			c0 = read()
			if profile != "" {
				c.Send("cpu-start " + profile)
			}
			c0.rows = countRows()
			if engine {
				c0.metrics, _ = scrape(ctx, addr)
			}
		},
		OnWindowEnd: func() {
			c1 = read()
			if profile != "" {
				c.Send("cpu-stop")
			}
			c1.rows = countRows()
			if engine {
				c1.metrics, _ = scrape(ctx, addr)
			}
		},
	}, l.forms)
	if err != nil {
		return res, err
	}
	res.Profile = profile

	// Drain: until every accepted message has its reply, the drain time
	// passes, or replies stop coming for 5 s.
	expected := 0
	for _, s := range lr.Log {
		if s.Status == 200 && l.kind[s.Req] != kindStatus {
			expected++
		}
	}
	var drained time.Time
	if engine {
		deadline := time.Now().Add(o.drain)
		last, lastAt := -1, time.Now()
		for {
			n := w.provider.count()
			if n >= expected {
				drained = time.Now()
				break
			}
			if n != last {
				last, lastAt = n, time.Now()
			}
			if time.Now().After(deadline) || time.Since(lastAt) > 5*time.Second || ctx.Err() != nil {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	c2 := read()
	if lag != nil {
		res.ConsumerLag = lag.finish()
	}
	// The sink writes in batches, a batch at the latest a second after
	// its first event: the rows have landed once the count held for 2.5 s
	// (at most 20 s).
	if db != nil {
		prev, same := countRows(), 0
		for range 80 {
			time.Sleep(250 * time.Millisecond)
			now := countRows()
			if now != prev {
				prev, same = now, 0
				continue
			}
			if same++; same >= 10 {
				break
			}
		}
		c2.rows = prev
	}
	if len(rd.brokers) > 0 {
		if res.Topics, err = topicStats(ctx, rd.brokers, rd.kafkaDir); err != nil {
			return res, err
		}
	}
	res.BusinessCalls = w.business.calls.Load() - businessCalls0
	res.BusinessConns = w.business.conns.Load() - businessConns0
	res.ProviderConns = w.provider.conns.Load() - providerConns0

	res.fill(o, l, lr, w.provider.snapshot(), expected, c0, c1, c2, drained)
	if engine && o.paced > 0 {
		res.Paced = runPaced(ctx, o, w, c, addr, profile, res, lr.Log)
	}
	// The profiles are complete once the child has stopped.
	if err := c.Stop(60 * time.Second); err != nil {
		return res, fmt.Errorf("child exit: %w", err)
	}
	if profile != "" {
		if res.CPUByRole, err = cpuByRole(profile, res.Accepted); err != nil {
			return res, err
		}
		if p := res.Paced; p != nil && p.Profile != "" && p.Skipped == "" {
			if p.CPUByRole, err = cpuByRole(p.Profile, p.accepted); err != nil {
				return res, err
			}
		}
	}
	return res, nil
}

// runPaced loads the same engine again, below saturation: at
// -paced-fraction of the rate the closed loop sustained, with the forms the
// closed loop did not reach (new customers stay new), then waits for the
// replies as the drain does.
func runPaced(ctx context.Context, o options, w *world, c *child.Process, addr, profile string, sat targetResult, satLog []loadgen.Sent) *pacedResult {
	p := &pacedResult{Rate: o.pacedFraction * sat.SustainedPerSec}
	if sat.CaughtUpS < 0 {
		p.Skipped = "the replies of the closed loop had not caught up"
		return p
	}
	off := 0
	for _, s := range satLog {
		off = max(off, int(s.Req)+1)
	}
	warmup := time.Second
	if need := int(p.Rate*(warmup+o.paced).Seconds()*1.2) + o.conns; len(w.load.forms)-off < need {
		p.Skipped = fmt.Sprintf("%d forms left, %d needed: raise -forms", len(w.load.forms)-off, need)
		return p
	}
	if p.Rate < 1 {
		p.Skipped = "no rate to pace at"
		return p
	}
	if profile != "" {
		ext := filepath.Ext(profile)
		p.Profile = strings.TrimSuffix(profile, ext) + ".paced" + ext
	}
	w.provider.reset()
	var c0, c1 time.Duration
	lr, err := loadgen.Run(ctx, loadgen.Config{
		Addr: addr, Path: webhookPath, Conns: o.conns, Rate: p.Rate, Log: true,
		Warmup: warmup, Duration: o.paced, Timeout: o.timeout,
		OnWindowStart: func() {
			c0, _ = procstat.ProcessCPU(c.Pid())
			if profile != "" {
				c.Send("cpu-start " + p.Profile)
			}
		},
		OnWindowEnd: func() {
			c1, _ = procstat.ProcessCPU(c.Pid())
			if profile != "" {
				c.Send("cpu-stop")
			}
		},
	}, w.load.forms[off:])
	if err != nil {
		p.Skipped = err.Error()
		return p
	}
	expected := 0
	for _, s := range lr.Log {
		if s.Status == 200 && w.load.kind[off+int(s.Req)] != kindStatus {
			expected++
		}
	}
	for deadline := time.Now().Add(10 * time.Second); w.provider.count() < expected && time.Now().Before(deadline) && ctx.Err() == nil; {
		time.Sleep(20 * time.Millisecond)
	}
	ws, we := lr.WindowStart.UnixNano(), lr.WindowEnd.UnixNano()
	in := func(t int64) bool { return t >= ws && t < we }
	replies := w.provider.snapshot()
	phones := byPhone(replies)
	log := slices.Clone(lr.Log)
	slices.SortFunc(log, func(a, b loadgen.Sent) int { return cmp.Compare(a.Start, b.Start) })
	m := match(w.load, off, log, phones, in)
	window := o.paced.Seconds()
	p.AcceptedPerSec = lr.AcceptedPerSec()
	p.accepted = lr.Accepted
	p.Errors = lr.Errors()
	p.HTTPLatency = lr.Latency
	for _, rp := range replies {
		if in(rp.at) {
			p.RepliesPerSec++
		}
	}
	p.RepliesPerSec /= window
	p.ReplyLatency = loadgen.Summarise(m.all)
	p.Unanswered = m.unanswered
	p.ChildCPU = (c1 - c0).Seconds() / window
	if lr.Accepted > 0 {
		p.ChildCPUPerReq = float64((c1 - c0).Microseconds()) / float64(lr.Accepted)
	}
	return p
}
