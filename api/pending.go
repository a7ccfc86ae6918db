package api

import (
	"sync"

	"google.golang.org/protobuf/proto"

	"github.com/parleyhq/parley/wire"
)

// Pending matches command results from session actors to the API requests
// waiting for them. The session may live on any node: its result comes back
// on parley.replies, which every node follows (ResolveRecord), committed
// together with the command's effects.
type Pending struct {
	mu      sync.Mutex
	waiters map[string]chan *wire.CommandResult
}

// NewPending creates an empty registry.
func NewPending() *Pending {
	return &Pending{waiters: map[string]chan *wire.CommandResult{}}
}

// Wait registers a request id and returns the channel its result arrives
// on, and a function to call when the caller stops waiting.
func (p *Pending) Wait(id string) (<-chan *wire.CommandResult, func()) {
	ch := make(chan *wire.CommandResult, 1)
	p.mu.Lock()
	p.waiters[id] = ch
	p.mu.Unlock()
	return ch, func() {
		p.mu.Lock()
		delete(p.waiters, id)
		p.mu.Unlock()
	}
}

// Resolve hands a result to its waiter; a result nobody waits for (the
// caller timed out, or a replay after a crash) is dropped.
func (p *Pending) Resolve(r *wire.CommandResult) {
	p.mu.Lock()
	ch := p.waiters[r.RequestId]
	delete(p.waiters, r.RequestId)
	p.mu.Unlock()
	if ch != nil {
		ch <- r
	}
}

// ResolveRecord resolves a result read from parley.replies. Every node
// reads every result; the ones its callers do not wait for are dropped.
func (p *Pending) ResolveRecord(key, value []byte) {
	p.mu.Lock()
	_, waiting := p.waiters[string(key)]
	p.mu.Unlock()
	if !waiting {
		return
	}
	r := &wire.CommandResult{}
	if err := proto.Unmarshal(value, r); err != nil {
		return
	}
	p.Resolve(r)
}
