package outbound

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strconv"

	"github.com/parleyhq/parley/channels/meta"
	"github.com/parleyhq/parley/tenants"
	"github.com/parleyhq/parley/wire"
)

// ChannelMeta is the wire.Outbound.Channel of Meta's Cloud API.
const ChannelMeta = tenants.ChannelMeta

// MetaSender is the part of meta.Sender the sender uses.
type MetaSender interface {
	Send(ctx context.Context, cfg meta.Config, to, text string) (string, error)
	SendTemplate(ctx context.Context, cfg meta.Config, to, name, lang string, params []string) (string, error)
}

// MetaConfigs finds a tenant's Cloud API number. The default, TenantMeta,
// reads the tenant's own meta configuration.
type MetaConfigs func(t *tenants.Tenant) (cfg meta.Config, ok bool)

// TenantMeta is the tenant's meta: block.
func TenantMeta(t *tenants.Tenant) (meta.Config, bool) {
	if t.Meta == nil {
		return meta.Config{}, false
	}
	return *t.Meta, true
}

// DefaultTemplateLanguage is the language of a Meta template whose record
// and tenant catalogue name none.
const DefaultTemplateLanguage = "en"

// metaChannel sends through the Graph API messages endpoint.
type metaChannel struct {
	api    MetaSender
	config MetaConfigs
}

func newMetaChannel(api MetaSender, config MetaConfigs) *metaChannel {
	return &metaChannel{api: api, config: config}
}

func (c *metaChannel) name() string { return ChannelMeta }

// number is "" for a tenant without a Cloud API number.
func (c *metaChannel) number(t *tenants.Tenant) string {
	if c.config == nil {
		return ""
	}
	cfg, ok := c.config(t)
	if !ok || cfg.PhoneNumberID == "" {
		return ""
	}
	return "meta:" + cfg.PhoneNumberID
}

func (c *metaChannel) send(ctx context.Context, t *tenants.Tenant, out *wire.Outbound, tpl *wire.Template) (string, error) {
	cfg, ok := c.config(t)
	if !ok {
		return "", &meta.SendError{Message: "tenant " + t.ID + " has no meta configuration"}
	}
	if tpl == nil {
		return c.api.Send(ctx, cfg, out.Phone, out.Text)
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
		return "", &meta.SendError{Message: fmt.Sprintf("template (content sid %q) has no Meta name", tpl.ContentSid)}
	}
	if lang == "" {
		lang = t.Templates[name].Language
	}
	if lang == "" {
		lang = DefaultTemplateLanguage
	}
	return c.api.SendTemplate(ctx, cfg, out.Phone, name, lang, positional(tpl.Variables))
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

// metaThrottles are the codes that throttle the business number (or the
// app or account behind it) rather than one conversation: the whole lane
// waits. 131056, the pair rate limit, holds only that customer.
var metaThrottles = map[int]bool{
	meta.CodeAPITooManyCalls: true,
	meta.CodeRateLimit:       true,
	meta.CodeThroughput:      true,
	meta.CodeSpamRateLimit:   true,
}

func (c *metaChannel) classify(err error) failure {
	var se *meta.SendError
	if !errors.As(err, &se) {
		return failure{kind: failRetry, code: "network", msg: err.Error()}
	}
	f := failure{msg: se.Error(), retryAfter: se.RetryAfter, code: errorCode(se.Code, se.Status, se.Retryable)}
	switch {
	case se.Code == meta.CodeOutsideWindow:
		f.kind = failOutsideWindow
	case se.Retryable:
		f.kind = failRetry
		f.rateLimited = se.Status == http.StatusTooManyRequests || metaThrottles[se.Code]
	default:
		// Including 131050 (the customer stopped marketing messages):
		// that refuses marketing templates only, so it does not mark the
		// customer opted out of everything as Twilio's 21610 does.
		f.kind = failPermanent
	}
	return f
}
