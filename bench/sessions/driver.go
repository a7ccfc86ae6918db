package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/protobuf/proto"

	"github.com/parleyhq/parley/actors"
	"github.com/parleyhq/parley/backend"
	"github.com/parleyhq/parley/brain"
	"github.com/parleyhq/parley/brain/rules"
	"github.com/parleyhq/parley/channels"
	"github.com/parleyhq/parley/channels/sim"
	"github.com/parleyhq/parley/tenants"
	"github.com/parleyhq/parley/wire"
)

const tenantID = "bench"

// firstName is what the bench backend's profiles are called, so the
// greeting after sign-in proves the session is authenticated.
const firstName = "Bench"

// anyNumber is the bench's business system: every number has one profile
// with WhatsApp access on. The bench measures sessions, not demo data.
type anyNumber struct{}

func (anyNumber) ProfilesByPhone(_ context.Context, phone string) ([]backend.Profile, error) {
	return []backend.Profile{{
		ID:              "prof_" + strings.TrimPrefix(phone, "+"),
		Name:            firstName + " Customer",
		Email:           "customer@example.com",
		WhatsAppEnabled: true,
	}}, nil
}

// slot is one driver's mailbox: a driver has at most one message in flight,
// its deliveries carry the slot number as Partition, and inbound ids start
// with it, so the producer and Ack know whose message they finish.
type slot struct {
	ack chan ackAt
	// reply is the text of the outbound records of the message in flight,
	// written by the producer before it calls done, read by the driver
	// after the ack (the ack channel orders the two).
	reply string
}

type ackAt struct {
	offset int64
	at     time.Time
}

// discard is the producer: Kafka is excluded from the measurement. It keeps
// nothing, reads the customer-facing text out of outbound records (the
// one-time code travels there) and acknowledges at once.
type discard struct {
	slots    []*slot
	records  atomic.Int64
	bytes    atomic.Int64
	badSlots atomic.Int64
}

func (p *discard) Checkpoint(string) {}

// Produce takes one record of a delivery, as the router's transaction does.
func (p *discard) Produce(m *kgo.Record) {
	p.records.Add(1)
	p.bytes.Add(int64(len(m.Value)))
	if m.Topic != wire.TopicOutbound {
		return
	}
	out := &wire.Outbound{}
	if err := proto.Unmarshal(m.Value, out); err != nil {
		p.badSlots.Add(1)
		return
	}
	i, _, _ := strings.Cut(out.InReplyTo, "/")
	n, err := strconv.Atoi(i)
	if err != nil || n < 0 || n >= len(p.slots) {
		p.badSlots.Add(1)
		return
	}
	s := p.slots[n]
	if s.reply != "" {
		s.reply += "\n"
	}
	s.reply += out.Text
}

// bench is one node: an actor system, the real session actor and placement.
type bench struct {
	system    *actor.ActorSystem
	placement *actors.Placement
	producer  *discard
	slots     []*slot
	extra     []string
	timeout   time.Duration
	offset    atomic.Int64
	timeouts  atomic.Int64
}

func newBench(slots int, extra []string, idle time.Duration) (*bench, error) {
	reg, err := tenants.NewRegistry([]tenants.Tenant{{ID: tenantID, Name: "Bench", Sim: true}})
	if err != nil {
		return nil, err
	}
	b := &bench{extra: extra, timeout: 30 * time.Second}
	b.slots = make([]*slot, slots)
	for i := range b.slots {
		b.slots[i] = &slot{ack: make(chan ackAt, 1)}
	}
	b.producer = &discard{slots: b.slots}
	rulesBrain := rules.New()
	profiles := anyNumber{}
	b.system = actors.NewSystem()
	b.placement = actors.NewSessions(b.system, actors.Deps{
		Tenants:   reg,
		Providers: channels.NewRegistry(sim.New(sim.NewHub())),
		Logger:    slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
		Brains:    func(*tenants.Tenant) brain.Brain { return rulesBrain },
		Backends:  func(*tenants.Tenant) backend.Profiles { return profiles },
		IdleAfter: idle,
	})
	return b, nil
}

func (b *bench) close() { b.system.Shutdown() }

// phone is the E.164 number of session i.
func phone(i int) string { return fmt.Sprintf("+447%09d", i) }

var errTimeout = errors.New("no acknowledgement")

// say sends one customer message to session i through slot sl and waits
// for its acknowledgement; it returns the replies and the Send→Ack time.
func (b *bench) say(sl, i, k int, text string) (string, time.Duration, error) {
	s := b.slots[sl]
	ph := phone(i)
	tag := strconv.Itoa(sl) + "/" + strconv.Itoa(i) + "/" + strconv.Itoa(k)
	off := b.offset.Add(1)
	in := &wire.Inbound{
		Id:      tag,
		Tenant:  tenantID,
		Phone:   ph,
		Channel: tenants.ChannelSimulator,
		Kind: &wire.Inbound_Message{Message: &wire.CustomerMessage{
			ProviderId: "wamid." + tag,
			Text:       text,
		}},
		ReceivedAtMs: time.Now().UnixMilli(),
	}
	start := time.Now()
	b.placement.Deliver(in, int32(sl), b.producer, func() { s.ack <- ackAt{off, time.Now()} })
	deadline := time.NewTimer(b.timeout)
	defer deadline.Stop()
	for {
		select {
		case a := <-s.ack:
			if a.offset != off {
				continue // late ack of an earlier timed-out message
			}
			r := s.reply
			s.reply = ""
			return r, a.at.Sub(start), nil
		case <-deadline.C:
			b.timeouts.Add(1)
			return "", 0, fmt.Errorf("session %d message %q: %w after %v", i, text, errTimeout, b.timeout)
		}
	}
}

// Message kinds of a session's flow, for latency by kind.
const (
	kindFirst = iota // "hi": activation, profile lookup, code sent
	kindCode         // the code: authenticated
	kindExtra        // later messages to a signed-in session
	kinds
)

// record receives each message's latency; at is when it was sent.
type record func(kind int, at time.Time, lat time.Duration)

// signIn brings session i to authenticated: "hi", then the code it got.
func (b *bench) signIn(sl, i int, rec record) error {
	at := time.Now()
	r, lat, err := b.say(sl, i, 0, "hi")
	if err != nil {
		return err
	}
	rec(kindFirst, at, lat)
	code := sixDigits(r)
	if code == "" {
		return fmt.Errorf("session %d: no code in reply %q", i, r)
	}
	at = time.Now()
	r, lat, err = b.say(sl, i, 1, code)
	if err != nil {
		return err
	}
	rec(kindCode, at, lat)
	if !strings.Contains(r, "Hi "+firstName+", you're signed in") {
		return fmt.Errorf("session %d: code not accepted, reply %q", i, r)
	}
	return nil
}

// chat sends the later messages, so the session remembers several
// provider ids, as a typical signed-in customer does.
func (b *bench) chat(sl, i int, rec record) error {
	for k, text := range b.extra {
		at := time.Now()
		r, lat, err := b.say(sl, i, 2+k, text)
		if err != nil {
			return err
		}
		rec(kindExtra, at, lat)
		if r == "" {
			return fmt.Errorf("session %d: no reply to %q", i, text)
		}
	}
	return nil
}

// sixDigits finds the first run of exactly six digits.
func sixDigits(s string) string {
	run := 0
	for i := 0; i <= len(s); i++ {
		if i < len(s) && s[i] >= '0' && s[i] <= '9' {
			run++
			continue
		}
		if run == 6 {
			return s[i-6 : i]
		}
		run = 0
	}
	return ""
}

// logTo is where progress goes (stderr, so -json output stays clean).
var logTo io.Writer = os.Stderr

func progress(format string, args ...any) {
	fmt.Fprintf(logTo, "%s  "+format+"\n", append([]any{time.Now().Format("15:04:05.000")}, args...)...)
}
