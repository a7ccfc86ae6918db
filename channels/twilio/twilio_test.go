package twilio

import (
	"encoding/json"
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twilio/twilio-go/client"

	"github.com/parleyhq/parley/wire"
)

// The expected signatures were computed outside this code, with Python:
//
//	python3 -c "import hmac,hashlib,base64; tok=b'12345'; \
//	  url='https://mycompany.com/myapp.php?foo=1&bar=2'; \
//	  p={'CallSid':'CA1234567890ABCDE','Caller':'+12349013030','Digits':'1234','From':'+12349013030','To':'+18005551212'}; \
//	  s=url+''.join(k+p[k] for k in sorted(p)); \
//	  print(base64.b64encode(hmac.new(tok,s.encode(),hashlib.sha1).digest()).decode())"
var signatureVectors = []struct {
	name, token, url string
	params           map[string]string
	want             string
}{
	{
		name:  "twilio docs example",
		token: "12345",
		url:   "https://mycompany.com/myapp.php?foo=1&bar=2",
		params: map[string]string{
			"CallSid": "CA1234567890ABCDE", "Caller": "+12349013030", "Digits": "1234",
			"From": "+12349013030", "To": "+18005551212",
		},
		want: "0/KCTR6DLpKmkAf8muzZqo1nDgQ=",
	},
	{
		name:  "whatsapp inbound",
		token: "test-auth-token-0123456789abcdef",
		url:   "https://parley.example.com/webhooks/twilio/acme",
		params: map[string]string{
			"Body": "Hello there", "From": "whatsapp:+447700900456",
			"MessageSid": "SM0123456789abcdef0123456789abcdef", "To": "whatsapp:+14155238886",
			"ProfileName": "Sam", "NumMedia": "0",
		},
		want: "Z4boIx9fgFDCfA0fYlSpA6r/OpY=",
	},
}

func values(m map[string]string) url.Values {
	v := url.Values{}
	for k, x := range m {
		v.Set(k, x)
	}
	return v
}

func TestSignatureVectors(t *testing.T) {
	for _, tc := range signatureVectors {
		t.Run(tc.name, func(t *testing.T) {
			if got := Signature(tc.token, tc.url, values(tc.params)); got != tc.want {
				t.Fatalf("Signature = %s, want %s", got, tc.want)
			}
			if !ValidSignature(tc.token, tc.url, values(tc.params), tc.want) {
				t.Fatal("ValidSignature rejected the right signature")
			}
			// twilio-go's own validator agrees.
			v := client.NewRequestValidator(tc.token)
			if !v.Validate(tc.url, tc.params, tc.want) {
				t.Fatal("twilio-go's validator rejects the vector")
			}
		})
	}
}

func TestValidSignatureRejects(t *testing.T) {
	tc := signatureVectors[1]
	cases := map[string]func() (string, string, url.Values, string){
		"empty header": func() (string, string, url.Values, string) { return tc.token, tc.url, values(tc.params), "" },
		"wrong token":  func() (string, string, url.Values, string) { return "other", tc.url, values(tc.params), tc.want },
		"other url": func() (string, string, url.Values, string) {
			return tc.token, "http://127.0.0.1:8080/webhooks/twilio/acme", values(tc.params), tc.want
		},
		"tampered body": func() (string, string, url.Values, string) {
			p := values(tc.params)
			p.Set("Body", "Hello therE")
			return tc.token, tc.url, p, tc.want
		},
		"empty token": func() (string, string, url.Values, string) { return "", tc.url, values(tc.params), tc.want },
	}
	for name, f := range cases {
		t.Run(name, func(t *testing.T) {
			if ValidSignature(f()) {
				t.Fatal("accepted")
			}
		})
	}
}

func loadForm(t *testing.T, name string) url.Values {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]string
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	return values(m)
}

func TestNormalizeProviderPayloads(t *testing.T) {
	received := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	cases := []struct {
		file  string
		check func(t *testing.T, in *wire.Inbound)
	}{
		{"text_message.json", func(t *testing.T, in *wire.Inbound) {
			m := in.GetMessage()
			if in.Phone != "+447700900456" || m.Text != "Hello there" || m.ProviderId != "SM0123456789abcdef0123456789abcdef" ||
				m.ProfileName != "Sam" || m.To != "+14155238886" || len(m.Media) != 0 {
				t.Fatalf("got %v", in)
			}
		}},
		{"media_message.json", func(t *testing.T, in *wire.Inbound) {
			m := in.GetMessage()
			if in.Phone != "+447700900123" || len(m.Media) != 2 || m.Media[1].ContentType != "image/png" ||
				!strings.HasSuffix(m.Media[0].Url, "ME00000000000000000000000000000001") {
				t.Fatalf("got %v", in)
			}
		}},
		{"location_message.json", func(t *testing.T, in *wire.Inbound) {
			l := in.GetMessage().GetLocation()
			if l == nil || l.Latitude != 51.5072 || l.Longitude != -0.1276 || l.Label != "Trafalgar Square" {
				t.Fatalf("got %v", in)
			}
		}},
		{"status_delivered.json", func(t *testing.T, in *wire.Inbound) {
			s := in.GetStatus()
			if in.Phone != "+447700900456" || s == nil || s.Status != "delivered" || s.ProviderId != "SM2123456789abcdef0123456789abcdef" {
				t.Fatalf("got %v", in)
			}
		}},
		{"status_failed_63016.json", func(t *testing.T, in *wire.Inbound) {
			s := in.GetStatus()
			if s == nil || s.Status != "failed" || s.ErrorCode != "63016" {
				t.Fatalf("got %v", in)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.file, func(t *testing.T) {
			in, err := Normalize("acme", loadForm(t, tc.file), received, func() string { return "evt-1" })
			if err != nil {
				t.Fatal(err)
			}
			if in.Tenant != "acme" || in.Id != "evt-1" || in.Channel != "twilio" || in.ReceivedAtMs != received.UnixMilli() {
				t.Fatalf("envelope %v", in)
			}
			tc.check(t, in)
		})
	}
}

func TestNormalizeRejectsMalformed(t *testing.T) {
	base := func() url.Values { return loadForm(t, "text_message.json") }
	cases := map[string]func(url.Values){
		"no sid":          func(v url.Values) { v.Del("MessageSid"); v.Del("SmsMessageSid") },
		"bad from":        func(v url.Values) { v.Set("From", "whatsapp:0151/12345678") },
		"from not e164":   func(v url.Values) { v.Set("From", "whatsapp:+49 (0) 151 12345678") },
		"numMedia NaN":    func(v url.Values) { v.Set("NumMedia", "two") },
		"numMedia huge":   func(v url.Values) { v.Set("NumMedia", "1000") },
		"media url gone":  func(v url.Values) { v.Set("NumMedia", "1") },
		"empty message":   func(v url.Values) { v.Set("Body", "") },
		"bad latitude":    func(v url.Values) { v.Set("Latitude", "north"); v.Set("Longitude", "1") },
		"latitude bounds": func(v url.Values) { v.Set("Latitude", "91"); v.Set("Longitude", "1") },
	}
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			v := base()
			mutate(v)
			_, err := Normalize("acme", v, time.Now(), func() string { return "x" })
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("err = %v, want ErrMalformed", err)
			}
		})
	}
}

func TestParseFormRejectsBadEscapes(t *testing.T) {
	if _, err := ParseForm([]byte("Body=%zz&From=x")); !errors.Is(err, ErrMalformed) {
		t.Fatalf("err = %v", err)
	}
}

func FuzzParseAndNormalize(f *testing.F) {
	for _, name := range []string{"text_message.json", "media_message.json", "location_message.json", "status_delivered.json"} {
		raw, _ := os.ReadFile(filepath.Join("testdata", name))
		var m map[string]string
		_ = json.Unmarshal(raw, &m)
		f.Add([]byte(values(m).Encode()))
	}
	f.Add([]byte("MessageSid=SM1&From=whatsapp%3A%2B447700900456&Body=hi"))
	f.Add([]byte("%"))
	f.Fuzz(func(t *testing.T, body []byte) {
		form, err := ParseForm(body)
		if err != nil {
			return
		}
		in, err := Normalize("t", form, time.Unix(0, 0), func() string { return "id" })
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		if !e164.MatchString(in.Phone) {
			t.Fatalf("phone %q not E.164", in.Phone)
		}
		id := in.GetMessage().GetProviderId() + in.GetStatus().GetProviderId()
		if id == "" {
			t.Fatal("no provider id")
		}
	})
}
