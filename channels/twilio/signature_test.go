package twilio

import (
	"fmt"
	"math/rand/v2"
	"net/url"
	"strings"
	"testing"

	"github.com/twilio/twilio-go/client"

	"github.com/parleyhq/parley/channels/providertest"
)

// The expected signatures below were computed outside this package, so the
// test does not check the code against itself.
//
// Twilio's documented example (https://www.twilio.com/docs/usage/security),
// with Python's hmac:
//
//	python3 -c "import hmac,hashlib,base64; p={'CallSid':'CA1234567890ABCDE','Caller':'+14158675310','Digits':'1234','From':'+14158675310','To':'+18005551212'}; s='https://mycompany.com/myapp.php?foo=1&bar=2'+''.join(k+p[k] for k in sorted(p)); print(base64.b64encode(hmac.new(b'12345',s.encode(),hashlib.sha1).digest()).decode())"
//	GvWf1cFY/Q7PnoempGyD5oXAezc=
//
// "GvWf1cFY/Q7PnoempGyD5oXAezc=" belongs to Caller/From +14158675310; the
// same one-liner with +12349013030 (the numbers of Twilio's code snippets)
// gives "0/KCTR6DLpKmkAf8muzZqo1nDgQ=". Both are kept.
//
// The WhatsApp vector, with OpenSSL (note the ?x=1 query and the UTF-8):
//
//	printf '%s' 'https://parley.example.com/webhooks/twilio/acme?x=1BodyHola ¿Tienen cita el viernes? 💇Fromwhatsapp:+34600123456MessageSidSM0123456789abcdef0123456789abcdefNumMedia0ProfileNameZoëTowhatsapp:+14155238886' \
//	  | openssl dgst -sha1 -hmac 9f3c2a1b4d5e6f708192a3b4c5d6e7f8 -binary | base64
//	1ceRMo7L3sM3cDPWHuAxbmutZ6Q=
//
// The repeated-field vector, with OpenSSL, values sorted and deduplicated
// as twilio-python does (Tag=b&Tag=a&Tag=b&A=1 signs as "A1TagaTagb"):
//
//	printf '%s' 'https://example.com/hookA1TagaTagb' | openssl dgst -sha1 -hmac secret -binary | base64
//	hCRX8eTkXnId+kPCTMe3KK2P6ko=
var signatureVectors = []struct {
	name, token, url string
	params           url.Values
	want             string
}{
	{
		name: "twilio docs", token: "12345", url: "https://mycompany.com/myapp.php?foo=1&bar=2",
		params: url.Values{"CallSid": {"CA1234567890ABCDE"}, "Caller": {"+14158675310"}, "Digits": {"1234"},
			"From": {"+14158675310"}, "To": {"+18005551212"}},
		want: "GvWf1cFY/Q7PnoempGyD5oXAezc=",
	},
	{
		name: "twilio snippet numbers", token: "12345", url: "https://mycompany.com/myapp.php?foo=1&bar=2",
		params: url.Values{"CallSid": {"CA1234567890ABCDE"}, "Caller": {"+12349013030"}, "Digits": {"1234"},
			"From": {"+12349013030"}, "To": {"+18005551212"}},
		want: "0/KCTR6DLpKmkAf8muzZqo1nDgQ=",
	},
	{
		// twilio-go's own test vector (client/request_validator_test.go):
		// "Reason" sorts before "ReasonConferenceEnded".
		name: "twilio-go test vector", token: "12345", url: "https://mycompany.com/myapp.php?foo=1&bar=2",
		params: url.Values{"Digits": {"1234"}, "CallSid": {"CA1234567890ABCDE"}, "To": {"+18005551212"},
			"Caller": {"+14158675309"}, "From": {"+14158675309"}, "ReasonConferenceEnded": {"test"}, "Reason": {"Participant"}},
		want: "vOEb5UThFn24KEfnOFLQY2AE5FY=",
	},
	{
		name: "whatsapp inbound, utf-8", token: "9f3c2a1b4d5e6f708192a3b4c5d6e7f8", url: "https://parley.example.com/webhooks/twilio/acme?x=1",
		params: url.Values{"Body": {"Hola ¿Tienen cita el viernes? 💇"}, "From": {"whatsapp:+34600123456"},
			"MessageSid": {"SM0123456789abcdef0123456789abcdef"}, "NumMedia": {"0"}, "ProfileName": {"Zoë"},
			"To": {"whatsapp:+14155238886"}},
		want: "1ceRMo7L3sM3cDPWHuAxbmutZ6Q=",
	},
	{
		name: "no parameters", token: "12345", url: "https://mycompany.com/myapp.php?foo=1&bar=2",
		params: url.Values{},
		want:   "zYQTYrRWXE7LtzbG4PfP7/bkkGo=",
	},
	{
		name: "repeated field", token: "secret", url: "https://example.com/hook",
		params: url.Values{"Tag": {"b", "a", "b"}, "A": {"1"}},
		want:   "hCRX8eTkXnId+kPCTMe3KK2P6ko=",
	},
}

func TestSignatureVectors(t *testing.T) {
	for _, tc := range signatureVectors {
		t.Run(tc.name, func(t *testing.T) {
			if got := Signature(tc.token, tc.url, tc.params); got != tc.want {
				t.Errorf("Signature = %s, want %s", got, tc.want)
			}
			if !ValidSignature(tc.token, tc.url, tc.params, tc.want) {
				t.Error("ValidSignature rejects the vector")
			}
		})
	}
}

// twilio-go's validator takes one value a field, as Twilio sends them.
func single(v url.Values) (map[string]string, bool) {
	m := make(map[string]string, len(v))
	for k, vs := range v {
		if len(vs) != 1 {
			return nil, false
		}
		m[k] = vs[0]
	}
	return m, true
}

func TestSignatureAgreesWithTwilioGo(t *testing.T) {
	check := func(t *testing.T, token, u string, params url.Values) {
		t.Helper()
		m, ok := single(params)
		if !ok {
			t.Fatal("test form has a repeated field")
		}
		v := client.NewRequestValidator(token)
		sig := Signature(token, u, params)
		if !v.Validate(u, m, sig) {
			t.Fatalf("twilio-go rejects our signature %s of %s %v", sig, u, params)
		}
	}
	for _, tc := range signatureVectors {
		if _, ok := single(tc.params); !ok {
			continue
		}
		t.Run(tc.name, func(t *testing.T) {
			check(t, tc.token, tc.url, tc.params)
			m, _ := single(tc.params)
			v := client.NewRequestValidator(tc.token)
			if !v.Validate(tc.url, m, tc.want) {
				t.Fatal("twilio-go rejects the hard-coded vector")
			}
		})
	}
	for _, file := range providertest.TestdataFiles(t) {
		t.Run(file, func(t *testing.T) {
			check(t, "0123456789abcdef0123456789abcdef", "https://parley.example.com/webhooks/twilio/acme", loadForm(t, file))
		})
	}
	// Random forms: any bytes in names and values, including the ones
	// that sort differently by byte and by rune, and empty ones.
	rng := rand.New(rand.NewPCG(1, 2))
	alphabet := []rune("aAzZ09_-+:/%&=?é€😀 \x00\x7f")
	word := func() string {
		r := make([]rune, rng.IntN(8))
		for i := range r {
			r[i] = alphabet[rng.IntN(len(alphabet))]
		}
		return string(r)
	}
	for i := range 200 {
		params := url.Values{}
		for range rng.IntN(12) {
			params.Set(word(), word())
		}
		t.Run(fmt.Sprint("random/", i), func(t *testing.T) {
			check(t, word()+"k", "https://h.example/p?"+word(), params)
		})
	}
}

func TestValidSignatureRejects(t *testing.T) {
	vec := signatureVectors[3]
	tampered := func(k, v string) url.Values {
		p := url.Values{}
		for key, vs := range vec.params {
			p[key] = append([]string(nil), vs...)
		}
		p.Set(k, v)
		return p
	}
	cases := []struct {
		name, token, url string
		params           url.Values
		header           string
	}{
		{"empty header", vec.token, vec.url, vec.params, ""},
		{"empty token", "", vec.url, vec.params, vec.want},
		{"other token", "0" + vec.token[1:], vec.url, vec.params, vec.want},
		{"other url (proxy forgot the public base URL)", vec.token, "http://10.0.0.7:8080/webhooks/twilio/acme?x=1", vec.params, vec.want},
		{"query dropped", vec.token, "https://parley.example.com/webhooks/twilio/acme", vec.params, vec.want},
		{"body changed", vec.token, vec.url, tampered("Body", "Hola"), vec.want},
		{"field added", vec.token, vec.url, tampered("NumMedia", "1"), vec.want},
		{"truncated header", vec.token, vec.url, vec.params, vec.want[:len(vec.want)-1]},
		{"header not base64", vec.token, vec.url, vec.params, "not a signature"},
		{"signature of an empty token", vec.token, vec.url, vec.params, Signature("", vec.url, vec.params)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if ValidSignature(tc.token, tc.url, tc.params, tc.header) {
				t.Fatal("accepted")
			}
		})
	}
	if !ValidSignature(vec.token, vec.url, vec.params, vec.want) {
		t.Fatal("the untampered request is rejected")
	}
}

func TestToggleDefaultPort(t *testing.T) {
	cases := []struct {
		in, want string
		ok       bool
	}{
		{"https://parley.example.com/webhooks/twilio/acme", "https://parley.example.com:443/webhooks/twilio/acme", true},
		{"https://parley.example.com:443/webhooks/twilio/acme", "https://parley.example.com/webhooks/twilio/acme", true},
		{"http://parley.example.com/hook?x=1", "http://parley.example.com:80/hook?x=1", true},
		{"http://parley.example.com:80?x=1", "http://parley.example.com?x=1", true},
		{"https://parley.example.com", "https://parley.example.com:443", true},
		{"https://user:pa:ss@parley.example.com/hook", "https://user:pa:ss@parley.example.com:443/hook", true},
		{"https://[2001:db8::1]/hook", "https://[2001:db8::1]:443/hook", true},
		{"https://[2001:db8::1]:443/hook", "https://[2001:db8::1]/hook", true},
		// The path is kept byte for byte, escapes and all.
		{"https://parley.example.com/a%2Fb?q=%C3%A9#frag", "https://parley.example.com:443/a%2Fb?q=%C3%A9#frag", true},
		{"https://parley.example.com:8443/hook", "", false},
		{"http://parley.example.com:443/hook", "", false},
		{"ftp://parley.example.com/hook", "", false},
		{"https:///hook", "", false},
		{"/webhooks/twilio/acme", "", false},
	}
	for _, tc := range cases {
		got, ok := toggleDefaultPort(tc.in)
		if got != tc.want || ok != tc.ok {
			t.Errorf("toggleDefaultPort(%q) = %q, %v; want %q, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

// Twilio may sign the URL with or without the default port; both are
// accepted, as twilio-go accepts them, and no other port or host is.
func TestValidSignatureAcceptsTheDefaultPortEitherWay(t *testing.T) {
	form := loadForm(t, "text_message.json")
	const token = "0123456789abcdef0123456789abcdef"
	m, _ := single(form)
	reference := client.NewRequestValidator(token)
	cases := []struct {
		name, configured, signedFor string
		want                        bool
	}{
		{"as configured", "https://parley.example.com/webhooks/twilio/acme", "https://parley.example.com/webhooks/twilio/acme", true},
		{"signed with :443", "https://parley.example.com/webhooks/twilio/acme", "https://parley.example.com:443/webhooks/twilio/acme", true},
		{"configured with :443, signed without", "https://parley.example.com:443/webhooks/twilio/acme", "https://parley.example.com/webhooks/twilio/acme", true},
		{"http signed with :80", "http://parley.example.com/webhooks/twilio/acme", "http://parley.example.com:80/webhooks/twilio/acme", true},
		{"another port", "https://parley.example.com/webhooks/twilio/acme", "https://parley.example.com:8443/webhooks/twilio/acme", false},
		{"another host", "https://parley.example.com/webhooks/twilio/acme", "https://evil.example.com:443/webhooks/twilio/acme", false},
		{"another path", "https://parley.example.com/webhooks/twilio/acme", "https://parley.example.com:443/webhooks/twilio/other", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sig := Signature(token, tc.signedFor, form)
			if got := ValidSignature(token, tc.configured, form, sig); got != tc.want {
				t.Fatalf("ValidSignature = %v, want %v", got, tc.want)
			}
			if tc.want && !reference.Validate(tc.configured, m, sig) {
				t.Fatal("twilio-go's validator disagrees")
			}
		})
	}
}

// The ingress budget (ARCHITECTURE.md) is 2–3 µs a request for the check.
func BenchmarkValidSignature(b *testing.B) {
	form := loadForm(b, "text_message.json")
	const token, u = "0123456789abcdef0123456789abcdef", "https://parley.example.com/webhooks/twilio/acme"
	sig := Signature(token, u, form)
	b.ReportAllocs()
	for b.Loop() {
		if !ValidSignature(token, u, form, sig) {
			b.Fatal("rejected")
		}
	}
}

// Toggling the default port twice gives the URL back, and a toggle only
// ever adds or removes the scheme's default port.
func FuzzToggleDefaultPort(f *testing.F) {
	for _, s := range []string{"https://h/p", "http://h:80?x", "https://u@[::1]:443/p#f", "https://h:8443/", "https://", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		alt, ok := toggleDefaultPort(raw)
		if !ok {
			return
		}
		back, ok := toggleDefaultPort(alt)
		if !ok || back != raw {
			t.Fatalf("%q → %q → %q, %v", raw, alt, back, ok)
		}
		longer, shorter := alt, raw
		if len(raw) > len(alt) {
			longer, shorter = raw, alt
		}
		d := len(longer) - len(shorter)
		if (d != 4 || !strings.Contains(longer, ":443")) && (d != 3 || !strings.Contains(longer, ":80")) {
			t.Fatalf("%q → %q changed more than the default port", raw, alt)
		}
	})
}
