package tenants

import (
	"encoding/json"
	"fmt"
	"net/url"
	"regexp"
	"strings"

	"github.com/parleyhq/parley/internal/mask"
)

// Defaults for Meta fields left empty.
const (
	MetaDefaultAPIBaseURL = "https://graph.facebook.com"
	// MetaDefaultAPIVersion is the Graph API version sends use. Meta
	// retires a version about two years after its release; a tenant can
	// move ahead with api_version before this default is raised.
	MetaDefaultAPIVersion = "v21.0"
)

// Meta is one tenant's WhatsApp number on the Cloud API. In the tenant
// file:
//
//	meta:
//	  phone_number_id: "106540352242922"
//	  access_token: "${ACME_META_TOKEN}"   # system user token, whatsapp_business_messaging
//	  app_secret: "${ACME_META_APP_SECRET}"
//	  verify_token: "${ACME_META_VERIFY}"
//	  api_base_url: ""                      # empty: Meta's Graph API
//	  api_version: ""                       # empty: MetaDefaultAPIVersion
//
// AccessToken, AppSecret and VerifyToken are credentials. Meta masks them
// in String, GoString, JSON and YAML, so a tenant dumped for debugging does
// not leak them; code that needs them reads the fields. Keep Meta a named
// field of the tenant (`Meta *Meta`), not an embedded one, or its
// masking methods would be promoted to, and replace, the tenant's own.
type Meta struct {
	// PhoneNumberID is the Cloud API id of the business number (not the
	// number itself): sends go to /{PhoneNumberID}/messages and webhooks
	// name it in metadata.phone_number_id.
	PhoneNumberID string `yaml:"phone_number_id" json:"phone_number_id"`
	// BusinessAccountID is the WhatsApp Business Account the number
	// belongs to (optional): kept for the people who manage the number;
	// sends and webhooks do not need it.
	BusinessAccountID string `yaml:"business_account_id,omitempty" json:"business_account_id,omitempty"`
	// AccessToken authenticates sends (Authorization: Bearer).
	AccessToken string `yaml:"access_token" json:"access_token"`
	// AppSecret is the secret of the Meta app whose webhooks bring this
	// number's events; it keys X-Hub-Signature-256.
	AppSecret string `yaml:"app_secret" json:"app_secret"`
	// VerifyToken is what the app's webhook configuration sends as
	// hub.verify_token in the GET handshake.
	VerifyToken string `yaml:"verify_token" json:"verify_token"`
	// APIBaseURL points sends at a Graph-compatible server (sandboxes,
	// tests); empty means MetaDefaultAPIBaseURL. A path prefix is kept.
	APIBaseURL string `yaml:"api_base_url,omitempty" json:"api_base_url,omitempty"`
	// APIVersion is the Graph API version, "v21.0"; empty means
	// MetaDefaultAPIVersion.
	APIVersion string `yaml:"api_version,omitempty" json:"api_version,omitempty"`
}

var (
	// MetaPhoneNumberID is a Graph object id: digits. Checked because it goes
	// into the request path and is the key tenants are found by.
	MetaPhoneNumberID = regexp.MustCompile(`^[0-9]{1,32}$`)
	MetaAPIVersion    = regexp.MustCompile(`^v[0-9]{1,3}\.[0-9]{1,3}$`)
)

// Validate reports the first thing wrong with c, without revealing a
// credential. The tenant registry calls it at start so that a typo fails
// the deployment instead of the first send.
func (c *Meta) Validate() error {
	switch {
	case !MetaPhoneNumberID.MatchString(c.PhoneNumberID):
		return fmt.Errorf("meta: phone_number_id %q is not a Cloud API phone number id (digits)", clipID(c.PhoneNumberID))
	case c.AccessToken == "":
		return fmt.Errorf("meta: access_token missing")
	case c.AppSecret == "":
		// Without it no webhook can be verified, so none would be accepted.
		return fmt.Errorf("meta: app_secret missing")
	case c.VerifyToken == "":
		return fmt.Errorf("meta: verify_token missing")
	case c.BusinessAccountID != "" && !MetaPhoneNumberID.MatchString(c.BusinessAccountID):
		return fmt.Errorf("meta: business_account_id %q is not a WhatsApp Business Account id (digits)", clipID(c.BusinessAccountID))
	case c.APIVersion != "" && !MetaAPIVersion.MatchString(c.APIVersion):
		return fmt.Errorf("meta: api_version %q is not like %q", clipID(c.APIVersion), MetaDefaultAPIVersion)
	}
	if _, err := c.BaseURL(); err != nil {
		return err
	}
	return nil
}

// BaseURL is APIBaseURL or the default, checked.
func (c *Meta) BaseURL() (*url.URL, error) {
	raw := c.APIBaseURL
	if raw == "" {
		raw = MetaDefaultAPIBaseURL
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("meta: api_base_url is not an absolute http(s) URL without query")
	}
	return u, nil
}

// Version is APIVersion or the default.
func (c *Meta) Version() string {
	if c.APIVersion == "" {
		return MetaDefaultAPIVersion
	}
	return c.APIVersion
}

// masked is Meta's fields and tags without its methods, so encoding one
// does not recurse into Meta's.
type masked Meta

// masked is c with its credentials masked.
func (c Meta) masked() masked {
	m := masked(c)
	m.AccessToken = mask.Secret(c.AccessToken)
	m.AppSecret = mask.Secret(c.AppSecret)
	m.VerifyToken = mask.Secret(c.VerifyToken)
	return m
}

// String prints c with its credentials masked (%v, %+v, %s).
func (c Meta) String() string {
	m := c.masked()
	return fmt.Sprintf("{PhoneNumberID:%s AccessToken:%s AppSecret:%s VerifyToken:%s APIBaseURL:%s APIVersion:%s}",
		m.PhoneNumberID, m.AccessToken, m.AppSecret, m.VerifyToken, m.APIBaseURL, m.APIVersion)
}

// GoString prints c with its credentials masked (%#v).
func (c Meta) GoString() string {
	m := c.masked()
	return fmt.Sprintf("meta.Config{PhoneNumberID:%q, AccessToken:%q, AppSecret:%q, VerifyToken:%q, APIBaseURL:%q, APIVersion:%q}",
		m.PhoneNumberID, m.AccessToken, m.AppSecret, m.VerifyToken, m.APIBaseURL, m.APIVersion)
}

// MarshalJSON encodes c with its credentials masked, as tenants.Secret
// does: JSON leaves Parley only as logs and API answers, never as the
// configuration itself.
func (c Meta) MarshalJSON() ([]byte, error) { return json.Marshal(c.masked()) }

// MarshalYAML encodes c with its credentials masked (gopkg.in/yaml.v3's
// Marshaler).
func (c Meta) MarshalYAML() (any, error) { return c.masked(), nil }

// clipID shortens a configured value before it goes into an error message.
func clipID(s string) string {
	const limit = 40
	if len(s) <= limit {
		return strings.ToValidUTF8(s, "\uFFFD")
	}
	return strings.ToValidUTF8(s[:limit], "\uFFFD") + "…"
}
