package delivery

import (
	"context"
	"strconv"
	"time"

	"github.com/segmentio/kafka-go"
	"google.golang.org/protobuf/proto"

	"github.com/parleyhq/parley/wire"
)

// Dead-letter reasons (header HeaderReason).
const (
	ReasonUndecodable      = "undecodable"       // not a wire.Outbound
	ReasonUnsealable       = "unsealable"        // a sealed text no configured key opens
	ReasonUnknownTenant    = "unknown_tenant"    // no such tenant configured
	ReasonNoChannel        = "no_channel"        // the tenant has no channel to send it on
	ReasonOptedOut         = "opted_out"         // the customer unsubscribed (Twilio 21610)
	ReasonOutsideWindow    = "outside_window"    // 63016/131047 and no fallback template
	ReasonPermanent        = "permanent"         // refused for good (bad number, bad template, auth, …)
	ReasonRetriesExhausted = "retries_exhausted" // still failing after MaxAttempts
)

// Headers of a dead letter. The record's key and value are the original's,
// its own headers are kept, and these are added.
const (
	HeaderReason     = "parley-dlq-reason"    // one of the Reason constants
	HeaderError      = "parley-dlq-error"     // the last error, as text
	HeaderCode       = "parley-dlq-code"      // provider error code, e.g. "21610"
	HeaderAttempts   = "parley-dlq-attempts"  // sends tried
	HeaderTopic      = "parley-dlq-topic"     // where the record was
	HeaderPartition  = "parley-dlq-partition" //
	HeaderOffset     = "parley-dlq-offset"    //
	HeaderOutboundID = "parley-dlq-outbound-id"
	HeaderFailedAt   = "parley-dlq-failed-at" // RFC 3339, UTC
)

// deadLetter builds the dead-letter record of m.
func (s *Deliverer) deadLetter(m kafka.Message, outboundID, reason string, f failure, attempts int) kafka.Message {
	h := append([]kafka.Header(nil), m.Headers...)
	add := func(k, v string) { h = append(h, kafka.Header{Key: k, Value: []byte(v)}) }
	add(HeaderReason, reason)
	add(HeaderError, f.msg)
	if f.code != "" {
		add(HeaderCode, f.code)
	}
	add(HeaderAttempts, strconv.Itoa(attempts))
	add(HeaderTopic, m.Topic)
	add(HeaderPartition, strconv.Itoa(m.Partition))
	add(HeaderOffset, strconv.FormatInt(m.Offset, 10))
	if outboundID != "" {
		add(HeaderOutboundID, outboundID)
	}
	add(HeaderFailedAt, time.Now().UTC().Format(time.RFC3339Nano))
	return kafka.Message{Topic: s.o.DeadLetterTopic, Key: m.Key, Value: m.Value, Headers: h}
}

// Events the sender emits to parley.events. Their ids are derived from the
// outbound id and the provider's id, never random, so the events of a send
// that is reported again after a restart deduplicate in the sink.

// sentEvents report an accepted send: a Usage of messages_out or
// templates_out, and a DeliveryReport "queued" with the provider's id (the
// same event id the session gives a provider's "queued" status callback,
// so the two are one row).
func sentEvents(out *wire.Outbound, e sentEntry) []*wire.Event {
	metric := "messages_out"
	if e.Template {
		metric = "templates_out"
	}
	usage := event(out, out.Id+"/usage", e.AtMs)
	usage.Kind = &wire.Event_Usage{Usage: &wire.Usage{Metric: metric, Value: 1}}
	report := event(out, "delivery/"+e.ProviderID+"/queued", e.AtMs)
	report.Kind = &wire.Event_Delivery{Delivery: &wire.DeliveryReport{
		MessageId: out.Id, ProviderId: e.ProviderID, Status: "queued", Channel: e.Channel,
	}}
	return []*wire.Event{usage, report}
}

// failedEvent reports a message that will not be delivered.
func failedEvent(out *wire.Outbound, channel, code string, at time.Time) *wire.Event {
	ev := event(out, out.Id+"/failed", at.UnixMilli())
	ev.Kind = &wire.Event_Delivery{Delivery: &wire.DeliveryReport{
		MessageId: out.Id, Status: "failed", ErrorCode: code, Channel: channel,
	}}
	return ev
}

// optedOutEvent marks the customer as opted out (ConversationChange
// "opted_out", by the customer), besides the failed DeliveryReport with
// error code 21610.
func optedOutEvent(out *wire.Outbound, at time.Time) *wire.Event {
	ev := event(out, out.Id+"/opted_out", at.UnixMilli())
	ev.Kind = &wire.Event_Conversation{Conversation: &wire.ConversationChange{
		ConversationId: out.ConversationId, Change: "opted_out", ByCustomer: true,
	}}
	return ev
}

func event(out *wire.Outbound, id string, atMs int64) *wire.Event {
	return &wire.Event{Id: id, Tenant: out.Tenant, Phone: out.Phone, AtMs: atMs}
}

// eventRecords turns events into parley.events records.
func eventRecords(evs []*wire.Event) []kafka.Message {
	msgs := make([]kafka.Message, 0, len(evs))
	for _, ev := range evs {
		b, err := proto.Marshal(ev)
		if err != nil {
			continue // cannot happen for these messages
		}
		msgs = append(msgs, kafka.Message{Topic: wire.TopicEvents, Key: wire.Key(ev.Tenant, ev.Phone), Value: b})
	}
	return msgs
}

// produce writes records (acks=all), retrying until they are written or
// ctx ends.
func (s *Deliverer) produce(ctx context.Context, msgs ...kafka.Message) bool {
	if len(msgs) == 0 {
		return true
	}
	policy := kafkaRetry
	policy.OnRetry = func(_ int, err error, _ time.Duration) {
		s.o.Logger.Warn("produce failed; retrying", "topic", msgs[0].Topic, "err", err)
	}
	return policy.Do(ctx, func(int) error {
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		return s.writer.write(pctx, msgs...)
	}) == nil
}
