// Package procstat reads CPU times from /proc for the benchmarks that run
// their targets in child processes: a process's own CPU (all threads), this
// process's, and the whole machine's, so that a report can say how much of
// the cores a target used and how much other work disturbed the run.
package procstat

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// USER_HZ, the unit of /proc CPU times, is 100 on every Linux architecture
// Go supports.
const clockTick = 10 * time.Millisecond

// ProcessCPU is the user+system CPU time of a process so far, from
// /proc/<pid>/stat (fields 14 and 15), all threads included.
func ProcessCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces; fields are counted
	// from the closing parenthesis, after which field 3 comes.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, errors.New("unexpected /proc stat format")
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0, errors.New("unexpected /proc stat format")
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	return time.Duration(utime+stime) * clockTick, nil
}

// StatusBytes reads a "kB" line of /proc/<pid>/status (pid "self" for
// this process), such as "VmRSS:" or "VmHWM:", in bytes; 0 if unavailable.
func StatusBytes(pid, field string) uint64 {
	b, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, field); ok {
			f := strings.Fields(rest)
			if len(f) == 0 {
				return 0
			}
			kb, _ := strconv.ParseUint(f[0], 10, 64)
			return kb * 1024
		}
	}
	return 0
}

// SelfCPU is this process's user+system CPU time so far.
func SelfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// MachineCPU is the machine-wide CPU time from /proc/stat's "cpu" line.
type MachineCPU struct {
	busy, steal time.Duration
}

// ReadMachineCPU reads the machine-wide CPU time so far.
func ReadMachineCPU() (MachineCPU, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return MachineCPU{}, err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	// cpu user nice system idle iowait irq softirq steal ...
	if len(f) < 9 || f[0] != "cpu" {
		return MachineCPU{}, errors.New("unexpected /proc/stat format")
	}
	var v [8]int64
	for i := range v {
		n, err := strconv.ParseInt(f[i+1], 10, 64)
		if err != nil {
			return MachineCPU{}, err
		}
		v[i] = n
	}
	// Busy is what ran: user, nice, system, irq, softirq. Idle and
	// iowait did not; steal is the hypervisor's, reported apart.
	busy := v[0] + v[1] + v[2] + v[5] + v[6]
	return MachineCPU{busy: time.Duration(busy) * clockTick, steal: time.Duration(v[7]) * clockTick}, nil
}

// Sub is the busy and stolen time from o to m.
func (m MachineCPU) Sub(o MachineCPU) (busy, steal time.Duration) {
	return m.busy - o.busy, m.steal - o.steal
}

// Machine describes where a benchmark ran.
type Machine struct {
	NumCPU    int    `json:"nproc"`
	GoVersion string `json:"go_version"`
	CPUModel  string `json:"cpu_model,omitempty"`
	OS        string `json:"os"`
	// FsyncP50 and FsyncP99 are the latency of appending 4 KiB to a file
	// in FsyncDir (where the broker's data dir goes) and fsyncing it: the
	// embedded broker pays two per produced batch.
	FsyncDir string        `json:"fsync_dir"`
	FsyncP50 time.Duration `json:"fsync_p50_ns"`
	FsyncP99 time.Duration `json:"fsync_p99_ns"`
}

// DescribeMachine describes this machine, fsync latency in the temp
// directory included.
func DescribeMachine() Machine {
	m := Machine{NumCPU: runtime.NumCPU(), GoVersion: runtime.Version(), OS: runtime.GOOS + "/" + runtime.GOARCH}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for l := range strings.SplitSeq(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	m.FsyncDir = os.TempDir()
	m.FsyncP50, m.FsyncP99 = fsyncLatency(m.FsyncDir, 200)
	return m
}

// fsyncLatency appends and fsyncs 4 KiB n times in a temporary file in dir.
// Zero when the file cannot be written.
func fsyncLatency(dir string, n int) (p50, p99 time.Duration) {
	f, err := os.CreateTemp(dir, "parley-bench-fsync-")
	if err != nil {
		return 0, 0
	}
	defer os.Remove(f.Name())
	defer f.Close()
	buf := make([]byte, 4096)
	lat := make([]time.Duration, 0, n)
	for range n {
		start := time.Now()
		if _, err := f.Write(buf); err != nil {
			return 0, 0
		}
		if err := f.Sync(); err != nil {
			return 0, 0
		}
		lat = append(lat, time.Since(start))
	}
	slices.Sort(lat)
	return lat[n/2], lat[n*99/100]
}
