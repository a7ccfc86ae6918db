package twilio

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/parleyhq/parley/channels"
	"github.com/parleyhq/parley/tenants"
	"github.com/parleyhq/parley/wire"
)

// Provider is Twilio's WhatsApp API behind channels.Provider: the
// webhooks under /webhooks/twilio/{tenant}, sends through the Messages
// API, media from the account's Media URLs.
type Provider struct {
	api           *Sender
	publicBaseURL string
}

var _ channels.Provider = (*Provider)(nil)

// New creates the provider. httpClient makes the sends and media
// downloads (see NewSender). publicBaseURL builds the status callback URL
// Twilio reports deliveries to; empty: no callback.
func New(httpClient *http.Client, publicBaseURL string) *Provider {
	return &Provider{api: NewSender(httpClient), publicBaseURL: publicBaseURL}
}

// Name is Channel.
func (p *Provider) Name() string { return Channel }

// Number is "twilio:" and the tenant's WhatsApp sender.
func (p *Provider) Number(t *tenants.Tenant) string {
	if t.Twilio == nil {
		return ""
	}
	return "twilio:" + t.Twilio.From
}

// TextLimit is Twilio's 1,600 characters.
func (p *Provider) TextLimit() channels.TextLimit { return TextLimit }

// Send sends out's text, or the template tpl: by its Content SID, or by
// the Meta name the tenant's catalogue has a Content SID for.
func (p *Provider) Send(ctx context.Context, t *tenants.Tenant, out *wire.Outbound, tpl *wire.Template) (string, error) {
	callback := ""
	if p.publicBaseURL != "" {
		callback = p.publicBaseURL + webhookPrefix + t.ID + "/status"
	}
	if tpl == nil {
		return p.api.Send(ctx, t.Twilio, out.Phone, out.Text, callback)
	}
	sid := tpl.ContentSid
	if sid == "" && tpl.Name != "" {
		// A template named as Meta names it: the tenant's catalogue has
		// its Twilio Content SID.
		sid = t.Templates[tpl.Name].ContentSID
	}
	if sid == "" {
		return "", refused(fmt.Sprintf("template %q has no Twilio content sid", tpl.Name))
	}
	return p.api.SendTemplate(ctx, t.Twilio, out.Phone, sid, tpl.Variables, callback)
}

// OwnsMedia: Twilio's media references are the URLs its webhooks carry.
func (p *Provider) OwnsMedia(ref string) bool {
	return strings.HasPrefix(ref, "https://") || strings.HasPrefix(ref, "http://")
}

// FetchMedia downloads a media URL of the tenant's account.
func (p *Provider) FetchMedia(ctx context.Context, t *tenants.Tenant, ref string) (io.ReadCloser, string, int64, error) {
	if t.Twilio == nil {
		return nil, "", 0, fmt.Errorf("twilio: tenant %s has no twilio account: %w", t.ID, ErrMediaNotFound)
	}
	return p.api.FetchMedia(ctx, t.Twilio, ref)
}

// Routes is the webhook.
func (p *Provider) Routes() []channels.Route {
	return []channels.Route{{Path: webhookPrefix, Prefix: true, Name: Channel, Accept: acceptWebhook, Ack: ackWebhook}}
}
