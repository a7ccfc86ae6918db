package tenants

import (
	"fmt"
	"iter"
	"slices"
	"strings"
)

// A tenant's numbers: its first (the tenant's own twilio or meta, with
// Number) and MoreNumbers. Code that talks to a provider reads t.Twilio
// and t.Meta; to act for another number it takes Via(id), the tenant as
// if that number were its first.

// NumberID is the id of a Twilio sender or a Meta number: the sender's
// E.164 number ("+14155238886") or the phone_number_id.
func NumberID(tw *Twilio, m *Meta) string {
	switch {
	case tw != nil:
		return strings.TrimPrefix(tw.From, "whatsapp:")
	case m != nil:
		return m.PhoneNumberID
	}
	return ""
}

// First is the tenant's first number: twilio or meta with Number. Its
// ID is "" when none is connected.
func (t *Tenant) First() Number {
	return Number{NumberSettings: t.Number, Twilio: t.Twilio, Meta: t.Meta}
}

// ID is the number's id (NumberID).
func (n Number) ID() string { return NumberID(n.Twilio, n.Meta) }

// Channel is the number's provider: ChannelTwilio or ChannelMeta.
func (n Number) Channel() string {
	if n.Twilio != nil {
		return ChannelTwilio
	}
	if n.Meta != nil {
		return ChannelMeta
	}
	return ChannelNone
}

// EachNumber yields every connected number of the tenant, the first
// first, without building a slice: webhooks and sends look numbers up on
// every message.
func (t *Tenant) EachNumber() iter.Seq[Number] {
	return func(yield func(Number) bool) {
		if f := t.First(); f.ID() != "" && !yield(f) {
			return
		}
		for _, n := range t.MoreNumbers {
			if !yield(n) {
				return
			}
		}
	}
}

// Numbers is every connected number of the tenant, the first first.
func (t *Tenant) Numbers() []Number { return slices.Collect(t.EachNumber()) }

// NumberByID returns the tenant's number with that id.
func (t *Tenant) NumberByID(id string) (Number, bool) {
	for n := range t.EachNumber() {
		if n.ID() == id {
			return n, true
		}
	}
	return Number{}, false
}

// Via is the tenant as if number id were its first, for acting through
// that number: sending from it, checking its webhooks. An empty id, or
// one the tenant does not have (a number since removed), is its first
// active number (the first number when none is active); ok is false for
// an id it does not have.
func (t *Tenant) Via(id string) (v *Tenant, ok bool) {
	switch id {
	case "":
		return t.firstActive(), true
	case t.First().ID():
		return t, true
	}
	for _, n := range t.MoreNumbers {
		if n.ID() == id {
			return t.through(n), true
		}
	}
	return t.firstActive(), false
}

// through is t with n as its first number: t itself when n is, otherwise
// a copy sharing everything else.
func (t *Tenant) through(n Number) *Tenant {
	if n.ID() == t.First().ID() {
		return t
	}
	c := *t
	c.Twilio, c.Meta, c.Number = n.Twilio, n.Meta, n.NumberSettings
	return &c
}

// firstActive is t through its first active number (t when none is).
func (t *Tenant) firstActive() *Tenant {
	for n := range t.EachNumber() {
		if !n.Inactive {
			return t.through(n)
		}
	}
	return t
}

// validateNumbers checks the tenant's other numbers: one provider each,
// complete, and no id twice in the tenant.
func (t *Tenant) validateNumbers() error {
	seen := map[string]bool{}
	if id := t.First().ID(); id != "" {
		seen[id] = true
	}
	for i := range t.MoreNumbers {
		n := &t.MoreNumbers[i]
		where := fmt.Sprintf("tenant %s: more_numbers[%d]", t.ID, i)
		switch {
		case (n.Twilio == nil) == (n.Meta == nil):
			return fmt.Errorf("%s: configure one provider, twilio or meta", where)
		case n.Twilio != nil && (n.Twilio.AccountSID == "" || n.Twilio.AuthToken == "" || n.Twilio.From == ""):
			return fmt.Errorf("%s: twilio needs account_sid, auth_token and from", where)
		case n.Meta != nil:
			if err := n.Meta.Validate(); err != nil {
				return fmt.Errorf("%s: meta: %w", where, err)
			}
		}
		if id := n.ID(); seen[id] {
			return fmt.Errorf("%s: number %s is connected twice", where, id)
		} else {
			seen[id] = true
		}
	}
	if len(t.MoreNumbers) > 0 && t.First().ID() == "" {
		return fmt.Errorf("tenant %s: more_numbers without a first number (twilio or meta)", t.ID)
	}
	return nil
}

// metaNumbers is the phone_number_ids of the tenant's Meta numbers.
func (t *Tenant) metaNumbers() []string {
	var out []string
	for n := range t.EachNumber() {
		if n.Meta != nil {
			out = append(out, n.Meta.PhoneNumberID)
		}
	}
	return out
}

// slot is where number id is: -1 for the first, else its index in
// MoreNumbers; ok false when the tenant has no such number.
func (t *Tenant) slot(id string) (int, bool) {
	if id == "" {
		return 0, false
	}
	if t.First().ID() == id {
		return -1, true
	}
	for i, n := range t.MoreNumbers {
		if n.ID() == id {
			return i, true
		}
	}
	return 0, false
}

// AddNumber connects n: as the first number when the tenant has none,
// else after the others. It refuses an id the tenant has already.
func (t *Tenant) AddNumber(n Number) error {
	if _, dup := t.slot(n.ID()); dup {
		return fmt.Errorf("number %s is connected to this tenant already", n.ID())
	}
	if t.First().ID() == "" {
		t.Twilio, t.Meta, t.Number = n.Twilio, n.Meta, n.NumberSettings
		return nil
	}
	t.MoreNumbers = append(t.MoreNumbers, n)
	return nil
}

// ReplaceNumber puts n where number id is; it reports whether there was
// one.
func (t *Tenant) ReplaceNumber(id string, n Number) bool {
	i, ok := t.slot(id)
	switch {
	case !ok:
		return false
	case i < 0:
		t.Twilio, t.Meta, t.Number = n.Twilio, n.Meta, n.NumberSettings
	default:
		t.MoreNumbers[i] = n
	}
	return true
}

// RemoveNumber disconnects number id; the next number becomes the first
// when it was the first. It reports whether there was one.
func (t *Tenant) RemoveNumber(id string) bool {
	i, ok := t.slot(id)
	switch {
	case !ok:
		return false
	case i >= 0:
		t.MoreNumbers = append(t.MoreNumbers[:i:i], t.MoreNumbers[i+1:]...)
	case len(t.MoreNumbers) > 0:
		n := t.MoreNumbers[0]
		t.Twilio, t.Meta, t.Number = n.Twilio, n.Meta, n.NumberSettings
		t.MoreNumbers = append([]Number(nil), t.MoreNumbers[1:]...)
	default:
		t.Twilio, t.Meta, t.Number = nil, nil, NumberSettings{}
	}
	if len(t.MoreNumbers) == 0 {
		t.MoreNumbers = nil
	}
	return true
}
