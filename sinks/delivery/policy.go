package delivery

import (
	"time"

	"github.com/segmentio/kafka-go"
	"google.golang.org/protobuf/proto"

	"github.com/parleyhq/parley/tenants"
	"github.com/parleyhq/parley/wire"
)

// What the sender does for a tenant, read from the tenant's configuration.

// rateLimit is the messages/second the tenant's number may send:
// outbound.rate_limit, else DefaultRateLimit; 0 means no limit.
func rateLimit(t *tenants.Tenant) float64 {
	if r := t.Outbound.RateLimit; r != nil {
		return *r
	}
	return DefaultRateLimit
}

// fallbackTemplate is the template the tenant sends in place of free text
// refused outside the 24-hour window (outbound.fallback_template, with its
// variables), or nil.
func fallbackTemplate(t *tenants.Tenant) *wire.Template {
	name := t.Outbound.FallbackTemplate
	if name == "" {
		return nil
	}
	tpl := t.Templates[name]
	return &wire.Template{Name: name, ContentSid: tpl.ContentSID, Language: tpl.Language, Variables: t.Outbound.FallbackVariables}
}

// optOutCommand is the parley.inbound record that tells the session of
// out's customer that the provider refused to send to them: they
// unsubscribed (Twilio 21610). Its id is derived from the outbound id, so
// a record sent again is one command.
func optOutCommand(out *wire.Outbound, now time.Time) (kafka.Message, error) {
	in := &wire.Inbound{
		Id: "optout/" + out.Id, Tenant: out.Tenant, Phone: out.Phone, Channel: out.Channel, ReceivedAtMs: now.UnixMilli(),
		Kind: &wire.Inbound_Command{Command: &wire.Command{
			Op:       &wire.Command_OptOut{OptOut: &wire.OptOut{OutboundId: out.Id, ErrorCode: "21610"}},
			Operator: "provider",
		}},
	}
	v, err := proto.Marshal(in)
	if err != nil {
		return kafka.Message{}, err
	}
	return kafka.Message{Topic: wire.TopicInbound, Key: wire.Key(out.Tenant, out.Phone), Value: v}, nil
}
