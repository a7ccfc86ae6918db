package wire

import "strings"

// Kafka topics. Every record is keyed by Key(tenant, phone) so that one
// session's records share a partition and stay in order.
const (
	TopicInbound  = "parley.inbound"
	TopicOutbound = "parley.outbound"
	TopicEvents   = "parley.events"
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
