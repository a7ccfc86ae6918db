package actors

import (
	"hash/maphash"
	"log/slog"
	"os"

	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/parleyhq/parley/wire"
)

// Placement maps session identities (tenant:+E164) to live actors on this
// node, activating them on demand and passivating idle ones. It replaces
// protoactor-go's cluster identity lookup for the Kafka-affine case: the
// member consuming a key's partition hosts its actor, so look-ups are local
// map operations, O(1) to activate and to passivate, with no broadcast.
//
// Data flows one way: the placement hands each message to the Keyed of its
// id and learns what it needs from return values (the state to keep when
// it passivates); a Keyed never calls back into the placement. The actor
// that hosts a Keyed is the placement's own (host).
//
// A passivated session keeps its compact state here ("dormant": the
// encoded conversation.State, which is the whole session) and the next
// activation resumes it, so an idle session costs its state and not a whole
// actor. Restore puts a session's state here from elsewhere (the
// changelog, when this node takes over its partition).
type Placement struct {
	system   *actor.ActorSystem
	props    *actor.Props
	activate Activate
	seed     maphash.Seed
	shards   [64]shard
}

// Keyed is what a Placement hosts for one id, in an actor of its own:
// messages to the id reach Receive one at a time, in the order they were
// sent.
type Keyed interface {
	// Receive handles one message sent to the id.
	Receive(msg any)
	// Passivate is called when the id has been idle: it returns what the
	// placement keeps of it while dormant (nil: nothing), which the next
	// activation of the id is given.
	Passivate() (dormant []byte)
}

// Activate makes the Keyed of id when a message for it finds no live
// actor; dormant is what its predecessor's Passivate returned (or Restore
// put there), nil for none.
type Activate func(id string, dormant []byte) Keyed

type shard struct {
	mu      sync.Mutex
	live    map[string]*entry
	dormant map[string][]byte
}

// entry is one live actor and the number of messages sent to it and not yet
// handled: a session with messages in flight is never passivated, so no
// message can be stranded in a stopping mailbox.
type entry struct {
	pid      *actor.PID
	inflight int32
	// lastUsed is when the last message was sent (unix seconds): the
	// sweeper passivates entries idle for longer than the idle time.
	lastUsed int64
}

// NewPlacement creates a placement whose Keyeds activate makes. One props
// value is shared by every activation (a copy per activation costs
// hundreds of bytes a session).
func NewPlacement(system *actor.ActorSystem, activate Activate) *Placement {
	p := &Placement{system: system, activate: activate, seed: maphash.MakeSeed()}
	// The lock-free mailbox is ~200 bytes smaller per actor than the
	// default one (bench/README.md, Sessions).
	p.props = actor.PropsFromProducer(func() actor.Actor { return &host{p: p} },
		actor.WithMailbox(actor.UnboundedLockfree()))
	for i := range p.shards {
		p.shards[i].live = map[string]*entry{}
		p.shards[i].dormant = map[string][]byte{}
	}
	return p
}

func (p *Placement) shard(id string) *shard {
	return &p.shards[maphash.String(p.seed, id)%uint64(len(p.shards))]
}

// Send delivers msg to the actor of id, activating it if needed. Messages to
// one id arrive in the order of Send calls.
func (p *Placement) Send(id string, msg any) {
	s := p.shard(id)
	s.mu.Lock()
	e := s.live[id]
	if e == nil {
		// Unparented: a parent would receive every child's Terminated as a
		// system message, which mailboxes drain before user messages, and
		// activations would queue behind a backlog of passivations.
		e = &entry{pid: p.system.Root.Spawn(p.props)}
		s.live[id] = e
		// The first message brings the new actor its id and the state
		// its predecessor left.
		a := &activation{id: id, msg: msg}
		if st, ok := s.dormant[id]; ok {
			a.dormant = st
			delete(s.dormant, id)
		}
		msg = a
	}
	e.inflight++
	e.lastUsed = time.Now().Unix()
	// Sending under the shard lock orders this message before any
	// passivation decision for the same id.
	p.system.Root.Send(e.pid, msg)
	s.mu.Unlock()
}

// activation is the first message of a new actor: its id, what the
// placement kept of the id while it was dormant, and the message that
// activated it.
type activation struct {
	id      string
	dormant []byte
	msg     any
}

// host is the actor of one id: it makes the id's Keyed on activation,
// hands it each message and does the placement's bookkeeping (messages
// handled, passivation) with what the Keyed returns.
type host struct {
	p  *Placement
	id string
	k  Keyed
}

func (h *host) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *activation:
		h.id, h.k = m.id, h.p.activate(m.id, m.dormant)
		h.k.Receive(m.msg)
		h.p.handled(h.id)
	case *wire.Passivate:
		if h.k == nil {
			ctx.Stop(ctx.Self())
			return
		}
		if h.p.passivate(h.id, ctx.Self(), h.k.Passivate()) {
			ctx.Stop(ctx.Self())
		}
	case actor.SystemMessage, actor.AutoReceiveMessage:
		// Lifecycle (started, stopping, ...): nothing to do.
	default:
		h.k.Receive(m)
		h.p.handled(h.id)
	}
}

// StartSweeper passivates actors that got no message for idleAfter, checking
// every idleAfter/4 (at most every minute). It replaces protoactor's
// per-actor receive timeout, which races with its own timer and costs a
// runtime timer per actor; one sweep over the shards is a few milliseconds
// per million sessions. The returned function stops the sweeper.
func (p *Placement) StartSweeper(idleAfter time.Duration) (stop func()) {
	every := min(max(idleAfter/4, 10*time.Millisecond), time.Minute)
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		t := time.NewTicker(every)
		defer t.Stop()
		p.count()
		for {
			select {
			case <-done:
				return
			case now := <-t.C:
				p.sweep(now.Add(-idleAfter).Unix())
				p.count()
			}
		}
	}()
	var once sync.Once
	return func() { once.Do(func() { close(done); <-stopped }) }
}

var passivateMsg = &wire.Passivate{}

// sweep asks every actor idle since before cutoff to passivate. Its host
// asks the Keyed what to keep and passivate decides (messages may have
// been sent to it since).
func (p *Placement) sweep(cutoff int64) {
	var idle []*actor.PID
	for i := range p.shards {
		s := &p.shards[i]
		idle = idle[:0]
		s.mu.Lock()
		for _, e := range s.live {
			if e.inflight == 0 && e.lastUsed < cutoff {
				idle = append(idle, e.pid)
				// Not asked again before it had a chance to answer.
				e.lastUsed = cutoff + 1
			}
		}
		s.mu.Unlock()
		for _, pid := range idle {
			p.system.Root.Send(pid, passivateMsg)
		}
	}
}

// handled is called by a host after each message it got through Send.
func (p *Placement) handled(id string) {
	s := p.shard(id)
	s.mu.Lock()
	if e := s.live[id]; e != nil {
		e.inflight--
	}
	s.mu.Unlock()
}

// passivate removes an idle actor and keeps its encoded state. It refuses
// (false) when messages are still in flight to it or it is not the live
// actor of id.
func (p *Placement) passivate(id string, pid *actor.PID, state []byte) bool {
	s := p.shard(id)
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.live[id]
	if e == nil || !e.pid.Equal(pid) || e.inflight > 0 {
		return false
	}
	delete(s.live, id)
	if state != nil {
		s.dormant[id] = state
	}
	return true
}

// Restore keeps enc, a session's encoded conversation.State, as the
// dormant state of id, so that its next activation resumes it; an empty
// enc (a changelog tombstone) removes it. A live actor of id is the
// primary copy of its session: then nothing changes (false). enc is kept
// as it is, so the caller must not modify it afterwards.
func (p *Placement) Restore(id string, enc []byte) bool {
	s := p.shard(id)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.live[id] != nil {
		return false
	}
	if len(enc) == 0 {
		delete(s.dormant, id)
	} else {
		s.dormant[id] = enc
	}
	return true
}

// Counts reports live actors and dormant sessions.
func (p *Placement) Counts() (live, dormant int) {
	for i := range p.shards {
		s := &p.shards[i]
		s.mu.Lock()
		live += len(s.live)
		dormant += len(s.dormant)
		s.mu.Unlock()
	}
	return live, dormant
}

// count publishes Counts as parley_sessions.
func (p *Placement) count() {
	live, dormant := p.Counts()
	sessionsHeld.WithLabelValues("live").Set(float64(live))
	sessionsHeld.WithLabelValues("dormant").Set(float64(dormant))
}

// NewSystem creates the actor system sessions run on. protoactor logs every
// actor start at info level; with a session per customer that is noise, so
// only its warnings and errors reach the log.
func NewSystem() *actor.ActorSystem {
	return actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}))
}
