package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"runtime/debug"
	"strings"
	"time"

	"github.com/parleyhq/parley/bench/internal/child"

	"github.com/parleyhq/parley/actors"
	"github.com/parleyhq/parley/bench/internal/procstat"
	"github.com/parleyhq/parley/bus"
	"github.com/parleyhq/parley/conversation"
	"github.com/parleyhq/parley/tenants"
	"github.com/parleyhq/parley/wire"
)

// restoreMode is what a restore child does with each changelog record.
const (
	modePlacement = "placement" // Placement.Restore / Forget, as actors.Router.restore
	modeCopy      = "copy"      // the same with a copy of each value (diagnostic)
	modeRead      = "read"      // nothing: the read alone (diagnostic)
)

// restoreResult is one restore, as a node does it when it is assigned
// partitions: every partition of parley.sessions read to its end with
// bus.ReadPartitions into an actors.Placement.
type restoreResult struct {
	Mode       string  `json:"mode"`
	Partitions int     `json:"partitions"`
	Records    int     `json:"records"`
	Tombstones int     `json:"tombstones"`
	Sessions   int     `json:"sessions"` // dormant sessions held afterwards
	Seconds    float64 `json:"seconds"`
	RecordsPS  float64 `json:"records_per_s"`
	SessionsPS float64 `json:"sessions_per_s"`
	// ProcessS is from this process's main to the restore's end: what a
	// restarted node spends before it can take its first record.
	ProcessS float64 `json:"process_to_restored_s"`
	// CPU of this process during the restore, in cores.
	CPUCores float64 `json:"cpu_cores"`
	GCCycles uint32  `json:"gc_cycles"`
	// Memory after collecting garbage: before the restore (the empty
	// node) and after it, and the growth per restored session.
	Before         memPoint `json:"before"`
	After          memPoint `json:"after"`
	HeapPerSession float64  `json:"heap_bytes_per_session"`
	RSSPerSession  float64  `json:"rss_bytes_per_session"`
	PeakRSS        uint64   `json:"peak_rss_bytes"`
	// Filled in by the parent, over the window from the child's exec to
	// "restored": the broker's CPU and everything else the machine ran
	// (other people's work: noise), in cores.
	BrokerCores     float64 `json:"broker_cpu_cores"`
	OtherCores      float64 `json:"other_cpu_cores"`
	Sampled         int     `json:"sampled_states"`
	SampleBadStates int     `json:"sampled_undecodable"`
}

var processStart = time.Now()

// restoreChild is the -role restore mode: a fresh process, as a restarted
// node is, restores every partition and prints "restored" the moment it
// is done, then its figures as one JSON line.
func restoreChild(brokers []string, partitions int, mode string) error {
	system := actors.NewSystem()
	defer system.Shutdown()
	reg, err := tenants.NewRegistry([]tenants.Tenant{{ID: tenantID, Name: "Bench", Sim: true}})
	if err != nil {
		return err
	}
	placement := actors.NewSessions(system, actors.Deps{
		Tenants: reg,
		Logger:  slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})

	r := restoreResult{Mode: mode, Partitions: partitions}
	r.Before = settle()
	parts := make([]int32, partitions)
	for i := range parts {
		parts[i] = int32(i)
	}
	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	cpu0 := processCPU(os.Getpid())
	t0 := time.Now()
	n, err := bus.ReadPartitions(context.Background(), brokers, nil, wire.TopicSessions, parts, 12*time.Second,
		func(_ int32, key, value []byte) {
			// As actors.Router.restore does.
			tenant, phone, ok := wire.SplitKey(key)
			if !ok {
				return
			}
			if value == nil {
				r.Tombstones++
			} else if r.Records%1000 == 0 {
				// One state in a thousand decoded: the records are real
				// sessions, signed in or waiting for their code.
				r.Sampled++
				var s conversation.State
				if s.UnmarshalBinary(value) != nil || s.ProfileID() == "" {
					r.SampleBadStates++
				}
			}
			r.Records++
			if mode == modeRead {
				return
			}
			if mode == modeCopy && value != nil {
				value = bytes.Clone(value)
			}
			// A tombstone (nil) removes the key.
			placement.Restore(wire.ActorID(tenant, phone), value)
		})
	d := time.Since(t0)
	if err != nil {
		return err
	}
	fmt.Println("restored")
	r.ProcessS = time.Since(processStart).Seconds()
	r.CPUCores = (processCPU(os.Getpid()) - cpu0).Seconds() / d.Seconds()
	runtime.ReadMemStats(&ms1)
	r.GCCycles = ms1.NumGC - ms0.NumGC
	if n != r.Records {
		return fmt.Errorf("ReadPartitions said %d records, the callback saw %d", n, r.Records)
	}
	r.Seconds = d.Seconds()
	r.RecordsPS = float64(r.Records) / d.Seconds()
	_, r.Sessions = placement.Counts()
	if mode == modeRead {
		r.Sessions = 0
	}
	r.SessionsPS = float64(r.Sessions) / d.Seconds()
	r.After = settle()
	r.PeakRSS = procstat.StatusBytes("self", "VmHWM:")
	if r.Sessions > 0 {
		r.HeapPerSession = float64(int64(r.After.HeapAlloc)-int64(r.Before.HeapAlloc)) / float64(r.Sessions)
		r.RSSPerSession = float64(int64(r.After.RSS)-int64(r.Before.RSS)) / float64(r.Sessions)
	}
	runtime.KeepAlive(placement)
	return json.NewEncoder(os.Stdout).Encode(r)
}

// memPoint is the process's memory after a full collection.
type memPoint struct {
	HeapAlloc uint64 `json:"heap_alloc_bytes"`
	HeapSys   uint64 `json:"heap_sys_bytes"`
	RSS       uint64 `json:"rss_bytes"`
}

// settle collects garbage until the heap stops shrinking, returns memory
// to the OS and reads the heap and the resident set.
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
	return memPoint{HeapAlloc: ms.HeapAlloc, HeapSys: ms.HeapSys - ms.HeapReleased, RSS: procstat.StatusBytes("self", "VmRSS:")}
}

// runRestore starts a restore child against brokers and waits for it. At
// is when the child printed "restored", as the parent saw it.
func runRestore(ctx context.Context, b *broker, partitions int, mode string) (r restoreResult, at time.Time, err error) {
	brokers := b.brokers()
	t0, busy0, bcpu0 := time.Now(), machineBusy(), processCPU(b.c.Pid())
	c, err := child.Start(child.Options{DropUnread: false}, "-role", "restore", "-brokers", strings.Join(brokers, ","), "-partitions", fmt.Sprint(partitions), "-mode", mode)
	if err != nil {
		return r, at, err
	}
	defer c.Stop(time.Minute)
	l, err := c.Line(ctx, 10*time.Minute)
	if err != nil {
		return r, at, fmt.Errorf("restore: %w", err)
	}
	at = time.Now()
	if l != "restored" {
		return r, at, fmt.Errorf("restore child said %q", l)
	}
	wall := at.Sub(t0).Seconds()
	ccpu, bcpu := processCPU(c.Pid()), processCPU(b.c.Pid())-bcpu0
	busy := machineBusy() - busy0
	bc := bcpu.Seconds() / wall
	oc := max((busy-ccpu-bcpu).Seconds()/wall, 0)
	l, err = c.Line(ctx, 5*time.Minute)
	if err != nil {
		return r, at, fmt.Errorf("restore: %w", err)
	}
	if err := json.NewDecoder(strings.NewReader(l)).Decode(&r); err != nil {
		return r, at, fmt.Errorf("restore child's report %q: %w", l, err)
	}
	r.BrokerCores, r.OtherCores = bc, oc
	return r, at, nil
}
