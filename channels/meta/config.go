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
//   - sender.go: text and template sends, failures classified into
//     channels.SendError;
//   - webhook.go: the route the ingress mounts, /webhooks/meta;
//   - provider.go: all of it behind channels.Provider (New).
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
// A tenant's Cloud API settings are tenants.Meta (Config here): the tenant
// registry keeps them without knowing this package.
package meta

import (
	"github.com/parleyhq/parley/internal/mask"
	"github.com/parleyhq/parley/tenants"
)

// Channel is the wire.Inbound.Channel of everything this package produces.
const Channel = tenants.ChannelMeta

// Defaults for Config fields left empty.
const (
	DefaultAPIBaseURL = tenants.MetaDefaultAPIBaseURL
	DefaultAPIVersion = tenants.MetaDefaultAPIVersion
)

// Config is one tenant's WhatsApp number on the Cloud API: the tenant's
// meta: block, kept by the tenant registry.
type Config = tenants.Meta

var (
	phoneNumberID = tenants.MetaPhoneNumberID
	apiVersion    = tenants.MetaAPIVersion
)

// Mask shows at most the last four characters of a credential.
func Mask(s string) string { return mask.Secret(s) }
