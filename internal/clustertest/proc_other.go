//go:build !linux

package clustertest

import "syscall"

// Elsewhere children are only killed by the tests' cleanup.
func sysProcAttr() *syscall.SysProcAttr { return nil }
