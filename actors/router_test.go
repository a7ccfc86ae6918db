package actors

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"
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
	"github.com/parleyhq/parley/internal/kafkatest"
	"github.com/parleyhq/parley/tenants"
	"github.com/parleyhq/parley/wire"
)

// slowProducer acknowledges the sessions' outputs a while after they were
// handed over, as a broker under load does, and counts them.
type slowProducer struct {
	p      *bus.Producer
	delay  time.Duration
	handed atomic.Int64
}

func (s *slowProducer) ProduceAsync(ctx context.Context, done func(error), msgs ...kafka.Message) {
	s.handed.Add(1)
	s.p.ProduceAsync(ctx, func(err error) {
		time.AfterFunc(s.delay, func() { done(err) })
	}, msgs...)
}

// A router that is stopped while sessions are still finishing records
// waits for them and commits them, so a graceful restart replays nothing;
// without the drain, those records would be handed to fresh sessions again.
func TestStoppedRouterCommitsWhatTheSessionsFinish(t *testing.T) {
	cases := []struct {
		name      string
		drain     time.Duration // 0: the router's default
		wantAllIn bool          // every record committed when Run returns
	}{
		{"drained by default", 0, true},
		{"no drain", -1, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := kafkatest.Start(t, 1, wire.TopicInbound, wire.TopicOutbound, wire.TopicEvents)
			p := bus.NewProducer(b.Addrs(), bus.ProducerOptions{})
			t.Cleanup(func() { p.Close() })
			const n = 20
			for i := range n {
				in := &wire.Inbound{Id: ids.New(), Tenant: "demo", Phone: fmt.Sprintf("+4477009%05d", i), Channel: "sim",
					Kind: &wire.Inbound_Message{Message: &wire.CustomerMessage{ProviderId: ids.New(), Text: "hello"}}}
				v, _ := proto.Marshal(in)
				if err := p.Produce(context.Background(), kafka.Message{Topic: wire.TopicInbound, Key: wire.Key(in.Tenant, in.Phone), Value: v}); err != nil {
					t.Fatal(err)
				}
			}

			reg, err := tenants.NewRegistry([]tenants.Tenant{{ID: "demo", Name: "Demo", Sim: true}})
			if err != nil {
				t.Fatal(err)
			}
			system := NewSystem()
			t.Cleanup(system.Shutdown)
			slow := &slowProducer{p: p, delay: 2 * time.Second}
			demoBackend, rulesBrain := demo.New(), rules.New()
			var router *Router
			deps := &Deps{
				Tenants:  reg,
				Producer: slow,
				Ack:      func(part int32, off int64) { router.Ack(part, off) },
				Logger:   slog.New(slog.NewTextHandler(io.Discard, nil)),
				Brains:   func(*tenants.Tenant) brain.Brain { return rulesBrain },
				Backends: func(*tenants.Tenant) backend.Profiles { return demoBackend },
				Now:      time.Now,
			}
			placement := NewPlacement(system, SessionProps(deps))
			deps.Placement = placement
			router = NewRouter(bus.ConsumerOptions{Brokers: b.Addrs(), Drain: tc.drain}, placement, deps.Logger)

			ctx, stop := context.WithCancel(context.Background())
			ran := make(chan struct{})
			go func() { defer close(ran); _ = router.Run(ctx) }()
			// Every session has handed its reply to the (slow) producer:
			// none is acknowledged yet when the router is stopped.
			deadline := time.Now().Add(20 * time.Second)
			for slow.handed.Load() < n {
				if time.Now().After(deadline) {
					t.Fatalf("%d of %d records reached the sessions", slow.handed.Load(), n)
				}
				time.Sleep(5 * time.Millisecond)
			}
			stop()
			<-ran

			committed := kafkatest.Committed(t, b.Addrs(), wire.GroupActors, wire.TopicInbound, 0)
			if all := committed == n; all != tc.wantAllIn {
				t.Fatalf("committed offset %d of %d records", committed, n)
			}
		})
	}
}
