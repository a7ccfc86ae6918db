package meta

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"sync/atomic"

	"github.com/parleyhq/parley/channels"
	"github.com/parleyhq/parley/tenants"
	"github.com/parleyhq/parley/wire"
)

// DefaultMaxBodyBytes caps a webhook body: Meta batches events, up to 3 MB
// by its documentation.
const DefaultMaxBodyBytes = 3 << 20

// DefaultTemplateLanguage is the language of a template whose record and
// tenant catalogue name none.
const DefaultTemplateLanguage = "en"

// Provider is Meta's Cloud API behind channels.Provider: the one webhook
// URL /webhooks/meta shared by every number, sends through the Graph
// messages endpoint, media by Graph media id.
type Provider struct {
	api     *Sender
	maxBody int
	// numbers is the phone_number_id index of the registry the webhook
	// was last given (channels.Env.Tenants), built on first use.
	numbers atomic.Pointer[Numbers]
}

var _ channels.Provider = (*Provider)(nil)

// New creates the provider: httpClient makes the sends and media
// downloads (see NewSender), maxBodyBytes caps webhook bodies (0 or less:
// DefaultMaxBodyBytes).
func New(httpClient *http.Client, maxBodyBytes int) *Provider {
	if maxBodyBytes <= 0 {
		maxBodyBytes = DefaultMaxBodyBytes
	}
	return &Provider{api: NewSender(httpClient), maxBody: maxBodyBytes}
}

// Name is Channel.
func (p *Provider) Name() string { return Channel }

// Number is "meta:" and the tenant's phone_number_id; "" for a tenant
// without a Cloud API number.
func (p *Provider) Number(t *tenants.Tenant) string {
	if t.Meta == nil || t.Meta.PhoneNumberID == "" {
		return ""
	}
	return "meta:" + t.Meta.PhoneNumberID
}

// TextLimit is WhatsApp's 4,096 characters.
func (p *Provider) TextLimit() channels.TextLimit { return TextLimit }

// Send sends out's text, or the template tpl: by its Meta name, or by the
// Twilio Content SID the tenant's catalogue names, in the record's
// language, else the catalogue's, else DefaultTemplateLanguage.
func (p *Provider) Send(ctx context.Context, t *tenants.Tenant, out *wire.Outbound, tpl *wire.Template) (string, error) {
	if t.Meta == nil {
		return "", refused("tenant " + t.ID + " has no meta configuration")
	}
	cfg := *t.Meta
	if tpl == nil {
		return p.api.Send(ctx, cfg, out.Phone, out.Text)
	}
	name, lang := tpl.Name, tpl.Language
	if name == "" && tpl.ContentSid != "" {
		// A template named as Twilio names it: find it in the catalogue.
		for n, ct := range t.Templates {
			if ct.ContentSID == tpl.ContentSid {
				name = n
				break
			}
		}
	}
	if name == "" {
		return "", refused(fmt.Sprintf("template (content sid %q) has no Meta name", tpl.ContentSid))
	}
	if lang == "" {
		lang = t.Templates[name].Language
	}
	if lang == "" {
		lang = DefaultTemplateLanguage
	}
	return p.api.SendTemplate(ctx, cfg, out.Phone, name, lang, positional(tpl.Variables))
}

// positional orders template variables as Meta's body parameters: "1",
// "2", … numerically, any other keys after them in name order.
func positional(vars map[string]string) []string {
	if len(vars) == 0 {
		return nil
	}
	keys := make([]string, 0, len(vars))
	for k := range vars {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		a, aErr := strconv.Atoi(keys[i])
		b, bErr := strconv.Atoi(keys[j])
		switch {
		case aErr == nil && bErr == nil:
			return a < b
		case aErr == nil:
			return true
		case bErr == nil:
			return false
		default:
			return keys[i] < keys[j]
		}
	})
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = vars[k]
	}
	return out
}

// OwnsMedia: Meta's media references are MediaURLPrefix and a media id.
func (p *Provider) OwnsMedia(ref string) bool {
	_, ok := MediaID(ref)
	return ok
}

// FetchMedia downloads a media id with the tenant's access token.
func (p *Provider) FetchMedia(ctx context.Context, t *tenants.Tenant, ref string) (io.ReadCloser, string, int64, error) {
	id, ok := MediaID(ref)
	if !ok || t.Meta == nil {
		return nil, "", 0, fmt.Errorf("meta: %q: %w", clip(ref), ErrMediaNotFound)
	}
	return p.api.FetchMedia(ctx, *t.Meta, id)
}

// numbersOf is the phone_number_id index of reg, built once per version
// of the registry (it changes at runtime: parley.config).
func (p *Provider) numbersOf(reg *tenants.Registry) (*Numbers, error) {
	if n := p.numbers.Load(); n != nil && n.reg == reg && n.version == reg.Version() {
		return n, nil
	}
	n, err := IndexNumbers(reg)
	if err != nil {
		return nil, err
	}
	p.numbers.Store(n)
	return n, nil
}

// Routes is the webhook.
func (p *Provider) Routes() []channels.Route {
	return []channels.Route{{Path: WebhookPath, Name: Channel, MaxBodyBytes: p.maxBody, Accept: p.acceptWebhook, Ack: ackWebhook}}
}
