package twilio

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/parleyhq/parley/channels"
	"github.com/parleyhq/parley/tenants"
)

// MaxMediaBytes caps a media download: WhatsApp's largest files
// (documents) are 100 MB.
const MaxMediaBytes = 100 << 20

// DefaultAPIBaseURL is Twilio's REST API, where media URLs point.
const DefaultAPIBaseURL = "https://api.twilio.com"

// ErrMediaNotFound: Twilio does not serve the media (deleted, or not this
// account's).
var ErrMediaNotFound = fmt.Errorf("twilio: %w", channels.ErrMediaNotFound)

// FetchMedia downloads a file a customer sent, by the MediaUrl of its
// webhook. Only URLs of the tenant's own account on the configured API
// (APIBaseURL, default api.twilio.com) are fetched, with the account's
// credentials; Twilio answers with a redirect to a signed URL, which is
// followed without them. It returns the body (the caller closes it; it
// ends at MaxMediaBytes), its content type and size (-1 when unknown).
// ctx bounds the whole download. Errors never contain the auth token.
func (s *Sender) FetchMedia(ctx context.Context, cfg *tenants.Twilio, mediaURL string) (io.ReadCloser, string, int64, error) {
	base, err := url.Parse(cmp.Or(cfg.APIBaseURL, DefaultAPIBaseURL))
	if err != nil {
		return nil, "", 0, fmt.Errorf("twilio: api_base_url: %w", err)
	}
	u, err := url.Parse(mediaURL)
	prefix := "/2010-04-01/Accounts/" + cfg.AccountSID + "/Messages/"
	if err != nil || u.Scheme != base.Scheme || u.Host != base.Host || !strings.HasPrefix(u.Path, prefix) ||
		!strings.Contains(u.Path[len(prefix):], "/Media/") || strings.Contains(u.Path, "..") || u.User != nil {
		return nil, "", 0, fmt.Errorf("twilio: %q is not a media URL of account %s: %w", clip(mediaURL), cfg.AccountSID, ErrMediaNotFound)
	}
	token := cfg.AuthToken.Reveal()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, "", 0, fmt.Errorf("twilio: request: %w", err)
	}
	req.SetBasicAuth(cfg.AccountSID, token)
	// Redirects are followed here (a GET, replayable); net/http drops the
	// credentials when one leads to another host.
	client := &http.Client{Transport: s.transport, Jar: s.jar}
	resp, err := client.Do(req)
	if err != nil {
		return nil, "", 0, errors.New(strings.ReplaceAll("twilio: media: "+err.Error(), token, "[redacted]"))
	}
	switch {
	case resp.StatusCode == http.StatusNotFound:
		resp.Body.Close()
		return nil, "", 0, fmt.Errorf("twilio: media %s: %w", u.Path, ErrMediaNotFound)
	case resp.StatusCode != http.StatusOK:
		resp.Body.Close()
		return nil, "", 0, fmt.Errorf("twilio: media %s: answered %d", u.Path, resp.StatusCode)
	case resp.ContentLength > MaxMediaBytes:
		resp.Body.Close()
		return nil, "", 0, fmt.Errorf("twilio: media %s: %d bytes, more than %d", u.Path, resp.ContentLength, MaxMediaBytes)
	}
	body := struct {
		io.Reader
		io.Closer
	}{io.LimitReader(resp.Body, MaxMediaBytes), resp.Body}
	return body, resp.Header.Get("Content-Type"), resp.ContentLength, nil
}
