// Package api is the automation API agencies drive Parley with: send
// messages and templates, ask the assistant, steer conversations. Every
// call goes through the customer's session actor (via parley.inbound), so
// the 24-hour window and the conversation state are the session's truth.
package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/segmentio/kafka-go"
	"github.com/valyala/fasthttp"
	"golang.org/x/time/rate"
	"google.golang.org/protobuf/proto"

	"github.com/parleyhq/parley/apikeys"
	"github.com/parleyhq/parley/channels"
	"github.com/parleyhq/parley/internal/e164"
	"github.com/parleyhq/parley/internal/ids"
	"github.com/parleyhq/parley/tenants"
	"github.com/parleyhq/parley/wire"
)

// Producer is the part of bus.Producer the API needs.
type Producer interface {
	Produce(ctx context.Context, msgs ...kafka.Message) error
}

// Options configure the API.
type Options struct {
	Tenants  *tenants.Registry
	Producer Producer
	Pending  *Pending
	Keys     *apikeys.Set
	// Providers say how long a text may be on each tenant's channel.
	Providers *channels.Registry
	// Config takes the admin routes' changes (tenants, keys); nil: they
	// answer 503 config_unavailable.
	Config ConfigLog
	// Audit records who changed what through the admin routes (the
	// ClickHouse audit table) and logs its own failures; nil records
	// nothing.
	Audit func(ctx context.Context, e AuditEntry)
	// Timeout bounds the wait for the session's answer. Default 10s.
	Timeout time.Duration
}

// API is the automation API: the handlers of its routes (routes.go) and
// Do, through which everything reaches a session.
type API struct {
	o        Options
	mu       sync.Mutex
	limiters map[string]*rate.Limiter
}

// New creates the API.
func New(o Options) *API {
	if o.Timeout == 0 {
		o.Timeout = 10 * time.Second
	}
	return &API{o: o, limiters: map[string]*rate.Limiter{}}
}

// MaxText is WhatsApp's limit for a text message: the longest question
// the respond endpoint takes. Sends are limited by the provider of the
// tenant's channel (textLimit).
const MaxText = 4096

// textLimit is how long one text to t's customers may be: what the
// provider of its channel takes, else MaxText.
func (a *API) textLimit(t *tenants.Tenant) channels.TextLimit {
	if l, ok := a.o.Providers.TextLimit(t.Channel()); ok {
		return l
	}
	return channels.TextLimit{Max: MaxText}
}

// textTooLong says what the tenant's channel takes.
func textTooLong(t *tenants.Tenant, l channels.TextLimit) string {
	msg := fmt.Sprintf("text is limited to %d characters on this tenant's channel (%s)", l.Max, t.Channel())
	if l.UTF16 {
		msg += ", an emoji counting as two"
	}
	return msg
}

// Error writes the API's JSON error: {"error":{"code":..., "message":...}}.
var Error = apikeys.WriteError

func writeJSON(ctx *fasthttp.RequestCtx, status int, v any) {
	b, _ := json.Marshal(v)
	ctx.SetStatusCode(status)
	ctx.SetContentType("application/json")
	ctx.SetBody(b)
}

type sendRequest struct {
	To string `json:"to"`
	// From is the tenant's number to send from (a Twilio sender's E.164
	// number or a Meta phone_number_id); empty: the number the customer
	// last wrote to, else the tenant's first active one.
	From     string `json:"from"`
	Text     string `json:"text"`
	Template *struct {
		Name       string            `json:"name"`
		ContentSID string            `json:"content_sid"`
		Language   string            `json:"language"`
		Variables  map[string]string `json:"variables"`
	} `json:"template"`
}

func (a *API) send(ctx *fasthttp.RequestCtx, c Call) {
	t := c.Tenant
	if !t.CanSend() {
		// The automation platform's documented answer for a number that
		// cannot send; nothing is queued.
		msg := "this tenant's number is inactive: activate it to send"
		if t.Channel() == tenants.ChannelNone {
			msg = "this tenant has no number connected: connect one to send"
		}
		Error(ctx, fasthttp.StatusServiceUnavailable, "sender_offline", msg)
		return
	}
	var req sendRequest
	if err := json.Unmarshal(ctx.PostBody(), &req); err != nil {
		Error(ctx, fasthttp.StatusBadRequest, "invalid_json", err.Error())
		return
	}
	if !e164.Valid(req.To) {
		Error(ctx, fasthttp.StatusBadRequest, "invalid_phone_number",
			"to must be an E.164 number such as +4915112345678, without spaces or punctuation")
		return
	}
	if req.From != "" {
		n, ok := t.NumberByID(req.From)
		switch {
		case !ok:
			Error(ctx, fasthttp.StatusBadRequest, "unknown_sender", "from "+strconv.Quote(req.From)+" is not one of this tenant's numbers (GET .../numbers)")
			return
		case n.Inactive:
			Error(ctx, fasthttp.StatusServiceUnavailable, "sender_offline", "number "+req.From+" is inactive: activate it to send")
			return
		}
		t, _ = t.Via(req.From) // its channel's text limit
	}
	msg := &wire.SendMessage{From: req.From}
	limit := a.textLimit(t)
	switch {
	case req.Template != nil && req.Text != "":
		Error(ctx, fasthttp.StatusBadRequest, "invalid_request", "send either text or template, not both")
		return
	case req.Template != nil:
		tpl := &wire.Template{Name: req.Template.Name, ContentSid: req.Template.ContentSID, Language: req.Template.Language, Variables: req.Template.Variables}
		if tpl.ContentSid == "" {
			known, ok := t.Templates[tpl.Name]
			if tpl.Name == "" || !ok {
				Error(ctx, fasthttp.StatusNotFound, "template_not_found", "no template "+strconv.Quote(tpl.Name)+" is configured for this tenant")
				return
			}
			tpl.ContentSid = known.ContentSID
			if tpl.Language == "" {
				tpl.Language = known.Language
			}
		}
		msg.Template = tpl
	case strings.TrimSpace(req.Text) == "":
		Error(ctx, fasthttp.StatusBadRequest, "invalid_request", "text or template is required")
		return
	case limit.Len(req.Text) > limit.Max:
		// The tenant's channel would refuse it: Twilio takes 1,600
		// characters (an emoji counting as two), WhatsApp through Meta
		// 4,096.
		Error(ctx, fasthttp.StatusBadRequest, "text_too_long", textTooLong(t, limit))
		return
	default:
		msg.Text = req.Text
	}
	key := string(ctx.Request.Header.Peek(IdempotencyHeader))
	if !validIdempotencyKey(key) {
		Error(ctx, fasthttp.StatusBadRequest, "invalid_idempotency_key", IdempotencyHeader+" must be 1 to 255 visible ASCII characters")
		return
	}
	if !a.allow(ctx, t) {
		return
	}
	res, ok := a.command(ctx, t, req.To, &wire.Command{Op: &wire.Command_Send{Send: msg}, IdempotencyKey: key})
	if !ok {
		return
	}
	if !res.Ok {
		status := fasthttp.StatusUnprocessableEntity
		if res.ErrorCode == "idempotency_keys_exhausted" {
			// The session keeps as many keyed results as it may
			// (conversation.KeyFull): later, or without a key.
			status = fasthttp.StatusTooManyRequests
		}
		Error(ctx, status, res.ErrorCode, res.ErrorMessage)
		return
	}
	if res.Replayed {
		ctx.Response.Header.Set("Idempotent-Replayed", "true")
	}
	writeJSON(ctx, fasthttp.StatusAccepted, map[string]any{
		"id": res.OutboundId, "status": "queued", "conversation_id": res.ConversationId,
		"window_open_until": windowUntil(res),
	})
}

// IdempotencyHeader names the key that makes a send safe to retry: a
// repeat within 24 hours gets the first answer (with Idempotent-Replayed:
// true) and messages nobody; the key reused for another request is 422
// idempotency_key_reused.
const IdempotencyHeader = "Idempotency-Key"

// validIdempotencyKey: empty (no key), or 1-255 visible ASCII characters.
func validIdempotencyKey(k string) bool {
	if len(k) > 255 {
		return false
	}
	for i := 0; i < len(k); i++ {
		if k[i] < 0x21 || k[i] > 0x7e {
			return false
		}
	}
	return true
}

func windowUntil(r *wire.CommandResult) any {
	if r.WindowUntilMs == 0 {
		return nil
	}
	return time.UnixMilli(r.WindowUntilMs).UTC().Format(time.RFC3339)
}

type respondRequest struct {
	Customer  string            `json:"customer"`
	Message   string            `json:"message"`
	Variables map[string]string `json:"variables"`
}

func (a *API) respond(ctx *fasthttp.RequestCtx, c Call) {
	t := c.Tenant
	var req respondRequest
	if err := json.Unmarshal(ctx.PostBody(), &req); err != nil {
		Error(ctx, fasthttp.StatusBadRequest, "invalid_json", err.Error())
		return
	}
	if !e164.Valid(req.Customer) {
		Error(ctx, fasthttp.StatusBadRequest, "invalid_phone_number", "customer must be the customer's E.164 number, e.g. +4915112345678")
		return
	}
	if strings.TrimSpace(req.Message) == "" || utf8.RuneCountInString(req.Message) > MaxText {
		Error(ctx, fasthttp.StatusBadRequest, "invalid_request", "message is required, at most 4096 characters")
		return
	}
	if !validVariables(req.Variables) {
		Error(ctx, fasthttp.StatusBadRequest, "invalid_variables", "variables: at most 50, names of 1 to 64 characters, values of at most 1000")
		return
	}
	if !a.allow(ctx, t) {
		return
	}
	res, ok := a.command(ctx, t, req.Customer, &wire.Command{Op: &wire.Command_Respond{Respond: &wire.Respond{Message: req.Message, Variables: req.Variables}}})
	if !ok {
		return
	}
	if !res.Ok {
		Error(ctx, fasthttp.StatusServiceUnavailable, res.ErrorCode, res.ErrorMessage)
		return
	}
	writeJSON(ctx, fasthttp.StatusOK, map[string]any{
		"reply": res.Reply, "query_type": res.QueryType, "conversation_id": res.ConversationId,
	})
}

// setStatus is POST .../conversations/{phone}/status {"status":"archived"}.
func (a *API) setStatus(ctx *fasthttp.RequestCtx, c Call) {
	a.steer(ctx, c.Tenant, c.Phone, "status", c.Key.Label())
}

// setAI is POST .../conversations/{phone}/ai {"enabled":false}.
func (a *API) setAI(ctx *fasthttp.RequestCtx, c Call) {
	a.steer(ctx, c.Tenant, c.Phone, "ai", c.Key.Label())
}

// steer switches a conversation's status or AI.
func (a *API) steer(ctx *fasthttp.RequestCtx, t *tenants.Tenant, phone, what, operator string) {
	if !e164.Valid(phone) {
		Error(ctx, fasthttp.StatusBadRequest, "invalid_phone_number", "the phone must be E.164, e.g. +4915112345678")
		return
	}
	var body struct {
		Status  string `json:"status"`
		Enabled *bool  `json:"enabled"`
	}
	if err := json.Unmarshal(ctx.PostBody(), &body); err != nil {
		Error(ctx, fasthttp.StatusBadRequest, "invalid_json", err.Error())
		return
	}
	c := &wire.Command{Operator: operator}
	switch {
	case what == "status" && (body.Status == "active" || body.Status == "archived" || body.Status == "closed"):
		c.Op = &wire.Command_SetStatus{SetStatus: body.Status}
	case what == "ai" && body.Enabled != nil:
		c.Op = &wire.Command_SetAi{SetAi: *body.Enabled}
	default:
		Error(ctx, fasthttp.StatusBadRequest, "invalid_request", `want {"status":"active|archived|closed"} or {"enabled":true|false}`)
		return
	}
	// Under the tenant's rate limit like every command: a key could
	// otherwise make sessions for any number of made-up phones.
	if !a.allow(ctx, t) {
		return
	}
	res, ok := a.command(ctx, t, phone, c)
	if !ok {
		return
	}
	writeJSON(ctx, fasthttp.StatusOK, map[string]any{"ok": res.Ok, "conversation_id": res.ConversationId})
}

// validVariables bounds ai/respond's variables: context for the
// assistant, not a document store.
func validVariables(v map[string]string) bool {
	if len(v) > 50 {
		return false
	}
	for k, val := range v {
		if k == "" || utf8.RuneCountInString(k) > 64 || utf8.RuneCountInString(val) > 1000 || !utf8.ValidString(k) || !utf8.ValidString(val) {
			return false
		}
	}
	return true
}

// allow applies the tenant's API rate limit, answering 429 itself.
func (a *API) allow(ctx *fasthttp.RequestCtx, t *tenants.Tenant) bool {
	a.mu.Lock()
	l := a.limiters[t.ID]
	if l == nil {
		limit := t.APIRateLimit
		if limit <= 0 {
			limit = 50
		}
		l = rate.NewLimiter(rate.Limit(limit), int(math.Max(1, limit)))
		a.limiters[t.ID] = l
	}
	a.mu.Unlock()
	r := l.Reserve()
	if d := r.Delay(); d > 0 {
		r.Cancel()
		ctx.Response.Header.Set("Retry-After", strconv.Itoa(int(math.Ceil(d.Seconds()))))
		Error(ctx, fasthttp.StatusTooManyRequests, "rate_limited", "too many requests for this tenant; retry later")
		return false
	}
	return true
}

// Errors of Do.
var (
	ErrBrokerUnavailable = errors.New("the command could not be queued")
	ErrNoAnswer          = errors.New("the session did not answer in time")
)

// Do puts a command on the session's inbound stream and waits for its
// result: how the API, and the engine's own callers (GDPR erasure), reach a
// session in order with everything else that changes it.
func (a *API) Do(ctx context.Context, tenant, phone string, c *wire.Command) (*wire.CommandResult, error) {
	c.RequestId = ids.New()
	if c.Operator == "" {
		c.Operator = "api"
	}
	in := &wire.Inbound{
		Id:           ids.New(),
		Tenant:       tenant,
		Phone:        phone,
		Channel:      "api",
		ReceivedAtMs: time.Now().UnixMilli(),
		Kind:         &wire.Inbound_Command{Command: c},
	}
	value, err := proto.Marshal(in)
	if err != nil {
		return nil, err
	}
	results, cancel := a.o.Pending.Wait(c.RequestId)
	defer cancel()
	wait, stop := context.WithTimeout(ctx, a.o.Timeout)
	defer stop()
	if err := a.o.Producer.Produce(wait, kafka.Message{Topic: wire.TopicInbound, Key: wire.Key(tenant, phone), Value: value}); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBrokerUnavailable, err)
	}
	select {
	case r := <-results:
		return r, nil
	case <-wait.Done():
		// The command is queued and will still be carried out; the
		// session did not confirm in time.
		return nil, ErrNoAnswer
	}
}

// command is Do for an HTTP request. It writes the error answer itself when
// it returns false.
func (a *API) command(ctx *fasthttp.RequestCtx, t *tenants.Tenant, phone string, c *wire.Command) (*wire.CommandResult, bool) {
	r, err := a.Do(context.Background(), t.ID, phone, c)
	switch {
	case err == nil:
		return r, true
	case errors.Is(err, ErrNoAnswer):
		ctx.Response.Header.Set("Retry-After", "5")
		Error(ctx, fasthttp.StatusServiceUnavailable, "sender_offline", "the conversation engine did not answer in time; the request is queued")
	case errors.Is(err, ErrBrokerUnavailable):
		ctx.Response.Header.Set("Retry-After", "5")
		Error(ctx, fasthttp.StatusServiceUnavailable, "broker_unavailable", "the message could not be queued; retry later")
	default:
		Error(ctx, fasthttp.StatusInternalServerError, "internal", err.Error())
	}
	return nil, false
}
