package actors

import (
	"strconv"
	"sync"
	"testing"
	"time"
)

// counter is a test Keyed: it counts messages in its state and keeps the
// count when passivated, like a session its state.
type counter struct {
	id    string
	count int
	seen  chan<- [2]any
}

type hit struct{ id string }

// counters activates counters, resuming the count a predecessor left.
func counters(seen chan<- [2]any) Activate {
	return func(id string, dormant []byte) Keyed {
		c := &counter{id: id, seen: seen}
		if dormant != nil {
			c.count, _ = strconv.Atoi(string(dormant))
		}
		return c
	}
}

func (c *counter) Receive(msg any) {
	m := msg.(hit)
	if m.id != c.id {
		panic("message for " + m.id + " reached " + c.id)
	}
	c.count++
	c.seen <- [2]any{m.id, c.count}
}

func (c *counter) Passivate() []byte { return []byte(strconv.Itoa(c.count)) }

func TestPlacementKeepsOrderAndStateAcrossPassivation(t *testing.T) {
	system := NewSystem()
	defer system.Shutdown()
	seen := make(chan [2]any, 1000)
	p := NewPlacement(system, counters(seen))
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
	p := NewPlacement(system, counters(seen))
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

// dormantState is what p keeps of id while it is dormant.
func (p *Placement) dormantState(id string) ([]byte, bool) {
	s := p.shard(id)
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.dormant[id]
	return st, ok
}
