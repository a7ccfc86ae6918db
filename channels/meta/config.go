// Package meta is the WhatsApp channel through Meta's Cloud API: it answers
// the webhook verification handshake, verifies and normalises inbound
// webhooks (customer messages and delivery statuses) and sends messages and
// templates through the Graph API messages endpoint.
//
// The package is split as the twilio channel is:
//   - config.go: a tenant's Cloud API settings (Config);
//   - signature.go: X-Hub-Signature-256 and the GET verification handshake;
//   - payload.go: the webhook JSON as Meta documents it (Parse);
//   - inbound.go: payloads turned into wire.Inbound records, each for the
//     tenant that owns the number it arrived on (Normalize, Accept);
//   - sender.go: text and template sends, failures classified for retry.
//
// The metatest subpackage is a local fake of the Graph messages API and
// builds signed webhooks for tests.
//
// One webhook URL serves every number: Meta calls the URL configured on the
// app, whatever number of the app's WhatsApp Business Accounts the event is
// about. So the tenant is never taken from the URL but from each change's
// metadata.phone_number_id, and each change is trusted only if the payload
// is signed with the app secret of the tenant that owns that number.
//
// This package must not import tenants: tenants.Tenant embeds Config, so the
// secrets here are plain strings, masked whenever a Config is printed or
// encoded.
package meta

import (
	"encoding/json"
	"fmt"
	"net/url"
	"regexp"

	"github.com/parleyhq/parley/internal/mask"
)

// Channel is the wire.Inbound.Channel of everything this package produces.
const Channel = "meta"

// Defaults for Config fields left empty.
const (
	DefaultAPIBaseURL = "https://graph.facebook.com"
	// DefaultAPIVersion is the Graph API version sends use. Meta retires a
	// version about two years after its release; a tenant can move ahead
	// with api_version before this default is raised.
	DefaultAPIVersion = "v21.0"
)

// Config is one tenant's WhatsApp number on the Cloud API. In the tenant
// file:
//
//	meta:
//	  phone_number_id: "106540352242922"
//	  access_token: "${ACME_META_TOKEN}"   # system user token, whatsapp_business_messaging
//	  app_secret: "${ACME_META_APP_SECRET}"
//	  verify_token: "${ACME_META_VERIFY}"
//	  api_base_url: ""                      # empty: Meta's Graph API
//	  api_version: ""                       # empty: DefaultAPIVersion
//
// AccessToken, AppSecret and VerifyToken are credentials. Config masks them
// in String, GoString, JSON and YAML, so a tenant dumped for debugging does
// not leak them; code that needs them reads the fields. Keep Config a named
// field of the tenant (`Meta *meta.Config`), not an embedded one, or its
// masking methods would be promoted to, and replace, the tenant's own.
type Config struct {
	// PhoneNumberID is the Cloud API id of the business number (not the
	// number itself): sends go to /{PhoneNumberID}/messages and webhooks
	// name it in metadata.phone_number_id.
	PhoneNumberID string `yaml:"phone_number_id" json:"phone_number_id"`
	// AccessToken authenticates sends (Authorization: Bearer).
	AccessToken string `yaml:"access_token" json:"access_token"`
	// AppSecret is the secret of the Meta app whose webhooks bring this
	// number's events; it keys X-Hub-Signature-256.
	AppSecret string `yaml:"app_secret" json:"app_secret"`
	// VerifyToken is what the app's webhook configuration sends as
	// hub.verify_token in the GET handshake.
	VerifyToken string `yaml:"verify_token" json:"verify_token"`
	// APIBaseURL points sends at a Graph-compatible server (sandboxes,
	// tests); empty means DefaultAPIBaseURL. A path prefix is kept.
	APIBaseURL string `yaml:"api_base_url,omitempty" json:"api_base_url,omitempty"`
	// APIVersion is the Graph API version, "v21.0"; empty means
	// DefaultAPIVersion.
	APIVersion string `yaml:"api_version,omitempty" json:"api_version,omitempty"`
}

var (
	// phoneNumberID is a Graph object id: digits. Checked because it goes
	// into the request path and is the key tenants are found by.
	phoneNumberID = regexp.MustCompile(`^[0-9]{1,32}$`)
	apiVersion    = regexp.MustCompile(`^v[0-9]{1,3}\.[0-9]{1,3}$`)
)

// Validate reports the first thing wrong with c, without revealing a
// credential. The tenant registry calls it at start so that a typo fails
// the deployment instead of the first send.
func (c *Config) Validate() error {
	switch {
	case !phoneNumberID.MatchString(c.PhoneNumberID):
		return fmt.Errorf("meta: phone_number_id %q is not a Cloud API phone number id (digits)", clip(c.PhoneNumberID))
	case c.AccessToken == "":
		return fmt.Errorf("meta: access_token missing")
	case c.AppSecret == "":
		// Without it no webhook can be verified, so none would be accepted.
		return fmt.Errorf("meta: app_secret missing")
	case c.VerifyToken == "":
		return fmt.Errorf("meta: verify_token missing")
	case c.APIVersion != "" && !apiVersion.MatchString(c.APIVersion):
		return fmt.Errorf("meta: api_version %q is not like %q", clip(c.APIVersion), DefaultAPIVersion)
	}
	if _, err := c.baseURL(); err != nil {
		return err
	}
	return nil
}

// baseURL is APIBaseURL or the default, checked.
func (c *Config) baseURL() (*url.URL, error) {
	raw := c.APIBaseURL
	if raw == "" {
		raw = DefaultAPIBaseURL
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("meta: api_base_url is not an absolute http(s) URL without query")
	}
	return u, nil
}

func (c *Config) version() string {
	if c.APIVersion == "" {
		return DefaultAPIVersion
	}
	return c.APIVersion
}

// masked is c with its credentials masked; its type has no methods, so
// encoding it does not recurse into Config's.
type masked struct {
	PhoneNumberID string `yaml:"phone_number_id" json:"phone_number_id"`
	AccessToken   string `yaml:"access_token" json:"access_token"`
	AppSecret     string `yaml:"app_secret" json:"app_secret"`
	VerifyToken   string `yaml:"verify_token" json:"verify_token"`
	APIBaseURL    string `yaml:"api_base_url,omitempty" json:"api_base_url,omitempty"`
	APIVersion    string `yaml:"api_version,omitempty" json:"api_version,omitempty"`
}

func (c Config) masked() masked {
	return masked{
		PhoneNumberID: c.PhoneNumberID,
		AccessToken:   Mask(c.AccessToken),
		AppSecret:     Mask(c.AppSecret),
		VerifyToken:   Mask(c.VerifyToken),
		APIBaseURL:    c.APIBaseURL,
		APIVersion:    c.APIVersion,
	}
}

// String prints c with its credentials masked (%v, %+v, %s).
func (c Config) String() string {
	m := c.masked()
	return fmt.Sprintf("{PhoneNumberID:%s AccessToken:%s AppSecret:%s VerifyToken:%s APIBaseURL:%s APIVersion:%s}",
		m.PhoneNumberID, m.AccessToken, m.AppSecret, m.VerifyToken, m.APIBaseURL, m.APIVersion)
}

// GoString prints c with its credentials masked (%#v).
func (c Config) GoString() string {
	m := c.masked()
	return fmt.Sprintf("meta.Config{PhoneNumberID:%q, AccessToken:%q, AppSecret:%q, VerifyToken:%q, APIBaseURL:%q, APIVersion:%q}",
		m.PhoneNumberID, m.AccessToken, m.AppSecret, m.VerifyToken, m.APIBaseURL, m.APIVersion)
}

// MarshalJSON encodes c with its credentials masked, as tenants.Secret
// does: JSON leaves Parley only as logs and API answers, never as the
// configuration itself.
func (c Config) MarshalJSON() ([]byte, error) { return json.Marshal(c.masked()) }

// MarshalYAML encodes c with its credentials masked (gopkg.in/yaml.v3's
// Marshaler).
func (c Config) MarshalYAML() (any, error) { return c.masked(), nil }

// Mask shows at most the last four characters of a credential.
func Mask(s string) string { return mask.Secret(s) }
