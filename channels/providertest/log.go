// Package providertest holds what the providers' fakes (twiliotest,
// metatest) share: the log of the messages a fake accepted, the count of
// attempts, and the queue of scripted failures, with the waits tests use.
package providertest

import (
	"context"
	"sync"
	"time"
)

// Log records the messages M a fake provider accepted and queues the
// failures F it was told to answer with. Its methods are safe for
// concurrent use. A fake embeds a *Log, so that its Messages, Attempts,
// Wait, Since, WaitFor and Reset are the Log's.
type Log[M, F any] struct {
	clone func(M) M

	mu       sync.Mutex
	messages []M
	attempts int
	failures []F
	// changed is closed, and replaced, whenever a message is recorded, to
	// wake waiters.
	changed chan struct{}
}

// NewLog creates a log; clone copies a message deeply enough that a
// caller changing a returned message does not change the log's.
func NewLog[M, F any](clone func(M) M) *Log[M, F] {
	return &Log[M, F]{clone: clone, changed: make(chan struct{})}
}

// Messages returns the messages accepted so far, oldest first.
func (l *Log[M, F]) Messages() []M {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.snapshotFrom(0)
}

// snapshotFrom copies the messages after the first i; l.mu is held.
func (l *Log[M, F]) snapshotFrom(i int) []M {
	out := make([]M, len(l.messages)-i)
	for j, m := range l.messages[i:] {
		out[j] = l.clone(m)
	}
	return out
}

// Attempts counts the requests made to the messages endpoint, accepted or
// not: what a retry test asserts on.
func (l *Log[M, F]) Attempts() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.attempts
}

// Wait blocks until at least n messages were accepted and returns them
// all, or returns those so far and ctx's error.
func (l *Log[M, F]) Wait(ctx context.Context, n int) ([]M, error) {
	out, err := l.await(ctx, func(k int) bool { return k >= n }, 0)
	if err != nil {
		return l.Messages(), err
	}
	return out, nil
}

// Since blocks until more than i messages were accepted and returns those
// after the first i, oldest first, or nothing and ctx's error. A test that
// follows the stream (Since(ctx, 0), then Since(ctx, i+len(got)), ...)
// copies each message once, where Wait copies every message on every call.
// Reset starts the count again from 0.
func (l *Log[M, F]) Since(ctx context.Context, i int) ([]M, error) {
	return l.await(ctx, func(k int) bool { return k > i }, i)
}

// await blocks until ready says yes to the number of messages, and
// returns the messages after the first from; nothing and ctx's error when
// ctx ends first.
func (l *Log[M, F]) await(ctx context.Context, ready func(int) bool, from int) ([]M, error) {
	for {
		l.mu.Lock()
		if ready(len(l.messages)) {
			out := l.snapshotFrom(from)
			l.mu.Unlock()
			return out, nil
		}
		changed := l.changed
		l.mu.Unlock()
		select {
		case <-changed:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// WaitFor waits up to timeout for at least n accepted messages and returns
// all the messages accepted by then: check the length, which is short of n
// when the time ran out.
func (l *Log[M, F]) WaitFor(n int, timeout time.Duration) []M {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	msgs, _ := l.Wait(ctx, n)
	return msgs
}

// Reset forgets recorded messages, attempts and pending failures.
func (l *Log[M, F]) Reset() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.messages, l.attempts, l.failures = nil, 0, nil
}

// Script queues f for the next n requests that TakeFailure asks.
func (l *Log[M, F]) Script(n int, f F) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for range n {
		l.failures = append(l.failures, f)
	}
}

// CountAttempt counts a request to the messages endpoint.
func (l *Log[M, F]) CountAttempt() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.attempts++
}

// TakeFailure pops the next scripted failure; ok is false when none is
// queued.
func (l *Log[M, F]) TakeFailure() (f F, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.failures) == 0 {
		return f, false
	}
	f = l.failures[0]
	l.failures = l.failures[1:]
	return f, true
}

// Record logs an accepted message and wakes the waiters.
func (l *Log[M, F]) Record(m M) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.messages = append(l.messages, m)
	close(l.changed)
	l.changed = make(chan struct{})
}
