package wire

import "strings"

// Kafka topics. Every record is keyed by Key(tenant, phone) so that one
// session's records share a partition and stay in order.
const (
	TopicInbound  = "parley.inbound"
	TopicOutbound = "parley.outbound"
	TopicEvents   = "parley.events"
	// TopicSessions is the sessions' changelog: compacted, keyed and
	// partitioned as TopicInbound, the latest encoded state of each
	// session (a tombstone once it was erased or expired).
	TopicSessions = "parley.sessions"
	// TopicReplies carries the results of API commands back to the node
	// whose caller waits for them, wherever the session lives.
	TopicReplies = "parley.replies"
	// TopicOutboundSent is the sender's ledger: outbound id → what the
	// provider answered, compacted, kept 48 hours, so that a redelivered
	// record is never sent twice. sinks/delivery creates it (through
	// bus.EnsureTopic) with the retention it is configured with.
	TopicOutboundSent = "parley.outbound.sent"
	// TopicOutboundDeadLetters keeps the outbound records the sender gave
	// up on, byte for byte, with the reason in headers (created with the
	// ledger, co-partitioned with parley.outbound).
	TopicOutboundDeadLetters = "parley.outbound.dlq"
	// TopicInboundDeadLetters keeps the inbound records a session could
	// not handle (it panicked on them: poison records), with the reason
	// in headers, so the partition moves on and nothing is lost.
	TopicInboundDeadLetters = "parley.inbound.dlq"
	// TopicWebhookDeadLetters holds the events the tenant webhooks gave
	// up on (sinks/webhooks), as they were, with the reason in headers.
	TopicWebhookDeadLetters = "parley.webhooks.dlq"
	// TopicConfig is the runtime configuration every node follows from
	// its start: compacted, one record per tenant (key "tenant/<id>")
	// and per API key ("key/<id>"), a tombstone once it was deleted.
	// Channel secrets in it are sealed (tenants/configlog).
	TopicConfig = "parley.config"
)

// Headers of a dead letter: why it is one, and the error.
const (
	HeaderDeadLetterReason = "parley-dlq-reason"
	HeaderDeadLetterError  = "parley-dlq-error"
)

// Topics are every topic Parley uses, as Parley creates them. Retention is
// set here rather than left to the broker's default, because these
// records carry customers' messages and an erasure (GDPR) must say how
// long they stay (README, Security):
//
//   - inbound, outbound and events: 7 days, time for a stopped consumer
//     (sender, sink) to catch up, and no longer;
//   - the changelog: compacted; a segment rolls daily so an erased or
//     expired session's older states are compacted away within about a
//     day, and its tombstone is kept a day (delete.retention.ms) so a
//     node restoring meanwhile sees it;
//   - replies: an hour (a caller waits seconds);
//   - the webhooks' dead letters: 7 days, as the events they copy;
//   - the configuration: compacted, kept for ever (a deleted tenant's
//     tombstone a day, as the changelog's).
//
// Parley sets these only on topics it creates; existing topics keep
// theirs (kafka-configs.sh changes them).
var Topics = map[string]map[string]string{
	TopicInbound:  {"retention.ms": week},
	TopicOutbound: {"retention.ms": week},
	TopicEvents:   {"retention.ms": week},
	TopicSessions: {"cleanup.policy": "compact", "segment.ms": day, "delete.retention.ms": day},
	TopicReplies:  {"retention.ms": "3600000"},
	// Dead letters wait for a person: kept as long as the inbound.
	TopicInboundDeadLetters: {"retention.ms": week},
	TopicWebhookDeadLetters: {"retention.ms": week},
	TopicConfig:             {"cleanup.policy": "compact", "delete.retention.ms": day},
}

// TopicPartitions are the topics created with a partition count of their
// own rather than kafka.partitions: the configuration is small and wants
// one order for all its changes.
var TopicPartitions = map[string]int{TopicConfig: 1}

const (
	day  = "86400000"
	week = "604800000"
)

// Consumer groups, one per role.
const (
	GroupActors = "actors"
	GroupSender = "sender"
	GroupSink   = "clickhouse-sink"
)

// Key is the partitioning key of a session: "tenant|+E164".
func Key(tenant, phone string) []byte {
	return []byte(tenant + "|" + phone)
}

// SplitKey is the inverse of Key.
func SplitKey(key []byte) (tenant, phone string, ok bool) {
	return strings.Cut(string(key), "|")
}

// ActorID is the identity of a session actor: "tenant:+E164".
func ActorID(tenant, phone string) string {
	return tenant + ":" + phone
}
