package clickhouse

import (
	"errors"
	"math/rand/v2"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/parleyhq/parley/wire"
)

// randomEvent makes an event of every kind and shape, including empty
// fields, large numbers, negative ones and non-ASCII text.
func randomEvent(r *rand.Rand) *wire.Event {
	text := func() string {
		words := []string{"", "a", "booking", "ñandú", "日本語", "+4479460 12345", "with\nnewline", "emoji 🙂"}
		return words[r.IntN(len(words))]
	}
	num := func() int64 {
		switch r.IntN(4) {
		case 0:
			return 0
		case 1:
			return -r.Int64N(1 << 40)
		default:
			return r.Int64N(1 << 42)
		}
	}
	ev := &wire.Event{Id: text(), Tenant: text(), Phone: text(), AtMs: num()}
	switch r.IntN(7) {
	case 0:
		ev.Kind = &wire.Event_Message{Message: &wire.MessageLog{Direction: text(), MessageId: text(), ProviderId: text(), Channel: text(),
			Body: text(), ConversationId: text(), QueryType: text(), ProviderAtMs: num(), ReplyId: text(), Media: text()}}
	case 1:
		ev.Kind = &wire.Event_Auth{Auth: &wire.AuthEvent{Event: text(), ProfileId: text(), Attempt: int32(num())}}
	case 2:
		ev.Kind = &wire.Event_ToolCall{ToolCall: &wire.ToolCall{Tool: text(), Ok: r.IntN(2) == 1, LatencyUs: num(), Error: text(), ConversationId: text()}}
	case 3:
		ev.Kind = &wire.Event_Usage{Usage: &wire.Usage{Metric: text(), Value: num(), Model: text()}}
	case 4:
		ev.Kind = &wire.Event_Delivery{Delivery: &wire.DeliveryReport{MessageId: text(), ProviderId: text(), Status: text(), ErrorCode: text(), Channel: text()}}
	case 5:
		ev.Kind = &wire.Event_Conversation{Conversation: &wire.ConversationChange{ConversationId: text(), Change: text(), Status: text(),
			AiEnabled: r.IntN(2) == 1, Operator: text(), Summary: text(), ByCustomer: r.IntN(2) == 1}}
	}
	return ev
}

// viaProto is what the sink would hold had it decoded with proto.
func viaProto(b []byte) (flat, error) {
	ev := &wire.Event{}
	if err := proto.Unmarshal(b, ev); err != nil {
		return flat{}, err
	}
	return flatOf(ev), nil
}

func TestDecodeFlatMatchesProto(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 20000 {
		ev := randomEvent(r)
		b, err := proto.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		got, err := decodeFlat(b)
		if err != nil {
			t.Fatalf("%d: %v for %v", i, err, ev)
		}
		if want := flatOf(ev); got != want {
			t.Fatalf("%d: decoded\n%+v\nwant\n%+v", i, got, want)
		}
	}
}

// Wire-level cases proto handles in its own ways: unknown fields, a field
// twice, the oneof switching member, a message field twice (merged), a
// known field number with another wire type.
func TestDecodeFlatWireCases(t *testing.T) {
	msg := func(fields ...[]byte) []byte {
		var b []byte
		for _, f := range fields {
			b = append(b, f...)
		}
		return b
	}
	str := func(num protowire.Number, s string) []byte {
		return protowire.AppendString(protowire.AppendTag(nil, num, protowire.BytesType), s)
	}
	varint := func(num protowire.Number, v uint64) []byte {
		return protowire.AppendVarint(protowire.AppendTag(nil, num, protowire.VarintType), v)
	}
	sub := func(num protowire.Number, inner []byte) []byte {
		return protowire.AppendBytes(protowire.AppendTag(nil, num, protowire.BytesType), inner)
	}
	cases := map[string][]byte{
		"unknown fields":         msg(str(1, "e"), str(99, "x"), varint(98, 7), sub(10, msg(str(1, "in"), str(77, "?"))), protowire.AppendFixed64(protowire.AppendTag(nil, 50, protowire.Fixed64Type), 9)),
		"id twice":               msg(str(1, "first"), str(1, "second"), sub(11, nil)),
		"oneof switches":         msg(str(1, "e"), sub(10, msg(str(1, "in"), str(5, "hello"))), sub(13, msg(str(1, "llm_prompt_tokens"), varint(2, 12)))),
		"message twice, merged":  msg(str(1, "e"), sub(10, msg(str(1, "in"), str(5, "hello"))), sub(10, msg(str(7, "booking")))),
		"wrong wire type":        msg(str(1, "e"), varint(2, 5), sub(12, msg(str(2, "x"), varint(1, 3)))),
		"negative int32 attempt": msg(str(1, "e"), sub(11, msg(varint(3, uint64(1<<64-3))))),
		"empty":                  nil,
	}
	for name, b := range cases {
		got, err := decodeFlat(b)
		want, perr := viaProto(b)
		if (err != nil) != (perr != nil) || got != want {
			t.Errorf("%s: decoded %+v (%v), proto %+v (%v)", name, got, err, want, perr)
		}
	}
	for name, b := range map[string][]byte{
		"truncated":           {0x0a, 0x05, 'a'},
		"bad tag":             {0x00},
		"invalid UTF-8":       msg(protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), []byte{0xff, 0xfe})),
		"invalid UTF-8 inner": msg(str(1, "e"), sub(10, protowire.AppendBytes(protowire.AppendTag(nil, 5, protowire.BytesType), []byte{0xc3}))),
		"truncated inner":     msg(str(1, "e"), sub(10, []byte{0x0a, 0x09, 'x'})),
	} {
		_, err := decodeFlat(b)
		_, perr := viaProto(b)
		if err == nil || perr == nil || !errors.Is(err, errDecode) {
			t.Errorf("%s: decodeFlat %v, proto %v; want both to fail", name, err, perr)
		}
	}
}

// decodeFlat must know every field of Event and of its kinds: a field
// added to wire/parley.proto fails here until the sink stores it.
func TestDecodeFlatKnowsEveryField(t *testing.T) {
	fields := (&wire.Event{}).ProtoReflect().Descriptor().Fields()
	for i := range fields.Len() {
		f := fields.Get(i)
		switch n := f.Number(); {
		case n >= 1 && n <= 4:
		case n >= kindMessage && n <= kindConversation:
			inner := f.Message().Fields()
			known := kindFields[uint8(n)]
			for j := range inner.Len() {
				g := inner.Get(j)
				sl, ok := known[g.Number()]
				want := protowire.VarintType
				if g.Kind() == protoreflect.StringKind {
					want = protowire.BytesType
				}
				if !ok || sl.typ != want || (g.Kind() == protoreflect.Int32Kind) != sl.int32 {
					t.Errorf("%s.%s (%d, %s) is not decoded right", f.Message().Name(), g.Name(), g.Number(), g.Kind())
				}
			}
			if inner.Len() != len(known) {
				t.Errorf("%s: %d fields, the decoder knows %d", f.Message().Name(), inner.Len(), len(known))
			}
		default:
			t.Errorf("Event.%s (%d) is not decoded", f.Name(), n)
		}
	}
}

func FuzzDecodeFlat(f *testing.F) {
	r := rand.New(rand.NewPCG(3, 4))
	for range 50 {
		b, _ := proto.Marshal(randomEvent(r))
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := decodeFlat(b)
		want, perr := viaProto(b)
		if (err != nil) != (perr != nil) {
			t.Fatalf("decodeFlat %v, proto %v", err, perr)
		}
		if err == nil && got != want {
			t.Fatalf("decoded %+v, proto %+v", got, want)
		}
	})
}

func BenchmarkDecode(b *testing.B) {
	evs := makeEvents("bench", 1000)
	recs := make([][]byte, len(evs))
	for i, ev := range evs {
		recs[i], _ = proto.Marshal(ev)
	}
	b.Run("decodeFlat", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			if _, err := decodeFlat(recs[i%len(recs)]); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("proto.Unmarshal", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			if _, err := viaProto(recs[i%len(recs)]); err != nil {
				b.Fatal(err)
			}
		}
	})
}
