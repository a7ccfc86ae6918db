package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"text/tabwriter"
)

// report is the whole run; it is also the -json output.
type report struct {
	Machine  machine         `json:"machine"`
	Config   config          `json:"config"`
	Generate generate        `json:"generate"`
	Write    writeResult     `json:"write"`
	Warm     []restoreResult `json:"restore_warm"`
	Restarts []restart       `json:"restarts"`
	EndToEnd e2eResult       `json:"end_to_end"`
}

type machine struct {
	CPUs      int    `json:"cpus"`
	GoVersion string `json:"go_version"`
	MemTotal  uint64 `json:"mem_total_bytes"`
	// Commit is the working tree's commit, "+dirty" when actors, bus or
	// conversation have uncommitted changes.
	Commit string `json:"commit,omitempty"`
}

func machineInfo() machine {
	m := machine{CPUs: runtime.NumCPU(), GoVersion: runtime.Version(), MemTotal: statusMem()}
	if out, err := exec.Command("git", "rev-parse", "--short", "HEAD").Output(); err == nil {
		m.Commit = strings.TrimSpace(string(out))
		dirty, err := exec.Command("git", "status", "--porcelain", "--", "actors", "bus", "conversation", "wire").Output()
		if err == nil && len(bytes.TrimSpace(dirty)) > 0 {
			m.Commit += "+dirty"
		}
	}
	return m
}

func statusMem() uint64 {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	var kb uint64
	fmt.Sscanf(string(b), "MemTotal: %d kB", &kb)
	return kb * 1024
}

type config struct {
	Sessions       int     `json:"sessions"`
	Partitions     int     `json:"partitions"`
	Overwrite      float64 `json:"overwrite_fraction"`
	Erase          float64 `json:"erase_fraction"`
	Records        int     `json:"records"`
	Overwritten    int     `json:"sessions_written_twice"`
	Erased         int     `json:"erased_keys"`
	MeanStateBytes float64 `json:"mean_state_bytes"`
	DataDir        string  `json:"data_dir"`
}

type generate struct {
	Seconds    float64 `json:"seconds"`
	SessionsPS float64 `json:"sessions_per_s"`
}

// restart is the broker restarted on its data directory, then a fresh
// node restoring every partition.
type restart struct {
	Kind         string  `json:"kind"` // "stop" (clean) or "kill -9"
	StopS        float64 `json:"stop_s,omitempty"`
	BrokerStartS float64 `json:"broker_start_s"`
	BrokerRSS    uint64  `json:"broker_rss_bytes"`
	// ReadyS is from the broker's exec to the node's last session
	// restored: broker start, node process start, restore.
	ReadyS  float64       `json:"ready_s"`
	Restore restoreResult `json:"restore"`
}

func (r *report) print(w io.Writer) {
	c := r.Config
	fmt.Fprintf(w, "\nRestore: %d sessions, %d partitions (%d CPUs, %s, %s, commit %s)\n",
		c.Sessions, c.Partitions, r.Machine.CPUs, gib(r.Machine.MemTotal), r.Machine.GoVersion, r.Machine.Commit)
	fmt.Fprintf(w, "changelog: %d records = %d final states (mean %.0f B) + %d earlier states + %d erased keys × (state + tombstone)\n",
		c.Records, c.Sessions, c.MeanStateBytes, c.Overwritten, c.Erased)
	fmt.Fprintf(w, "states built by the core: %.1fs (%.0f sessions/s)\n", r.Generate.Seconds, r.Generate.SessionsPS)
	wr := r.Write
	fmt.Fprintf(w, "write (kgo, manual partitioner, async): %d records in %.2fs = %.0f records/s, %.1f MiB/s; broker CPU %.2f cores; data dir %.0f MiB; broker RSS %.0f MiB\n\n",
		wr.Records, wr.Seconds, wr.PerS, wr.MiBPerS, wr.BrokerCPUCores, mibf(wr.DataDirBytes), mibf(int64(wr.BrokerRSS)))

	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "restore\tbroker start s\trestore s\trecords/s\tsessions/s\tready s\tnode CPU\tbroker CPU\tother CPU\tGCs\theap B/session\tRSS B/session\tpeak RSS\t")
	row := func(name string, start, ready float64, x restoreResult) {
		rs, ss, rd := "-", "-", "-"
		if start > 0 {
			rs = fmt.Sprintf("%.2f", start)
			rd = fmt.Sprintf("%.2f", ready)
		}
		if x.Sessions > 0 {
			ss = fmt.Sprintf("%.0f", x.SessionsPS)
		}
		hp, rp := "-", "-"
		if x.Sessions > 0 {
			hp, rp = fmt.Sprintf("%.0f", x.HeapPerSession), fmt.Sprintf("%.0f", x.RSSPerSession)
		}
		fmt.Fprintf(tw, "%s\t%s\t%.2f\t%.0f\t%s\t%s\t%.2f\t%.2f\t%.2f\t%d\t%s\t%s\t%s\t\n",
			name, rs, x.Seconds, x.RecordsPS, ss, rd, x.CPUCores, x.BrokerCores, x.OtherCores, x.GCCycles, hp, rp, gib(x.PeakRSS))
	}
	for _, x := range r.Warm {
		row("warm, "+x.Mode, 0, 0, x)
	}
	for _, x := range r.Restarts {
		row("after broker "+x.Kind, x.BrokerStartS, x.ReadyS, x.Restore)
	}
	tw.Flush()
	e := r.EndToEnd
	switch {
	case e.Skipped != "":
		fmt.Fprintf(w, "\nend to end (parley broker + parley serve → /readyz 200): skipped: %s\n", e.Skipped)
	case e.Error != "":
		fmt.Fprintf(w, "\nend to end: failed: %s\n", e.Error)
	case len(e.Runs) > 0:
		fmt.Fprintln(w, "\nend to end (parley broker on the same data dir, parley serve until /readyz 200):")
		for _, x := range e.Runs {
			b := "-"
			if x.BrokerStartS > 0 {
				b = fmt.Sprintf("%.2fs", x.BrokerStartS)
			}
			fmt.Fprintf(w, "  %s: broker up %s, serve ready %.2fs after its exec, ready %.2fs after the first exec; serve RSS %s\n",
				x.Order, b, x.ServeReadyS, x.ReadyS, gib(x.ServeRSS))
			for _, l := range x.RestoreLog {
				fmt.Fprintf(w, "    %s\n", l)
			}
		}
	}
}

func gib(b uint64) string {
	if b >= 1<<30 {
		return fmt.Sprintf("%.2f GiB", float64(b)/(1<<30))
	}
	return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20))
}
