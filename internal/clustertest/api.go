package clustertest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// APIResult is an answer of the automation API.
type APIResult struct {
	Status int
	Header http.Header
	Body   []byte
	// Took is how long the node took to answer: a session that is not
	// reached answers 503 after the API's own timeout (10 s).
	Took time.Duration
}

// JSON decodes the body into v.
func (r APIResult) JSON(v any) error { return json.Unmarshal(r.Body, v) }

func (r APIResult) String() string {
	return fmt.Sprintf("%d %s (%.1fs)", r.Status, strings.TrimSpace(string(r.Body)), r.Took.Seconds())
}

// API calls node's /api/v1 with the admin key: method, a path under
// /api/v1/tenants/{Tenant}/ ("messages", "ai/respond", ...), a body
// marshalled as JSON (nil for none) and extra headers as name, value
// pairs. The error is for no answer at all.
func (c *Cluster) API(n *Node, method, path string, body any, headers ...string) (APIResult, error) {
	return c.Call(n, method, "tenants/"+Tenant+"/"+path, AdminKey, body, headers...)
}

// Call calls node's /api/v1 with key: method, a path under /api/v1/
// ("keys", "tenants/bravo"), a body marshalled as JSON (nil for none) and
// extra headers as name, value pairs. The error is for no answer at all.
func (c *Cluster) Call(n *Node, method, path, key string, body any, headers ...string) (APIResult, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return APIResult{}, err
		}
		rd = bytes.NewReader(b)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, n.URL()+"/api/v1/"+path, rd)
	if err != nil {
		return APIResult{}, err
	}
	req.Header.Set("Authorization", "Bearer "+key)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	start := time.Now()
	res, err := c.http.Do(req)
	if err != nil {
		return APIResult{}, fmt.Errorf("%s %s on %s: %w", method, path, n, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return APIResult{Status: res.StatusCode, Header: res.Header, Body: b, Took: time.Since(start)}, err
}

// SetAI turns the assistant on or off for phone's conversation (off hands
// it to a person): POST conversations/{phone}/ai {"enabled": ...}.
func (c *Cluster) SetAI(n *Node, phone string, enabled bool) (APIResult, error) {
	return c.API(n, http.MethodPost, "conversations/"+phone+"/ai", map[string]bool{"enabled": enabled})
}

// SendText sends free text to phone: POST messages {"to","text"}, with an
// Idempotency-Key unless key is empty. 202 is queued; 422 names why not
// (outside_window, opted_out, idempotency_key_reused).
func (c *Cluster) SendText(n *Node, to, text, key string) (APIResult, error) {
	var h []string
	if key != "" {
		h = []string{"Idempotency-Key", key}
	}
	return c.API(n, http.MethodPost, "messages", map[string]string{"to": to, "text": text}, h...)
}

// Respond asks the assistant on behalf of phone's conversation: POST
// ai/respond; the reply comes back in the answer, not over WhatsApp.
func (c *Cluster) Respond(n *Node, phone, message string) (APIResult, string, error) {
	r, err := c.API(n, http.MethodPost, "ai/respond", map[string]string{"customer": phone, "message": message})
	if err != nil || r.Status != http.StatusOK {
		return r, "", err
	}
	var body struct {
		Reply string `json:"reply"`
	}
	err = r.JSON(&body)
	return r, body.Reply, err
}

// APIError is the error code of an API answer ({"error":{"code"}}), or "".
func (r APIResult) APIError() string {
	var body struct {
		Error struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	_ = json.Unmarshal(r.Body, &body)
	return body.Error.Code
}
