package meta

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/parleyhq/parley/channels"
)

// MaxMediaBytes caps a media download: WhatsApp's largest files
// (documents) are 100 MB.
const MaxMediaBytes = 100 << 20

// ErrMediaNotFound: Meta does not know the media id (wrong, or expired:
// Meta keeps a customer's file for 30 days).
var ErrMediaNotFound = fmt.Errorf("meta: %w", channels.ErrMediaNotFound)

// FetchMedia downloads the file a customer sent, by the media id of its
// webhook (MediaID of a wire.Media.Url): Graph describes it (GET
// /{version}/{id}) with a short-lived URL, which serves the bytes to the
// same bearer token. It returns the body (the caller closes it; it ends
// at MaxMediaBytes), its content type and size (-1 when unknown). ctx
// bounds the whole download. Errors never contain the access token.
func (s *Sender) FetchMedia(ctx context.Context, cfg Config, id string) (io.ReadCloser, string, int64, error) {
	if !mediaID.MatchString(id) {
		return nil, "", 0, fmt.Errorf("meta: media id %q: %w", clip(id), ErrMediaNotFound)
	}
	if cfg.AccessToken == "" {
		return nil, "", 0, errors.New("meta: no access token configured")
	}
	if cfg.APIVersion != "" && !apiVersion.MatchString(cfg.APIVersion) {
		return nil, "", 0, errors.New("meta: api_version is not like " + DefaultAPIVersion)
	}
	base, err := cfg.BaseURL()
	if err != nil {
		return nil, "", 0, err
	}
	var info struct {
		URL      string `json:"url"`
		MimeType string `json:"mime_type"`
	}
	describe, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	resp, err := s.get(describe, base.JoinPath(cfg.Version(), id).String(), cfg.AccessToken)
	if err != nil {
		return nil, "", 0, err
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		se := classify(resp, raw, cfg.AccessToken)
		if se.Status == http.StatusNotFound || (se.Status == http.StatusBadRequest && se.Code == 100) {
			return nil, "", 0, fmt.Errorf("meta: media %s: %w", id, ErrMediaNotFound)
		}
		return nil, "", 0, fmt.Errorf("meta: media %s: %w", id, se)
	}
	if err != nil || json.Unmarshal(raw, &info) != nil || info.URL == "" {
		return nil, "", 0, fmt.Errorf("meta: media %s: undecodable description", id)
	}
	u, err := url.Parse(info.URL)
	if err != nil || !TokenMayGo(u, base) {
		return nil, "", 0, fmt.Errorf("meta: media %s: download URL is not one of Meta's media hosts nor the API's", id)
	}
	resp, err = s.get(ctx, u.String(), cfg.AccessToken)
	if err != nil {
		return nil, "", 0, err
	}
	switch {
	case resp.StatusCode == http.StatusNotFound:
		resp.Body.Close()
		return nil, "", 0, fmt.Errorf("meta: media %s: %w", id, ErrMediaNotFound)
	case resp.StatusCode != http.StatusOK:
		resp.Body.Close()
		return nil, "", 0, fmt.Errorf("meta: media %s: download answered %d", id, resp.StatusCode)
	case resp.ContentLength > MaxMediaBytes:
		resp.Body.Close()
		return nil, "", 0, fmt.Errorf("meta: media %s: %d bytes, more than %d", id, resp.ContentLength, MaxMediaBytes)
	}
	ct := resp.Header.Get("Content-Type")
	if ct == "" {
		ct = info.MimeType
	}
	body := struct {
		io.Reader
		io.Closer
	}{io.LimitReader(resp.Body, MaxMediaBytes), resp.Body}
	return body, ct, resp.ContentLength, nil
}

// mediaHosts are the domains Meta serves media downloads from
// (lookaside.fbsbx.com today) and its API's; the access token goes to
// them and their subdomains only.
var mediaHosts = []string{"fbsbx.com", "facebook.com", "fbcdn.net", "whatsapp.net"}

// TokenMayGo says whether the access token may be sent to u: an https URL
// on one of Meta's media hosts, or the configured API base itself (a
// sandbox). A description naming any other host, which a compromised or
// impersonated API could return, gets no token.
func TokenMayGo(u, base *url.URL) bool {
	if u.User != nil {
		return false
	}
	if u.Scheme == base.Scheme && u.Host == base.Host {
		return true
	}
	if u.Scheme != "https" || u.Port() != "" {
		return false
	}
	host := strings.ToLower(u.Hostname())
	for _, d := range mediaHosts {
		if host == d || strings.HasSuffix(host, "."+d) {
			return true
		}
	}
	return false
}

// get makes an authorized GET; a transport error is returned without the
// token.
func (s *Sender) get(ctx context.Context, u, token string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("meta: request: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, (&channels.SendError{Provider: Channel, Message: err.Error(), Kind: channels.Retry, Cause: err}).Redact(token)
	}
	return resp, nil
}
