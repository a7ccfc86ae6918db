package chserver

import "syscall"

// sysProcAttr puts the server in its own process group, so Stop reaches
// everything it started, and has the kernel send it SIGTERM if Parley dies
// without stopping it, so no orphan keeps the ports and the data locked.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
}
