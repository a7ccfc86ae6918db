package actors

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"
	"google.golang.org/protobuf/proto"

	"github.com/parleyhq/parley/bus"
	"github.com/parleyhq/parley/wire"
)

// Router consumes parley.inbound in the "actors" group and hands each record
// to its session actor, in partition order. An offset is committed only when
// the actor finished that record and every record before it in the
// partition, so a crash replays unfinished work (the actor deduplicates by
// provider message id).
type Router struct {
	consumer  *bus.Consumer
	placement *Placement
	log       *slog.Logger

	mu    sync.Mutex
	dones map[offsetKey]func()
}

type offsetKey struct {
	partition int32
	offset    int64
}

// Drain is how long a stopping router waits for the sessions to finish
// the records they were given, so that a graceful restart does not replay
// them: a replay meets a fresh session, answers from it, and logs its
// events a second time under new times. It covers an assistant's reply
// (the brain's calls time out after 10 s).
const Drain = 15 * time.Second

// NewRouter creates a router delivering to placement.
func NewRouter(o bus.ConsumerOptions, placement *Placement, log *slog.Logger) *Router {
	o.Topic = wire.TopicInbound
	if o.Group == "" {
		o.Group = wire.GroupActors
	}
	if o.Drain == 0 {
		o.Drain = Drain
	}
	return &Router{
		consumer:  bus.NewConsumer(o),
		placement: placement,
		log:       log,
		dones:     map[offsetKey]func(){},
	}
}

// Run routes until ctx ends.
func (r *Router) Run(ctx context.Context) error {
	return r.consumer.Run(ctx, func(_ context.Context, m kafka.Message, done func()) {
		in := &wire.Inbound{}
		if err := proto.Unmarshal(m.Value, in); err != nil || in.Tenant == "" || in.Phone == "" {
			// A record no actor can take must not stall its partition.
			r.log.Error("dropping undecodable inbound record", "partition", m.Partition, "offset", m.Offset, "err", err)
			done()
			return
		}
		k := offsetKey{int32(m.Partition), m.Offset}
		r.mu.Lock()
		r.dones[k] = done
		r.mu.Unlock()
		r.placement.Send(wire.ActorID(in.Tenant, in.Phone), &wire.Delivery{
			Inbound:   in,
			Partition: k.partition,
			Offset:    k.offset,
		})
	})
}

// Ack marks a delivery finished: everything it caused is durable.
func (r *Router) Ack(partition int32, offset int64) {
	k := offsetKey{partition, offset}
	r.mu.Lock()
	done := r.dones[k]
	delete(r.dones, k)
	r.mu.Unlock()
	if done != nil {
		done()
	}
}
