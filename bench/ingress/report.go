package main

import (
	"fmt"
	"io"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/parleyhq/parley/bench/internal/procstat"
	"github.com/parleyhq/parley/bench/loadgen"
)

// report is the whole run; it is also the -json output.
type report struct {
	Machine    procstat.Machine `json:"machine"`
	Conns      int              `json:"conns"`
	WarmupS    float64          `json:"warmup_s"`
	DurationS  float64          `json:"duration_s"`
	Rounds     int              `json:"rounds"`
	Forms      int              `json:"forms"`
	FormBytes  int              `json:"form_bytes_mean"`
	Partitions int              `json:"partitions"`
	// Runs are every measurement; Summary is one line per target, the
	// median over rounds.
	Runs    []targetResult `json:"runs"`
	Summary []targetResult `json:"summary"`
	// Ratio is Parley's accepted/s over the baseline's (goal ≥ 0.5);
	// CPURatio the baseline's server CPU per request over Parley's, the
	// same comparison with the load generator's share of the cores taken
	// out. Zero when either target did not run.
	Ratio    float64 `json:"ratio_parley_baseline"`
	CPURatio float64 `json:"cpu_ratio_parley_baseline"`
}

type targetResult struct {
	Target         string          `json:"target"`
	Round          int             `json:"round,omitempty"`
	AcceptedPerSec float64         `json:"accepted_per_s"`
	Accepted       int64           `json:"accepted"`
	Errors         int64           `json:"errors"`
	Statuses       map[int]int64   `json:"statuses,omitempty"`
	Failed         int64           `json:"transport_errors"`
	FirstError     string          `json:"first_error,omitempty"`
	Latency        loadgen.Latency `json:"latency"`
	// CPU over the window, in cores (1.0 = one core busy throughout):
	// the server process, this process (the load generator), everything
	// else on the machine (other work sharing the cores: noise), and
	// time the hypervisor stole. ServerCPUPerReq is the server's CPU per
	// accepted request in microseconds, kernel time included.
	ServerCPU       float64 `json:"server_cpu_cores"`
	ServerCPUPerReq float64 `json:"server_cpu_us_per_req"`
	LoadgenCPU      float64 `json:"loadgen_cpu_cores"`
	OtherCPU        float64 `json:"other_cpu_cores"`
	StealCPU        float64 `json:"steal_cpu_cores"`
	Profile         string  `json:"cpuprofile,omitempty"`
}

// summarise fills Summary with each target's median round and the ratios.
// Each figure is the median on its own, so a summary line can mix rounds.
func (r *report) summarise(targets []string) {
	r.Summary = nil
	for _, t := range targets {
		var runs []targetResult
		for _, run := range r.Runs {
			if run.Target == t {
				runs = append(runs, run)
			}
		}
		if len(runs) == 0 {
			continue
		}
		s := targetResult{Target: t}
		s.AcceptedPerSec = median(runs, func(x targetResult) float64 { return x.AcceptedPerSec })
		s.Accepted = int64(median(runs, func(x targetResult) float64 { return float64(x.Accepted) }))
		s.Latency.P50 = time.Duration(median(runs, func(x targetResult) float64 { return float64(x.Latency.P50) }))
		s.Latency.P90 = time.Duration(median(runs, func(x targetResult) float64 { return float64(x.Latency.P90) }))
		s.Latency.P99 = time.Duration(median(runs, func(x targetResult) float64 { return float64(x.Latency.P99) }))
		s.Latency.P999 = time.Duration(median(runs, func(x targetResult) float64 { return float64(x.Latency.P999) }))
		s.ServerCPU = median(runs, func(x targetResult) float64 { return x.ServerCPU })
		s.ServerCPUPerReq = median(runs, func(x targetResult) float64 { return x.ServerCPUPerReq })
		s.LoadgenCPU = median(runs, func(x targetResult) float64 { return x.LoadgenCPU })
		s.OtherCPU = median(runs, func(x targetResult) float64 { return x.OtherCPU })
		s.StealCPU = median(runs, func(x targetResult) float64 { return x.StealCPU })
		// Errors add up: one bad round is worth seeing.
		for _, run := range runs {
			s.Errors += run.Errors
			s.Failed += run.Failed
		}
		r.Summary = append(r.Summary, s)
	}
	var base, parley *targetResult
	for i := range r.Summary {
		switch r.Summary[i].Target {
		case targetBaseline:
			base = &r.Summary[i]
		case targetParley:
			parley = &r.Summary[i]
		}
	}
	r.Ratio, r.CPURatio = 0, 0
	if base != nil && parley != nil && base.AcceptedPerSec > 0 {
		r.Ratio = parley.AcceptedPerSec / base.AcceptedPerSec
		if parley.ServerCPUPerReq > 0 {
			r.CPURatio = base.ServerCPUPerReq / parley.ServerCPUPerReq
		}
	}
}

func median(runs []targetResult, f func(targetResult) float64) float64 {
	v := make([]float64, len(runs))
	for i, r := range runs {
		v[i] = f(r)
	}
	slices.Sort(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

func (r *report) print(w io.Writer) {
	m := r.Machine
	fmt.Fprintf(w, "machine: %d CPUs (%s), %s, %s; fsync of a 4 KiB append in %s: p50 %s, p99 %s\n",
		m.NumCPU, m.CPUModel, m.GoVersion, m.OS, m.FsyncDir, ms(m.FsyncP50), ms(m.FsyncP99))
	fmt.Fprintf(w, "load: %d conns, %.0fs warm-up + %.0fs window per target, %d round(s), %d distinct webhooks of %d bytes on average, %d partitions\n\n",
		r.Conns, r.WarmupS, r.DurationS, r.Rounds, r.Forms, r.FormBytes, r.Partitions)
	r.table(w, r.Runs, r.Rounds > 1)
	if r.Rounds > 1 {
		fmt.Fprintf(w, "\nmedian of %d rounds:\n", r.Rounds)
		r.table(w, r.Summary, false)
	}
	for _, t := range r.Runs {
		if t.Errors > 0 {
			fmt.Fprintf(w, "%s round %d errors: statuses %v, transport %d (first: %s)\n", t.Target, t.Round, t.Statuses, t.Failed, t.FirstError)
		}
		if t.Profile != "" {
			fmt.Fprintf(w, "%s round %d CPU profile: %s\n", t.Target, t.Round, t.Profile)
		}
	}
	if r.Ratio > 0 {
		verdict := "meets"
		if r.Ratio < 0.5 {
			verdict = "BELOW"
		}
		fmt.Fprintf(w, "\nparley/baseline accepted/s: %.2f (%s the goal of 0.5)\n", r.Ratio, verdict)
		fmt.Fprintf(w, "baseline/parley server CPU per request: %.2f\n", r.CPURatio)
	}
}

func (r *report) table(w io.Writer, rows []targetResult, withRound bool) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	if withRound {
		fmt.Fprint(tw, "round\t")
	}
	fmt.Fprintln(tw, "target\taccepted/s\tp50\tp99\tp99.9\terrors\tserver CPU\tCPU µs/req\tloadgen CPU\tother CPU\t")
	for _, t := range rows {
		if withRound {
			fmt.Fprintf(tw, "%d\t", t.Round)
		}
		fmt.Fprintf(tw, "%s\t%.0f\t%s\t%s\t%s\t%d\t%.2f\t%.1f\t%.2f\t%.2f\t\n",
			t.Target, t.AcceptedPerSec, ms(t.Latency.P50), ms(t.Latency.P99), ms(t.Latency.P999),
			t.Errors, t.ServerCPU, t.ServerCPUPerReq, t.LoadgenCPU, t.OtherCPU)
	}
	tw.Flush()
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond)) }
