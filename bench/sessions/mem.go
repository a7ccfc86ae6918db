package main

import (
	"bytes"
	"math"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/parleyhq/parley/bench/internal/procstat"
)

// memPoint is the process's memory at one moment, after a full collection.
type memPoint struct {
	HeapAlloc  uint64 `json:"heap_alloc_bytes"`
	HeapSys    uint64 `json:"heap_sys_bytes"`
	StackInuse uint64 `json:"stack_inuse_bytes"`
	RSS        uint64 `json:"rss_bytes"`
	Goroutines int    `json:"goroutines"`
}

// settle collects garbage until the heap stops shrinking and returns the
// memory to the OS, then reads the heap (runtime.MemStats) and the
// resident set (/proc/self/status VmRSS).
func settle() memPoint {
	var prev uint64
	for range 5 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		if prev != 0 && ms.HeapAlloc+ms.HeapAlloc/1000 >= prev {
			break
		}
		prev = ms.HeapAlloc
	}
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return memPoint{
		HeapAlloc:  ms.HeapAlloc,
		HeapSys:    ms.HeapSys - ms.HeapReleased,
		StackInuse: ms.StackInuse,
		RSS:        procstat.StatusBytes("self", "VmRSS:"),
		Goroutines: runtime.NumGoroutine(),
	}
}

// rssNow reads the resident set cheaply from /proc/self/statm.
func rssNow() uint64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	f := bytes.Fields(b)
	if len(f) < 2 {
		return 0
	}
	pages, _ := strconv.ParseUint(string(f[1]), 10, 64)
	return pages * uint64(os.Getpagesize())
}

// Peaks are the highest values seen by a sampler during one phase.
type Peaks struct {
	RSS        uint64 `json:"rss_bytes"`
	HeapLive   uint64 `json:"heap_objects_bytes"`
	Goroutines uint64 `json:"goroutines"`
}

// sampler watches memory and goroutines every 50 ms without stopping the
// world (runtime/metrics, /proc/self/statm).
type sampler struct {
	mu    sync.Mutex
	peaks Peaks
	stop  chan struct{}
	done  chan struct{}
}

func startSampler() *sampler {
	s := &sampler{stop: make(chan struct{}), done: make(chan struct{})}
	samples := []metrics.Sample{
		{Name: "/memory/classes/heap/objects:bytes"},
		{Name: "/sched/goroutines:goroutines"},
	}
	go func() {
		defer close(s.done)
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			metrics.Read(samples)
			rss := rssNow()
			s.mu.Lock()
			s.peaks.RSS = max(s.peaks.RSS, rss)
			s.peaks.HeapLive = max(s.peaks.HeapLive, samples[0].Value.Uint64())
			s.peaks.Goroutines = max(s.peaks.Goroutines, samples[1].Value.Uint64())
			s.mu.Unlock()
			select {
			case <-s.stop:
				return
			case <-t.C:
			}
		}
	}()
	return s
}

// finish stops the sampler and returns its peaks.
func (s *sampler) finish() Peaks {
	close(s.stop)
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.peaks
}

// cpuSnap is CPU time so far: this process's and the whole machine's.
type cpuSnap struct {
	at                  time.Time
	self, busy, stealed time.Duration
	gcCPU               float64 // seconds of CPU the collector used
	gcCycles            uint64
}

func readGC() (cpu float64, cycles uint64) {
	s := []metrics.Sample{{Name: "/cpu/classes/gc/total:cpu-seconds"}, {Name: "/gc/cycles/total:gc-cycles"}}
	metrics.Read(s)
	return s[0].Value.Float64(), s[1].Value.Uint64()
}

const clockTick = 10 * time.Millisecond // USER_HZ is 100 on Linux

func readCPU() cpuSnap {
	s := cpuSnap{at: time.Now()}
	s.gcCPU, s.gcCycles = readGC()
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		s.self = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return s
	}
	line, _, _ := bytes.Cut(b, []byte("\n"))
	f := bytes.Fields(line)
	if len(f) < 9 || string(f[0]) != "cpu" {
		return s
	}
	n := func(i int) time.Duration {
		v, _ := strconv.ParseInt(string(f[i]), 10, 64)
		return time.Duration(v) * clockTick
	}
	// user nice system idle iowait irq softirq steal
	s.busy = n(1) + n(2) + n(3) + n(6) + n(7)
	s.stealed = n(8)
	return s
}

// CPU is how busy the cores were over a phase, in cores (1.0 = one core
// busy throughout): this process, everything else on the machine (other
// work sharing the cores: noise), and time the hypervisor stole.
// GC is the runtime's estimate of the collector's share (time its
// workers held a P, so it can exceed Self when other processes take the
// cores), GCCycles the collections that ran.
type CPU struct {
	Self     float64 `json:"self_cores"`
	GC       float64 `json:"gc_cores"`
	GCCycles uint64  `json:"gc_cycles"`
	Other    float64 `json:"other_cores"`
	Steal    float64 `json:"steal_cores"`
}

func cpuSince(a cpuSnap) CPU { return cpuBetween(a, readCPU()) }

func cpuBetween(a, b cpuSnap) CPU {
	wall := b.at.Sub(a.at).Seconds()
	if wall <= 0 {
		return CPU{}
	}
	self := (b.self - a.self).Seconds()
	busy := (b.busy - a.busy).Seconds()
	r := func(x float64) float64 { return math.Round(x/wall*100) / 100 }
	return CPU{
		Self:     r(self),
		GC:       r(b.gcCPU - a.gcCPU),
		GCCycles: b.gcCycles - a.gcCycles,
		Other:    r(max(busy-self, 0)),
		Steal:    r((b.stealed - a.stealed).Seconds()),
	}
}
