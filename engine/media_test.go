package engine

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/url"
	"testing"
	"time"
)

// A photo a customer sent through Meta is served to the people who answer
// them, through the API, with the tenant's token; a file of a type that
// could run script is served as a download; analysts and strangers get
// nothing.
func TestMediaThroughTheAPI(t *testing.T) {
	h := startHarness(t)
	const admin, agent, analyst = "admin-key-0123456789", "acme-agent-key-0123456789", "analyst-key-0123456789"
	photo := bytes.Repeat([]byte{0xff, 0xd8, 0x99}, 5000)
	h.meta.AddMedia("1003383421387256", "image/jpeg", photo)
	h.meta.AddMedia("2070396176763463", "text/html", []byte("<script>alert(1)</script>"))
	h.postMetaFile(t, "image_message.json")
	h.postMetaFile(t, "document_message.json")
	eventually(t, 30*time.Second, func() error {
		var n uint64
		if err := h.engine.Store().Conn().QueryRow(context.Background(), fmt.Sprintf(
			"SELECT count() FROM %s.messages WHERE tenant = 'beta' AND media != ''", h.db)).Scan(&n); err != nil {
			return err
		}
		if n != 2 {
			return fmt.Errorf("%d messages with media, want 2", n)
		}
		return nil
	})
	get := func(tenant, key, ref string) (*http.Response, []byte) {
		t.Helper()
		return h.request(t, http.MethodGet, "/api/v1/tenants/"+tenant+"/media?ref="+url.QueryEscape(ref), key, "", nil)
	}

	// The conversation log names the files.
	status, log, _ := h.api(t, http.MethodGet, "/api/v1/tenants/beta/messages", admin, "")
	refs := map[string]bool{}
	entries, _ := log["messages"].([]any)
	for _, e := range entries {
		media, _ := e.(map[string]any)["media"].([]any)
		for _, r := range media {
			refs[r.(string)] = true
		}
	}
	if status != 200 || !refs["meta-media:1003383421387256"] || !refs["meta-media:2070396176763463"] {
		t.Fatalf("log: %d, media %v", status, refs)
	}

	res, b := get("beta", admin, "meta-media:1003383421387256")
	if res.StatusCode != 200 || !bytes.Equal(b, photo) || res.Header.Get("Content-Type") != "image/jpeg" || res.Header.Get("Content-Disposition") != "inline" {
		t.Fatalf("photo: %d %s %q, %d bytes", res.StatusCode, res.Header.Get("Content-Type"), res.Header.Get("Content-Disposition"), len(b))
	}
	res, _ = get("beta", admin, "meta-media:2070396176763463")
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "application/octet-stream" || res.Header.Get("Content-Disposition") != "attachment" {
		t.Fatalf("html file: %d %s %q, want a download", res.StatusCode, res.Header.Get("Content-Type"), res.Header.Get("Content-Disposition"))
	}
	cases := []struct {
		name, tenant, key, ref string
		want                   int
	}{
		{"a reference no message holds", "beta", admin, "meta-media:999", 404},
		{"another tenant's media", "acme", admin, "meta-media:1003383421387256", 404},
		{"analysts do not see files", "acme", analyst, "meta-media:1", 403},
		{"an agent of another tenant", "beta", agent, "meta-media:1003383421387256", 403},
		{"no ref", "beta", admin, "", 400},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if res, b := get(tc.tenant, tc.key, tc.ref); res.StatusCode != tc.want {
				t.Fatalf("%d %s, want %d", res.StatusCode, b, tc.want)
			}
		})
	}
}
