package twilio

import (
	"errors"
	"net/url"
	"testing"
)

// TestCheckAddressed: a signed webhook counts only for the tenant's own
// account and sender; a captured one re-cut into other fields, or one for
// another sender under the same auth token, is refused.
func TestCheckAddressed(t *testing.T) {
	const account, sender = "AC00000000000000000000000000000001", "whatsapp:+14155238886"
	message := func(kv ...string) url.Values {
		v := url.Values{"AccountSid": {account}, "From": {"whatsapp:+447700900456"}, "To": {sender}, "Body": {"hi"}}
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i+1] == "-" {
				v.Del(kv[i])
			} else {
				v.Set(kv[i], kv[i+1])
			}
		}
		return v
	}
	status := func(kv ...string) url.Values {
		v := url.Values{"AccountSid": {account}, "From": {sender}, "To": {"whatsapp:+447700900456"}, "MessageStatus": {"delivered"}}
		for i := 0; i+1 < len(kv); i += 2 {
			v.Set(kv[i], kv[i+1])
		}
		return v
	}
	for _, tc := range []struct {
		name   string
		form   url.Values
		ok     bool
		sender string // "": the tenant's, with the whatsapp: prefix
	}{
		{"a sender configured without the prefix", message(), true, "+14155238886"},
		{"no To, a sender without the prefix", message("To", "-"), false, "+14155238886"},
		{"message to the sender", message(), true, ""},
		{"status from the sender", status(), true, ""},
		{"received status is a message", message("MessageStatus", "received"), true, ""},
		{"another account", message("AccountSid", "AC00000000000000000000000000000002"), false, ""},
		{"no account", message("AccountSid", "-"), false, ""},
		{"account with a tail", message("AccountSid", account+"x"), false, ""},
		{"message to another sender", message("To", "whatsapp:+14155238887"), false, ""},
		{"message without To", message("To", "-"), false, ""},
		{"status from another sender", status("From", "whatsapp:+14155238887"), false, ""},
		{"status about the sender's number as customer", status("From", "whatsapp:+447700900456", "To", sender), false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := sender
			if tc.sender != "" {
				cfg = tc.sender
			}
			err := CheckAddressed(account, cfg, tc.form)
			if tc.ok != (err == nil) || (err != nil && !errors.Is(err, ErrNotAddressed)) {
				t.Fatalf("CheckAddressed = %v, want ok=%v", err, tc.ok)
			}
		})
	}
}
