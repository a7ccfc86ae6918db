package actors

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"math/big"
	"strconv"
	"time"

	"github.com/parleyhq/parley/brain"
	"github.com/parleyhq/parley/conversation"
	"github.com/parleyhq/parley/internal/ids"
	"github.com/parleyhq/parley/tenants"
	"github.com/parleyhq/parley/wire"
)

// Query types of messages the sign-in flow answers (the brain labels the
// rest).
const (
	querySignIn    = "sign_in"
	queryHumanOnly = "human"
	// queryGroup labels a message written in a WhatsApp group: logged,
	// never answered one to one.
	queryGroup = "group_message"
)

// policyOf maps a tenant's session settings onto the core's policy; zero
// fields keep the core's defaults.
func policyOf(t *tenants.Tenant) conversation.Policy {
	return conversation.Policy{
		CodesPerHour: t.Session.CodesPerHour,
		CodesPerDay:  t.Session.CodesPerDay,
		SessionTTL:   t.Session.SessionTTL,
		IdleTimeout:  t.Session.IdleTimeout,
	}
}

// freshRand draws what the core may need from crypto/rand.
func freshRand() conversation.Rand {
	var r conversation.Rand
	n, err := rand.Int(rand.Reader, big.NewInt(1_000_000))
	if err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	r.Code = fmt.Sprintf("%06d", n.Int64())
	if _, err := rand.Read(r.Salt[:]); err != nil {
		panic(err)
	}
	r.ConversationID = ids.New()
	return r
}

// handle feeds one inbound record to the conversation core and carries out
// the effects, returning the records to produce (none for a duplicate or a
// record nothing can be done with).
func (s *session) handle(in *wire.Inbound) (*outputs, *wire.CommandResult) {
	o := &outputs{key: wire.Key(s.tenant.ID, s.phone)}
	x := &execution{s: s, in: in, o: o, policy: policyOf(s.tenant)}
	// The number the customer writes to, "" for the tenant's first (so
	// that single-number tenants' states carry none); quiet when it is
	// switched off.
	first := s.tenant.First()
	number := s.state.Number()
	if _, ok := in.Kind.(*wire.Inbound_Message); ok {
		number = in.To
		if number == first.ID() {
			number = ""
		}
	}
	to, ok := s.tenant.NumberByID(cmp.Or(number, first.ID()))
	if !ok {
		to = first
	}
	x.policy.Quiet = to.Inactive
	switch k := in.Kind.(type) {
	case *wire.Inbound_Message:
		x.step(conversation.Inbound{ProviderID: k.Message.ProviderId, Text: k.Message.Text, Group: k.Message.GroupId != "", Number: number})
	case *wire.Inbound_Command:
		c := k.Command
		switch op := c.Op.(type) {
		case *wire.Command_Send:
			var fingerprint []byte
			if c.IdempotencyKey != "" {
				fingerprint = commandFingerprint(c)
			}
			if status, prior := recall(s.state, x.policy, c, fingerprint, s.deps.Now()); status != conversation.KeyNew {
				x.result, x.outcome = prior, "replayed"
				if status == conversation.KeyConflict {
					x.outcome = "invalid"
				}
				break
			}
			x.result = &wire.CommandResult{RequestId: c.RequestId}
			x.sendRequest(op.Send)
			if x.result.Ok && c.IdempotencyKey != "" {
				x.step(remembered(c, fingerprint, x.result))
			}
		case *wire.Command_Respond:
			x.result = &wire.CommandResult{RequestId: c.RequestId}
			x.respond(op.Respond)
		case *wire.Command_OptOut:
			x.step(conversation.OptOut{})
		case *wire.Command_Forget:
			// Erasure: nothing of the customer stays in memory; the
			// rows in ClickHouse are deleted by the caller.
			x.step(conversation.Forget{})
			x.result = &wire.CommandResult{RequestId: c.RequestId, Ok: true}
		case *wire.Command_Expire:
			// The owner found the session idle past the retention of
			// expired sessions; the core decides, and an erased state
			// leaves a tombstone on the changelog.
			ev := conversation.Expire{IdleBefore: time.UnixMilli(op.Expire.GetIdleBeforeMs())}
			if ms := op.Expire.GetDisposableIdleBeforeMs(); ms != 0 {
				ev.DisposableIdleBefore = time.UnixMilli(ms)
			}
			x.step(ev)
		default:
			ev, ok := commandEvent(c)
			if !ok {
				s.deps.Logger.Warn("unknown operator command", "session", s.id)
				handled.WithLabelValues("command", "invalid").Inc()
				return o, &wire.CommandResult{RequestId: c.RequestId, ErrorCode: "invalid", ErrorMessage: "unknown command"}
			}
			x.step(ev)
			if c.RequestId != "" {
				x.result = &wire.CommandResult{RequestId: c.RequestId, Ok: true, ConversationId: s.state.ConversationID()}
			}
		}
		handled.WithLabelValues("command", x.outcome).Inc()
		return o, x.result
	case *wire.Inbound_Status:
		x.step(conversation.DeliveryStatus{ProviderID: k.Status.ProviderId, Status: k.Status.Status})
		if x.outcome == "" {
			x.outcome = "ok"
		}
		handled.WithLabelValues("status", x.outcome).Inc() // ok, duplicate or unknown_status
		return o, nil
	default:
		handled.WithLabelValues("unknown", "dropped").Inc()
		return o, nil
	}
	if x.inboundLog != nil && x.inboundLog.QueryType == "" {
		x.inboundLog.QueryType = querySignIn
	}
	handled.WithLabelValues("message", x.outcome).Inc()
	return o, nil
}

var statuses = map[string]conversation.Status{
	"active":   conversation.StatusActive,
	"archived": conversation.StatusArchived,
	"closed":   conversation.StatusClosed,
}

// commandEvent maps an operator command onto the core's event.
func commandEvent(c *wire.Command) (conversation.Event, bool) {
	switch op := c.Op.(type) {
	case *wire.Command_SetStatus:
		st, ok := statuses[op.SetStatus]
		return conversation.SetStatus{Status: st}, ok
	case *wire.Command_SetAi:
		return conversation.SetAI{Enabled: op.SetAi}, true
	}
	return nil, false
}

// execution carries out the effects of one delivery.
type execution struct {
	s          *session
	in         *wire.Inbound
	o          *outputs
	policy     conversation.Policy
	inboundLog *wire.MessageLog
	authSeq    int
	seq        int
	// result answers a caller waiting for a command (send, respond).
	result *wire.CommandResult
	// pendingSend is the operator message a SendRequest is deciding on.
	pendingSend *wire.SendMessage
	outcome     string
}

func (x *execution) step(ev conversation.Event) {
	effects := x.s.state.Apply(x.policy, ev, x.s.deps.Now(), randFor(ev))
	if x.outcome == "" {
		x.outcome = "ok"
	}
	for _, e := range effects {
		x.run(e)
	}
}

// randFor is the randomness ev may need: none for the events that never
// use any (conversation.Rand), so that delivery reports, the most
// frequent records, draw nothing from crypto/rand.
func randFor(ev conversation.Event) conversation.Rand {
	switch ev.(type) {
	case conversation.OptOut, conversation.DeliveryStatus, conversation.RememberResult, conversation.SetMemory, conversation.Forget, conversation.Expire:
		return conversation.Rand{}
	}
	return freshRand()
}

func (x *execution) run(e conversation.Effect) {
	s := x.s
	switch e := e.(type) {
	case conversation.Dropped:
		switch e.Reason {
		case conversation.DropDuplicate:
			x.outcome = "duplicate"
		case conversation.DropUnknownStatus:
			// Counted (parley_messages_handled_total, outcome
			// unknown_status) and logged, never stored as a delivery.
			x.outcome = "unknown_status"
			s.deps.Logger.Warn("delivery report with a status no provider documents; not stored",
				"tenant", s.tenant.ID, "channel", x.in.GetChannel(), "provider_id", e.ProviderID, "status", x.in.GetStatus().GetStatus())
		}
	case conversation.LogInbound:
		x.inboundLog = s.logInbound(x.o, x.in)
		if e.Code {
			x.inboundLog.Body = "[verification code entered]"
		}
		if e.Human {
			x.inboundLog.QueryType = queryHumanOnly
		}
		if e.Group {
			x.inboundLog.QueryType = queryGroup
		}
	case conversation.AuthEvent:
		x.authSeq++
		s.authEvent(x.o, x.in, x.authSeq, string(e.Name), e.ProfileID, e.Attempt)
	case conversation.Reply:
		s.replyInParts(x.o, x.in, e.Text, querySignIn)
	case conversation.SendCode:
		// The code goes to the customer; the log keeps that a code was
		// sent, never the code.
		out := s.reply(x.o, x.in, s.state.Number(), e.Text, "[verification code sent]", querySignIn)
		if box := s.deps.Secrets; box != nil {
			// Nobody reading parley.outbound reads the code: the sender
			// opens it just before sending.
			out.SealedText, out.Text = box.Seal([]byte(e.Text), []byte(out.Id)), ""
		}
		// Billing counts the codes a tenant's customers were sent.
		x.event(&wire.Event{Kind: &wire.Event_Usage{Usage: &wire.Usage{Metric: "codes_sent", Value: 1}}})
	case conversation.AskBrain:
		x.ask(e)
	case conversation.LookupProfiles:
		x.lookup()
	case conversation.ConversationStarted:
		x.conversationChange(&wire.ConversationChange{ConversationId: e.ID, Change: "started", Status: "active", AiEnabled: true, ByCustomer: true})
	case conversation.StatusChanged:
		x.conversationChange(&wire.ConversationChange{ConversationId: e.ConversationID, Change: "status", Status: e.To.String(), AiEnabled: s.state.AIEnabled(), ByCustomer: e.ByCustomer, Operator: x.operator()})
	case conversation.AIChanged:
		x.conversationChange(&wire.ConversationChange{ConversationId: s.state.ConversationID(), Change: "ai", Status: s.state.Status().String(), AiEnabled: e.Enabled, Operator: x.operator()})
	case conversation.SendDecision:
		x.decided(e)
	case conversation.LogDelivery:
		s.logDelivery(x.o, x.in)
	}
}

// conversationChange queues a conversation event for analytics.
func (x *execution) conversationChange(c *wire.ConversationChange) {
	x.event(&wire.Event{Kind: &wire.Event_Conversation{Conversation: c}})
}

// event fills in an analytics event's envelope and queues it. Ids derive
// from the inbound id, so a replay after a crash yields the same ids and
// the sink's deduplication holds.
func (x *execution) event(ev *wire.Event) {
	x.seq++
	ev.Id = x.in.GetId() + "/ev/" + strconv.Itoa(x.seq)
	ev.Tenant = x.s.tenant.ID
	ev.Phone = x.s.phone
	ev.AtMs = x.s.deps.Now().UnixMilli()
	x.o.add(wire.TopicEvents, ev)
}

// operator is who sent the command being executed, if it is one.
func (x *execution) operator() string { return x.in.GetCommand().GetOperator() }

// lookup asks the tenant's backend for the profiles of the number and feeds
// the answer back into the core.
func (x *execution) lookup() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	profiles, err := x.s.deps.Backends(x.s.tenant).ProfilesByPhone(ctx, x.s.phone)
	if err != nil {
		x.s.deps.Logger.Warn("profile lookup failed", "tenant", x.s.tenant.ID, "err", err)
		x.step(conversation.LookupFailed{})
		return
	}
	found := conversation.ProfilesFound{Profiles: make([]conversation.Profile, len(profiles))}
	for i, p := range profiles {
		found.Profiles[i] = conversation.Profile(p)
	}
	x.step(found)
}

// ask has the brain answer and replies with its answer. The brain's
// memory (language, pending cancellation, recent turns) lives in the
// core's state between messages, as JSON the core does not read.
func (x *execution) ask(e conversation.AskBrain) {
	s := x.s
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ans, err := s.deps.Brains(s.tenant).Answer(ctx, brain.Request{
		TenantName:    s.tenant.Name,
		Text:          e.Text,
		Authenticated: e.Authenticated,
		ProfileID:     e.ProfileID,
		FirstName:     e.FirstName,
		Now:           s.deps.Now(),
		State:         decodeMemory(s.state.Memory()),
		Form:          x.in.GetMessage().GetFlowResponse(),
	})
	if err != nil {
		// The memory stays as it was.
		s.deps.Logger.Warn("brain failed", "tenant", s.tenant.ID, "err", err)
		ans = brain.Answer{Text: "Sorry, I can't answer right now. Please try again in a moment.", QueryType: "error"}
	} else {
		x.step(conversation.SetMemory{Memory: encodeMemory(ans.State)})
	}
	if x.inboundLog != nil {
		x.inboundLog.QueryType = ans.QueryType
	}
	s.replyInParts(x.o, x.in, ans.Text, ans.QueryType)
	for _, c := range ans.ToolCalls {
		x.event(&wire.Event{Kind: &wire.Event_ToolCall{ToolCall: &wire.ToolCall{
			Tool: c.Tool, Ok: c.OK, LatencyUs: c.Latency.Microseconds(), Error: c.Error,
			ConversationId: s.state.ConversationID(),
		}}})
	}
	if u := ans.Usage; u != nil {
		x.event(&wire.Event{Kind: &wire.Event_Usage{Usage: &wire.Usage{Metric: "llm_prompt_tokens", Value: int64(u.PromptTokens), Model: u.Model}}})
		x.event(&wire.Event{Kind: &wire.Event_Usage{Usage: &wire.Usage{Metric: "llm_completion_tokens", Value: int64(u.CompletionTokens), Model: u.Model}}})
	}
	if h := ans.Handoff; h != nil {
		// A person takes over: the agent gets the summary, and the
		// assistant stays quiet until AI is switched back on.
		x.conversationChange(&wire.ConversationChange{
			ConversationId: s.state.ConversationID(), Change: "handoff", Status: s.state.Status().String(),
			Summary: h.Summary, Operator: "assistant:" + h.Reason,
		})
		x.step(conversation.SetAI{Enabled: false})
	}
}

// encodeMemory is the brain's memory as the core keeps it: JSON, nil when
// there is nothing to remember.
func encodeMemory(m brain.State) []byte {
	if m.Language == "" && m.Pending == nil && len(m.History) == 0 && m.NotUnderstood == 0 {
		return nil
	}
	b, err := json.Marshal(m)
	if err != nil {
		return nil // only a programming error makes it unencodable
	}
	return b
}

// decodeMemory reads encodeMemory's output; unreadable memory is
// forgotten rather than failing the customer's message.
func decodeMemory(b []byte) brain.State {
	var m brain.State
	if len(b) > 0 && json.Unmarshal(b, &m) != nil {
		return brain.State{}
	}
	return m
}

// logDelivery queues the analytics event of a provider's report on a
// message the session sent (the core dropped it if it was a redelivery).
func (s *session) logDelivery(o *outputs, in *wire.Inbound) {
	st := in.GetStatus()
	o.add(wire.TopicEvents, &wire.Event{
		// Providers redeliver callbacks; one row per provider id and status.
		Id:     "delivery/" + st.ProviderId + "/" + st.Status,
		Tenant: s.tenant.ID,
		Phone:  s.phone,
		AtMs:   s.deps.Now().UnixMilli(),
		Kind: &wire.Event_Delivery{Delivery: &wire.DeliveryReport{
			ProviderId: st.ProviderId,
			Status:     st.Status,
			ErrorCode:  st.ErrorCode,
			Channel:    in.Channel,
		}},
	})
}

// sendRequest asks the core whether an operator/API message may go now:
// the 24-hour window and the customer's opt-out are the session's truth.
func (x *execution) sendRequest(m *wire.SendMessage) {
	x.pendingSend = m
	x.step(conversation.SendRequest{Text: m.GetText(), Template: m.GetTemplate() != nil})
}

// decided carries out the core's answer to a SendRequest.
func (x *execution) decided(d conversation.SendDecision) {
	s := x.s
	if x.result == nil || x.pendingSend == nil {
		return
	}
	if d.Reason == conversation.SendOptedOut {
		x.result.ErrorCode = d.Reason
		x.result.ErrorMessage = "the customer unsubscribed; they must write to you again before you can message them"
		return
	}
	if !d.WindowUntil.IsZero() {
		x.result.WindowUntilMs = d.WindowUntil.UnixMilli()
	}
	x.result.ConversationId = s.state.ConversationID()
	if !d.Allowed {
		x.result.ErrorCode = d.Reason
		x.result.ErrorMessage = "free text can only be sent within 24 hours of the customer's last message; send a template"
		return
	}
	m := x.pendingSend
	body := m.GetText()
	if t := m.GetTemplate(); t != nil {
		body = "[template " + t.GetName() + t.GetContentSid() + "]"
	}
	// From the number the caller chose, else the one the customer last
	// wrote to while it is active, else ("") the tenant's first active one.
	from := m.GetFrom()
	if n, ok := s.tenant.NumberByID(s.state.Number()); from == "" && ok && !n.Inactive {
		from = n.ID()
	}
	out := s.reply(x.o, x.in, from, m.GetText(), body, "operator")
	out.Template = m.GetTemplate()
	x.result.Ok = true
	x.result.OutboundId = out.Id
}

// respond has the assistant answer on behalf of the customer's
// conversation and returns the answer to the caller, not to WhatsApp.
func (x *execution) respond(r *wire.Respond) {
	s := x.s
	now := s.deps.Now()
	authenticated := s.state.Authenticated(now)
	req := brain.Request{TenantName: s.tenant.Name, Text: r.GetMessage(), Authenticated: authenticated, Variables: r.GetVariables()}
	if authenticated {
		req.ProfileID, req.FirstName = s.state.ProfileID(), s.state.FirstName()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ans, err := s.deps.Brains(s.tenant).Answer(ctx, req)
	if err != nil {
		x.result.ErrorCode = "assistant_unavailable"
		x.result.ErrorMessage = "the assistant could not answer; try again"
		return
	}
	x.result.Ok = true
	x.result.Reply = ans.Text
	x.result.QueryType = ans.QueryType
	x.result.ConversationId = s.state.ConversationID()
}
