package meta

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"net/url"
	"regexp"
	"strings"
)

// SignatureHeader is the header Meta signs webhook POSTs with.
const SignatureHeader = "X-Hub-Signature-256"

const signaturePrefix = "sha256="

// Signature computes the X-Hub-Signature-256 value Meta sends with a
// webhook: "sha256=" and the lower-case hex HMAC-SHA256 of the raw request
// body keyed with the app secret. The body must be the bytes as received:
// Meta signs them before any JSON decoding, and re-encoding changes escapes
// ("\u00e9" against "é") and with them the signature.
func Signature(appSecret string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(appSecret))
	mac.Write(body)
	return signaturePrefix + hex.EncodeToString(mac.Sum(nil))
}

// ValidSignature reports whether header is the X-Hub-Signature-256 of body
// under appSecret. The digits are compared as bytes in constant time, so
// timing does not tell how much of a forged signature was right; upper-case
// hex is accepted. An empty header or app secret is never valid: an
// unconfigured secret must not turn the check into HMAC with an empty key,
// which anyone can compute.
func ValidSignature(appSecret string, body []byte, header string) bool {
	if appSecret == "" {
		return false
	}
	digits, ok := strings.CutPrefix(header, signaturePrefix)
	if !ok || len(digits) != 2*sha256.Size {
		return false
	}
	got, err := hex.DecodeString(digits)
	if err != nil {
		return false
	}
	mac := hmac.New(sha256.New, []byte(appSecret))
	mac.Write(body)
	return hmac.Equal(mac.Sum(nil), got)
}

// challenge bounds what the handshake echoes. Meta sends a number; the
// answer goes back verbatim in a response body, so markup and control
// characters are refused rather than reflected.
var challenge = regexp.MustCompile(`^[A-Za-z0-9._~-]{1,256}$`)

// VerifyChallenge answers Meta's webhook verification handshake, the GET
// Meta makes when the webhook URL is configured:
//
//	GET /webhooks/meta?hub.mode=subscribe&hub.verify_token=TOKEN&hub.challenge=1158201444
//
// It returns the challenge to echo (as a 200 text/plain body) and true when
// hub.mode is "subscribe" and hub.verify_token equals verifyToken, compared
// in constant time; otherwise "" and false (answer 403). An empty
// verifyToken never matches.
//
// The GET names no number, so with one URL for all tenants the only thing
// that says whose app is calling is the token itself: the ingress tries
// each tenant's verify token and answers for the first that matches.
func VerifyChallenge(query url.Values, verifyToken string) (string, bool) {
	if verifyToken == "" || query.Get("hub.mode") != "subscribe" {
		return "", false
	}
	if subtle.ConstantTimeCompare([]byte(query.Get("hub.verify_token")), []byte(verifyToken)) != 1 {
		return "", false
	}
	c := query.Get("hub.challenge")
	if !challenge.MatchString(c) {
		return "", false
	}
	return c, true
}
