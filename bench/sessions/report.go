package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"text/tabwriter"
	"time"
	"unsafe"

	"github.com/parleyhq/parley/brain"
	"github.com/parleyhq/parley/brain/rules"
	"github.com/parleyhq/parley/conversation"
	"github.com/parleyhq/parley/internal/ids"
)

// report is the whole run; it is also the -json output.
type report struct {
	Machine          machine      `json:"machine"`
	Config           config       `json:"config"`
	Note             string       `json:"note"`
	State            stateRef     `json:"state"`
	Activation       activation   `json:"activation"`
	Memory           memory       `json:"memory"`
	Quiet            streamRep    `json:"quiet_stream"`
	QuietGC          quietGC      `json:"quiet_stream_forced_gc"`
	Passivation      passivation  `json:"passivation"`
	Resume           resumeReport `json:"resume"`
	Timeouts         int64        `json:"timeouts"`
	ProducerBadSlots int64        `json:"producer_unmatched_records"`
}

type machine struct {
	CPUs       int    `json:"cpus"`
	GOMAXPROCS int    `json:"gomaxprocs"`
	GoVersion  string `json:"go_version"`
	OSArch     string `json:"os_arch"`
	MemTotal   uint64 `json:"mem_total_bytes"`
	// Commit is the working tree's git commit, with "+dirty" when the
	// packages a session runs (actors, conversation, brain, wire, tenants)
	// have uncommitted changes; empty outside a git checkout.
	Commit string `json:"commit,omitempty"`
}

func machineInfo() machine {
	m := machine{
		CPUs:       runtime.NumCPU(),
		GOMAXPROCS: runtime.GOMAXPROCS(0),
		GoVersion:  runtime.Version(),
		OSArch:     runtime.GOOS + "/" + runtime.GOARCH,
	}
	if out, err := exec.Command("git", "rev-parse", "--short", "HEAD").Output(); err == nil {
		m.Commit = strings.TrimSpace(string(out))
		dirty, err := exec.Command("git", "status", "--porcelain", "--", "actors", "conversation", "brain", "wire", "tenants").Output()
		if err == nil && len(bytes.TrimSpace(dirty)) > 0 {
			m.Commit += "+dirty"
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb uint64
		if _, err := fmt.Sscanf(string(b), "MemTotal: %d kB", &kb); err == nil {
			m.MemTotal = kb * 1024
		}
	}
	return m
}

type config struct {
	N             int      `json:"n"`
	Drivers       int      `json:"drivers"`
	Extra         []string `json:"extra_messages"`
	Messages      int      `json:"messages_per_session"`
	StreamRate    float64  `json:"stream_sessions_per_s"`
	StreamWorkers int      `json:"stream_workers"`
	QuietS        float64  `json:"quiet_s"`
	IdleAfterS    float64  `json:"idle_after_s"`
	SweepEveryS   float64  `json:"sweep_every_s"`
}

// stateRef is the conversation state of a typical signed-in session, built
// by the core alone: what the session holds beyond the actor.
type stateRef struct {
	Phase         string `json:"phase"`
	LiveApprox    int    `json:"live_approx_bytes"`
	EncodedLen    int    `json:"dormant_encoded_len"`
	EncodedCap    int    `json:"dormant_encoded_cap"`
	SeenIDs       int    `json:"remembered_provider_ids"`
	Authenticated bool   `json:"authenticated"`
	// The brain's memory the session keeps beside the core's state, live
	// and dormant alike (History turns and their text).
	BrainApprox    int `json:"brain_memory_approx_bytes"`
	BrainTurns     int `json:"brain_history_turns"`
	BrainTextBytes int `json:"brain_history_text_bytes"`
}

// referenceState replays a session's flow through the core: "hi", the
// profile found, the code, the later messages.
func referenceState(extra []string) stateRef {
	var (
		s   conversation.State
		pol conversation.Policy
		now = time.Now()
	)
	rnd := func() conversation.Rand {
		return conversation.Rand{Code: "123456", Salt: [16]byte{1, 2, 3}, ConversationID: ids.New()}
	}
	s.Apply(pol, conversation.Inbound{ProviderID: "wamid.0/1/0", Text: "hi"}, now, rnd())
	p, _ := anyNumber{}.ProfilesByPhone(context.Background(), phone(1))
	s.Apply(pol, conversation.ProfilesFound{Profiles: []conversation.Profile{conversation.Profile(p[0])}}, now, rnd())
	s.Apply(pol, conversation.Inbound{ProviderID: "wamid.0/1/1", Text: "123456"}, now, rnd())
	for k, text := range extra {
		s.Apply(pol, conversation.Inbound{ProviderID: fmt.Sprintf("wamid.0/1/%d", 2+k), Text: text}, now, rnd())
	}
	ref := stateRef{Phase: s.Phase().String(), Authenticated: s.Authenticated(now), LiveApprox: s.ApproxSize(), SeenIDs: 2 + len(extra)}
	// The later messages go to the brain, as in the session (actors'
	// execution.ask), which keeps the State each answer returns.
	var mem brain.State
	rb := rules.New()
	for _, text := range extra {
		ans, err := rb.Answer(context.Background(), brain.Request{
			TenantName: "Bench", Text: text, Authenticated: true, ProfileID: s.ProfileID(),
			FirstName: s.FirstName(), Now: now, State: mem,
		})
		if err == nil {
			mem = ans.State
		}
	}
	ref.BrainTurns = len(mem.History)
	ref.BrainApprox = int(unsafe.Sizeof(mem)) + len(mem.Language) + cap(mem.History)*int(unsafe.Sizeof(brain.Turn{}))
	for _, t := range mem.History {
		ref.BrainTextBytes += len(t.Text)
	}
	ref.BrainApprox += ref.BrainTextBytes
	if mem.Pending != nil {
		ref.BrainApprox += int(unsafe.Sizeof(*mem.Pending))
	}
	s.Compact(pol, now)
	enc, _ := s.MarshalBinary()
	ref.EncodedLen, ref.EncodedCap = len(enc), cap(enc)
	return ref
}

type activation struct {
	SignInS      float64 `json:"sign_in_s"`
	SessionsPerS float64 `json:"sessions_per_s_to_authenticated"`
	ChatS        float64 `json:"later_messages_s"`
	ChatMsgsPerS float64 `json:"later_messages_per_s"`
	First        Latency `json:"latency_first_message"`
	Code         Latency `json:"latency_code"`
	Later        Latency `json:"latency_later_messages"`
	All          Latency `json:"latency_all"`
	Records      int64   `json:"records_produced"`
	Errors       int64   `json:"errors"`
	FirstError   string  `json:"first_error,omitempty"`
	Peaks        Peaks   `json:"peaks"`
	CPU          CPU     `json:"cpu"`
}

type memory struct {
	Baseline memPoint  `json:"baseline"`
	Live     memResult `json:"live"`
	Dormant  memResult `json:"dormant"`
}

type memResult struct {
	memPoint
	Sessions       int     `json:"sessions"`
	Live           int     `json:"live"`
	Dormant        int     `json:"dormant"`
	HeapDelta      int64   `json:"heap_delta_bytes"`
	RSSDelta       int64   `json:"rss_delta_bytes"`
	HeapPerSession float64 `json:"heap_bytes_per_session"`
	RSSPerSession  float64 `json:"rss_bytes_per_session"`
}

func perSession(m, base memPoint, n int) memResult {
	r := memResult{
		memPoint:  m,
		Sessions:  n,
		HeapDelta: int64(m.HeapAlloc) - int64(base.HeapAlloc),
		RSSDelta:  int64(m.RSS) - int64(base.RSS),
	}
	if n > 0 {
		r.HeapPerSession = float64(r.HeapDelta) / float64(n)
		r.RSSPerSession = float64(r.RSSDelta) / float64(n)
	}
	return r
}

type streamRep struct {
	Seconds  float64 `json:"seconds"`
	Sessions int     `json:"sessions"`
	Skipped  int     `json:"sessions_skipped_pool_full"`
	phaseRep
	StartLagP99Ms float64 `json:"start_lag_p99_ms"`
	StartLagMaxMs float64 `json:"start_lag_max_ms"`
	Errors        int64   `json:"errors"`
	FirstError    string  `json:"first_error,omitempty"`
	CPU           CPU     `json:"cpu"`
}

// quietGC is the quiet stream again while runtime.GC runs a full cycle.
type quietGC struct {
	streamRep
	GCS float64 `json:"gc_cycle_s"`
}

// phaseRep is a stream's latency over one stretch of time.
// Scheduled is the first message's latency counted from when the session
// was due to start rather than from Send: it includes any stall that
// delayed the generator itself (coordinated omission).
type phaseRep struct {
	WindowS   float64 `json:"window_s"`
	First     Latency `json:"latency_first_message"`
	All       Latency `json:"latency_all"`
	Scheduled Latency `json:"latency_first_from_schedule"`
}

func summaries(hs [nHists]*hist, window time.Duration) phaseRep {
	return phaseRep{
		WindowS:   window.Seconds(),
		First:     hs[kindFirst].summary(),
		All:       hs[histAll].summary(),
		Scheduled: hs[histScheduled].summary(),
	}
}

func streamReport(s *streamResult, hs [nHists]*hist, d time.Duration) streamRep {
	lag := s.lag.summary()
	return streamRep{
		Seconds:       d.Seconds(),
		Sessions:      s.started,
		Skipped:       s.skipped,
		phaseRep:      summaries(hs, d),
		StartLagP99Ms: lag.P99Ms,
		StartLagMaxMs: lag.MaxMs,
		Errors:        s.errs,
		FirstError:    errString(s.firstErr),
	}
}

type passivation struct {
	Sessions           int       `json:"sessions"`
	FirstDormantS      float64   `json:"first_dormant_after_sweeper_start_s"`
	DurationS          float64   `json:"duration_first_to_last_dormant_s"`
	RatePerS           float64   `json:"passivations_per_s"`
	Completed          bool      `json:"completed_in_window"`
	DormantAtWindowEnd int       `json:"dormant_at_window_end,omitempty"`
	AllDormantS        float64   `json:"all_dormant_incl_stream_after_s"`
	Stream             streamRep `json:"stream"`
	Before             phaseRep  `json:"stream_before_first_dormant"`
	During             phaseRep  `json:"stream_during_passivation"`
	After              phaseRep  `json:"stream_after_last_dormant"`
	Peaks              Peaks     `json:"peaks"`
	CPU                CPU       `json:"cpu"`
	Timeline           []Second  `json:"timeline"`
}

type resumeReport struct {
	Sessions   int     `json:"sessions"`
	Greeted    int     `json:"greeted_by_name"`
	Errors     int64   `json:"errors"`
	FirstError string  `json:"first_error,omitempty"`
	Seconds    float64 `json:"seconds"`
	Latency    Latency `json:"latency"`
}

func (r *report) print(w io.Writer) {
	fmt.Fprintf(w, "Parley sessions bench: %d sessions, one node (%d CPUs, GOMAXPROCS %d, %s, %s RAM), commit %s\n",
		r.Config.N, r.Machine.CPUs, r.Machine.GOMAXPROCS, r.Machine.GoVersion, gib(r.Machine.MemTotal), r.Machine.Commit)
	fmt.Fprintf(w, "%s\n", r.Note)
	fmt.Fprintf(w, "real session actor + placement, rules brain, bench backend (one profile per number); %d messages per session (hi, code, %s)\n\n",
		r.Config.Messages, strings.Join(r.Config.Extra, ", "))

	t := tabwriter.NewWriter(w, 2, 0, 2, ' ', 0)
	lat := func(l Latency) string {
		return fmt.Sprintf("%.2f\t%.2f\t%.2f\t%d", l.P50Ms, l.P99Ms, l.MaxMs, l.N)
	}
	a := r.Activation
	fmt.Fprintf(t, "ACTIVATION (%d drivers, closed loop)\t\t\t\t\n", r.Config.Drivers)
	fmt.Fprintf(t, "  to authenticated\t%.0f sessions/s\t(%.1f s)\t\t\n", a.SessionsPerS, a.SignInS)
	if a.ChatS > 0 {
		fmt.Fprintf(t, "  later messages\t%.0f msgs/s\t(%.1f s)\t\t\n", a.ChatMsgsPerS, a.ChatS)
	}
	fmt.Fprintf(t, "  errors\t%d\t\t\t\n", a.Errors)
	fmt.Fprintf(t, "  Send→Ack latency\tp50 ms\tp99 ms\tmax ms\tn\n")
	fmt.Fprintf(t, "    first message (spawn+lookup+code)\t%s\n", lat(a.First))
	fmt.Fprintf(t, "    code (sign-in)\t%s\n", lat(a.Code))
	fmt.Fprintf(t, "    later messages\t%s\n", lat(a.Later))
	fmt.Fprintf(t, "    all\t%s\n", lat(a.All))
	fmt.Fprintf(t, "  peak during activation\trss %s\theap %s\tgoroutines %d\t\n", gib(a.Peaks.RSS), gib(a.Peaks.HeapLive), a.Peaks.Goroutines)
	fmt.Fprintf(t, "  cpu (cores): %s\n", cpuText(a.CPU))
	fmt.Fprintf(t, "\t\t\t\t\n")

	m := r.Memory
	fmt.Fprintf(t, "MEMORY (after GC + FreeOSMemory, above baseline)\tsessions\theap B/session\tRSS B/session\t\n")
	fmt.Fprintf(t, "  live idle actors\t%d\t%.0f\t%.0f\t\n", m.Live.Sessions, m.Live.HeapPerSession, m.Live.RSSPerSession)
	fmt.Fprintf(t, "  dormant (passivated)\t%d\t%.0f\t%.0f\t\n", m.Dormant.Sessions, m.Dormant.HeapPerSession, m.Dormant.RSSPerSession)
	fmt.Fprintf(t, "  baseline / live / dormant heap\t%s\t%s\t%s\t\n", mibs(m.Baseline.HeapAlloc), mibs(m.Live.HeapAlloc), mibs(m.Dormant.HeapAlloc))
	fmt.Fprintf(t, "  baseline / live / dormant RSS\t%s\t%s\t%s\t\n", mibs(m.Baseline.RSS), mibs(m.Live.RSS), mibs(m.Dormant.RSS))
	fmt.Fprintf(t, "  core state alone (replay)\tlive ≈%d B\tdormant %d B (cap %d)\t%s, %d ids\t\n",
		r.State.LiveApprox, r.State.EncodedLen, r.State.EncodedCap, r.State.Phase, r.State.SeenIDs)
	fmt.Fprintf(t, "  brain memory alone (replay)\t≈%d B\t%d turns\t%d B of text\t\n",
		r.State.BrainApprox, r.State.BrainTurns, r.State.BrainTextBytes)
	fmt.Fprintf(t, "\t\t\t\t\n")

	p := r.Passivation
	fmt.Fprintf(t, "PASSIVATION (IdleAfter %.0fs, sweep every %.0fs)\t\t\t\t\n", r.Config.IdleAfterS, r.Config.SweepEveryS)
	fmt.Fprintf(t, "  sessions passivated together\t%d\t\t\t\n", p.Sessions)
	if p.Completed {
		fmt.Fprintf(t, "  first → last dormant\t%.2f s\t%.0f/s\t\t\n", p.DurationS, p.RatePerS)
	} else {
		fmt.Fprintf(t, "  NOT FINISHED in window\t%.2f s\t%d dormant\t\t\n", p.DurationS, p.DormantAtWindowEnd)
	}
	fmt.Fprintf(t, "  peak during passivation\trss %s\theap %s\tgoroutines %d\t\n", gib(p.Peaks.RSS), gib(p.Peaks.HeapLive), p.Peaks.Goroutines)
	fmt.Fprintf(t, "  cpu (cores), whole passivation stream: %s\n", cpuText(r.Passivation.CPU))
	fmt.Fprintf(t, "  per second since sweeper start\tdormant\tSend→Ack p99 / max ms\tfirst from schedule p99 / max ms\tgc / other-process cores\n")
	for _, sec := range p.Timeline {
		fmt.Fprintf(t, "    %2d s\t%d\t%.2f / %.2f\t%.2f / %.2f\t%.2f / %.2f\n", sec.T, sec.Dormant, sec.P99Ms, sec.MaxMs, sec.SchedP99Ms, sec.SchedMaxMs, sec.GCCores, sec.OtherCores)
	}
	fmt.Fprintf(t, "\t\t\t\t\n")
	fmt.Fprintf(t, "FRESH SESSIONS STREAM (%.0f sessions/s, open loop)\tp50 ms\tp99 ms\tmax ms\tn\n", r.Config.StreamRate)
	fmt.Fprintf(t, "  quiet (N live idle), all msgs\t%s\n", lat(r.Quiet.All))
	fmt.Fprintf(t, "  quiet, first message\t%s\n", lat(r.Quiet.First))
	fmt.Fprintf(t, "  quiet, first message from schedule\t%s\n", lat(r.Quiet.Scheduled))
	fmt.Fprintf(t, "  quiet + forced GC (%.1f s cycle), all msgs\t%s\n", r.QuietGC.GCS, lat(r.QuietGC.All))
	fmt.Fprintf(t, "  quiet + forced GC, first from schedule\t%s\n", lat(r.QuietGC.Scheduled))
	fmt.Fprintf(t, "  before first dormant, all msgs\t%s\n", lat(p.Before.All))
	fmt.Fprintf(t, "  DURING mass passivation, all msgs\t%s\n", lat(p.During.All))
	fmt.Fprintf(t, "  DURING mass passivation, first message\t%s\n", lat(p.During.First))
	fmt.Fprintf(t, "  DURING mass passivation, first from schedule\t%s\n", lat(p.During.Scheduled))
	fmt.Fprintf(t, "  after last dormant, all msgs\t%s\n", lat(p.After.All))
	fmt.Fprintf(t, "  stream start lag p99 / max (quiet; +GC; passivation)\t%.2f / %.2f\t%.2f / %.2f\t%.2f / %.2f\t\n",
		r.Quiet.StartLagP99Ms, r.Quiet.StartLagMaxMs, r.QuietGC.StartLagP99Ms, r.QuietGC.StartLagMaxMs, p.Stream.StartLagP99Ms, p.Stream.StartLagMaxMs)
	fmt.Fprintf(t, "  cpu (cores), quiet stream: %s\n", cpuText(r.Quiet.CPU))
	fmt.Fprintf(t, "  cpu (cores), quiet + GC stream: %s\n", cpuText(r.QuietGC.CPU))
	fmt.Fprintf(t, "  stream sessions (quiet; +GC; passivation), errors\t%d; %d; %d\t%d\t\t\n", r.Quiet.Sessions, r.QuietGC.Sessions, p.Stream.Sessions, r.Quiet.Errors+r.QuietGC.Errors+p.Stream.Errors)
	fmt.Fprintf(t, "\t\t\t\t\n")
	if r.Resume.Sessions > 0 {
		fmt.Fprintf(t, "RESUME (dormant → live, still signed in)\tp50 ms\tp99 ms\tmax ms\tn\n")
		fmt.Fprintf(t, "  greeted by name %d/%d\t%s\n", r.Resume.Greeted, r.Resume.Sessions, lat(r.Resume.Latency))
	}
	t.Flush()
	for _, e := range []string{a.FirstError, r.Quiet.FirstError, p.Stream.FirstError, r.Resume.FirstError} {
		if e != "" {
			fmt.Fprintf(w, "error: %s\n", e)
		}
	}
	if r.Timeouts > 0 || r.ProducerBadSlots > 0 {
		fmt.Fprintf(w, "timeouts %d, unmatched outbound records %d\n", r.Timeouts, r.ProducerBadSlots)
	}
}

func gib(b uint64) string {
	if b >= 1<<30 {
		return fmt.Sprintf("%.2f GiB", float64(b)/(1<<30))
	}
	return mib(b)
}

func cpuText(c CPU) string {
	return fmt.Sprintf("self %.2f (gc ≈%.2f, %d cycles), other processes %.2f, steal %.2f", c.Self, c.GC, c.GCCycles, c.Other, c.Steal)
}

func mibs(b uint64) string { return mib(b) }
