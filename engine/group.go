package engine

import (
	"context"
	"log/slog"
	"sync"
)

// group holds what the engine started, in order: roles (goroutines that
// run until their context ends) and closers (a producer, a child
// ClickHouse, the embedded broker). Stop undoes it in the reverse order,
// waiting for each role to return before the next step, so that what
// started first (the infrastructure) stops last and the front door (HTTP)
// stops first.
type group struct {
	log   *slog.Logger
	mu    sync.Mutex
	steps []step
}

// step is one started thing: stop ends it and waits.
type step struct {
	name string
	stop func()
}

// Go runs a role until Stop reaches it; a role that fails is logged (the
// others run on: readiness says what is missing).
func (g *group) Go(name string, run func(ctx context.Context) error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := run(ctx); err != nil && ctx.Err() == nil {
			g.log.Error("role stopped", "role", name, "err", err)
		}
	}()
	g.push(step{name: name, stop: func() { cancel(); <-done }})
}

// Defer runs fn when Stop reaches it.
func (g *group) Defer(name string, fn func()) { g.push(step{name: name, stop: fn}) }

func (g *group) push(s step) {
	g.mu.Lock()
	g.steps = append(g.steps, s)
	g.mu.Unlock()
}

// Stop stops everything, the last started first. It may be called more
// than once.
func (g *group) Stop() {
	g.mu.Lock()
	steps := g.steps
	g.steps = nil
	g.mu.Unlock()
	for i := len(steps) - 1; i >= 0; i-- {
		g.log.Debug("stopping", "step", steps[i].name)
		steps[i].stop()
	}
}

// Serve runs a server until Stop reaches it, which calls shutdown and
// waits for serve to return.
func (g *group) Serve(name string, serve func() error, shutdown func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := serve(); err != nil {
			g.log.Error("server stopped", "server", name, "err", err)
		}
	}()
	g.push(step{name: name, stop: func() { shutdown(); <-done }})
}
