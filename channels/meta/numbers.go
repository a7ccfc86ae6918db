package meta

import (
	"fmt"
	"slices"

	"github.com/parleyhq/parley/tenants"
)

// Numbers finds the tenant of a Cloud API number by its phone_number_id:
// how a Meta webhook, shared by every number, finds its tenant. It is
// built from one version of a tenant registry and read-only after; the
// provider builds a new one when the registry changed.
type Numbers struct {
	reg     *tenants.Registry
	version uint64
	byID    map[string]Number
	// secrets are the distinct app secrets of the numbers: a webhook's
	// signature is checked against them before its body is read.
	secrets []string
}

// IndexNumbers indexes reg's tenants with a Cloud API number by its
// phone_number_id. Two tenants on one number are refused: a webhook could
// not tell them apart.
func IndexNumbers(reg *tenants.Registry) (*Numbers, error) {
	n := &Numbers{reg: reg, version: reg.Version(), byID: map[string]Number{}}
	for _, t := range reg.All() {
		for num := range t.EachNumber() {
			m := num.Meta
			if m == nil {
				continue
			}
			if other, dup := n.byID[m.PhoneNumberID]; dup {
				return nil, fmt.Errorf("meta phone_number_id %s configured for tenants %s and %s", m.PhoneNumberID, other.Tenant, t.ID)
			}
			n.byID[m.PhoneNumberID] = Number{Tenant: t.ID, AppSecret: m.AppSecret}
			if m.AppSecret != "" && !slices.Contains(n.secrets, m.AppSecret) {
				n.secrets = append(n.secrets, m.AppSecret)
			}
		}
	}
	return n, nil
}

// Lookup returns the number phoneNumberID and its tenant (Accept's
// lookup).
func (n *Numbers) Lookup(phoneNumberID string) (Number, bool) {
	num, ok := n.byID[phoneNumberID]
	return num, ok
}
