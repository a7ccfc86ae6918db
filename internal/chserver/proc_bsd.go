//go:build unix && !linux

package chserver

import "syscall"

// sysProcAttr puts the server in its own process group, so Stop reaches
// everything it started. Without a parent-death signal here, a server
// orphaned by a crash is stopped by killStale at the next start.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
