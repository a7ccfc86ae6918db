package twilio

import (
	"errors"
	"regexp"
	"strings"

	"github.com/parleyhq/parley/internal/e164"
	"github.com/parleyhq/parley/tenants"
)

var (
	accountSID = regexp.MustCompile(`^AC[0-9a-fA-F]{32}$`)
	authToken  = regexp.MustCompile(`^[A-Za-z0-9]+$`)
)

// CheckConnect refuses Twilio credentials that cannot work, before the
// first send finds out: the account SID's shape (AC and 32 hex digits),
// an auth token of letters and digits only (twilio-go refuses any other
// before it sends anything), and a whatsapp:+E164 sender.
func (p *Provider) CheckConnect(t *tenants.Tenant) error {
	c := t.Twilio
	if c == nil {
		return nil
	}
	if !accountSID.MatchString(c.AccountSID) {
		return errors.New("twilio.account_sid must be AC followed by 32 hexadecimal digits, as the Twilio console shows it")
	}
	if !authToken.MatchString(c.AuthToken.Reveal()) {
		return errors.New("twilio.auth_token may hold letters and digits only: twilio-go refuses any other character before sending, so every reply would fail")
	}
	if n, ok := strings.CutPrefix(c.From, "whatsapp:"); !ok || !e164.Valid(n) {
		return errors.New("twilio.from must be whatsapp: and an E.164 number, e.g. whatsapp:+14155238886")
	}
	return nil
}
