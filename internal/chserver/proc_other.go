//go:build !unix

package chserver

import (
	"os"
	"syscall"
)

// ClickHouse servers run on Unix only; elsewhere Stop falls back to killing
// the one process.
func sysProcAttr() *syscall.SysProcAttr { return nil }

func signalGroup(pid int, _ bool) {
	if p, err := os.FindProcess(pid); err == nil {
		_ = p.Kill()
	}
}

func alive(int) bool { return false }
