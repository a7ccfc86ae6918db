// Package twilio is the Twilio WhatsApp channel: it verifies and normalises
// inbound webhooks (customer messages and delivery status callbacks) and
// sends replies through Twilio's Messages API.
//
// The package is split by direction:
//   - signature.go: X-Twilio-Signature, computed and checked;
//   - inbound.go: the webhook form turned into a wire.Inbound;
//   - sender.go: replies sent with twilio-go, failures classified for retry.
//
// The twiliotest subpackage is a local fake of the Messages API for tests.
package twilio

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"net/url"
	"slices"
)

// Signature computes the X-Twilio-Signature Twilio sends with a webhook:
// base64(HMAC-SHA1(auth token, fullURL followed by every POST parameter,
// sorted by name, as name then value)).
//
// fullURL is the URL Twilio was configured to call, query string included,
// exactly as Twilio sees it: behind a proxy that is the public URL, not the
// one the server receives.
//
// Twilio never repeats a field in its webhooks, but a form can. For a
// repeated name the distinct values are appended in sorted order, each
// preceded by the name, which is what Twilio's own helper libraries do
// (twilio-python: `for value in sorted(set(values))`); following the wire
// order instead would disagree with them.
func Signature(authToken, fullURL string, params url.Values) string {
	keys := make([]string, 0, len(params))
	size := len(fullURL)
	for k, vs := range params {
		keys = append(keys, k)
		for _, v := range vs {
			size += len(k) + len(v)
		}
	}
	slices.Sort(keys)
	// One buffer and one Write: the ingress checks a signature on every
	// request, and per-field writes would each allocate a []byte.
	buf := make([]byte, 0, size)
	buf = append(buf, fullURL...)
	for _, k := range keys {
		for _, v := range distinctSorted(params[k]) {
			buf = append(buf, k...)
			buf = append(buf, v...)
		}
	}
	mac := hmac.New(sha1.New, []byte(authToken))
	mac.Write(buf)
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// distinctSorted returns vs sorted without duplicates. The common case, one
// value, is returned as is without allocating.
func distinctSorted(vs []string) []string {
	if len(vs) < 2 {
		return vs
	}
	out := slices.Clone(vs)
	slices.Sort(out)
	return slices.Compact(out)
}

// ValidSignature reports whether header is the X-Twilio-Signature of a
// request to fullURL carrying params. The comparison takes constant time so
// that response timing does not leak how much of a forged signature was
// right. An empty header or auth token is never valid: an unconfigured token
// must not turn the check into HMAC with an empty key, which anyone can
// compute.
func ValidSignature(authToken, fullURL string, params url.Values, header string) bool {
	if header == "" || authToken == "" {
		return false
	}
	return hmac.Equal([]byte(Signature(authToken, fullURL, params)), []byte(header))
}
