package channels

// TextLimit is how long one text message may be on a channel. Each provider
// says its own (Provider.TextLimit).
type TextLimit struct {
	// Max is the most units a message may have.
	Max int
	// UTF16 counts units as UTF-16 code units (an emoji is two), else
	// runes.
	UTF16 bool
}

// Width is how many units r counts for.
func (l TextLimit) Width(r rune) int {
	if l.UTF16 && r > 0xFFFF {
		return 2
	}
	return 1
}

// Len is how many units s counts for.
func (l TextLimit) Len(s string) int {
	n := 0
	for _, r := range s {
		n += l.Width(r)
	}
	return n
}

// TextLimit is the limit on one text message on channel (a tenant's
// Channel()), as its provider says; false when no provider of that name is
// registered.
func (r *Registry) TextLimit(channel string) (TextLimit, bool) {
	p := r.Get(channel)
	if p == nil {
		return TextLimit{}, false
	}
	return p.TextLimit(), true
}
