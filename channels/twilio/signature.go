// Package twilio is the Twilio WhatsApp channel: it verifies and normalises
// inbound webhooks (customer messages and delivery status callbacks) and
// sends replies through Twilio's Messages API.
//
// The package is split by direction:
//   - signature.go: X-Twilio-Signature, computed and checked;
//   - inbound.go: the webhook form turned into a wire.Inbound;
//   - sender.go: replies sent with twilio-go, failures classified into
//     channels.SendError;
//   - webhook.go: the route the ingress mounts, /webhooks/twilio/{tenant};
//   - provider.go: all of it behind channels.Provider (New).
//
// The twiliotest subpackage is a local fake of the Messages API for tests.
package twilio

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"net/url"
	"slices"
	"strings"
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
//
// Twilio does not always sign the URL as it was configured: it may add the
// scheme's default port or leave it out (twilio-go's validator checks both,
// "since sig generation on back-end is inconsistent"). A request is valid
// if it is signed for fullURL or for fullURL with its default port toggled
// (https://h/ and https://h:443/); never for another port or host.
func ValidSignature(authToken, fullURL string, params url.Values, header string) bool {
	if header == "" || authToken == "" {
		return false
	}
	if hmac.Equal([]byte(Signature(authToken, fullURL, params)), []byte(header)) {
		return true
	}
	alt, ok := toggleDefaultPort(fullURL)
	return ok && hmac.Equal([]byte(Signature(authToken, alt, params)), []byte(header))
}

// toggleDefaultPort adds the scheme's default port to an http(s) URL
// without one, or removes it from one that names it. The rest of the URL
// is kept byte for byte, since the signature covers it. ok is false for
// other schemes, other ports and URLs without a host.
func toggleDefaultPort(raw string) (string, bool) {
	var port string
	switch {
	case strings.HasPrefix(raw, "https://"):
		port = "443"
	case strings.HasPrefix(raw, "http://"):
		port = "80"
	default:
		return "", false
	}
	start := strings.Index(raw, "://") + 3
	end := strings.IndexAny(raw[start:], "/?#")
	if end < 0 {
		end = len(raw) - start
	}
	end += start
	authority := raw[start:end]
	host := authority[strings.LastIndexByte(authority, '@')+1:] // without user info
	// The port follows the last colon, unless that colon is inside an
	// IPv6 literal ("[::1]").
	hostname, hasPort := host, false
	if colon := strings.LastIndexByte(host, ':'); colon >= 0 && colon > strings.LastIndexByte(host, ']') {
		if host[colon+1:] != port {
			return "", false
		}
		hostname, hasPort = host[:colon], true
	}
	ipv6 := strings.HasPrefix(hostname, "[") && strings.HasSuffix(hostname, "]")
	if hostname == "" || (strings.Contains(hostname, ":") && !ipv6) {
		return "", false
	}
	if hasPort {
		return raw[:end-len(host)+len(hostname)] + raw[end:], true
	}
	return raw[:end] + ":" + port + raw[end:], true
}
