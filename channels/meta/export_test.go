package meta

import "github.com/parleyhq/parley/tenants"

// LookupNumber finds a number through the provider's index of reg, as a
// webhook does.
func (p *Provider) LookupNumber(reg *tenants.Registry, phoneNumberID string) (Number, bool) {
	n, err := p.numbersOf(reg)
	if err != nil {
		return Number{}, false
	}
	return n.Lookup(phoneNumberID)
}
