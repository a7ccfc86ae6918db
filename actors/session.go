package actors

import (
	"cmp"
	"fmt"
	"log/slog"
	"math"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/protobuf/proto"

	"github.com/parleyhq/parley/backend"
	"github.com/parleyhq/parley/brain"
	"github.com/parleyhq/parley/channels"
	"github.com/parleyhq/parley/conversation"
	"github.com/parleyhq/parley/internal/ids"
	"github.com/parleyhq/parley/internal/seal"
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

// Deps is what session actors share.
type Deps struct {
	Tenants *tenants.Registry
	// Providers are the channels replies go out on: how long one text
	// may be on a tenant's channel is its provider's to say.
	Providers *channels.Registry
	Logger    *slog.Logger
	// Brains picks the brain that answers a tenant's customers.
	Brains func(*tenants.Tenant) brain.Brain
	// Backends picks the tenant's business system.
	Backends func(*tenants.Tenant) backend.Profiles
	// Now is the clock; tests replace it.
	Now func() time.Time
	// Secrets seal one-time codes on their way out (wire.Outbound
	// sealed_text); nil sends them as text (tests).
	Secrets *seal.Box
	// IdleAfter is how long a session actor stays live without messages
	// before the sweeper passivates it. Default 10 minutes.
	IdleAfter time.Duration
}

// NewSessions creates the placement of session actors on system: each id
// (tenant:+E164) is a session, resumed from what the placement kept of it.
// The Router makes its own; benchmarks drive one directly (Deliver).
func NewSessions(system *actor.ActorSystem, d Deps) *Placement {
	deps := d.withDefaults()
	return NewPlacement(system, func(id string, dormant []byte) Keyed { return newSession(&deps, id, dormant) })
}

// withDefaults fills the fields left zero.
func (d Deps) withDefaults() Deps {
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.IdleAfter == 0 {
		d.IdleAfter = 10 * time.Minute
	}
	if d.Logger == nil {
		d.Logger = slog.Default()
	}
	return d
}

// session is one customer phone number at one tenant, hosted by the
// Placement in an actor of its own: a thin shell that feeds events to the
// conversation core and carries out the effects it returns. Everything the
// session remembers is the core's State, so its encoding is the whole
// session: what a passivated session leaves in the Placement and what the
// changelog carries to another node.
type session struct {
	deps   *Deps
	id     string
	tenant *tenants.Tenant
	phone  string
	state  *conversation.State
}

// newSession activates the session id, resuming dormant (its encoded
// state) when there is one.
func newSession(d *Deps, id string, dormant []byte) *session {
	s := &session{deps: d, id: id, state: &conversation.State{}}
	_, s.phone, _ = splitActorID(id)
	if dormant != nil {
		// A failed decode leaves the state as it was: new.
		if err := s.state.UnmarshalBinary(dormant); err != nil {
			d.Logger.Error("dormant session state unreadable; starting over", "session", id, "err", err)
		}
	}
	return s
}

// Receive handles a delivery; each carries its own acknowledgement.
func (s *session) Receive(msg any) {
	if d, ok := msg.(*delivery); ok {
		s.deliver(d)
	}
}

// Passivate keeps only the compact encoding of the state (a few hundred
// bytes) of an idle session, and nothing of one that holds nothing (never
// wrote, or erased).
func (s *session) Passivate() []byte {
	enc := s.encodeState()
	if isEmpty(enc) {
		return nil
	}
	return enc
}

// encodeBuffers are scratch space for encodeState, which returns an
// exact-size copy: the encoder leaves slack, and a million dormant
// sessions pay for every byte.
var encodeBuffers = sync.Pool{New: func() any { return new([]byte) }}

// encodeState compacts the session's state and returns its encoding, a
// slice of its own of exactly its length: the dormant form of the session
// and its changelog record.
func (s *session) encodeState() []byte {
	if s.state == nil {
		s.state = &conversation.State{}
	}
	if s.tenant != nil {
		s.state.Compact(policyOf(s.tenant), s.deps.Now())
	}
	buf := encodeBuffers.Get().(*[]byte)
	enc, _ := s.state.AppendBinary((*buf)[:0]) // never fails
	out := make([]byte, len(enc))
	copy(out, enc)
	if cap(enc) <= 64<<10 {
		*buf = enc
		encodeBuffers.Put(buf)
	}
	return out
}

// deliver handles one inbound record and hands what it caused, with the
// session's new state, to the delivery's transaction.
func (s *session) deliver(d *delivery) {
	in := d.in
	s.tenant = s.deps.Tenants.Get(in.Tenant)
	if s.tenant == nil {
		s.deps.Logger.Warn("inbound for unknown tenant", "tenant", in.Tenant)
		handled.WithLabelValues("unknown_tenant", "dropped").Inc()
		d.done()
		return
	}
	before := s.state.Clone()
	defer func() {
		// A record that makes the shell panic (a poison record) must not
		// stall its partition: the router's batch waits for every record,
		// and protoactor would restart the actor empty. The session keeps
		// the state it had, the record is skipped (its offset commits with
		// the batch) and counted.
		if p := recover(); p != nil {
			*s.state = before
			handled.WithLabelValues("poison", "dead_lettered").Inc()
			s.deps.Logger.Error("session panicked on a record; dead-lettered it, state kept", "session", s.id, "inbound", in.GetId(), "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			s.deadLetter(d, "panic", fmt.Sprint(p))
			d.done()
		}
	}()
	out, result := s.handle(in)
	s.commit(d, out, result)
}

// deadLetter puts the delivery's record on the inbound dead-letter topic,
// in its transaction (so with its offset), with why.
func (s *session) deadLetter(d *delivery, reason, msg string) {
	v, err := proto.Marshal(d.in)
	if err != nil {
		return // it was decoded from a record: it encodes
	}
	if len(msg) > 500 {
		msg = msg[:500]
	}
	d.out.Produce(&kgo.Record{Topic: wire.TopicInboundDeadLetters, Key: wire.Key(d.in.Tenant, d.in.Phone), Value: v, Partition: d.partition,
		Headers: []kgo.RecordHeader{{Key: wire.HeaderDeadLetterReason, Value: []byte(reason)}, {Key: wire.HeaderDeadLetterError, Value: []byte(strings.ToValidUTF8(msg, "?"))}}})
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

// produce hands the records to out, in partition.
func (o *outputs) produce(out Output, partition int32) {
	for i, m := range o.recs {
		b, err := proto.Marshal(m)
		if err != nil {
			// Only a programming error makes our own messages unencodable.
			panic(err)
		}
		out.Produce(&kgo.Record{Topic: o.topics[i], Key: o.key, Value: b, Partition: partition})
	}
}

// reply queues a text to the customer from the tenant's number from
// ("" for its first active one; a number since removed is that too) and
// its message-log event. logBody is what the log keeps (a verification
// code is never logged).
func (s *session) reply(o *outputs, in *wire.Inbound, from, text, logBody, queryType string) *wire.Outbound {
	now := s.deps.Now()
	conversationID := s.state.ConversationID()
	via, ok := s.tenant.Via(from)
	if !ok {
		from = "" // the number is gone: the tenant's first active one
	}
	out := &wire.Outbound{
		Id:             ids.New(),
		Tenant:         s.tenant.ID,
		Phone:          s.phone,
		Channel:        via.Channel(),
		From:           from,
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
	limit, ok := s.deps.Providers.TextLimit(s.tenant.Channel())
	if !ok {
		// No provider would send it: nothing to split for.
		limit = channels.TextLimit{Max: math.MaxInt}
	}
	for _, part := range brain.Split(text, limit.Max, limit.Width) {
		s.reply(o, in, s.state.Number(), part, part, queryType)
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
	if len(m.GetMedia()) == 0 && m.GetLocation() == nil && m.GetFlowResponse() == "" {
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
	if f := m.GetFlowResponse(); f != "" {
		lines = append(lines, "[form: "+f+"]")
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
