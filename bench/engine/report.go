package main

import (
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/parleyhq/parley/bench/internal/procstat"
	"github.com/parleyhq/parley/bench/loadgen"
)

// report is the whole run; it is also the -json output.
type report struct {
	Machine   procstat.Machine `json:"machine"`
	Conns     int              `json:"conns"`
	WarmupS   float64          `json:"warmup_s"`
	DurationS float64          `json:"duration_s"`
	DrainS    float64          `json:"drain_max_s"`
	Rounds    int              `json:"rounds"`
	Forms     int              `json:"forms"`
	FormBytes int              `json:"form_bytes_mean"`
	SignedIn  int              `json:"signed_in"`
	Mix       [3]float64       `json:"mix_new_question_status"`
	TotalS    float64          `json:"total_s"`
	Runs      []targetResult   `json:"runs"`
	Summary   []targetResult   `json:"summary"`
	// Ratios of the summary lines: each engine target's accepted/s over
	// the baseline's, and the baseline's CPU per request over the
	// target's; the changelog's cost is engine against
	// engine-nochangelog.
	Ratios    map[string]float64 `json:"ratios"`
	Changelog *changelogCost     `json:"changelog_cost,omitempty"`
}

type changelogCost struct {
	// Throughput is engine accepted/s ÷ engine-nochangelog accepted/s;
	// Sustained the same for the sustained rates (accepted and answered).
	Throughput float64 `json:"throughput_ratio"`
	Sustained  float64 `json:"sustained_ratio"`
	// CPUPerReqUS is the engine's child CPU per accepted webhook minus
	// the no-changelog engine's, in µs; CPURatio their ratio.
	CPUPerReqUS float64 `json:"cpu_us_per_req_delta"`
	CPURatio    float64 `json:"cpu_per_req_ratio"`
}

type targetResult struct {
	Target string `json:"target"`
	Round  int    `json:"round,omitempty"`
	// StartS is from the child's exec to its ready line (engine.Start,
	// ClickHouse included); SignInS the sign-in of the -signed-in
	// customers before the load.
	StartS  float64 `json:"start_s"`
	SignInS float64 `json:"sign_in_s,omitempty"`

	AcceptedPerSec float64         `json:"accepted_per_s"`
	Accepted       int64           `json:"accepted"`
	AcceptedByKind map[string]int  `json:"accepted_by_kind"`
	Errors         int64           `json:"errors"`
	Statuses       map[int]int64   `json:"statuses,omitempty"`
	Failed         int64           `json:"transport_errors"`
	FirstError     string          `json:"first_error,omitempty"`
	HTTPLatency    loadgen.Latency `json:"http_latency"`
	// Resent counts requests that reused a form already sent in the run
	// (-forms too small): a duplicate the engine acknowledges and drops.
	Resent int `json:"resent"`

	// Replies: arriving at the provider during the window (count and per
	// second); by the end of the drain, against the messages accepted
	// over the whole load (warm-up and the window's tail included);
	// CaughtUpS is when the last of those arrived after the window
	// closed (-1: not within the drain).
	// MessagesPerSec are the accepted webhooks that want a reply (new
	// customers' and questions: not status callbacks) per second of the
	// window; ReplyRatio is replies/s over them (1: replies keep up).
	// SustainedPerSec is the webhook rate the engine both accepted and
	// answered: accepted/s, or less if the replies lagged.
	MessagesPerSec  float64 `json:"messages_per_s"`
	ReplyRatio      float64 `json:"replies_per_message"`
	SustainedPerSec float64 `json:"sustained_per_s"`
	RepliesInWindow int     `json:"replies_in_window"`
	RepliesPerSec   float64 `json:"replies_per_s"`
	RepliesTotal    int     `json:"replies_total"`
	MessagesTotal   int     `json:"messages_accepted_total"`
	CaughtUpS       float64 `json:"caught_up_after_window_s"`
	DrainS          float64 `json:"drain_s"`
	// ReplyLatency is from sending a message webhook (accepted in the
	// window) to its reply's arrival at the provider, matched by number
	// and order; by kind too. Unanswered are the window's accepted
	// messages with no reply by the end of the drain.
	ReplyLatency         loadgen.Latency `json:"reply_latency"`
	ReplyLatencyNew      loadgen.Latency `json:"reply_latency_new"`
	ReplyLatencyQuestion loadgen.Latency `json:"reply_latency_question"`
	Unanswered           int             `json:"unanswered"`
	// Backlog is accepted messages minus replies, each second from the
	// start of the load to the end of the drain.
	Backlog []backlogPoint `json:"backlog,omitempty"`

	// Paced is the second load on the same engine, at -paced-fraction of
	// the rate the closed loop sustained (SustainedPerSec): latency below
	// saturation.
	Paced *pacedResult `json:"paced,omitempty"`

	// ClickHouse rows (messages + deliveries) inserted per second in the
	// window, and in the tables once the sink settled after the drain.
	RowsPerSec float64 `json:"clickhouse_rows_per_s"`
	RowsEnd    chRows  `json:"clickhouse_rows_end"`
	// MessageRowsWanted is what the messages table should hold: every
	// accepted message and its reply, the sign-ins' included.
	MessageRowsWanted int `json:"clickhouse_message_rows_wanted"`
	// BusinessCalls are the calls the business's system got during the
	// load and the drain.
	BusinessCalls int64 `json:"business_calls"`
	// The session role's transactions over the window (from the engine's
	// /metrics): committed, inbound records handled per committed
	// transaction, and the mean time from a batch's poll to its end.
	Transactions      float64 `json:"transactions"`
	RecordsPerTxn     float64 `json:"records_per_transaction"`
	TransactionMeanMS float64 `json:"transaction_mean_ms"`
	// ConsumerLag is the engine's parley_consumer_lag by group, each
	// second from the start of the load to the end of the drain.
	ConsumerLag []lagPoint `json:"consumer_lag,omitempty"`
	// Topics are Parley's topics after the drain, sign-ins included.
	Topics []topicStat `json:"topics,omitempty"`
	// BusinessConns and ProviderConns are the TCP connections the engine
	// opened to the business's system and to the provider meanwhile.
	BusinessConns int64 `json:"business_conns"`
	ProviderConns int64 `json:"provider_conns"`

	// CPU over the window, in cores: the child (the engine with its
	// embedded broker, or the baseline), its ClickHouse, this process
	// (load generator, provider, business), everything else (noise) and
	// steal. ChildCPUPerReq is the child's CPU per accepted webhook, µs.
	ChildCPU       float64 `json:"child_cpu_cores"`
	ChildCPUPerReq float64 `json:"child_cpu_us_per_req"`
	CHCPU          float64 `json:"clickhouse_cpu_cores"`
	CHCPUPerReq    float64 `json:"clickhouse_cpu_us_per_req"`
	SelfCPU        float64 `json:"loadgen_world_cpu_cores"`
	OtherCPU       float64 `json:"other_cpu_cores"`
	StealCPU       float64 `json:"steal_cpu_cores"`
	DrainChildCPU  float64 `json:"drain_child_cpu_cores"`
	Profile        string  `json:"cpuprofile,omitempty"`
	// CPUByRole splits the child's CPU profile over the window by role
	// (roles.go), with µs per accepted webhook.
	CPUByRole []roleCPU `json:"cpu_by_role,omitempty"`
}

type pacedResult struct {
	// Skipped says why there was no paced load.
	Skipped        string          `json:"skipped,omitempty"`
	Rate           float64         `json:"rate_per_s"`
	AcceptedPerSec float64         `json:"accepted_per_s"`
	Errors         int64           `json:"errors"`
	HTTPLatency    loadgen.Latency `json:"http_latency"`
	RepliesPerSec  float64         `json:"replies_per_s"`
	ReplyLatency   loadgen.Latency `json:"reply_latency"`
	Unanswered     int             `json:"unanswered"`
	ChildCPU       float64         `json:"child_cpu_cores"`
	ChildCPUPerReq float64         `json:"child_cpu_us_per_req"`
	Profile        string          `json:"cpuprofile,omitempty"`
	CPUByRole      []roleCPU       `json:"cpu_by_role,omitempty"`
	accepted       int64
}

type backlogPoint struct {
	T        float64 `json:"t_s"`
	Accepted int     `json:"accepted"`
	Replied  int     `json:"replied"`
}

// matched pairs accepted messages with their replies.
type matched struct {
	all, news, questions []time.Duration
	unanswered           int
	// accEnds are when every accepted message (in the window or not)
	// was acknowledged, sorted.
	accEnds []int64
}

// match gives each accepted message (log in order of sending; its Req
// indexes l.forms[off:]) the next reply to its number, and measures, for
// those acknowledged inside the window (in), the time from sending the
// webhook to the reply's arrival.
func match(l *load, off int, log []loadgen.Sent, byPhone map[string][]int64, in func(int64) bool) matched {
	var m matched
	used := map[string]int{}
	for _, s := range log {
		i := off + int(s.Req)
		k := l.kind[i]
		if s.Status != 200 || k == kindStatus {
			continue
		}
		m.accEnds = append(m.accEnds, s.End)
		ph := l.phone[i]
		n := used[ph]
		used[ph] = n + 1
		if !in(s.End) {
			continue
		}
		if n >= len(byPhone[ph]) {
			m.unanswered++
			continue
		}
		d := time.Duration(byPhone[ph][n] - s.Start)
		m.all = append(m.all, d)
		if k == kindNew {
			m.news = append(m.news, d)
		} else {
			m.questions = append(m.questions, d)
		}
	}
	slices.Sort(m.accEnds)
	return m
}

// byPhone sorts replies by arrival and groups their times by number.
func byPhone(replies []reply) map[string][]int64 {
	sort.Slice(replies, func(i, j int) bool { return replies[i].at < replies[j].at })
	out := map[string][]int64{}
	for _, rp := range replies {
		out[rp.phone] = append(out[rp.phone], rp.at)
	}
	return out
}

// fill computes the figures from the load's log and the replies.
func (r *targetResult) fill(o options, l *load, lr loadgen.Result, replies []reply, expected int,
	c0, c1, c2 clocks, drained time.Time) {
	ws, we := lr.WindowStart.UnixNano(), lr.WindowEnd.UnixNano()
	in := func(t int64) bool { return t >= ws && t < we }
	window := o.duration.Seconds()

	r.AcceptedPerSec = lr.AcceptedPerSec()
	r.Accepted = lr.Accepted
	r.Errors = lr.Errors()
	r.Statuses = lr.Statuses
	r.Failed = lr.Failed
	r.FirstError = lr.FirstError
	r.HTTPLatency = lr.Latency
	r.MessagesTotal = expected

	log := slices.Clone(lr.Log)
	sort.Slice(log, func(i, j int) bool { return log[i].Start < log[j].Start })
	byKind := [3]int{}
	seen := make([]bool, len(l.forms))
	for _, s := range log {
		if seen[s.Req] {
			r.Resent++
		}
		seen[s.Req] = true
		if s.Status == 200 && in(s.End) {
			byKind[l.kind[s.Req]]++
		}
	}
	r.AcceptedByKind = map[string]int{}
	for k, n := range byKind {
		r.AcceptedByKind[kindNames[k]] = n
	}

	// Replies, in order of arrival, by number.
	phones := byPhone(replies)
	r.RepliesTotal = len(replies)
	for _, rp := range replies {
		if in(rp.at) {
			r.RepliesInWindow++
		}
	}
	r.RepliesPerSec = float64(r.RepliesInWindow) / window
	if msgs := byKind[kindNew] + byKind[kindQuestion]; msgs > 0 {
		r.MessagesPerSec = float64(msgs) / window
		r.ReplyRatio = r.RepliesPerSec / r.MessagesPerSec
		r.SustainedPerSec = r.AcceptedPerSec * min(1, r.ReplyRatio)
	}
	r.CaughtUpS = -1
	if !drained.IsZero() {
		last := int64(0)
		if len(replies) > 0 {
			last = replies[len(replies)-1].at
		}
		r.CaughtUpS = max(0, float64(last-we)/1e9)
	}
	r.DrainS = c2.at.Sub(c1.at).Seconds()

	m := match(l, 0, log, phones, in)
	r.ReplyLatency = loadgen.Summarise(m.all)
	r.ReplyLatencyNew = loadgen.Summarise(m.news)
	r.ReplyLatencyQuestion = loadgen.Summarise(m.questions)
	r.Unanswered = m.unanswered
	accEnds := m.accEnds

	// Backlog, second by second.
	if len(log) > 0 && expected > 0 {
		t0 := log[0].Start
		end := c2.at.UnixNano()
		for t := t0 + 1e9; t < end+1e9; t += 1e9 {
			a := sort.Search(len(accEnds), func(i int) bool { return accEnds[i] > t })
			rp := sort.Search(len(replies), func(i int) bool { return replies[i].at > t })
			r.Backlog = append(r.Backlog, backlogPoint{T: float64(t-t0) / 1e9, Accepted: a, Replied: rp})
		}
	}

	if c0.metrics != nil && c1.metrics != nil {
		d := func(name string, labels ...string) float64 {
			return c1.metrics.sum(name, labels...) - c0.metrics.sum(name, labels...)
		}
		r.Transactions = d("parley_transactions_total", `outcome="committed"`)
		if r.Transactions > 0 {
			r.RecordsPerTxn = d("parley_messages_handled_total") / r.Transactions
		}
		if n := d("parley_transaction_seconds_count"); n > 0 {
			r.TransactionMeanMS = 1000 * d("parley_transaction_seconds_sum") / n
		}
	}
	r.RowsPerSec = float64(c1.rows.total()-c0.rows.total()) / window
	r.RowsEnd = c2.rows
	if r.isEngine() {
		r.MessageRowsWanted = 2 * (2*l.signedIn + expected)
	}

	cpu := func(a, b time.Duration) float64 { return (b - a).Seconds() / window }
	r.ChildCPU = cpu(c0.child, c1.child)
	r.CHCPU = cpu(c0.clickhouse, c1.clickhouse)
	r.SelfCPU = cpu(c0.self, c1.self)
	if r.Accepted > 0 {
		r.ChildCPUPerReq = float64((c1.child - c0.child).Microseconds()) / float64(r.Accepted)
		r.CHCPUPerReq = float64((c1.clickhouse - c0.clickhouse).Microseconds()) / float64(r.Accepted)
	}
	busy, steal := c1.machine.Sub(c0.machine)
	r.OtherCPU = max(0, busy.Seconds()/window-r.ChildCPU-r.CHCPU-r.SelfCPU)
	r.StealCPU = steal.Seconds() / window
	if d := c2.at.Sub(c1.at).Seconds(); d > 0 {
		r.DrainChildCPU = (c2.child - c1.child).Seconds() / d
	}
}

func (r targetResult) isEngine() bool { return r.Target != targetBaseline }

// oneLine is the progress line printed after each run.
func (r targetResult) oneLine() string {
	s := fmt.Sprintf("accepted %.0f/s (%d errors), child CPU %.2f cores, %.0f µs/req", r.AcceptedPerSec, r.Errors, r.ChildCPU, r.ChildCPUPerReq)
	if r.isEngine() {
		s += fmt.Sprintf("; replies %.0f/s (%.2f per message), %d of %d by the end of the drain, webhook→reply p50 %s p99 %s; ClickHouse %.0f rows/s",
			r.RepliesPerSec, r.ReplyRatio, r.RepliesTotal, r.MessagesTotal, ms(r.ReplyLatency.P50), ms(r.ReplyLatency.P99), r.RowsPerSec)
	}
	return s
}

func ms(d time.Duration) string {
	if d == 0 {
		return "–"
	}
	return fmt.Sprintf("%.1f ms", float64(d)/1e6)
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// summarise: one line per target, each figure the median over the rounds
// on its own (so a line can mix rounds); the ratios from those.
func (rep *report) summarise(targets []string) {
	rep.Summary = nil
	byTarget := map[string]targetResult{}
	for _, t := range targets {
		var runs []targetResult
		for _, r := range rep.Runs {
			if r.Target == t {
				runs = append(runs, r)
			}
		}
		if len(runs) == 0 {
			continue
		}
		if len(runs) == 1 {
			s := runs[0]
			s.Round = 0
			s.Backlog = nil
			rep.Summary = append(rep.Summary, s)
			byTarget[t] = s
			continue
		}
		med := func(f func(targetResult) float64) float64 {
			xs := make([]float64, len(runs))
			for i, r := range runs {
				xs[i] = f(r)
			}
			return median(xs)
		}
		dur := func(f func(targetResult) time.Duration) time.Duration {
			return time.Duration(med(func(r targetResult) float64 { return float64(f(r)) }))
		}
		s := targetResult{Target: t}
		s.StartS = med(func(r targetResult) float64 { return r.StartS })
		s.SignInS = med(func(r targetResult) float64 { return r.SignInS })
		s.AcceptedPerSec = med(func(r targetResult) float64 { return r.AcceptedPerSec })
		s.Accepted = int64(med(func(r targetResult) float64 { return float64(r.Accepted) }))
		s.Errors = int64(med(func(r targetResult) float64 { return float64(r.Errors) }))
		s.HTTPLatency.P50 = dur(func(r targetResult) time.Duration { return r.HTTPLatency.P50 })
		s.HTTPLatency.P99 = dur(func(r targetResult) time.Duration { return r.HTTPLatency.P99 })
		s.RepliesPerSec = med(func(r targetResult) float64 { return r.RepliesPerSec })
		s.MessagesPerSec = med(func(r targetResult) float64 { return r.MessagesPerSec })
		s.ReplyRatio = med(func(r targetResult) float64 { return r.ReplyRatio })
		s.SustainedPerSec = med(func(r targetResult) float64 { return r.SustainedPerSec })
		s.RepliesTotal = int(med(func(r targetResult) float64 { return float64(r.RepliesTotal) }))
		s.MessagesTotal = int(med(func(r targetResult) float64 { return float64(r.MessagesTotal) }))
		s.CaughtUpS = med(func(r targetResult) float64 { return r.CaughtUpS })
		s.ReplyLatency.P50 = dur(func(r targetResult) time.Duration { return r.ReplyLatency.P50 })
		s.ReplyLatency.P99 = dur(func(r targetResult) time.Duration { return r.ReplyLatency.P99 })
		s.Unanswered = int(med(func(r targetResult) float64 { return float64(r.Unanswered) }))
		s.RowsPerSec = med(func(r targetResult) float64 { return r.RowsPerSec })
		s.ChildCPU = med(func(r targetResult) float64 { return r.ChildCPU })
		s.ChildCPUPerReq = med(func(r targetResult) float64 { return r.ChildCPUPerReq })
		s.CHCPU = med(func(r targetResult) float64 { return r.CHCPU })
		s.CHCPUPerReq = med(func(r targetResult) float64 { return r.CHCPUPerReq })
		s.SelfCPU = med(func(r targetResult) float64 { return r.SelfCPU })
		s.OtherCPU = med(func(r targetResult) float64 { return r.OtherCPU })
		rep.Summary = append(rep.Summary, s)
		byTarget[t] = s
	}
	rep.Ratios = map[string]float64{}
	if b, ok := byTarget[targetBaseline]; ok && b.AcceptedPerSec > 0 {
		for _, t := range []string{targetEngine, targetNoChangelog} {
			if e, ok := byTarget[t]; ok {
				rep.Ratios[t+"/baseline accepted"] = e.AcceptedPerSec / b.AcceptedPerSec
				rep.Ratios[t+"/baseline sustained"] = e.SustainedPerSec / b.AcceptedPerSec
				if e.ChildCPUPerReq > 0 {
					rep.Ratios[t+"/baseline cpu"] = b.ChildCPUPerReq / e.ChildCPUPerReq
				}
			}
		}
	}
	e, ok1 := byTarget[targetEngine]
	n, ok2 := byTarget[targetNoChangelog]
	if ok1 && ok2 && n.AcceptedPerSec > 0 && n.ChildCPUPerReq > 0 {
		rep.Changelog = &changelogCost{
			Throughput:  e.AcceptedPerSec / n.AcceptedPerSec,
			CPUPerReqUS: e.ChildCPUPerReq - n.ChildCPUPerReq,
			CPURatio:    e.ChildCPUPerReq / n.ChildCPUPerReq,
		}
		if n.SustainedPerSec > 0 {
			rep.Changelog.Sustained = e.SustainedPerSec / n.SustainedPerSec
		}
	}
}

func (rep *report) print(w io.Writer) {
	m := rep.Machine
	fmt.Fprintf(w, "machine: %d CPUs (%s), %s, %s\n", m.NumCPU, m.CPUModel, m.OS, m.GoVersion)
	fmt.Fprintf(w, "load: %d conns, %.0f s warm-up + %.0f s, drain ≤ %.0f s; %d forms (mean %d B), mix new/question/status %g/%g/%g, %d signed-in customers; whole bench %.0f s\n\n",
		rep.Conns, rep.WarmupS, rep.DurationS, rep.DrainS, rep.Forms, rep.FormBytes, rep.Mix[0], rep.Mix[1], rep.Mix[2], rep.SignedIn, rep.TotalS)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "target\taccepted/s\terrors\tHTTP p50\tHTTP p99\tmessages/s\treplies/s\treplies/message\treplies by drain end\tcaught up\treply p50\treply p99\tCH rows/s\tchild CPU\tCPU µs/req\tCH CPU\tloadgen+world CPU\tother CPU\t")
	for _, r := range rep.Summary {
		if !r.isEngine() {
			fmt.Fprintf(tw, "%s\t%.0f\t%d\t%s\t%s\t–\t–\t–\t–\t–\t–\t–\t–\t%.2f\t%.1f\t–\t%.2f\t%.2f\t\n",
				r.Target, r.AcceptedPerSec, r.Errors, ms(r.HTTPLatency.P50), ms(r.HTTPLatency.P99), r.ChildCPU, r.ChildCPUPerReq, r.SelfCPU, r.OtherCPU)
			continue
		}
		caught := "no"
		if r.CaughtUpS >= 0 {
			caught = fmt.Sprintf("+%.1f s", r.CaughtUpS)
		}
		fmt.Fprintf(tw, "%s\t%.0f\t%d\t%s\t%s\t%.0f\t%.0f\t%.2f\t%d / %d\t%s\t%s\t%s\t%.0f\t%.2f\t%.1f\t%.2f\t%.2f\t%.2f\t\n",
			r.Target, r.AcceptedPerSec, r.Errors, ms(r.HTTPLatency.P50), ms(r.HTTPLatency.P99), r.MessagesPerSec, r.RepliesPerSec, r.ReplyRatio,
			r.RepliesTotal, r.MessagesTotal, caught, ms(r.ReplyLatency.P50), ms(r.ReplyLatency.P99), r.RowsPerSec,
			r.ChildCPU, r.ChildCPUPerReq, r.CHCPU, r.SelfCPU, r.OtherCPU)
	}
	tw.Flush()
	fmt.Fprintln(w)
	for _, r := range rep.Runs {
		if !r.isEngine() {
			continue
		}
		fmt.Fprintf(w, "%s (round %d): started in %.1f s, %d customers signed in in %.1f s; accepted in the window: %d new, %d questions, %d status callbacks; %d business calls over %d new connections, %d new connections to the provider; %d resent forms\n",
			r.Target, r.Round, r.StartS, rep.SignedIn, r.SignInS, r.AcceptedByKind["new"], r.AcceptedByKind["question"], r.AcceptedByKind["status"], r.BusinessCalls, r.BusinessConns, r.ProviderConns, r.Resent)
		fmt.Fprintf(w, "  webhook→reply: new customers p50 %s p99 %s, questions p50 %s p99 %s; %d of the window's messages unanswered; ClickHouse after the drain: %d messages rows (of %d), %d deliveries rows; drain %.1f s with the engine at %.2f cores\n",
			ms(r.ReplyLatencyNew.P50), ms(r.ReplyLatencyNew.P99), ms(r.ReplyLatencyQuestion.P50), ms(r.ReplyLatencyQuestion.P99),
			r.Unanswered, r.RowsEnd.Messages, r.MessageRowsWanted, r.RowsEnd.Deliveries, r.DrainS, r.DrainChildCPU)
		var pts []string
		for i, p := range r.Backlog {
			if i%2 == 1 && i != len(r.Backlog)-1 {
				continue
			}
			pts = append(pts, fmt.Sprintf("%.0fs:%d", p.T, p.Accepted-p.Replied))
		}
		fmt.Fprintf(w, "  backlog (accepted messages − replies) by second: %s\n", strings.Join(pts, " "))
		if r.Transactions > 0 {
			fmt.Fprintf(w, "  sessions: %.0f transactions committed in the window (%.0f/s), %.0f records each, %.1f ms from poll to end on average\n",
				r.Transactions, r.Transactions/rep.DurationS, r.RecordsPerTxn, r.TransactionMeanMS)
		}
		if len(r.ConsumerLag) > 0 {
			var ls []string
			for _, g := range lagGroups {
				peak, end := 0.0, 0.0
				for _, p := range r.ConsumerLag {
					peak = max(peak, p.Lag[g])
					if p.T <= rep.WarmupS+rep.DurationS {
						end = p.Lag[g]
					}
				}
				ls = append(ls, fmt.Sprintf("%s max %.0f, at the window's end %.0f", g, peak, end))
			}
			fmt.Fprintf(w, "  consumer lag (records, sampled each second): %s\n", strings.Join(ls, "; "))
		}
		if len(r.Topics) > 0 {
			var ts []string
			for _, t := range r.Topics {
				ts = append(ts, fmt.Sprintf("%s %d (%.1f MiB)", t.Topic, t.Ends, float64(t.Bytes)/(1<<20)))
			}
			fmt.Fprintf(w, "  topics after the drain, sign-ins included (end offsets, files): %s\n", strings.Join(ts, ", "))
		}
		if len(r.CPUByRole) > 0 {
			printRoles(w, r)
		}
		if p := r.Paced; p != nil {
			if p.Skipped != "" {
				fmt.Fprintf(w, "  paced load: skipped: %s\n", p.Skipped)
			} else {
				fmt.Fprintf(w, "  paced at %.0f/s: accepted %.0f/s (%d errors), HTTP p50 %s p99 %s; replies %.0f/s, webhook→reply p50 %s p99 %s, %d unanswered; child CPU %.2f cores, %.0f µs/req\n",
					p.Rate, p.AcceptedPerSec, p.Errors, ms(p.HTTPLatency.P50), ms(p.HTTPLatency.P99), p.RepliesPerSec,
					ms(p.ReplyLatency.P50), ms(p.ReplyLatency.P99), p.Unanswered, p.ChildCPU, p.ChildCPUPerReq)
			}
		}
	}
	fmt.Fprintln(w)
	for _, t := range []string{targetEngine, targetNoChangelog} {
		if v, ok := rep.Ratios[t+"/baseline accepted"]; ok {
			fmt.Fprintf(w, "%s/baseline: accepted %.2f, sustained (accepted and answered) %.2f, CPU per request %.2f\n",
				t, v, rep.Ratios[t+"/baseline sustained"], rep.Ratios[t+"/baseline cpu"])
		}
	}
	if c := rep.Changelog; c != nil {
		fmt.Fprintf(w, "changelog cost (engine vs engine-nochangelog): accepted/s ×%.2f, sustained/s ×%.2f, CPU per webhook %+.1f µs (×%.2f)\n",
			c.Throughput, c.Sustained, c.CPUPerReqUS, c.CPURatio)
	}
}

// printRoles prints a run's CPU by role, closed loop and paced side by
// side.
func printRoles(w io.Writer, r targetResult) {
	var paced map[string]roleCPU
	if r.Paced != nil && len(r.Paced.CPUByRole) > 0 {
		paced = map[string]roleCPU{}
		for _, x := range r.Paced.CPUByRole {
			paced[x.Role] = x
		}
	}
	fmt.Fprintf(w, "  CPU by role (profile of the window, µs per accepted webhook):\n")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	if paced != nil {
		fmt.Fprintf(tw, "  role\tclosed loop\tshare\tpaced at %.0f/s\tshare\t\n", r.Paced.Rate)
	} else {
		fmt.Fprintf(tw, "  role\tclosed loop\tshare\t\n")
	}
	closed := map[string]roleCPU{}
	for _, x := range r.CPUByRole {
		closed[x.Role] = x
	}
	var sum, psum float64
	for _, ro := range roles {
		x, ok := closed[ro.name]
		p, pok := paced[ro.name]
		if !ok && !pok {
			continue
		}
		x.Role = ro.name
		sum += x.PerReq
		if paced != nil {
			psum += p.PerReq
			fmt.Fprintf(tw, "  %s\t%.0f\t%.0f%%\t%.0f\t%.0f%%\t\n", x.Role, x.PerReq, 100*x.Share, p.PerReq, 100*p.Share)
			continue
		}
		fmt.Fprintf(tw, "  %s\t%.0f\t%.0f%%\t\n", x.Role, x.PerReq, 100*x.Share)
	}
	if paced != nil {
		fmt.Fprintf(tw, "  total\t%.0f\t\t%.0f\t\t\n", sum, psum)
	} else {
		fmt.Fprintf(tw, "  total\t%.0f\t\t\n", sum)
	}
	tw.Flush()
}
