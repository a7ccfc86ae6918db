package actors

import (
	"bytes"

	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/protobuf/proto"

	"github.com/parleyhq/parley/conversation"
	"github.com/parleyhq/parley/wire"
)

// emptyState is the encoding of a session that holds nothing: one never
// written to, erased (GDPR) or expired.
var emptyState, _ = (&conversation.State{}).MarshalBinary()

func isEmpty(enc []byte) bool { return bytes.Equal(enc, emptyState) }

// commit hands what a delivery caused to its transaction, in the partition
// of its inbound record: the outputs, the session's new state on the
// changelog (a tombstone when it holds nothing: erased or expired) and the
// result an API caller waits for, on parley.replies, for whichever node it
// waits on. Then the record is done. Nothing is visible to anyone before the
// transaction commits, and all of it is, together with the record's offset.
func (s *session) commit(d *delivery, o *outputs, result *wire.CommandResult) {
	o.produce(d.out, d.partition)
	d.out.Checkpoint("after-outputs")
	state := s.encodeState()
	if isEmpty(state) {
		state = nil // a tombstone: compaction removes the key
	}
	d.out.Produce(&kgo.Record{Topic: wire.TopicSessions, Key: o.key, Value: state, Partition: d.partition})
	d.out.Checkpoint("after-changelog")
	if result != nil && result.RequestId != "" {
		b, err := proto.Marshal(result)
		if err != nil {
			panic(err) // only a programming error makes our own message unencodable
		}
		d.out.Produce(&kgo.Record{Topic: wire.TopicReplies, Key: []byte(result.RequestId), Value: b, Partition: d.partition})
	}
	d.done()
}
