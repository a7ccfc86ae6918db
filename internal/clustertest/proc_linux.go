package clustertest

import "syscall"

// sysProcAttr has the kernel kill a child when the test binary dies
// without cleaning up (a timeout panic, a Ctrl-C, kill -9), so no node or
// broker outlives its test holding ports and data dirs.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
