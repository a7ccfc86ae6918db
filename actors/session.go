package actors

import (
	"cmp"
	"context"
	"encoding/json"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/segmentio/kafka-go"
	"google.golang.org/protobuf/proto"

	"github.com/parleyhq/parley/backend"
	"github.com/parleyhq/parley/brain"
	"github.com/parleyhq/parley/internal/ids"
	"github.com/parleyhq/parley/tenants"
	"github.com/parleyhq/parley/wire"
)

var (
	handled = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "parley_messages_handled_total",
		Help: "Inbound records handled by session actors, by kind and outcome.",
	}, []string{"kind", "outcome"})
	sessionsHeld = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Name: "parley_sessions",
		Help: "Sessions this process holds, live (an actor) or dormant (passivated), as of the sweeper's last pass.",
	}, []string{"state"})
)

// Producer is the part of bus.Producer sessions use: asynchronous,
// group-committed writes with a completion callback.
type Producer interface {
	ProduceAsync(ctx context.Context, done func(error), msgs ...kafka.Message)
}

// Deps is what session actors share.
type Deps struct {
	Tenants   *tenants.Registry
	Producer  Producer
	Placement *Placement
	// Ack reports a delivery finished (its outputs are durable).
	Ack    func(partition int32, offset int64)
	Logger *slog.Logger
	// Brains picks the brain that answers a tenant's customers.
	Brains func(*tenants.Tenant) brain.Brain
	// Results receives the answers to commands that carried a request id
	// (API sends, assistant requests), once their effects are durable.
	Results func(*wire.CommandResult)
	// Backends picks the tenant's business system.
	Backends func(*tenants.Tenant) backend.Profiles
	// Now is the clock; tests replace it.
	Now func() time.Time
	// IdleAfter is how long a session actor stays live without messages
	// before Placement.StartSweeper passivates it. Default 10 minutes.
	IdleAfter time.Duration
}

// SessionProps are the props of every session actor; one value is shared by
// all activations.
func SessionProps(d *Deps) *actor.Props {
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.IdleAfter == 0 {
		d.IdleAfter = 10 * time.Minute
	}
	// The lock-free mailbox is ~200 bytes smaller per actor than the
	// default one (bench/README.md, Sessions).
	return actor.PropsFromProducer(func() actor.Actor { return &session{deps: d} },
		actor.WithMailbox(actor.UnboundedLockfree()))
}

// session is the actor of one customer phone number at one tenant: a thin
// shell that feeds events to the conversation core and carries out the
// effects it returns.
type session struct {
	deps   *Deps
	id     string
	tenant *tenants.Tenant
	phone  string
	state  *sessionState
	// lastDelivery is the provider's latest delivery status of a message
	// sent to the customer (queued, sent, delivered, read, failed).
	lastDelivery string
	// recentStatuses are hashes of the latest delivery callbacks
	// (provider id and status), a ring: providers redeliver callbacks,
	// and a redelivery handled in another second would be a second row
	// that no merge collapses (the row's time is part of its key).
	recentStatuses [8]uint64
	nextStatus     uint8
	// brain is the assistant's memory of this conversation (language,
	// pending confirmation, recent turns); bounded by the brain.
	brain brain.State
	// optedOut: the provider reported the customer unsubscribed; operator
	// and API sends are refused until the customer writes again.
	optedOut bool
	// keyed are the results of commands sent with an idempotency key.
	keyed idempotentResults
}

// dormant is what a passivated session leaves behind: the compact
// encoding of the core's state, and the brain's memory when there is one.
type dormant struct {
	state    []byte
	brain    []byte // JSON of the brain's memory; nil when empty
	keyed    []byte // idempotentResults, encoded; nil when none
	optedOut bool
}

func (s *session) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *wire.Delivery:
		s.deliver(m)
		s.deps.Placement.handled(s.id)
	case *wire.Passivate:
		if s.id == "" {
			ctx.Stop(ctx.Self())
			return
		}
		// Idle: keep only the compact encoding of the state (a few hundred
		// bytes) and give the actor's memory back.
		if s.tenant != nil {
			s.state.Compact(policyOf(s.tenant), s.deps.Now())
		}
		enc, err := s.state.MarshalBinary()
		if err != nil {
			s.deps.Logger.Error("session state not encodable; staying live", "session", s.id, "err", err)
			return
		}
		// Exact-size copies: the encoders leave slack, and a million
		// dormant sessions pay for every byte.
		d := &dormant{state: append([]byte(nil), enc...), optedOut: s.optedOut, keyed: s.keyed.marshal(s.deps.Now())}
		if s.brain.Language != "" || s.brain.Pending != nil || len(s.brain.History) > 0 || s.brain.NotUnderstood > 0 {
			b, err := json.Marshal(s.brain)
			if err == nil {
				d.brain = append([]byte(nil), b...)
			}
		}
		if s.deps.Placement.passivate(s.id, ctx.Self(), d) {
			ctx.Stop(ctx.Self())
		}
	}
}

// deliver handles one inbound record and acknowledges it once its outputs
// are durable in Kafka.
func (s *session) deliver(d *wire.Delivery) {
	in := d.Inbound
	if s.id == "" {
		s.id = wire.ActorID(in.Tenant, in.Phone)
		s.phone = in.Phone
		s.state = newSessionState()
		if st, ok := s.deps.Placement.resume(s.id); ok {
			d := st.(*dormant)
			if err := s.state.UnmarshalBinary(d.state); err != nil {
				s.deps.Logger.Error("dormant session state unreadable; starting over", "session", s.id, "err", err)
				s.state = newSessionState()
			} else {
				s.optedOut = d.optedOut
				if s.keyed, err = unmarshalIdempotent(d.keyed); err != nil {
					s.deps.Logger.Error("dormant idempotency keys unreadable; forgotten", "session", s.id, "err", err)
				}
				if d.brain != nil {
					if err := json.Unmarshal(d.brain, &s.brain); err != nil {
						s.brain = brain.State{}
					}
				}
			}
		}
	}
	s.tenant = s.deps.Tenants.Get(in.Tenant)
	if s.tenant == nil {
		s.deps.Logger.Warn("inbound for unknown tenant", "tenant", in.Tenant)
		handled.WithLabelValues("unknown_tenant", "dropped").Inc()
		s.deps.Ack(d.Partition, d.Offset)
		return
	}
	out, result := s.handle(in)
	if len(out) == 0 {
		s.finish(d, result)
		return
	}
	s.produce(d, out, result, time.Second)
}

// finish acknowledges a delivery and answers the caller waiting for it, if
// any: only once everything it caused is durable.
func (s *session) finish(d *wire.Delivery, result *wire.CommandResult) {
	s.deps.Ack(d.Partition, d.Offset)
	if result != nil && s.deps.Results != nil {
		s.deps.Results(result)
	}
}

// produce writes a delivery's outputs and acknowledges the delivery when the
// broker has them. A failed write is retried rather than acknowledged: the
// offset must not move past work that is not durable.
func (s *session) produce(d *wire.Delivery, out []kafka.Message, result *wire.CommandResult, backoff time.Duration) {
	s.deps.Producer.ProduceAsync(context.Background(), func(err error) {
		if err == nil {
			s.finish(d, result)
			return
		}
		s.deps.Logger.Warn("session outputs not produced, retrying", "session", s.id, "in", backoff, "err", err)
		time.AfterFunc(backoff, func() { s.produce(d, out, result, min(backoff*2, 30*time.Second)) })
	}, out...)
}

// outputs collects what one delivery produces. Records stay protobuf
// values until the end of the delivery, so a later effect can still fill
// a field of an earlier one (the query type of the inbound log line is
// known only once the brain answered).
type outputs struct {
	topics []string
	key    []byte
	recs   []proto.Message
}

func (o *outputs) add(topic string, m proto.Message) {
	o.topics = append(o.topics, topic)
	o.recs = append(o.recs, m)
}

func (o *outputs) messages() []kafka.Message {
	msgs := make([]kafka.Message, len(o.recs))
	for i, m := range o.recs {
		b, err := proto.Marshal(m)
		if err != nil {
			// Only a programming error makes our own messages unencodable.
			panic(err)
		}
		msgs[i] = kafka.Message{Topic: o.topics[i], Key: o.key, Value: b}
	}
	return msgs
}

// reply queues a text to the customer and its message-log event. logBody
// is what the log keeps (a verification code is never logged).
func (s *session) reply(o *outputs, in *wire.Inbound, text, logBody, queryType string) *wire.Outbound {
	now := s.deps.Now()
	conversationID := s.state.ConversationID()
	out := &wire.Outbound{
		Id:             ids.New(),
		Tenant:         s.tenant.ID,
		Phone:          s.phone,
		Channel:        s.tenant.Channel(),
		Text:           text,
		ConversationId: conversationID,
		InReplyTo:      in.GetId(),
		CreatedAtMs:    now.UnixMilli(),
	}
	o.add(wire.TopicOutbound, out)
	o.add(wire.TopicEvents, &wire.Event{
		Id:     out.Id,
		Tenant: s.tenant.ID,
		Phone:  s.phone,
		AtMs:   now.UnixMilli(),
		Kind: &wire.Event_Message{Message: &wire.MessageLog{
			Direction:      "out",
			MessageId:      out.Id,
			Channel:        out.Channel,
			Body:           logBody,
			ConversationId: conversationID,
			QueryType:      queryType,
		}},
	})
	return out
}

// replyInParts queues text as one reply or, where it is longer than the
// tenant's channel takes in one message (Twilio: 1,600 characters; the
// assistant may write up to 4,096), as several in order: the channel
// would refuse it whole. Each part is logged as it is sent.
func (s *session) replyInParts(o *outputs, in *wire.Inbound, text, queryType string) {
	limit := s.tenant.TextLimit()
	for _, part := range brain.Split(text, limit.Max, limit.Width) {
		s.reply(o, in, part, part, queryType)
	}
}

// logInbound queues the message-log event of a customer message and
// returns it, so the query type can be filled in once known.
func (s *session) logInbound(o *outputs, in *wire.Inbound) *wire.MessageLog {
	m := in.GetMessage()
	log := &wire.MessageLog{
		Direction:      "in",
		MessageId:      in.Id,
		ProviderId:     m.GetProviderId(),
		Channel:        in.Channel,
		Body:           logBody(m),
		ConversationId: s.state.ConversationID(),
		ProviderAtMs:   in.ReceivedAtMs,
		ReplyId:        m.GetReplyId(),
		Media:          mediaRefs(m),
	}
	o.add(wire.TopicEvents, &wire.Event{
		Id:     in.Id,
		Tenant: s.tenant.ID,
		Phone:  s.phone,
		AtMs:   s.deps.Now().UnixMilli(),
		Kind:   &wire.Event_Message{Message: log},
	})
	return log
}

// logBody is what the message log shows of a customer message: its text,
// and a line for each attachment and a shared location, so that a photo
// without a caption is not an empty line in the conversation log. Media
// are described, not linked: their URLs need the provider's credentials.
func logBody(m *wire.CustomerMessage) string {
	if len(m.GetMedia()) == 0 && m.GetLocation() == nil {
		return m.GetText() // most messages: nothing to build
	}
	lines := []string{}
	if m.GetText() != "" {
		lines = append(lines, m.GetText())
	}
	for _, md := range m.GetMedia() {
		lines = append(lines, "["+cmp.Or(md.GetContentType(), "attachment")+"]")
	}
	if l := m.GetLocation(); l != nil {
		where := strconv.FormatFloat(l.GetLatitude(), 'f', -1, 64) + ", " + strconv.FormatFloat(l.GetLongitude(), 'f', -1, 64)
		if l.GetLabel() != "" {
			where = l.GetLabel() + " (" + where + ")"
		}
		lines = append(lines, "[location: "+where+"]")
	}
	return strings.Join(lines, "\n")
}

// mediaRefs are a message's attachment references, one per line.
func mediaRefs(m *wire.CustomerMessage) string {
	if len(m.GetMedia()) == 0 {
		return ""
	}
	refs := make([]string, 0, len(m.GetMedia()))
	for _, md := range m.GetMedia() {
		refs = append(refs, md.GetUrl())
	}
	return strings.Join(refs, "\n")
}

// authEvent queues a sign-in event for analytics.
func (s *session) authEvent(o *outputs, in *wire.Inbound, seq int, name string, profileID string, attempt int) {
	o.add(wire.TopicEvents, &wire.Event{
		// Derived from the inbound id, so a replay after a crash yields
		// the same ids and the sink's deduplication holds.
		Id:     in.GetId() + "/auth/" + strconv.Itoa(seq),
		Tenant: s.tenant.ID,
		Phone:  s.phone,
		AtMs:   s.deps.Now().UnixMilli(),
		Kind: &wire.Event_Auth{Auth: &wire.AuthEvent{
			Event:     name,
			ProfileId: profileID,
			Attempt:   int32(attempt),
		}},
	})
}
