package conversation

import "hash/fnv"

// HashID is how message ids are remembered: as 64-bit FNV-1a hashes
// rather than strings, 8 bytes instead of a 16-byte header plus 34+ bytes
// of text. Provider ids are assigned by Twilio or Meta, not chosen by
// customers, and only ids of one phone number are compared, so a
// collision (about 2^-64 per pair) is not a practical concern. Recent
// delivery reports are remembered the same way.
func HashID(id string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(id))
	return h.Sum64()
}

// hasSeen reports whether the id arrived less than ttl seconds ago. It
// does not prune, so that a duplicate leaves the state exactly as it was.
func (s *State) hasSeen(h uint64, t, ttl int64) bool {
	lo, hi := uint32(h), uint32(h>>32)
	for _, e := range s.seen {
		if e.lo == lo && e.hi == hi && t < int64(e.at)+ttl {
			return true
		}
	}
	return false
}

// remember adds an id; when the ring is full the oldest id is forgotten.
// Past DedupeMax ids within DedupeTTL a very old redelivery could get
// through again; the limit bounds the memory of a chatty session.
func (s *State) remember(h uint64, t int64, maxIDs int) {
	e := seenID{lo: uint32(h), hi: uint32(h >> 32), at: clampU32(t)}
	if len(s.seen) >= maxIDs {
		drop := len(s.seen) - maxIDs + 1
		s.seen = append(s.seen[:0], s.seen[drop:]...)
	}
	s.seen = append(s.seen, e)
}

// pruneSeen forgets ids that arrived ttl or more seconds ago.
func (s *State) pruneSeen(t, ttl int64) {
	keep := s.seen[:0]
	for _, e := range s.seen {
		if t < int64(e.at)+ttl {
			keep = append(keep, e)
		}
	}
	s.seen = keep
	if len(s.seen) == 0 {
		s.seen = nil
	}
}

func clampU32(t int64) uint32 {
	if t < 0 {
		return 0
	}
	if t > 1<<32-1 {
		return 1<<32 - 1
	}
	return uint32(t)
}
