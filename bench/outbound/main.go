// Command outbound measures the sender (sinks/delivery): how many outbound
// messages a second it delivers to a local provider server with the rate
// limit off, and how exactly its per-number rate limit holds the configured
// rate when on.
//
//	go run ./bench/outbound                       # unlimited, then 80/s and 500/s for 10 s each
//	go run ./bench/outbound -rates 80,500,1000 -window 20s
//	go run ./bench/outbound -json
//
// Each scenario starts its own embedded broker (bus.StartEmbedded with a
// temporary data directory, as `parley dev` does), creates parley.outbound
// and parley.events, produces the outbound records first, then starts a
// sender (delivery.New, as the engine does, with its ledger, events and
// dead-letter topics) against a local Twilio-compatible server that
// answers every send 201 with a message SID and notes the arrival time.
//
//   - direct (no Kafka): the floor. The same -messages sends made by 256
//     goroutines straight through twilio.Sender to the same server.
//   - unlimited: -messages records over -customers customers (each
//     customer's in order, so at most one in flight per customer), rate
//     limit off. Messages/s is counted from the first arrival to the last,
//     which leaves out the consumer group's start-up.
//   - rate R: R × (window + 1 s) × 1.5 records from one sender number
//     over -customers customers, limit R/s (burst 1). Counted: arrivals in
//     the window that starts one second after the first arrival (the first
//     sends also dial connections); also the slowest and fastest whole
//     second inside it.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/segmentio/kafka-go"
	"google.golang.org/protobuf/proto"

	"github.com/parleyhq/parley/bus"
	"github.com/parleyhq/parley/channels"
	"github.com/parleyhq/parley/channels/twilio"
	"github.com/parleyhq/parley/sinks/delivery"
	"github.com/parleyhq/parley/tenants"
	"github.com/parleyhq/parley/wire"
)

// warmup is skipped at the start of a limited run.
const warmup = time.Second

const (
	accountSID = "AC00000000000000000000000000000001"
	authToken  = "0123456789abcdef0123456789abcdef"
	from       = "whatsapp:+14155238886"
)

type result struct {
	Scenario   string  `json:"scenario"`
	Limit      float64 `json:"limit_per_s"` // 0: off
	Messages   int     `json:"messages"`
	Seconds    float64 `json:"seconds"`
	PerSecond  float64 `json:"messages_per_s"`
	ErrorPct   float64 `json:"error_pct,omitempty"` // rate vs limit, percent
	MinSecond  int     `json:"min_whole_second,omitempty"`
	MaxSecond  int     `json:"max_whole_second,omitempty"`
	Duplicates int     `json:"duplicates"`
	CPU        float64 `json:"process_cpu_cores"`
	OtherCPU   float64 `json:"other_cpu_cores"` // the rest of the machine: other people's work
	CPUPerMsg  float64 `json:"cpu_us_per_message"`
}

func main() {
	var (
		messages   = flag.Int("messages", 40000, "records for the unlimited run")
		customers  = flag.Int("customers", 2000, "distinct customers (Kafka keys)")
		rates      = flag.String("rates", "80,500", "comma-separated limits (messages/s) for the accuracy runs; empty: none")
		window     = flag.Duration("window", 10*time.Second, "measurement window of a limited run")
		partitions = flag.Int("partitions", 8, "partitions of parley.outbound")
		skipFree   = flag.Bool("no-unlimited", false, "skip the unlimited run")
		asJSON     = flag.Bool("json", false, "print results as JSON")
		cpuprofile = flag.String("cpuprofile", "", "write a CPU profile of the whole program to this file")
	)
	flag.Parse()
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			fail(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			fail(err)
		}
		defer pprof.StopCPUProfile()
	}
	var results []result
	if !*skipFree {
		r, err := direct(*messages, 256)
		if err != nil {
			fail(err)
		}
		results = append(results, r)
		r, err = run(0, *messages, *customers, *partitions, 0)
		if err != nil {
			fail(err)
		}
		results = append(results, r)
	}
	for f := range strings.SplitSeq(*rates, ",") {
		if strings.TrimSpace(f) == "" {
			continue
		}
		limit, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
		if err != nil || limit <= 0 {
			fail(fmt.Errorf("bad rate %q", f))
		}
		n := int(limit*(*window+warmup).Seconds()*1.5) + 100
		r, err := run(limit, n, *customers, *partitions, *window)
		if err != nil {
			fail(err)
		}
		results = append(results, r)
	}
	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(results)
		return
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "scenario\tlimit/s\tmessages\tseconds\tmessages/s\tvs limit\tslowest s\tfastest s\tduplicates\tCPU cores\tCPU µs/msg\tother CPU\t")
	for _, r := range results {
		limit, vs, lo, hi := "off", "", "", ""
		if r.Limit > 0 {
			limit = fmt.Sprint(r.Limit)
			vs = fmt.Sprintf("%+.2f%%", r.ErrorPct)
			lo, hi = fmt.Sprint(r.MinSecond), fmt.Sprint(r.MaxSecond)
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%.2f\t%.1f\t%s\t%s\t%s\t%d\t%.2f\t%.0f\t%.2f\t\n",
			r.Scenario, limit, r.Messages, r.Seconds, r.PerSecond, vs, lo, hi, r.Duplicates, r.CPU, r.CPUPerMsg, r.OtherCPU)
	}
	_ = tw.Flush()
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "outbound bench:", err)
	os.Exit(1)
}

// provider is a minimal Twilio Messages API: it checks the account and
// the form, notes when each message arrived and answers 201 with a SID.
type provider struct {
	srv      *http.Server
	ln       net.Listener
	mu       sync.Mutex
	arrivals []time.Time
	bodies   map[string]int
	count    atomic.Int64
}

func startProvider(expected int) (*provider, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &provider{ln: ln, arrivals: make([]time.Time, 0, expected), bodies: make(map[string]int, expected)}
	prefix := "/2010-04-01/Accounts/" + accountSID + "/Messages.json"
	p.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, pass, ok := r.BasicAuth()
		if r.URL.Path != prefix || r.Method != http.MethodPost || !ok || user != accountSID || pass != authToken {
			http.Error(w, `{"code":20404,"message":"not found","status":404}`, http.StatusNotFound)
			return
		}
		if err := r.ParseForm(); err != nil || r.PostForm.Get("To") == "" || r.PostForm.Get("Body") == "" {
			http.Error(w, `{"code":21619,"message":"bad form","status":400}`, http.StatusBadRequest)
			return
		}
		now := time.Now()
		b := make([]byte, 16)
		_, _ = rand.Read(b)
		sid := "SM" + hex.EncodeToString(b)
		p.mu.Lock()
		p.arrivals = append(p.arrivals, now)
		p.bodies[r.PostForm.Get("Body")]++
		p.mu.Unlock()
		p.count.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		fmt.Fprintf(w, `{"sid":%q,"status":"queued","account_sid":%q}`, sid, accountSID)
	})}
	go func() { _ = p.srv.Serve(ln) }()
	return p, nil
}

func (p *provider) url() string { return "http://" + p.ln.Addr().String() }

func (p *provider) snapshot() ([]time.Time, int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	dups := 0
	for _, n := range p.bodies {
		dups += n - 1
	}
	return slices.Clone(p.arrivals), dups
}

// direct is the floor: the same sends made straight from 256 goroutines
// through twilio.Sender to the same kind of local server, no Kafka.
func direct(n, workers int) (result, error) {
	prov, err := startProvider(n)
	if err != nil {
		return result{}, err
	}
	defer prov.srv.Close()
	cfg := &tenants.Twilio{AccountSID: accountSID, AuthToken: authToken, From: from, APIBaseURL: prov.url()}
	sender := twilio.NewSender(&http.Client{Transport: tunedTransport(), Timeout: 15 * time.Second})
	var next atomic.Int64
	var errs atomic.Int64
	cpu0, busy0, wall0 := cpuSeconds(), machineBusySeconds(), time.Now()
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= int64(n) {
					return
				}
				text := fmt.Sprintf("Your booking #%07d is confirmed for Tuesday at 10:30. Reply HELP for help.", i)
				if _, err := sender.Send(context.Background(), cfg, fmt.Sprintf("+4477%08d", i%2000), text, "https://parley.example.com/webhooks/twilio/bench/status"); err != nil {
					errs.Add(1)
				}
			}
		})
	}
	wg.Wait()
	secs := time.Since(wall0).Seconds()
	own := cpuSeconds() - cpu0
	if e := errs.Load(); e > 0 {
		return result{}, fmt.Errorf("direct: %d sends failed", e)
	}
	arrivals, dups := prov.snapshot()
	r := result{Scenario: "direct (no Kafka)", Messages: len(arrivals), Seconds: secs, Duplicates: dups,
		CPU: own / secs, OtherCPU: max(0, machineBusySeconds()-busy0-own) / secs}
	r.PerSecond = float64(len(arrivals)) / secs
	r.CPUPerMsg = 1e6 * r.CPU / r.PerSecond
	return r, nil
}

// tunedTransport keeps one connection per concurrent send:
// http.DefaultTransport keeps only 2 idle connections per host, and every
// other send would dial.
func tunedTransport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = 256
	t.MaxIdleConns = 256
	return t
}

// run measures one scenario: limit 0 is the unlimited run (wait for all
// n), otherwise the window after the first arrival.
func run(limit float64, n, customers, partitions int, window time.Duration) (result, error) {
	dir, err := os.MkdirTemp("", "parley-outbound-bench-")
	if err != nil {
		return result{}, err
	}
	defer os.RemoveAll(dir)
	broker, err := bus.StartEmbedded(dir, 0)
	if err != nil {
		return result{}, err
	}
	defer broker.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := bus.EnsureTopics(ctx, broker.Addrs(), partitions, 1, wire.TopicOutbound, wire.TopicEvents); err != nil {
		return result{}, fmt.Errorf("topics: %w", err)
	}
	prov, err := startProvider(n)
	if err != nil {
		return result{}, err
	}
	defer prov.srv.Close()

	// The records: customer i%customers gets message i.
	producer := bus.NewProducer(broker.Addrs(), bus.ProducerOptions{})
	defer producer.Close()
	batch := make([]kafka.Message, 0, 1000)
	flush := func() error {
		if len(batch) == 0 {
			return nil // Produce of nothing would wait for no ack forever
		}
		err := producer.Produce(ctx, batch...)
		batch = batch[:0]
		return err
	}
	now := time.Now().UnixMilli()
	for i := range n {
		phone := fmt.Sprintf("+4477%08d", i%customers)
		out := &wire.Outbound{
			Id: fmt.Sprintf("out-%07d", i), Tenant: "bench", Phone: phone, Channel: "twilio",
			Text: fmt.Sprintf("Your booking #%07d is confirmed for Tuesday at 10:30. Reply HELP for help.", i), CreatedAtMs: now,
		}
		b, _ := proto.Marshal(out)
		batch = append(batch, kafka.Message{Topic: wire.TopicOutbound, Key: wire.Key("bench", phone), Value: b})
		if len(batch) == cap(batch) {
			if err := flush(); err != nil {
				return result{}, fmt.Errorf("produce: %w", err)
			}
		}
	}
	if err := flush(); err != nil {
		return result{}, fmt.Errorf("produce: %w", err)
	}

	reg, err := tenants.NewRegistry([]tenants.Tenant{{ID: "bench", Twilio: &tenants.Twilio{
		AccountSID: accountSID, AuthToken: authToken, From: from, APIBaseURL: prov.url(),
	}, Outbound: tenants.OutboundConfig{RateLimit: &limit}}})
	if err != nil {
		return result{}, err
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	s := delivery.New(delivery.Options{
		Consumer: bus.ConsumerOptions{Brokers: broker.Addrs(), Logger: quiet},
		Tenants:  reg,
		Providers: channels.NewRegistry(twilio.New(
			&http.Client{Transport: tunedTransport(), Timeout: 15 * time.Second}, "https://parley.example.com")),
		MaxConcurrentSends: 256,
		Logger:             quiet,
	})
	runCtx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(runCtx) }()
	defer func() { stop(); <-done }()

	// Wait for the first message, then for the end of the run.
	deadline := time.Now().Add(60 * time.Second)
	for prov.count.Load() == 0 {
		if time.Now().After(deadline) {
			return result{}, fmt.Errorf("no message reached the provider in 60s")
		}
		time.Sleep(time.Millisecond)
	}
	cpu0, busy0, wall0 := cpuSeconds(), machineBusySeconds(), time.Now()
	if limit == 0 {
		deadline = time.Now().Add(5 * time.Minute)
		for prov.count.Load() < int64(n) {
			if time.Now().After(deadline) {
				return result{}, fmt.Errorf("only %d of %d messages in 5 minutes", prov.count.Load(), n)
			}
			time.Sleep(5 * time.Millisecond)
		}
	} else {
		time.Sleep(warmup + window + 200*time.Millisecond)
	}
	secs := time.Since(wall0).Seconds()
	own := cpuSeconds() - cpu0
	other := max(0, machineBusySeconds()-busy0-own) / secs
	arrivals, dups := prov.snapshot()
	r := result{Limit: limit, Duplicates: dups, CPU: own / secs, OtherCPU: other}
	first := arrivals[0]
	if limit == 0 {
		r.Scenario = "unlimited"
		last := arrivals[len(arrivals)-1]
		r.Messages = len(arrivals)
		r.Seconds = last.Sub(first).Seconds()
		r.PerSecond = float64(len(arrivals)-1) / r.Seconds
		r.CPUPerMsg = 1e6 * r.CPU / r.PerSecond
		return r, nil
	}
	r.Scenario = "limited"
	// The window starts a second after the first arrival: the first sends
	// also dial the connections.
	start := first.Add(warmup)
	end := start.Add(window)
	perSecond := make([]int, int(window/time.Second))
	for _, a := range arrivals {
		if a.Before(start) {
			continue
		}
		if !a.Before(end) {
			break
		}
		r.Messages++
		if i := int(a.Sub(start) / time.Second); i < len(perSecond) {
			perSecond[i]++
		}
	}
	r.Seconds = window.Seconds()
	// Tokens at R/s with a burst of 1, one every 1/R s: R × window fall
	// in any window.
	r.PerSecond = float64(r.Messages) / window.Seconds()
	r.ErrorPct = 100 * (r.PerSecond - limit) / limit
	r.CPUPerMsg = 1e6 * r.CPU / r.PerSecond
	if len(perSecond) > 0 {
		r.MinSecond, r.MaxSecond = slices.Min(perSecond), slices.Max(perSecond)
	}
	return r, nil
}

// cpuSeconds is the CPU time (user + system) this process has used.
func cpuSeconds() float64 {
	b, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		return 0
	}
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	// utime and stime are fields 14 and 15 of stat, 12 and 13 here.
	if len(fields) < 13 {
		return 0
	}
	u, _ := strconv.ParseFloat(fields[11], 64)
	k, _ := strconv.ParseFloat(fields[12], 64)
	return (u + k) / 100 // USER_HZ
}

// machineBusySeconds is the CPU time all processes of the machine have
// used (everything but idle and iowait in /proc/stat).
func machineBusySeconds() float64 {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	fields := strings.Fields(line) // cpu user nice system idle iowait irq softirq steal …
	var busy float64
	for i, f := range fields[1:] {
		if i == 3 || i == 4 || i >= 8 {
			continue // idle, iowait; guest time is already in user
		}
		v, _ := strconv.ParseFloat(f, 64)
		busy += v
	}
	return busy / 100 // USER_HZ
}
