package meta_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/parleyhq/parley/channels/meta"
	"github.com/parleyhq/parley/channels/meta/metatest"
	"github.com/parleyhq/parley/channels/providertest"
)

func TestFetchMedia(t *testing.T) {
	srv := metatest.Start(t, metatest.TestAccessToken)
	photo := bytes.Repeat([]byte{0xff, 0xd8, 0x42}, 1000)
	srv.AddMedia("1003383421387256", "image/jpeg", photo)
	s := meta.NewSender(nil)
	ctx := context.Background()

	body, ct, size, err := s.FetchMedia(ctx, srv.Config(), "1003383421387256")
	providertest.CheckDownload(t, photo, "image/jpeg", body, ct, size, err)

	cases := []struct {
		name     string
		cfg      func(meta.Config) meta.Config
		id       string
		notFound bool
		want     string
	}{
		{"unknown id", func(c meta.Config) meta.Config { return c }, "999", true, "not found"},
		{"not a media id", func(c meta.Config) meta.Config { return c }, "../../me", true, "not found"},
		{"wrong token", func(c meta.Config) meta.Config { c.AccessToken = "EAAnope"; return c }, "1003383421387256", false, "190"},
		{"no token", func(c meta.Config) meta.Config { c.AccessToken = ""; return c }, "1003383421387256", false, "no access token"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, _, _, err := s.FetchMedia(ctx, tc.cfg(srv.Config()), tc.id)
			if err == nil || errors.Is(err, meta.ErrMediaNotFound) != tc.notFound || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q (not found: %v)", err, tc.want, tc.notFound)
			}
			if strings.Contains(err.Error(), metatest.TestAccessToken) {
				t.Fatalf("the token is in the error: %v", err)
			}
		})
	}
}

// The token is not sent to a download URL that is neither https nor the
// API's own host.
func TestFetchMediaKeepsTheTokenHome(t *testing.T) {
	var leaked bool
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		leaked = r.Header.Get("Authorization") != ""
	}))
	defer elsewhere.Close()
	graph := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"url":"`+elsewhere.URL+`/file","mime_type":"image/jpeg","id":"1"}`)
	}))
	defer graph.Close()
	cfg := meta.Config{PhoneNumberID: metatest.TestPhoneNumberID, AccessToken: metatest.TestAccessToken, APIBaseURL: graph.URL}
	_, _, _, err := meta.NewSender(nil).FetchMedia(context.Background(), cfg, "1")
	if err == nil || leaked {
		t.Fatalf("err = %v, token sent elsewhere: %v", err, leaked)
	}
}

// TestTokenMayGo: the access token goes to Meta's media hosts over https
// and to the configured API base, nowhere else.
func TestTokenMayGo(t *testing.T) {
	base, _ := url.Parse("https://graph.facebook.com")
	sandbox, _ := url.Parse("http://127.0.0.1:8081")
	for _, tc := range []struct {
		base *url.URL
		u    string
		ok   bool
	}{
		{base, "https://lookaside.fbsbx.com/whatsapp_business/attachments/?mid=1", true},
		{base, "https://graph.facebook.com/v21.0/1", true},
		{base, "https://scontent.xx.fbcdn.net/v/t1/file.jpg", true},
		{base, "https://mmg.whatsapp.net/d/f/file.enc", true},
		{base, "https://LOOKASIDE.FBSBX.COM/x", true},
		{base, "http://lookaside.fbsbx.com/x", false},
		{base, "https://lookaside.fbsbx.com:8443/x", false},
		{base, "https://evilfbsbx.com/x", false},
		{base, "https://fbsbx.com.evil.example/x", false},
		{base, "https://user:pw@lookaside.fbsbx.com/x", false},
		{base, "https://attacker.example/x", false},
		{sandbox, "http://127.0.0.1:8081/media/1", true},
		{sandbox, "http://127.0.0.1:8082/media/1", false},
		{sandbox, "https://attacker.example/x", false},
	} {
		u, err := url.Parse(tc.u)
		if err != nil {
			t.Fatal(err)
		}
		if got := meta.TokenMayGo(u, tc.base); got != tc.ok {
			t.Errorf("TokenMayGo(%s, base %s) = %v, want %v", tc.u, tc.base, got, tc.ok)
		}
	}
}

// TestFetchMediaRefusesClimbingIDs: a media id that would climb out of the
// API version's path ("..") is refused before anything is sent.
func TestFetchMediaRefusesClimbingIDs(t *testing.T) {
	var calls int
	graph := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { calls++ }))
	defer graph.Close()
	cfg := meta.Config{PhoneNumberID: metatest.TestPhoneNumberID, AccessToken: metatest.TestAccessToken, APIBaseURL: graph.URL}
	for _, id := range []string{"..", ".", "1..2", "../me", "1.", ".1", "a/b", "%2e%2e"} {
		if _, _, _, err := meta.NewSender(nil).FetchMedia(context.Background(), cfg, id); !errors.Is(err, meta.ErrMediaNotFound) {
			t.Errorf("id %q: %v", id, err)
		}
	}
	if calls != 0 {
		t.Errorf("%d requests sent for refused ids", calls)
	}
}
