package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"syscall"
	"time"
)

// child is a target's process: this program re-executed with -serve.
type child struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	lines  chan string
	exited chan struct{}
	err    error // Wait's result, valid once exited is closed
	done   bool
}

func startChild(args ...string) (*child, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe, args...)
	cmd.Stderr = os.Stderr
	// Its own process group keeps a terminal's Ctrl-C from killing the
	// child outright: the parent stops it through stdin, so it stops its
	// ClickHouse and removes its data directory on the way out.
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
		for sc.Scan() {
			select {
			case c.lines <- sc.Text():
			default: // nobody is listening: drop rather than block the child
			}
		}
		close(c.lines)
		c.err = cmd.Wait()
		close(c.exited)
	}()
	return c, nil
}

func (c *child) pid() int { return c.cmd.Process.Pid }

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
		return "", fmt.Errorf("child did not start within %v", timeout)
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// send writes a command line to the child.
func (c *child) send(cmd string) { fmt.Fprintln(c.stdin, cmd) }

// stop closes the child's stdin (its signal to stop cleanly) and waits; a
// child still running after grace is killed.
func (c *child) stop(grace time.Duration) error {
	if c.done {
		return nil
	}
	c.done = true
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
