//go:build unix

package chserver

import "syscall"

// signalGroup sends SIGTERM, or SIGKILL when kill is set, to the process
// group led by pid (the server runs in its own group).
func signalGroup(pid int, kill bool) {
	sig := syscall.SIGTERM
	if kill {
		sig = syscall.SIGKILL
	}
	_ = syscall.Kill(-pid, sig)
}

func alive(pid int) bool { return syscall.Kill(pid, 0) == nil }
