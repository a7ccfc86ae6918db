// Package openai is the language-model brain: go-openai's chat completions
// with tool calling, against any OpenAI-compatible endpoint (OpenAI, Azure
// through a compatible gateway, vLLM, Ollama, LiteLLM...).
//
// Per answer it sends a per-tenant system prompt, the recent conversation
// within a token budget and the customer's message, then runs the tools
// the model asks for (package tools: the same rules as the offline brain)
// for at most MaxRounds completions. When the endpoint fails, times out or
// will not stop calling tools, the customer still gets an answer from the
// fallback brain (the rules brain by default).
package openai

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	goopenai "github.com/sashabaranov/go-openai"

	"github.com/parleyhq/parley/brain"
	"github.com/parleyhq/parley/brain/rules"
	"github.com/parleyhq/parley/brain/tools"
)

// Defaults of Config.
const (
	DefaultMaxRounds     = 5
	DefaultHistoryTokens = 1000
	DefaultTimeout       = 8 * time.Second
	// maxToolCallsPerRound bounds what one completion may ask for: a
	// model listing dozens of calls is misbehaving.
	maxToolCallsPerRound = 6
	// maxMessageChars bounds the customer's message sent to the model.
	maxMessageChars = 2000
)

// Config configures the brain of one tenant.
type Config struct {
	// BaseURL is the API root including its version path, e.g.
	// https://api.openai.com/v1. Empty means OpenAI's.
	BaseURL string
	Model   string
	APIKey  string
	// Kit runs the tools against the tenant's backend.
	Kit *tools.Kit
	// Fallback answers when the model cannot; nil means the rules brain
	// over Kit.
	Fallback brain.Brain
	// MaxRounds bounds the completions per answer (DefaultMaxRounds).
	MaxRounds int
	// HistoryTokens is the budget for the recent conversation, estimated
	// at four characters a token (DefaultHistoryTokens).
	HistoryTokens int
	// Timeout bounds the model's part of an answer (DefaultTimeout); the
	// fallback runs on the caller's remaining time.
	Timeout time.Duration
	// HTTPClient overrides the HTTP client (tests, proxies).
	HTTPClient *http.Client
	// Now replaces the wall clock; Request.Now, when set, wins.
	Now func() time.Time
}

// Brain is the language-model brain. It keeps nothing between messages
// (the conversation travels in brain.State) and is safe for concurrent use.
type Brain struct {
	cfg      Config
	client   *goopenai.Client
	fallback brain.Brain
	defs     []goopenai.Tool
}

// New checks the configuration and returns the brain. It does not call the
// endpoint.
func New(cfg Config) (*Brain, error) {
	if cfg.Model == "" {
		return nil, errors.New("openai brain: model is required")
	}
	if cfg.Kit == nil || cfg.Kit.Backend == nil {
		return nil, errors.New("openai brain: a tool kit with a backend is required")
	}
	oc := goopenai.DefaultConfig(cfg.APIKey)
	if cfg.BaseURL != "" {
		u, err := url.Parse(cfg.BaseURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			// The URL is not echoed: a key pasted into the wrong field
			// must not end up in logs.
			return nil, errors.New("openai brain: base_url must be an http(s) URL")
		}
		oc.BaseURL = strings.TrimRight(cfg.BaseURL, "/")
	}
	if cfg.HTTPClient != nil {
		oc.HTTPClient = cfg.HTTPClient
	}
	if cfg.MaxRounds <= 0 {
		cfg.MaxRounds = DefaultMaxRounds
	}
	if cfg.HistoryTokens <= 0 {
		cfg.HistoryTokens = DefaultHistoryTokens
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	b := &Brain{cfg: cfg, client: goopenai.NewClientWithConfig(oc), fallback: cfg.Fallback}
	if b.fallback == nil {
		b.fallback = rules.New(rules.WithKit(cfg.Kit), rules.WithClock(cfg.Now))
	}
	for _, d := range tools.Definitions() {
		b.defs = append(b.defs, goopenai.Tool{Type: goopenai.ToolTypeFunction, Function: &goopenai.FunctionDefinition{
			Name: d.Name, Description: d.Description, Parameters: d.Parameters}})
	}
	return b, nil
}

// Answer implements brain.Brain. It returns an error only when both the
// model and the fallback failed.
func (b *Brain) Answer(ctx context.Context, r brain.Request) (brain.Answer, error) {
	if r.Now.IsZero() {
		r.Now = b.cfg.Now()
	}
	if r.State.Language == "" {
		if lang, sure := rules.DetectLanguage(r.Text); sure {
			r.State.Language = lang
		}
	}
	ans, err := b.converse(ctx, r)
	if err == nil {
		return ans, nil
	}
	return b.fallBack(ctx, r, ans, err)
}

// converse runs the tool-calling loop. On error, the partial answer holds
// the tool calls, usage and state changes made so far.
func (b *Brain) converse(ctx context.Context, r brain.Request) (brain.Answer, error) {
	mctx, cancel := context.WithTimeout(ctx, b.cfg.Timeout)
	defer cancel()
	st := r.State
	caller := tools.Caller{Authenticated: r.Authenticated, ProfileID: r.ProfileID, Now: r.Now}
	if r.Authenticated {
		caller.FirstName = r.FirstName
	}
	// Whether the customer confirmed is decided here, in code, from their
	// words, as the rules brain decides it: the model only phrases. A
	// proposal the customer declined, or answered with anything else,
	// is dropped, so no later message can confirm it. Only a proposal
	// from an earlier answer may be confirmed; one made during this
	// answer is never in caller.Pending.
	var declined *brain.PendingAction
	if st.Pending.ValidFor(r.ProfileID, r.Now) && r.Authenticated {
		switch rules.ReadConfirmation(r.Text) {
		case rules.ConfirmYes:
			caller.Pending = st.Pending
		case rules.ConfirmNo:
			declined = st.Pending
		}
	}
	if caller.Pending == nil {
		st.Pending = nil
	}
	ans := brain.Answer{State: st}
	msgs := b.messages(r, caller, declined)
	var called []string
	for round := 0; round < b.cfg.MaxRounds; round++ {
		req := goopenai.ChatCompletionRequest{Model: b.cfg.Model, Messages: msgs, Tools: b.defs}
		if round == b.cfg.MaxRounds-1 {
			// Last round: ask for words, not more tools.
			req.ToolChoice = "none"
		}
		resp, err := b.client.CreateChatCompletion(mctx, req)
		if err != nil {
			return ans, err
		}
		b.addUsage(&ans, resp)
		if len(resp.Choices) == 0 {
			return ans, errors.New("the model returned no choices")
		}
		msg := resp.Choices[0].Message
		if len(msg.ToolCalls) == 0 {
			text := strings.TrimSpace(msg.Content)
			if text == "" {
				return ans, errors.New("the model returned an empty answer")
			}
			ans.Text = brain.Finish(text)
			ans.QueryType = queryType(called, r.Text)
			ans.State.NotUnderstood = 0
			ans.State.History = brain.Remember(ans.State.History, r.Text, ans.Text)
			return ans, nil
		}
		msgs = append(msgs, goopenai.ChatCompletionMessage{Role: goopenai.ChatMessageRoleAssistant,
			Content: msg.Content, ToolCalls: msg.ToolCalls})
		for i, tc := range msg.ToolCalls {
			var res tools.Result
			if i >= maxToolCallsPerRound {
				res = tools.Result{Tool: tc.Function.Name, Data: tools.ErrorData{Error: "too_many_calls",
					Message: "Too many tool calls at once; ask for fewer."}}
			} else {
				res = b.cfg.Kit.Call(mctx, caller, tc.Function.Name, tc.Function.Arguments)
				ans.ToolCalls = append(ans.ToolCalls, res.Call)
				called = append(called, res.Tool)
				apply(&ans, res)
			}
			msgs = append(msgs, goopenai.ChatCompletionMessage{Role: goopenai.ChatMessageRoleTool,
				ToolCallID: tc.ID, Name: tc.Function.Name, Content: res.JSON()})
		}
	}
	return ans, fmt.Errorf("the model was still calling tools after %d rounds", b.cfg.MaxRounds)
}

// apply keeps a tool's effects on the conversation.
func apply(ans *brain.Answer, res tools.Result) {
	if res.SetPending != nil {
		ans.State.Pending = res.SetPending
	}
	if res.ClearPending {
		ans.State.Pending = nil
	}
	if res.Handoff != nil {
		ans.Handoff = res.Handoff
		ans.State.Pending = nil
	}
}

func (b *Brain) addUsage(ans *brain.Answer, resp goopenai.ChatCompletionResponse) {
	if ans.Usage == nil {
		model := resp.Model
		if model == "" {
			model = b.cfg.Model
		}
		ans.Usage = &brain.Usage{Model: model}
	}
	ans.Usage.Calls++
	ans.Usage.PromptTokens += resp.Usage.PromptTokens
	ans.Usage.CompletionTokens += resp.Usage.CompletionTokens
}

// fallBack answers with the fallback brain after the model failed, keeping
// what the model's tools already did (tool records, usage, a handoff, the
// pending proposal) so nothing is counted or applied twice.
func (b *Brain) fallBack(ctx context.Context, r brain.Request, partial brain.Answer, cause error) (brain.Answer, error) {
	reason := b.redact(cause.Error())
	if errors.Is(cause, context.DeadlineExceeded) {
		reason = "timeout: " + reason
	}
	if partial.Handoff != nil {
		// The model already handed over; say so rather than answer
		// something else.
		partial.Text, partial.QueryType = brain.Finish(handedOver(r.State.Language)), tools.HandoffToHuman
		partial.State.History = brain.Remember(r.State.History, r.Text, partial.Text)
		partial.Fallback = reason
		return partial, nil
	}
	fr := r
	fr.State = partial.State
	fa, err := b.fallback.Answer(ctx, fr)
	if err != nil {
		return brain.Answer{Text: brain.Finish(cantReach(r.State.Language)), QueryType: "error", State: partial.State,
			ToolCalls: partial.ToolCalls, Usage: partial.Usage, Fallback: reason}, nil
	}
	fa.ToolCalls = append(partial.ToolCalls, fa.ToolCalls...)
	fa.Usage = partial.Usage
	fa.Fallback = reason
	return fa, nil
}

func handedOver(lang string) string {
	if lang == rules.Spanish {
		return "He pedido a una persona del equipo que continúe la conversación; te responderá por aquí lo antes posible."
	}
	return "I've asked a person from the team to take over — they'll reply here as soon as they can."
}

// cantReach is the last resort: neither the model nor the fallback could
// answer.
func cantReach(lang string) string {
	if lang == rules.Spanish {
		return "Perdona, ahora mismo no puedo responder. Inténtalo de nuevo en unos minutos o escribe \"agente\" para hablar con una persona del equipo."
	}
	return "Sorry, I can't reach that right now. Please try again in a few minutes, or reply \"agent\" to talk to a person from the team."
}

// redact removes the API key (and anything that looks like a bearer token)
// from an error text: endpoints sometimes echo request headers in error
// bodies, and go-openai puts bodies into its errors.
func (b *Brain) redact(s string) string {
	if k := b.cfg.APIKey; k != "" {
		s = strings.ReplaceAll(s, k, "[redacted]")
	}
	for _, p := range []string{"Bearer ", "bearer "} {
		for i := strings.Index(s, p); i >= 0; {
			end := i + len(p)
			for end < len(s) && s[end] != ' ' && s[end] != '"' && s[end] != '\'' && s[end] != ',' && s[end] != '}' {
				end++
			}
			s = s[:i+len(p)] + "[redacted]" + s[end:]
			next := strings.Index(s[i+len(p)+len("[redacted]"):], p)
			if next < 0 {
				break
			}
			i = i + len(p) + len("[redacted]") + next
		}
	}
	return brain.Limit(s, 300)
}

// queryPriority orders tools for the query type: when the model called
// several, the most specific one names the question (a list_bookings
// lookup before cancel_booking is a cancellation).
var queryPriority = []string{tools.HandoffToHuman, tools.CancelBooking, tools.SubscriptionInfo, tools.AccountInfo,
	tools.CheckAvailability, tools.ListBookings, tools.ListServices, tools.Help}

func queryType(called []string, text string) string {
	for _, q := range queryPriority {
		for _, c := range called {
			if c == q {
				return q
			}
		}
	}
	// No tool: label the message as the rules brain would (greeting,
	// small talk, a request to book...).
	return rules.Classify(text)
}
