package main

import (
	"errors"
	"io/fs"
	"path/filepath"
	"time"

	"github.com/parleyhq/parley/bench/internal/procstat"
)

// processCPU is a process's user+system CPU time so far; 0 if unreadable.
func processCPU(pid int) time.Duration {
	d, _ := procstat.ProcessCPU(pid)
	return d
}

// machineBusy is the CPU time every core spent busy so far.
func machineBusy() time.Duration {
	m, _ := procstat.ReadMachineCPU()
	busy, _ := m.Sub(procstat.MachineCPU{})
	return busy
}

// dirSize is the bytes of the regular files under dir.
func dirSize(dir string) int64 {
	var n int64
	filepath.WalkDir(dir, func(_ string, e fs.DirEntry, err error) error {
		if err == nil && e.Type().IsRegular() {
			if fi, err := e.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}

var errNoAddr = errors.New("broker did not say where it listens")
