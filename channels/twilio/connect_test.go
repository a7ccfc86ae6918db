package twilio

import (
	"strings"
	"testing"

	"github.com/parleyhq/parley/tenants"
)

func TestCheckConnect(t *testing.T) {
	const sid, token, from = "AC0123456789abcdef0123456789abcdef", "0123456789abcdef0123456789abcdef", "whatsapp:+14155238886"
	for _, c := range []struct {
		name            string
		sid, tok, from  string
		wantErrContains string
	}{
		{"good", sid, token, from, ""},
		{"sid without AC", "XY0123456789abcdef0123456789abcdef", token, from, "account_sid"},
		{"short sid", "AC0123", token, from, "account_sid"},
		{"token with a dash", sid, "0123456789abcdef-0123456789abcdef", from, "letters and digits"},
		{"token with a space", sid, "0123456789abcdef 123456789abcdef", from, "letters and digits"},
		{"from without whatsapp:", sid, token, "+14155238886", "whatsapp:"},
		{"from not E.164", sid, token, "whatsapp:+1 415 523 8886", "E.164"},
	} {
		tn := &tenants.Tenant{ID: "acme", Twilio: &tenants.Twilio{AccountSID: c.sid, AuthToken: tenants.Secret(c.tok), From: c.from}}
		err := New(nil, "").CheckConnect(tn)
		switch {
		case c.wantErrContains == "" && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.wantErrContains != "" && (err == nil || !strings.Contains(err.Error(), c.wantErrContains)):
			t.Errorf("%s: %v, want an error about %q", c.name, err, c.wantErrContains)
		}
	}
	if err := New(nil, "").CheckConnect(&tenants.Tenant{ID: "sim", Sim: true}); err != nil {
		t.Errorf("tenant without twilio: %v", err)
	}
}
