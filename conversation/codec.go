package conversation

import (
	"encoding/binary"
	"errors"
)

// The binary form of State is what the shell writes to the session
// changelog and keeps for dormant sessions: compact (varints, hashed ids,
// sections present only when they hold something) and versioned so that
// a new release can still read old records.
//
// Version 2, in order (strings and byte strings are a uvarint length and
// the bytes; times are varint unix seconds):
//
//	version phase status attempts flags             5 bytes
//	conversationID profileID firstName
//	codeHash(32) codeSalt(16) codeSentAt            if flagHasCode
//	authAt authUntil lastInbound idleUntil windowUntil phaseAt
//	candidates: count, then id name maskedEmail enabled(1 byte) each
//	codesSent: count, then a time each
//	seen: count, then hash lo, hi (uint32 LE each) and uvarint second each
//	lastDelivery, deliveries: count, then a uint64 LE hash each
//	                                                if flagDeliveries
//	memory                                          if flagMemory
//	keyed: count, then key fingerprint result until each
//	                                                if flagKeyed
//	number                                          if flagNumber
//
// flagNumber is written only for a customer of a tenant with several
// numbers who last wrote to one that is not its first: a node of an
// earlier release, which refuses the flag, still reads every other
// session during a rolling deploy.
//
// Version 1 is the same up to seen, with only flagAIOff and flagHasCode:
// it decodes with the newer fields zero.
const (
	codecV1      = 1
	codecVersion = 2
)

const (
	flagAIOff      = 1 << 0
	flagHasCode    = 1 << 1
	flagOptedOut   = 1 << 2 // from version 2
	flagDeliveries = 1 << 3
	flagMemory     = 1 << 4
	flagKeyed      = 1 << 5
	flagNumber     = 1 << 6

	flagsV1 = flagAIOff | flagHasCode
	flagsV2 = flagsV1 | flagOptedOut | flagDeliveries | flagMemory | flagKeyed | flagNumber
)

var errCorrupt = errors.New("conversation: corrupt state encoding")

// MarshalBinary encodes the state. It never fails.
func (s *State) MarshalBinary() ([]byte, error) {
	return s.AppendBinary(make([]byte, 0, s.encodedSizeHint()))
}

// encodedSizeHint is a little more than the encoding usually takes, so
// that MarshalBinary allocates once.
func (s *State) encodedSizeHint() int {
	n := 64 + len(s.conversationID) + len(s.profileID) + len(s.firstName) + len(s.number) + len(s.seen)*12
	n += len(s.lastDelivery) + len(s.deliveries)*8 + len(s.memory)
	for _, k := range s.keyed {
		n += len(k.key) + len(k.fingerprint) + len(k.result) + 12
	}
	return n
}

func (s *State) hasDeliveries() bool { return s.lastDelivery != "" || len(s.deliveries) > 0 }

// AppendBinary appends the encoding of the state to b.
func (s *State) AppendBinary(b []byte) ([]byte, error) {
	var flags byte
	if s.aiOff {
		flags |= flagAIOff
	}
	if s.hasCode() {
		flags |= flagHasCode
	}
	if s.optedOut {
		flags |= flagOptedOut
	}
	if s.hasDeliveries() {
		flags |= flagDeliveries
	}
	if len(s.memory) > 0 {
		flags |= flagMemory
	}
	if len(s.keyed) > 0 {
		flags |= flagKeyed
	}
	if s.number != "" {
		flags |= flagNumber
	}
	b = append(b, codecVersion, byte(s.phase), byte(s.status), s.attempts, flags)
	b = appendString(b, s.conversationID)
	b = appendString(b, s.profileID)
	b = appendString(b, s.firstName)
	if s.hasCode() {
		b = append(b, s.codeHash[:]...)
		b = append(b, s.codeSalt[:]...)
		b = binary.AppendVarint(b, s.codeSentAt)
	}
	for _, t := range []int64{s.authAt, s.authUntil, s.lastInbound, s.idleUntil, s.windowUntil, s.phaseAt} {
		b = binary.AppendVarint(b, t)
	}
	b = binary.AppendUvarint(b, uint64(len(s.candidates)))
	for _, c := range s.candidates {
		b = appendString(b, c.id)
		b = appendString(b, c.name)
		b = appendString(b, c.maskedEmail)
		if c.enabled {
			b = append(b, 1)
		} else {
			b = append(b, 0)
		}
	}
	b = binary.AppendUvarint(b, uint64(len(s.codesSent)))
	for _, t := range s.codesSent {
		b = binary.AppendVarint(b, t)
	}
	b = binary.AppendUvarint(b, uint64(len(s.seen)))
	for _, e := range s.seen {
		b = binary.LittleEndian.AppendUint32(b, e.lo)
		b = binary.LittleEndian.AppendUint32(b, e.hi)
		b = binary.AppendUvarint(b, uint64(e.at))
	}
	if flags&flagDeliveries != 0 {
		b = appendString(b, s.lastDelivery)
		b = binary.AppendUvarint(b, uint64(len(s.deliveries)))
		for _, h := range s.deliveries {
			b = binary.LittleEndian.AppendUint64(b, h)
		}
	}
	if flags&flagMemory != 0 {
		b = appendBytes(b, s.memory)
	}
	if flags&flagKeyed != 0 {
		b = binary.AppendUvarint(b, uint64(len(s.keyed)))
		for _, k := range s.keyed {
			b = appendString(b, k.key)
			b = appendString(b, k.fingerprint)
			b = appendBytes(b, k.result)
			b = binary.AppendVarint(b, k.until)
		}
	}
	if flags&flagNumber != 0 {
		b = appendString(b, s.number)
	}
	return b, nil
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendBytes(b, v []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(v)))
	return append(b, v...)
}

// UnmarshalBinary replaces the state with a decoded one. On error the
// state is left unchanged.
func (s *State) UnmarshalBinary(data []byte) error {
	d := decoder{b: data}
	var n State
	version := d.byte()
	known := byte(flagsV2)
	switch version {
	case codecVersion:
	case codecV1:
		known = flagsV1
	default:
		if d.err != nil {
			return d.err
		}
		return errors.New("conversation: unknown state encoding version")
	}
	n.phase = Phase(d.byte())
	n.status = Status(d.byte())
	n.attempts = d.byte()
	flags := d.byte()
	if flags&^known != 0 {
		return errCorrupt
	}
	n.aiOff = flags&flagAIOff != 0
	n.optedOut = flags&flagOptedOut != 0
	n.conversationID = d.string()
	n.profileID = d.string()
	n.firstName = d.string()
	if flags&flagHasCode != 0 {
		copy(n.codeHash[:], d.bytes(32))
		copy(n.codeSalt[:], d.bytes(16))
		n.codeSentAt = d.varint()
	}
	for _, t := range []*int64{&n.authAt, &n.authUntil, &n.lastInbound, &n.idleUntil, &n.windowUntil, &n.phaseAt} {
		*t = d.varint()
	}
	if k := d.count(4); k > 0 {
		n.candidates = make([]candidate, k)
		for i := range n.candidates {
			c := &n.candidates[i]
			c.id, c.name, c.maskedEmail = d.string(), d.string(), d.string()
			c.enabled = d.byte() == 1
		}
	}
	if k := d.count(1); k > 0 {
		n.codesSent = make([]int64, k)
		for i := range n.codesSent {
			n.codesSent[i] = d.varint()
		}
	}
	if k := d.count(9); k > 0 {
		n.seen = make([]seenID, k)
		for i := range n.seen {
			e := &n.seen[i]
			e.lo = binary.LittleEndian.Uint32(d.bytes(4))
			e.hi = binary.LittleEndian.Uint32(d.bytes(4))
			e.at = uint32(min(d.uvarint(), 1<<32-1))
		}
	}
	if flags&flagDeliveries != 0 {
		n.lastDelivery = d.string()
		if k := d.count(8); k > 0 {
			if k > deliveryRing {
				d.fail()
			} else {
				n.deliveries = make([]uint64, k)
				for i := range n.deliveries {
					n.deliveries[i] = binary.LittleEndian.Uint64(d.bytes(8))
				}
			}
		}
	}
	if flags&flagMemory != 0 {
		n.memory = d.byteString()
	}
	if flags&flagKeyed != 0 {
		if k := d.count(4); k > 0 {
			n.keyed = make([]keyedResult, k)
			for i := range n.keyed {
				e := &n.keyed[i]
				e.key, e.fingerprint = d.string(), d.string()
				e.result = d.byteString()
				e.until = d.varint()
			}
		}
	}
	if flags&flagNumber != 0 {
		n.number = d.string()
	}
	switch {
	case d.err != nil:
		return d.err
	case len(d.b) != 0:
		return errCorrupt
	case n.phase > PhaseAuthenticated || !n.status.valid():
		return errCorrupt
	case flags&flagHasCode != 0 && !n.hasCode():
		// An all-zero hash means "no code"; it cannot have been written
		// with the flag set.
		return errCorrupt
	case flags&flagDeliveries != 0 && !n.hasDeliveries(),
		flags&flagMemory != 0 && len(n.memory) == 0,
		flags&flagKeyed != 0 && len(n.keyed) == 0,
		flags&flagNumber != 0 && n.number == "":
		// Empty sections are never written: one state, one encoding.
		return errCorrupt
	}
	*s = n
	return nil
}

// decoder reads the encoding; after the first error every read returns
// zero values and the error sticks, so the caller checks once at the end.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail() {
	if d.err == nil {
		d.err = errCorrupt
	}
	d.b = nil
}

func (d *decoder) bytes(n int) []byte {
	if d.err != nil || n > len(d.b) {
		d.fail()
		return make([]byte, n)
	}
	v := d.b[:n]
	d.b = d.b[n:]
	return v
}

func (d *decoder) byte() byte { return d.bytes(1)[0] }

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

// count reads a length whose elements take at least minSize bytes each,
// refusing lengths the remaining input cannot hold, so corrupt input
// cannot make us allocate gigabytes.
func (d *decoder) count(minSize int) int {
	v := d.uvarint()
	if v > uint64(len(d.b)/minSize) {
		d.fail()
		return 0
	}
	return int(v)
}

func (d *decoder) string() string {
	n := d.count(1)
	return string(d.bytes(n))
}

// byteString reads a length-prefixed byte string into a copy of its own
// (the state must not keep the input alive); nil when empty.
func (d *decoder) byteString() []byte {
	n := d.count(1)
	return cloneSlice(d.bytes(n))
}
