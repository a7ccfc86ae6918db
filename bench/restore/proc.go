package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/parleyhq/parley/bench/internal/procstat"
)

// child is one process of the bench (the program re-executed with -role):
// the broker, or a node restoring its sessions.
type child struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	lines  chan string // stdout, line by line
	exited chan struct{}
	err    error // Wait's result, valid once exited is closed
}

func startChild(args ...string) (*child, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe, args...)
	cmd.Stderr = os.Stderr
	// Its own process group: a terminal's Ctrl-C reaches the parent,
	// which stops its children in order (the broker flushes its data).
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	c := &child{cmd: cmd, stdin: stdin, lines: make(chan string, 16), exited: make(chan struct{})}
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), 16<<20)
		for sc.Scan() {
			c.lines <- sc.Text()
		}
		close(c.lines)
		c.err = cmd.Wait()
		close(c.exited)
	}()
	return c, nil
}

// line waits for the child's next line of output.
func (c *child) line(ctx context.Context, timeout time.Duration) (string, error) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case l, ok := <-c.lines:
		if !ok {
			<-c.exited
			return "", fmt.Errorf("child exited: %v", c.err)
		}
		return l, nil
	case <-t.C:
		return "", fmt.Errorf("no output from child within %v", timeout)
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// stop closes the child's stdin (its signal to stop cleanly) and waits;
// a child still running after grace is killed.
func (c *child) stop(grace time.Duration) error {
	c.stdin.Close()
	select {
	case <-c.exited:
		return c.err
	case <-time.After(grace):
		c.cmd.Process.Kill()
		<-c.exited
		return fmt.Errorf("child did not stop within %v; killed", grace)
	}
}

// kill ends the child with SIGKILL, as a crash would, and waits for it.
func (c *child) kill() {
	c.cmd.Process.Signal(syscall.SIGKILL)
	<-c.exited
}

func (c *child) pid() int { return c.cmd.Process.Pid }

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
