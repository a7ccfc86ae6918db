// Package outbound is the sender: it consumes parley.outbound and delivers
// each reply through the tenant's channel (Twilio, or the simulator page),
// in order per customer.
package outbound

import (
	"context"
	"errors"
	"hash/maphash"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/segmentio/kafka-go"
	"google.golang.org/protobuf/proto"

	"github.com/parleyhq/parley/bus"
	"github.com/parleyhq/parley/channels/sim"
	"github.com/parleyhq/parley/channels/twilio"
	"github.com/parleyhq/parley/tenants"
	"github.com/parleyhq/parley/wire"
)

var sent = promauto.NewCounterVec(prometheus.CounterOpts{
	Name: "parley_outbound_total",
	Help: "Outbound messages by channel and result (sent, failed, retried).",
}, []string{"channel", "result"})

// TwilioSender is the part of twilio.Sender the sender uses.
type TwilioSender interface {
	Send(ctx context.Context, cfg *tenants.Twilio, to, body, statusCallback string) (string, error)
}

// Options configure a Sender.
type Options struct {
	Consumer bus.ConsumerOptions
	Tenants  *tenants.Registry
	Twilio   TwilioSender
	Sim      *sim.Hub
	// PublicBaseURL builds the status callback URL Twilio reports to.
	PublicBaseURL string
	// Workers send in parallel; records of one customer always go to the
	// same worker, so a burst of replies arrives in order. Default 64.
	Workers int
	Logger  *slog.Logger
}

// Sender delivers outbound records.
type Sender struct {
	o        Options
	consumer *bus.Consumer
	seed     maphash.Seed
}

// New creates a sender.
func New(o Options) *Sender {
	o.Consumer.Topic = wire.TopicOutbound
	if o.Consumer.Group == "" {
		o.Consumer.Group = wire.GroupSender
	}
	if o.Workers == 0 {
		o.Workers = 64
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return &Sender{o: o, consumer: bus.NewConsumer(o.Consumer), seed: maphash.MakeSeed()}
}

type job struct {
	m    kafka.Message
	done func()
}

// Run sends until ctx ends.
func (s *Sender) Run(ctx context.Context) error {
	queues := make([]chan job, s.o.Workers)
	var wg sync.WaitGroup
	for i := range queues {
		queues[i] = make(chan job, 256)
		wg.Add(1)
		go func(q chan job) {
			defer wg.Done()
			for j := range q {
				// A delivery cut short by shutdown stays uncommitted and is
				// sent again by the next owner of the partition.
				if s.deliver(ctx, j.m) {
					j.done()
				}
			}
		}(queues[i])
	}
	err := s.consumer.Run(ctx, func(_ context.Context, m kafka.Message, done func()) {
		queues[maphash.Bytes(s.seed, m.Key)%uint64(len(queues))] <- job{m, done}
	})
	for _, q := range queues {
		close(q)
	}
	wg.Wait()
	return err
}

// deliver sends one record, retrying what the provider says is temporary.
// It reports true when the record is finished (sent, or failed for good) and
// false when ctx ended first.
func (s *Sender) deliver(ctx context.Context, m kafka.Message) bool {
	out := &wire.Outbound{}
	if err := proto.Unmarshal(m.Value, out); err != nil {
		s.o.Logger.Error("dropping undecodable outbound record", "partition", m.Partition, "offset", m.Offset, "err", err)
		return true
	}
	t := s.o.Tenants.Get(out.Tenant)
	if t == nil {
		s.o.Logger.Error("outbound for unknown tenant", "tenant", out.Tenant, "id", out.Id)
		sent.WithLabelValues("unknown", "failed").Inc()
		return true
	}
	if t.Twilio == nil {
		if s.o.Sim != nil {
			s.o.Sim.Deliver(out.Tenant, out.Phone, sim.Reply{ID: out.Id, Text: out.Text, At: time.UnixMilli(out.CreatedAtMs)})
		}
		sent.WithLabelValues(tenants.ChannelSimulator, "sent").Inc()
		return true
	}
	callback := s.o.PublicBaseURL + "/webhooks/twilio/" + t.ID + "/status"
	backoff := time.Second
	for attempt := 1; ; attempt++ {
		sid, err := s.o.Twilio.Send(ctx, t.Twilio, out.Phone, out.Text, callback)
		if err == nil {
			sent.WithLabelValues(tenants.ChannelTwilio, "sent").Inc()
			s.o.Logger.Debug("sent", "tenant", t.ID, "id", out.Id, "sid", sid)
			return true
		}
		var se *twilio.SendError
		retryable := !errors.As(err, &se) || se.Retryable
		if !retryable || attempt >= 8 {
			sent.WithLabelValues(tenants.ChannelTwilio, "failed").Inc()
			s.o.Logger.Error("outbound failed", "tenant", t.ID, "id", out.Id, "attempt", attempt, "err", err)
			return true
		}
		sent.WithLabelValues(tenants.ChannelTwilio, "retried").Inc()
		wait := backoff
		if se != nil && se.RetryAfter > 0 {
			wait = se.RetryAfter
		}
		s.o.Logger.Warn("outbound retry", "tenant", t.ID, "id", out.Id, "attempt", attempt, "in", wait, "err", err)
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return false
		}
		backoff = min(backoff*2, time.Minute)
	}
}
