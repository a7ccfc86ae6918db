package actors

// DropWhere removes every session whose id matches, live or dormant, and
// returns how many it removed: the sessions of partitions that moved to
// another member, whose truth is now that member's (and the changelog's).
// The router calls it only between transactions, when no delivery is in
// flight, so a live actor has nothing left to do and is stopped.
func (p *Placement) DropWhere(match func(id string) bool) int {
	n := 0
	for i := range p.shards {
		s := &p.shards[i]
		s.mu.Lock()
		for id, e := range s.live {
			if match(id) {
				delete(s.live, id)
				p.system.Root.Stop(e.pid)
				n++
			}
		}
		for id := range s.dormant {
			if match(id) {
				delete(s.dormant, id)
				n++
			}
		}
		s.mu.Unlock()
	}
	return n
}
