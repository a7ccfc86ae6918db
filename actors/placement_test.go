package actors

import (
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/parleyhq/parley/wire"
)

// counter is a test actor: it counts messages in its state and asks to be
// passivated when idle, like a session.
type counter struct {
	p     *Placement
	id    string
	count int
	seen  chan<- [2]any
}

type hit struct{ id string }

func (c *counter) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case hit:
		if c.id == "" {
			c.id = m.id
			if st, ok := c.p.resume(m.id); ok {
				c.count, _ = strconv.Atoi(string(st))
			}
		}
		c.count++
		c.seen <- [2]any{m.id, c.count}
		c.p.handled(c.id)
	case *wire.Passivate:
		if c.id != "" && c.p.passivate(c.id, ctx.Self(), []byte(strconv.Itoa(c.count))) {
			ctx.Stop(ctx.Self())
		}
	}
}

func TestPlacementKeepsOrderAndStateAcrossPassivation(t *testing.T) {
	system := NewSystem()
	defer system.Shutdown()
	seen := make(chan [2]any, 1000)
	var p *Placement
	p = NewPlacement(system, actor.PropsFromProducer(func() actor.Actor { return &counter{p: p, seen: seen} }))
	defer p.StartSweeper(20 * time.Millisecond)()

	ids := []string{"acme:+447700900001", "acme:+447700900002", "demo:+447700900001"}
	for range 50 {
		for _, id := range ids {
			p.Send(id, hit{id})
		}
	}
	last := map[string]int{}
	for range 150 {
		s := <-seen
		id, n := s[0].(string), s[1].(int)
		if n != last[id]+1 {
			t.Fatalf("%s: count %d after %d: out of order or lost", id, n, last[id])
		}
		last[id] = n
	}

	// Idle actors passivate; their state survives in the placement.
	deadline := time.Now().Add(20 * time.Second)
	for {
		live, dormant := p.Counts()
		if live == 0 && dormant == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("live %d dormant %d after idling", live, dormant)
		}
		time.Sleep(10 * time.Millisecond)
	}
	p.Send(ids[0], hit{ids[0]})
	if s := <-seen; s[1].(int) != 51 {
		t.Fatalf("reactivated count %v, want 51", s[1])
	}
}

func TestPlacementNeverStrandsMessagesWhilePassivating(t *testing.T) {
	system := NewSystem()
	defer system.Shutdown()
	seen := make(chan [2]any, 100000)
	var p *Placement
	p = NewPlacement(system, actor.PropsFromProducer(func() actor.Actor { return &counter{p: p, seen: seen} }))
	defer p.StartSweeper(20 * time.Millisecond)()
	// Senders race the 20ms passivation timer: every message must still be
	// handled exactly once, in order.
	const n = 2000
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := range n {
			p.Send("acme:+447700900001", hit{"acme:+447700900001"})
			if i%100 == 0 {
				time.Sleep(25 * time.Millisecond)
			}
		}
	}()
	wg.Wait()
	for i := 1; i <= n; i++ {
		select {
		case s := <-seen:
			if s[1].(int) != i {
				t.Fatalf("message %d counted as %v", i, s[1])
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("message %d never handled", i)
		}
	}
}
