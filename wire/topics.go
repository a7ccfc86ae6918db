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
)

// Topics are every topic Parley uses, as Parley creates them: the
// changelog compacted, the replies kept an hour (a caller waits seconds).
var Topics = map[string]map[string]string{
	TopicInbound:  nil,
	TopicOutbound: nil,
	TopicEvents:   nil,
	TopicSessions: {"cleanup.policy": "compact"},
	TopicReplies:  {"retention.ms": "3600000"},
}

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
