package main

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"sync"
	"time"

	"github.com/parleyhq/parley/brain"
	"github.com/parleyhq/parley/brain/rules"
	"github.com/parleyhq/parley/conversation"
	"github.com/parleyhq/parley/internal/ids"
	"github.com/parleyhq/parley/wire"
)

const tenantID = "bench"

// phone is the E.164 number of session i (distinct for every i < 10^9).
func phone(i int) string { return fmt.Sprintf("+447%09d", i) }

func key(i int) []byte { return wire.Key(tenantID, phone(i)) }

var (
	firstNames = []string{"Amelia", "Oliver", "Isla", "George", "Ava", "Noah", "Mia", "Arthur", "Sofia", "Leo", "Grace", "Muhammad"}
	lastNames  = []string{"Smith", "Jones", "Taylor", "Brown", "Williams", "Wilson", "Johnson", "Davies", "Patel", "Robinson"}
	// Later messages of a signed-in customer, as the rules brain answers
	// them; each session gets one of these conversations.
	chats = [][]string{
		{"hello", "help"},
		{"what are my bookings?"},
		{"hello", "when are you open?", "thanks"},
		{"do you have availability tomorrow?", "ok"},
		{"help"},
		{"what is my subscription?", "thank you"},
	}
)

// memories are the brain's memory (JSON, as the shell keeps it) after each
// of chats, computed once: the rules brain is deterministic, so every
// session with the same chat has the same memory.
func memories(now time.Time) [][]byte {
	rb := rules.New()
	out := make([][]byte, len(chats))
	for c, texts := range chats {
		var mem brain.State
		for _, text := range texts {
			ans, err := rb.Answer(context.Background(), brain.Request{
				TenantName: "Bench", Text: text, Authenticated: true, ProfileID: "prof_1",
				FirstName: "Bench", Now: now, State: mem,
			})
			if err == nil {
				mem = ans.State
			}
		}
		if mem.Language != "" || mem.Pending != nil || len(mem.History) > 0 || mem.NotUnderstood > 0 {
			out[c], _ = json.Marshal(mem)
		}
	}
	return out
}

// gen builds sessions' encoded states by driving the pure core as the
// session shell does: "hi", the backend's profile, the code, delivery
// reports of the replies, the later messages, the brain's memory.
type gen struct {
	pol  conversation.Policy
	now  time.Time
	mems [][]byte
}

func newGen(now time.Time) *gen {
	return &gen{pol: conversation.DefaultPolicy(), now: now, mems: memories(now)}
}

// session returns session i's states: early is its state while it waited
// for the code (the record an overwrite replaces), final the signed-in
// state after its chat.
func (g *gen) session(i int) (early, final []byte, err error) {
	var s conversation.State
	// Sessions were last active at different moments of the last hour:
	// all are still signed in (idle timeout 2 h) when restored.
	at := g.now.Add(-time.Duration(i%3600) * time.Second)
	seq := 0
	rnd := func() conversation.Rand {
		seq++
		return conversation.Rand{
			Code:           fmt.Sprintf("%06d", (i*7919+seq*104729)%1000000),
			Salt:           [16]byte{byte(i), byte(i >> 8), byte(i >> 16), byte(i >> 24), byte(seq)},
			ConversationID: ids.New(),
		}
	}
	msg := 0
	sid := func() string { msg++; return fmt.Sprintf("SM%024x%08x", i, msg) }
	apply := func(ev conversation.Event, d time.Duration) []conversation.Effect {
		return s.Apply(g.pol, ev, at.Add(d), rnd())
	}
	digits := phone(i)[1:]
	apply(conversation.Inbound{ProviderID: sid(), Text: "hi"}, 0)
	first, last := firstNames[i%len(firstNames)], lastNames[(i/len(firstNames))%len(lastNames)]
	eff := apply(conversation.ProfilesFound{Profiles: []conversation.Profile{{
		ID:              "prof_" + digits,
		Name:            first + " " + last,
		Email:           fmt.Sprintf("%s.%s%d@example.com", first, last, i%1000),
		WhatsAppEnabled: true,
	}}}, time.Second)
	code := ""
	for _, e := range eff {
		if sc, ok := e.(conversation.SendCode); ok {
			code = sc.Code
		}
	}
	if code == "" {
		return nil, nil, fmt.Errorf("session %d: no code sent (phase %v)", i, s.Phase())
	}
	apply(conversation.DeliveryStatus{ProviderID: sid(), Status: "delivered"}, 2*time.Second)
	if early, err = s.MarshalBinary(); err != nil {
		return nil, nil, err
	}
	apply(conversation.Inbound{ProviderID: sid(), Text: code}, 30*time.Second)
	if !s.Authenticated(at.Add(30 * time.Second)) {
		return nil, nil, fmt.Errorf("session %d: code not accepted (phase %v)", i, s.Phase())
	}
	c := i % len(chats)
	for k, text := range chats[c] {
		d := time.Duration(40+20*k) * time.Second
		apply(conversation.Inbound{ProviderID: sid(), Text: text}, d)
		reply := sid()
		apply(conversation.DeliveryStatus{ProviderID: reply, Status: "delivered"}, d+time.Second)
		apply(conversation.DeliveryStatus{ProviderID: reply, Status: "read"}, d+5*time.Second)
	}
	if g.mems[c] != nil {
		apply(conversation.SetMemory{Memory: g.mems[c]}, 2*time.Minute)
	}
	s.Compact(g.pol, at.Add(2*time.Minute))
	if final, err = s.MarshalBinary(); err != nil {
		return nil, nil, err
	}
	return early, final, nil
}

// record is one changelog record to write: a session's key and state, or
// a tombstone (nil value).
type record struct {
	key   []byte
	value []byte
}

// dataset is what the writer produces, in order: every session's final
// state, lag sessions after the early state of the sessions overwritten
// (so a dead early value sits in a batch among live final states, as in a
// changelog that was not compacted yet), then the erased keys' states and
// their tombstones.
type dataset struct {
	records    []record
	sessions   int // keys with a state at the end
	overwrites int // sessions written twice
	erased     int // keys ending in a tombstone
	bytes      int64
	finalBytes int64 // the final states' values, for the mean size
}

// build generates the dataset with one goroutine per core. Session i is
// overwritten when i%every == 0 (every = 1/fraction); the erased keys are
// the numbers after the sessions'.
func build(n int, overwrite, erase float64, now time.Time) (*dataset, error) {
	g := newGen(now)
	every := 0
	if overwrite > 0 {
		every = max(int(1/overwrite+0.5), 1)
	}
	erased := int(float64(n)*erase + 0.5)
	early := make([][]byte, n)
	final := make([][]byte, n+erased)
	workers := runtime.GOMAXPROCS(0)
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	total := n + erased
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < total; i += workers {
				e, f, err := g.session(i)
				if err != nil {
					mu.Lock()
					first = err
					mu.Unlock()
					return
				}
				final[i] = f
				if i < n && every > 0 && i%every == 0 {
					early[i] = e
				}
			}
		}()
	}
	wg.Wait()
	if first != nil {
		return nil, first
	}
	ds := &dataset{sessions: n, erased: erased}
	add := func(k, v []byte) {
		ds.records = append(ds.records, record{k, v})
		ds.bytes += int64(len(k) + len(v))
	}
	capacity := n + 2*erased
	if every > 0 {
		capacity += n/every + 1
	}
	ds.records = make([]record, 0, capacity)
	const lag = 1000
	for i := range n + lag {
		if i < n && early[i] != nil {
			add(key(i), early[i])
			ds.overwrites++
		}
		if j := i - lag; j >= 0 && j < n {
			add(key(j), final[j])
			ds.finalBytes += int64(len(final[j]))
		}
	}
	for i := n; i < total; i++ {
		add(key(i), final[i])
	}
	for i := n; i < total; i++ {
		add(key(i), nil)
	}
	return ds, nil
}
