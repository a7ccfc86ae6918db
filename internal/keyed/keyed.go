// Package keyed is Parley's one keyed serial executor outside the session
// placement: items of one key run one after another, in the order they
// were submitted; different keys run in parallel. A key with work has one
// goroutine, which ends when its queue is empty, so an idle key costs
// nothing.
//
// Two bounds keep one key (one customer, one tenant) from taking what the
// others need: Concurrency caps items running at once over all keys, and
// Backlog caps the items one group of keys (by default each key alone)
// holds, queued or running; Submit refuses an item beyond it, and the
// caller decides what becomes of it (a dead letter).
package keyed

import (
	"context"
	"errors"
	"sync"
)

// ErrFull is what Submit returns when the item's group already holds
// Options.Backlog items.
var ErrFull = errors.New("keyed: backlog full")

// Options configure an Executor. The zero value bounds nothing.
type Options struct {
	// Concurrency bounds the items running at once over all keys; a key
	// whose turn comes waits for a slot before each item, so that a busy
	// key takes its turn with the others. 0: no bound.
	Concurrency int
	// Backlog bounds the items of one group, queued or running. 0: no
	// bound.
	Backlog int
	// Group names the group a key belongs to, for Backlog: the keys of
	// one tenant, say, when the key is the tenant's customer. Nil: each
	// key is its own group.
	Group func(key string) string
}

// Executor runs items by key. Its methods may be called from any
// goroutine.
type Executor[T any] struct {
	o     Options
	run   func(ctx context.Context, key string, item T)
	slots chan struct{}

	mu     sync.Mutex
	queues map[string]*queue[T]
	groups map[string]int
	wg     sync.WaitGroup
}

type queue[T any] struct {
	group string
	items []T
}

// New creates an executor that calls run for each item.
func New[T any](o Options, run func(ctx context.Context, key string, item T)) *Executor[T] {
	e := &Executor[T]{o: o, run: run, queues: map[string]*queue[T]{}, groups: map[string]int{}}
	if o.Concurrency > 0 {
		e.slots = make(chan struct{}, o.Concurrency)
	}
	return e
}

// Submit queues item behind key's earlier items. The items of a key run
// in the ctx of the Submit that found the key without work (callers pass
// one ctx for all: their Run's). It returns ErrFull, queuing nothing, when the key's group holds Backlog
// items already. Once ctx has ended, items not yet started are not run:
// they are dropped, and callers that must not lose them (a Kafka offset
// not committed) find them again.
func (e *Executor[T]) Submit(ctx context.Context, key string, item T) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	q := e.queues[key]
	group := key
	if q != nil {
		group = q.group
	} else if e.o.Group != nil {
		group = e.o.Group(key)
	}
	if e.o.Backlog > 0 && e.groups[group] >= e.o.Backlog {
		return ErrFull
	}
	e.groups[group]++
	if q == nil {
		q = &queue[T]{group: group}
		e.queues[key] = q
		e.wg.Add(1)
		go e.drain(ctx, key, q)
	}
	q.items = append(q.items, item)
	return nil
}

// Held is how many items key's group holds, queued or running.
func (e *Executor[T]) Held(group string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.groups[group]
}

// Wait returns once every key's goroutine has ended: after ctx ended, or
// when there is no work left.
func (e *Executor[T]) Wait() { e.wg.Wait() }

func (e *Executor[T]) drain(ctx context.Context, key string, q *queue[T]) {
	defer e.wg.Done()
	for {
		e.mu.Lock()
		if len(q.items) == 0 || ctx.Err() != nil {
			e.forget(key, q)
			e.mu.Unlock()
			return
		}
		item := q.items[0]
		var zero T
		q.items[0] = zero
		q.items = q.items[1:]
		e.mu.Unlock()
		if !e.acquire(ctx) {
			e.mu.Lock()
			e.done(q.group, 1)
			e.forget(key, q)
			e.mu.Unlock()
			return
		}
		e.run(ctx, key, item)
		e.release()
		e.mu.Lock()
		e.done(q.group, 1)
		e.mu.Unlock()
	}
}

// forget removes an ending key and what it still held. e.mu is held.
func (e *Executor[T]) forget(key string, q *queue[T]) {
	delete(e.queues, key)
	e.done(q.group, len(q.items))
	q.items = nil
}

// done takes n items off group's count. e.mu is held.
func (e *Executor[T]) done(group string, n int) {
	if e.groups[group] -= n; e.groups[group] <= 0 {
		delete(e.groups, group)
	}
}

func (e *Executor[T]) acquire(ctx context.Context) bool {
	if e.slots == nil {
		return true
	}
	select {
	case e.slots <- struct{}{}:
		return true
	case <-ctx.Done():
		return false
	}
}

func (e *Executor[T]) release() {
	if e.slots != nil {
		<-e.slots
	}
}
