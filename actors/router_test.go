package actors

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"google.golang.org/protobuf/proto"

	"github.com/parleyhq/parley/backend"
	"github.com/parleyhq/parley/backend/demo"
	"github.com/parleyhq/parley/brain"
	"github.com/parleyhq/parley/brain/rules"
	"github.com/parleyhq/parley/bus"
	"github.com/parleyhq/parley/internal/ids"
	"github.com/parleyhq/parley/tenants"
	"github.com/parleyhq/parley/wire"
)

// member is one router with its sessions, as one node runs them.
type member struct {
	router    *Router
	placement *Placement
	stop      func()
}

func startMember(t *testing.T, brokers []string, node string) *member {
	t.Helper()
	reg, err := tenants.NewRegistry([]tenants.Tenant{{ID: "demo", Name: "Demo", Sim: true}})
	if err != nil {
		t.Fatal(err)
	}
	demoBackend, rulesBrain := demo.New(), rules.New()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	router := NewRouter(RouterOptions{Brokers: brokers, NodeID: node, Partitions: 2, SessionTimeout: 6 * time.Second, Logger: logger}, Deps{
		Tenants:   reg,
		Providers: testProviders,
		Logger:    logger,
		Brains:    func(*tenants.Tenant) brain.Brain { return rulesBrain },
		Backends:  func(*tenants.Tenant) backend.Profiles { return demoBackend },
		Now:       time.Now,
	})
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan struct{})
	go func() { defer close(ran); _ = router.Run(ctx) }()
	// The router owns its placement; the test reads it.
	m := &member{router: router, placement: router.placement}
	m.stop = func() { cancel(); <-ran }
	return m
}

func produceInbound(t *testing.T, p *bus.Producer, in *wire.Inbound) {
	t.Helper()
	v, _ := proto.Marshal(in)
	if err := p.Produce(context.Background(), kafka.Message{Topic: wire.TopicInbound, Key: wire.Key(in.Tenant, in.Phone), Value: v}); err != nil {
		t.Fatal(err)
	}
}

func message(phone, text string) *wire.Inbound {
	return &wire.Inbound{Id: ids.New(), Tenant: "demo", Phone: phone, Channel: "sim",
		Kind: &wire.Inbound_Message{Message: &wire.CustomerMessage{ProviderId: ids.New(), Text: text}}}
}

// repliesTo reads parley.outbound (committed records only) until n replies
// arrived or within passed, and returns the replies per inbound id.
func repliesTo(t *testing.T, brokers []string, n int, within time.Duration) map[string][]string {
	t.Helper()
	got := map[string][]string{}
	count := 0
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	c := bus.NewConsumer(bus.ConsumerOptions{Brokers: brokers, Topic: wire.TopicOutbound, Group: "test-" + ids.New()})
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	_ = c.Run(runCtx, func(_ context.Context, m kafka.Message, done func()) {
		out := &wire.Outbound{}
		if err := proto.Unmarshal(m.Value, out); err == nil {
			got[out.InReplyTo] = append(got[out.InReplyTo], out.Text)
			count++
		}
		done()
		if count >= n {
			// A moment more, to catch a duplicate.
			time.AfterFunc(300*time.Millisecond, stop)
		}
	})
	return got
}

// A member that takes over a partition restores its sessions from the
// changelog before handling its records: the next member answers with the
// state the first one left (here: AI switched off stays off), and each
// message is answered exactly once across the handover.
func TestSessionsMoveWithTheirPartitionThroughTheChangelog(t *testing.T) {
	b := startBrokerWithTopics(t)
	p := bus.NewProducer(b, bus.ProducerOptions{})
	t.Cleanup(func() { p.Close() })

	const n = 12
	phones := make([]string, n)
	firsts := make([]*wire.Inbound, n)
	for i := range phones {
		phones[i] = fmt.Sprintf("+4477009%05d", i)
		firsts[i] = message(phones[i], "hello")
		produceInbound(t, p, firsts[i])
	}
	// The first customer's conversation is handed to a person.
	produceInbound(t, p, &wire.Inbound{Id: ids.New(), Tenant: "demo", Phone: phones[0], Channel: "api",
		Kind: &wire.Inbound_Command{Command: &wire.Command{Op: &wire.Command_SetAi{SetAi: false}, Operator: "agent"}}})

	a := startMember(t, b, "a")
	first := repliesTo(t, b, n, 30*time.Second)
	for _, in := range firsts {
		if len(first[in.Id]) != 1 {
			t.Fatalf("%s: replies %q, want one", in.Phone, first[in.Id])
		}
	}
	a.stop() // graceful: leaves the group at once

	second := make([]*wire.Inbound, n)
	for i, phone := range phones {
		second[i] = message(phone, "hello again")
		produceInbound(t, p, second[i])
	}
	m := startMember(t, b, "b")
	defer m.stop()
	deadline := time.Now().Add(30 * time.Second)
	for m.router.Ready(context.Background()) != nil {
		if time.Now().After(deadline) {
			t.Fatal("second member never ready")
		}
		time.Sleep(20 * time.Millisecond)
	}
	all := repliesTo(t, b, 2*n-1, 30*time.Second)
	for i, in := range second {
		want := 1
		if i == 0 {
			want = 0 // AI off survived the move
		}
		if len(all[in.Id]) != want {
			t.Fatalf("%s after the move: replies %q, want %d", in.Phone, all[in.Id], want)
		}
		if len(all[firsts[i].Id]) != 1 {
			t.Fatalf("%s: first message answered %d times across the move", in.Phone, len(all[firsts[i].Id]))
		}
	}
}

// An erased session leaves a tombstone: the next owner restores nothing of
// it, while the others come back.
func TestErasedSessionIsNotRestored(t *testing.T) {
	b := startBrokerWithTopics(t)
	p := bus.NewProducer(b, bus.ProducerOptions{})
	t.Cleanup(func() { p.Close() })
	produceInbound(t, p, message("+447700900001", "hello"))
	produceInbound(t, p, message("+447700900002", "hello"))
	produceInbound(t, p, &wire.Inbound{Id: ids.New(), Tenant: "demo", Phone: "+447700900002", Channel: "api",
		Kind: &wire.Inbound_Command{Command: &wire.Command{Op: &wire.Command_Forget{Forget: &wire.Forget{}}, Operator: "gdpr"}}})
	a := startMember(t, b, "a")
	repliesTo(t, b, 2, 30*time.Second)
	// Wait for the erasure to be committed too.
	waitCommitted(t, b, 3)
	a.stop()

	m := startMember(t, b, "b")
	defer m.stop()
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, dormant := m.placement.Counts()
		if m.router.Ready(context.Background()) == nil && m.router.joined.Load() {
			if dormant != 1 {
				t.Fatalf("restored %d sessions, want 1 (the erased one is a tombstone)", dormant)
			}
			if _, ok := m.placement.dormantState(wire.ActorID("demo", "+447700900002")); ok {
				t.Fatal("the erased session was restored")
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("second member never ready")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func startBrokerWithTopics(t *testing.T) []string {
	t.Helper()
	b, err := bus.StartEmbedded(t.TempDir(), 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := bus.EnsureParleyTopics(ctx, b.Addrs(), nil, 2, 1); err != nil {
		t.Fatal(err)
	}
	return b.Addrs()
}

// waitCommitted waits until the actors group committed n records of
// parley.inbound over both partitions.
func waitCommitted(t *testing.T, brokers []string, n int64) {
	t.Helper()
	client := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 5 * time.Second}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		res, err := client.OffsetFetch(context.Background(), &kafka.OffsetFetchRequest{GroupID: wire.GroupActors, Topics: map[string][]int{wire.TopicInbound: {0, 1}}})
		if err == nil {
			var sum int64
			for _, p := range res.Topics[wire.TopicInbound] {
				if p.CommittedOffset > 0 {
					sum += p.CommittedOffset
				}
			}
			if sum >= n {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("fewer than %d records committed", n)
}

// Sessions idle past the retention are erased by their owner through their
// own stream: the next owner restores only the ones still in use. A
// stranger's session (never signed in: disposable) goes after the short
// bound already.
func TestIdleSessionsExpireToTombstones(t *testing.T) {
	for _, tc := range []struct {
		name                     string
		cutoff, disposableCutoff time.Time
	}{
		{"past the retention", time.Now().Add(time.Minute), time.Time{}},
		{"disposable, past the short bound", time.Now().Add(-30 * 24 * time.Hour), time.Now().Add(time.Minute)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := startBrokerWithTopics(t)
			p := bus.NewProducer(b, bus.ProducerOptions{})
			t.Cleanup(func() { p.Close() })
			for _, phone := range []string{"+447700900001", "+447700900002"} {
				produceInbound(t, p, message(phone, "hello"))
			}
			a := startMember(t, b, "a")
			repliesTo(t, b, 2, 30*time.Second)
			waitCommitted(t, b, 2)
			a.stop()

			m := startMember(t, b, "b")
			if err := m.router.WaitReady(context.Background(), 30*time.Second); err != nil {
				t.Fatal(err)
			}
			n, err := m.router.expire(context.Background(), p, tc.cutoff, tc.disposableCutoff)
			if err != nil || n != 2 {
				t.Fatalf("expired %d sessions (%v), want 2", n, err)
			}
			// The two Expire commands are handled (tombstones) and committed.
			waitCommitted(t, b, 4)
			m.stop()

			c := startMember(t, b, "c")
			defer c.stop()
			if err := c.router.WaitReady(context.Background(), 30*time.Second); err != nil {
				t.Fatal(err)
			}
			if _, dormant := c.placement.Counts(); dormant != 0 {
				t.Fatalf("%d expired sessions restored, want 0", dormant)
			}
		})
	}
}
