package conversation

import (
	"encoding/binary"
	"errors"
)

// The binary form of State is what the shell writes to the session
// changelog and keeps for dormant sessions: compact (varints, hashed ids)
// and versioned so that a new release can still read old records.
const codecVersion = 1

const (
	flagAIOff   = 1 << 0
	flagHasCode = 1 << 1
)

var errCorrupt = errors.New("conversation: corrupt state encoding")

// MarshalBinary encodes the state. It never fails.
func (s *State) MarshalBinary() ([]byte, error) {
	return s.AppendBinary(make([]byte, 0, 64+len(s.seen)*12))
}

// AppendBinary appends the encoding of the state to b.
func (s *State) AppendBinary(b []byte) ([]byte, error) {
	var flags byte
	if s.aiOff {
		flags |= flagAIOff
	}
	if s.hasCode() {
		flags |= flagHasCode
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
	return b, nil
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// UnmarshalBinary replaces the state with a decoded one. On error the
// state is left unchanged.
func (s *State) UnmarshalBinary(data []byte) error {
	d := decoder{b: data}
	var n State
	if d.byte() != codecVersion {
		return errors.New("conversation: unknown state encoding version")
	}
	n.phase = Phase(d.byte())
	n.status = Status(d.byte())
	n.attempts = d.byte()
	flags := d.byte()
	n.aiOff = flags&flagAIOff != 0
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
