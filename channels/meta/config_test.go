package meta

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

const tenantYAML = `
phone_number_id: "106540352242922"
access_token: EAAGsecret0000ZBaccess0000TOKEN0000000000000001
app_secret: appsecret0123456789abcdef0000002
verify_token: verify-token-0123456789-0003
api_base_url: http://127.0.0.1:9999/graph
api_version: v23.0
`

func loadConfig(t *testing.T) Config {
	t.Helper()
	var c Config
	dec := yaml.NewDecoder(strings.NewReader(tenantYAML))
	dec.KnownFields(true) // as the config package decodes tenants
	if err := dec.Decode(&c); err != nil {
		t.Fatal(err)
	}
	return c
}

func TestConfigFromYAML(t *testing.T) {
	c := loadConfig(t)
	want := Config{
		PhoneNumberID: "106540352242922",
		AccessToken:   "EAAGsecret0000ZBaccess0000TOKEN0000000000000001",
		AppSecret:     "appsecret0123456789abcdef0000002",
		VerifyToken:   "verify-token-0123456789-0003",
		APIBaseURL:    "http://127.0.0.1:9999/graph",
		APIVersion:    "v23.0",
	}
	if c != want {
		t.Fatalf("got %#v", c)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	var fromJSON Config
	if err := json.Unmarshal([]byte(`{"phone_number_id":"1","access_token":"a","app_secret":"b","verify_token":"c"}`), &fromJSON); err != nil {
		t.Fatal(err)
	}
	if fromJSON.PhoneNumberID != "1" || fromJSON.AccessToken != "a" || fromJSON.AppSecret != "b" || fromJSON.VerifyToken != "c" {
		t.Fatalf("json tags: %#v", fromJSON)
	}
}

func TestConfigNeverPrintsCredentials(t *testing.T) {
	c := loadConfig(t)
	secrets := []string{c.AccessToken, c.AppSecret, c.VerifyToken}
	j, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	jp, _ := json.Marshal(&c)
	y, err := yaml.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	// As a field of a tenant, the way the lead embeds it.
	type tenant struct {
		ID   string  `json:"id" yaml:"id"`
		Meta *Config `json:"meta" yaml:"meta"`
	}
	tn := tenant{ID: "acme", Meta: &c}
	tj, _ := json.Marshal(tn)
	ty, _ := yaml.Marshal(tn)
	var logged strings.Builder
	slog.New(slog.NewTextHandler(&logged, nil)).Info("tenant", "meta", c, "ptr", &c)
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("tenant", "meta", c, "t", tn)

	texts := map[string]string{
		"%v": fmt.Sprintf("%v", c), "%+v": fmt.Sprintf("%+v", c), "%#v": fmt.Sprintf("%#v", c),
		"%s": c.String(), "%v ptr": fmt.Sprintf("%v", &c), "%+v tenant": fmt.Sprintf("%+v", tn),
		"%#v tenant": fmt.Sprintf("%#v", tn), "json": string(j), "json ptr": string(jp), "yaml": string(y),
		"json tenant": string(tj), "yaml tenant": string(ty), "slog": logged.String(),
	}
	for name, text := range texts {
		for _, s := range secrets {
			if strings.Contains(text, s) {
				t.Errorf("%s shows a credential: %s", name, text)
			}
		}
		if !strings.Contains(text, "106540352242922") {
			t.Errorf("%s lost the phone number id: %s", name, text)
		}
	}
	if !strings.Contains(texts["%+v"], "****0001") {
		t.Errorf("mask shows no tail: %s", texts["%+v"])
	}
}

func TestConfigValidate(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(*Config)
		detail string
	}{
		{"no phone number id", func(c *Config) { c.PhoneNumberID = "" }, "phone_number_id"},
		{"phone number instead of its id", func(c *Config) { c.PhoneNumberID = "+15550783881" }, "phone_number_id"},
		{"no access token", func(c *Config) { c.AccessToken = "" }, "access_token"},
		{"no app secret", func(c *Config) { c.AppSecret = "" }, "app_secret"},
		{"no verify token", func(c *Config) { c.VerifyToken = "" }, "verify_token"},
		{"base url relative", func(c *Config) { c.APIBaseURL = "graph.facebook.com" }, "api_base_url"},
		{"base url with query", func(c *Config) { c.APIBaseURL = "https://graph.facebook.com?access_token=x" }, "api_base_url"},
		{"version without v", func(c *Config) { c.APIVersion = "21.0" }, "api_version"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := loadConfig(t)
			tc.mutate(&c)
			err := c.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.detail) {
				t.Fatalf("got %v, want an error about %s", err, tc.detail)
			}
			for _, s := range []string{c.AccessToken, c.AppSecret, c.VerifyToken} {
				if s != "" && strings.Contains(err.Error(), s) {
					t.Fatalf("error shows a credential: %v", err)
				}
			}
		})
	}
	// Defaults: empty base URL and version are Meta's.
	c := loadConfig(t)
	c.APIBaseURL, c.APIVersion = "", ""
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if u, _ := c.BaseURL(); u.String() != DefaultAPIBaseURL || c.Version() != DefaultAPIVersion {
		t.Fatalf("defaults %v %s", u, c.Version())
	}
}

func TestMask(t *testing.T) {
	for in, want := range map[string]string{"": "", "short": "****", "0123456789ab": "****89ab"} {
		if got := Mask(in); got != want {
			t.Errorf("Mask(%q) = %q, want %q", in, got, want)
		}
	}
}
