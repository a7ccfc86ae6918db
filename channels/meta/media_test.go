package meta_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
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
