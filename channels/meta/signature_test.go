package meta

import (
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The expected signatures below were computed outside this package, so the
// test does not check the code against itself.
//
// GitHub documents the same scheme (X-Hub-Signature-256, HMAC-SHA256 of
// the raw body, "sha256=" + hex) with a published vector
// (https://docs.github.com/en/webhooks/using-webhooks/validating-webhook-deliveries),
// which OpenSSL reproduces:
//
//	printf '%s' 'Hello, World!' | openssl dgst -sha256 -hmac "It's a Secret to Everybody"
//	757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17
//
// A stored webhook, signed as a file (its trailing newline included):
//
//	openssl dgst -sha256 -hmac 0123456789abcdef0123456789abcdef testdata/text_message.json
//	afb133626e4945ef2c2ff26536168cd85ca7ca4bb30b69422135de53b173e927
//	openssl dgst -sha256 -hmac 0123456789abcdef0123456789abcdef testdata/two_numbers.json
//	d30d58e8b769f959472985ba342556b8824677eb464a5e517459323207d05dbd
//
// UTF-8 in the key and the body, and a JSON escape that must be signed as
// written (\u00e9), not as decoded (é); Python's hmac and OpenSSL agree:
//
//	printf '%s' '{"object":"whatsapp_business_account","entry":[{"changes":[{"value":{"messages":[{"text":{"body":"caf\u00e9 ☕ Zoë"}}]}}]}]}' \
//	  | openssl dgst -sha256 -hmac 'clé-secrète'
//	63c9e9cfa345bb220514a58a4349ae6db482088eaee0a2d4014845547593e5f8
//
// An empty body:
//
//	printf '' | openssl dgst -sha256 -hmac secret
//	f9e66e179b6747ae54108f82f8ade8b3c25d76fd30afde6c395822c530196169
var signatureVectors = []struct {
	name, secret string
	body         func(testing.TB) []byte
	want         string
}{
	{"github docs", "It's a Secret to Everybody", literal("Hello, World!"),
		"sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"},
	{"text_message.json", "0123456789abcdef0123456789abcdef", file("text_message.json"),
		"sha256=afb133626e4945ef2c2ff26536168cd85ca7ca4bb30b69422135de53b173e927"},
	{"two_numbers.json", "0123456789abcdef0123456789abcdef", file("two_numbers.json"),
		"sha256=d30d58e8b769f959472985ba342556b8824677eb464a5e517459323207d05dbd"},
	{"utf-8 and a json escape", "clé-secrète",
		literal(`{"object":"whatsapp_business_account","entry":[{"changes":[{"value":{"messages":[{"text":{"body":"caf\u00e9 ☕ Zoë"}}]}}]}]}`),
		"sha256=63c9e9cfa345bb220514a58a4349ae6db482088eaee0a2d4014845547593e5f8"},
	{"empty body", "secret", literal(""),
		"sha256=f9e66e179b6747ae54108f82f8ade8b3c25d76fd30afde6c395822c530196169"},
}

func literal(s string) func(testing.TB) []byte { return func(testing.TB) []byte { return []byte(s) } }

func file(name string) func(testing.TB) []byte {
	return func(t testing.TB) []byte {
		t.Helper()
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
}

func TestSignatureVectors(t *testing.T) {
	for _, tc := range signatureVectors {
		t.Run(tc.name, func(t *testing.T) {
			body := tc.body(t)
			if got := Signature(tc.secret, body); got != tc.want {
				t.Errorf("Signature = %s, want %s", got, tc.want)
			}
			if !ValidSignature(tc.secret, body, tc.want) {
				t.Error("ValidSignature rejects the vector")
			}
			if !ValidSignature(tc.secret, body, "sha256="+strings.ToUpper(strings.TrimPrefix(tc.want, "sha256="))) {
				t.Error("ValidSignature rejects upper-case hex")
			}
		})
	}
}

func TestValidSignatureRejects(t *testing.T) {
	const secret = "0123456789abcdef0123456789abcdef"
	body := file("text_message.json")(t)
	good := signatureVectors[1].want
	tampered := append([]byte(nil), body...)
	tampered[len(tampered)/2] ^= 1
	cases := []struct {
		name, secret string
		body         []byte
		header       string
	}{
		{"empty header", secret, body, ""},
		{"empty secret", "", body, good},
		{"signature of an empty secret", secret, body, Signature("", body)},
		{"other secret", "1" + secret[1:], body, good},
		{"body changed", secret, tampered, good},
		{"body re-encoded", secret, []byte(strings.ReplaceAll(string(body), "  ", " ")), good},
		{"no prefix", secret, body, strings.TrimPrefix(good, "sha256=")},
		{"sha1 prefix (X-Hub-Signature)", secret, body, "sha1=" + strings.TrimPrefix(good, "sha256=")},
		{"prefix in capitals", secret, body, "SHA256=" + strings.TrimPrefix(good, "sha256=")},
		{"truncated", secret, body, good[:len(good)-2]},
		{"extended", secret, body, good + "00"},
		{"not hex", secret, body, "sha256=" + strings.Repeat("zz", 32)},
		{"space after =", secret, body, "sha256= " + strings.TrimPrefix(good, "sha256=")},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if ValidSignature(tc.secret, tc.body, tc.header) {
				t.Fatal("accepted")
			}
		})
	}
}

func TestVerifyChallenge(t *testing.T) {
	const token = "parley-verify-0123456789"
	q := func(kv ...string) url.Values {
		v := url.Values{}
		for i := 0; i < len(kv); i += 2 {
			v.Set(kv[i], kv[i+1])
		}
		return v
	}
	ok := q("hub.mode", "subscribe", "hub.verify_token", token, "hub.challenge", "1158201444")
	if c, good := VerifyChallenge(ok, token); !good || c != "1158201444" {
		t.Fatalf("got %q, %v", c, good)
	}
	// As Meta sends it, parsed from the raw query.
	raw, err := url.ParseQuery("hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token=" + url.QueryEscape(token))
	if err != nil {
		t.Fatal(err)
	}
	if c, good := VerifyChallenge(raw, token); !good || c != "1158201444" {
		t.Fatalf("raw query: got %q, %v", c, good)
	}
	refused := []struct {
		name  string
		query url.Values
		token string
	}{
		{"wrong token", q("hub.mode", "subscribe", "hub.verify_token", "guess", "hub.challenge", "1"), token},
		{"token prefix", q("hub.mode", "subscribe", "hub.verify_token", token[:10], "hub.challenge", "1"), token},
		{"no token", q("hub.mode", "subscribe", "hub.challenge", "1"), token},
		{"tenant has no token", q("hub.mode", "subscribe", "hub.verify_token", "", "hub.challenge", "1"), ""},
		{"mode unsubscribe", q("hub.mode", "unsubscribe", "hub.verify_token", token, "hub.challenge", "1"), token},
		{"no mode", q("hub.verify_token", token, "hub.challenge", "1"), token},
		{"no challenge", q("hub.mode", "subscribe", "hub.verify_token", token), token},
		{"markup in the challenge", q("hub.mode", "subscribe", "hub.verify_token", token, "hub.challenge", "<script>alert(1)</script>"), token},
		{"newline in the challenge", q("hub.mode", "subscribe", "hub.verify_token", token, "hub.challenge", "1\r\nSet-Cookie: x=1"), token},
		{"huge challenge", q("hub.mode", "subscribe", "hub.verify_token", token, "hub.challenge", strings.Repeat("1", 300)), token},
	}
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			if c, good := VerifyChallenge(tc.query, tc.token); good || c != "" {
				t.Fatalf("accepted: %q", c)
			}
		})
	}
}

func BenchmarkValidSignature(b *testing.B) {
	body := file("text_message.json")(b)
	const secret = "0123456789abcdef0123456789abcdef"
	sig := Signature(secret, body)
	b.ReportAllocs()
	for b.Loop() {
		if !ValidSignature(secret, body, sig) {
			b.Fatal("rejected")
		}
	}
}
