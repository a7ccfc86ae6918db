package clustertest

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"sync"
	"syscall"
	"time"
)

// process is one child process that can be started again after it ended,
// with the same arguments and the same log file.
type process struct {
	name    string
	bin     string
	args    []string
	env     []string
	logPath string

	mu      sync.Mutex
	cmd     *exec.Cmd
	done    chan struct{} // closed when the current run has exited
	exitErr error
	logFrom int64 // where the current run's output starts in the log
}

// start runs the process once more. Its stdout and stderr go to the log
// file, after a line that marks the start.
func (p *process) start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.done != nil {
		select {
		case <-p.done:
		default:
			return fmt.Errorf("%s is running", p.name)
		}
	}
	f, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	fmt.Fprintf(f, "=== clustertest: start %s at %s\n", p.name, time.Now().Format(time.RFC3339Nano))
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return err
	}
	cmd := exec.Command(p.bin, p.args...)
	cmd.Env = append(os.Environ(), p.env...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		f.Close()
		return err
	}
	done := make(chan struct{})
	p.cmd, p.done, p.exitErr, p.logFrom = cmd, done, nil, st.Size()
	go func() {
		err := cmd.Wait()
		f.Close()
		p.mu.Lock()
		p.exitErr = err
		p.mu.Unlock()
		close(done)
	}()
	return nil
}

// running reports whether the current run has not exited.
func (p *process) running() bool {
	p.mu.Lock()
	done := p.done
	p.mu.Unlock()
	if done == nil {
		return false
	}
	select {
	case <-done:
		return false
	default:
		return true
	}
}

// signal sends sig to the current run and waits up to timeout for it to
// exit. It returns the exit error (nil for status 0) or, if it did not
// exit in time, an error saying so (the process is then killed).
func (p *process) signal(sig syscall.Signal, timeout time.Duration) error {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	if cmd == nil || done == nil {
		return fmt.Errorf("%s was never started", p.name)
	}
	select {
	case <-done:
		return fmt.Errorf("%s had already exited: %v", p.name, p.exitError())
	default:
	}
	_ = cmd.Process.Signal(sig)
	select {
	case <-done:
		return p.exitError()
	case <-time.After(timeout):
		_ = cmd.Process.Kill()
		<-done
		return fmt.Errorf("%s did not exit within %s of %v; killed", p.name, timeout, sig)
	}
}

func (p *process) exitError() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.exitErr
}

// wait waits up to timeout for the current run to exit and returns how it
// ended (exit status or signal).
func (p *process) wait(timeout time.Duration) (*os.ProcessState, error) {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	if cmd == nil || done == nil {
		return nil, fmt.Errorf("%s was never started", p.name)
	}
	select {
	case <-done:
		// cmd.Wait set ProcessState before done was closed.
		return cmd.ProcessState, nil
	case <-time.After(timeout):
		return nil, fmt.Errorf("%s still running after %s", p.name, timeout)
	}
}

// runLog is what the current (or last) run wrote to the log so far.
func (p *process) runLog() string {
	p.mu.Lock()
	from := p.logFrom
	p.mu.Unlock()
	raw, err := os.ReadFile(p.logPath)
	if err != nil || int64(len(raw)) < from {
		return ""
	}
	return string(raw[from:])
}

// kill9 kills the current run, if any, and waits for it to be gone.
func (p *process) kill9() {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	if cmd == nil || done == nil {
		return
	}
	_ = cmd.Process.Kill()
	<-done
}

// waitLog waits until the current run's output matches re and returns the
// first submatch (or the whole match), or fails when the process exits or
// the timeout passes.
func (p *process) waitLog(re *regexp.Regexp, timeout time.Duration) (string, error) {
	deadline := time.Now().Add(timeout)
	for {
		p.mu.Lock()
		from, done := p.logFrom, p.done
		p.mu.Unlock()
		if raw, err := os.ReadFile(p.logPath); err == nil && int64(len(raw)) >= from {
			if m := re.FindSubmatch(raw[from:]); m != nil {
				return string(m[len(m)-1]), nil
			}
		}
		select {
		case <-done:
			return "", fmt.Errorf("%s exited (%v) before its log showed %q", p.name, p.exitError(), re)
		default:
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("%s: no %q in its log within %s", p.name, re, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// tail is the last n lines of the log (all runs).
func (p *process) tail(n int) string {
	raw, err := os.ReadFile(p.logPath)
	if err != nil {
		return err.Error()
	}
	raw = bytes.TrimRight(raw, "\n")
	lines := bytes.Split(raw, []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}
