package actors

import (
	"context"
	"time"

	"github.com/segmentio/kafka-go"
	"google.golang.org/protobuf/proto"

	"github.com/parleyhq/parley/conversation"
	"github.com/parleyhq/parley/internal/ids"
	"github.com/parleyhq/parley/wire"
)

// Producer writes records to Kafka and waits for the broker (bus.Producer).
type Producer interface {
	Produce(ctx context.Context, msgs ...kafka.Message) error
}

// Expired lists the dormant sessions nobody wrote to since before cutoff,
// and the disposable ones (conversation.State.Disposable: the customer
// never signed in) nobody wrote to since before disposableCutoff: what the
// owner erases.
func (p *Placement) Expired(cutoff, disposableCutoff time.Time) []string {
	var ids []string
	var st conversation.State
	for i := range p.shards {
		s := &p.shards[i]
		s.mu.Lock()
		for id, enc := range s.dormant {
			if st.UnmarshalBinary(enc) != nil {
				continue
			}
			last := st.LastInbound()
			if !last.IsZero() && (last.Before(cutoff) || !disposableCutoff.IsZero() && last.Before(disposableCutoff) && st.Disposable()) {
				ids = append(ids, id)
			}
		}
		s.mu.Unlock()
	}
	return ids
}

// RunExpiry erases, every `every`, the sessions of this member that nobody
// wrote to for longer than retention, and the disposable ones (never
// signed in) idle for longer than disposable (0: only the retention):
// every number that ever wrote, a stranger's too, would otherwise stay in
// memory for the whole retention. It does not change them itself: it
// sends each an Expire command through parley.inbound, like everything
// else that changes a session, so the session decides in order with its
// other records (a customer who just wrote keeps their session) and its
// tombstone is written in the same transaction as its offset.
func (r *Router) RunExpiry(ctx context.Context, p Producer, every, retention, disposable time.Duration) {
	if every <= 0 || retention <= 0 {
		return
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		var disposableCutoff time.Time
		if disposable > 0 {
			disposableCutoff = time.Now().Add(-disposable)
		}
		n, err := r.expire(ctx, p, time.Now().Add(-retention), disposableCutoff)
		if err != nil {
			r.o.Logger.Warn("expiring idle sessions failed; next pass retries", "err", err)
		} else if n > 0 {
			r.o.Logger.Info("expired idle sessions", "sessions", n, "idle_longer_than", retention.String())
		}
	}
}

// expire sends an Expire command to every dormant session Expired names
// and returns how many it sent.
func (r *Router) expire(ctx context.Context, p Producer, cutoff, disposableCutoff time.Time) (int, error) {
	idle := r.placement.Expired(cutoff, disposableCutoff)
	msgs := make([]kafka.Message, 0, len(idle))
	for _, id := range idle {
		tenant, phone, ok := splitActorID(id)
		if !ok {
			continue
		}
		in := &wire.Inbound{Id: "expire/" + ids.New(), Tenant: tenant, Phone: phone, ReceivedAtMs: time.Now().UnixMilli(),
			Kind: &wire.Inbound_Command{Command: &wire.Command{Operator: "expiry",
				Op: &wire.Command_Expire{Expire: &wire.Expire{IdleBeforeMs: cutoff.UnixMilli(), DisposableIdleBeforeMs: unixMilliOrZero(disposableCutoff)}}}}}
		v, err := proto.Marshal(in)
		if err != nil {
			return 0, err
		}
		msgs = append(msgs, kafka.Message{Topic: wire.TopicInbound, Key: wire.Key(tenant, phone), Value: v})
	}
	for len(msgs) > 0 {
		n := min(len(msgs), 1000)
		if err := p.Produce(ctx, msgs[:n]...); err != nil {
			return 0, err
		}
		msgs = msgs[n:]
	}
	return len(idle), nil
}

func unixMilliOrZero(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}
