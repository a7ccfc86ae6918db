// Package child runs a benchmark's own binary again as a child process (a
// server under test, a broker, a restoring node) and talks to it over its
// standard streams: it reads the child's output line by line and tells it
// to stop by closing its standard input.
package child

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// Process is a running child.
type Process struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	lines  chan string // stdout, line by line
	exited chan struct{}
	err    error // Wait's result, valid once exited is closed
	once   sync.Once
	stop   error
}

// Options of Start.
type Options struct {
	// DropUnread drops output lines nobody reads instead of holding the
	// child until they are read: for a child that reports now and then
	// while the parent only waits for its first line.
	DropUnread bool
}

// Start re-executes this program with args. The child gets a process
// group of its own, so a terminal's Ctrl-C reaches only the parent, which
// stops its children in order (a broker flushes, a ClickHouse child is
// stopped and its data removed).
func Start(o Options, args ...string) (*Process, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe, args...)
	cmd.Stderr = os.Stderr
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
	p := &Process{cmd: cmd, stdin: stdin, lines: make(chan string, 16), exited: make(chan struct{})}
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), 16<<20)
		for sc.Scan() {
			if o.DropUnread {
				select {
				case p.lines <- sc.Text():
				default:
				}
				continue
			}
			p.lines <- sc.Text()
		}
		close(p.lines)
		p.err = cmd.Wait()
		close(p.exited)
	}()
	return p, nil
}

// Pid is the child's process id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Line waits for the child's next line of output.
func (p *Process) Line(ctx context.Context, timeout time.Duration) (string, error) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case l, ok := <-p.lines:
		if !ok {
			<-p.exited
			return "", fmt.Errorf("child exited: %v", p.err)
		}
		return l, nil
	case <-t.C:
		return "", fmt.Errorf("no output from the child within %v", timeout)
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// Send writes a command line to the child.
func (p *Process) Send(cmd string) { fmt.Fprintln(p.stdin, cmd) }

// Stop closes the child's stdin (its signal to stop cleanly) and waits; a
// child still running after grace is killed. Only the first call stops.
func (p *Process) Stop(grace time.Duration) error {
	p.once.Do(func() {
		p.stdin.Close()
		select {
		case <-p.exited:
			p.stop = p.err
		case <-time.After(grace):
			p.cmd.Process.Kill()
			<-p.exited
			p.stop = fmt.Errorf("child did not stop within %v; killed", grace)
		}
	})
	return p.stop
}

// Kill ends the child with SIGKILL, as a crash would, and waits for it.
func (p *Process) Kill() {
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.exited
}
