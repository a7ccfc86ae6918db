package actors

import (
	"context"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/parleyhq/parley/brain"
	"github.com/parleyhq/parley/internal/ids"
	"github.com/parleyhq/parley/wire"
)

// sessionState is what a session keeps between messages, live or dormant.
type sessionState struct {
	conversationID string
	seen           map[string]time.Time // provider ids, for deduplication
}

func newSessionState() *sessionState {
	return &sessionState{seen: map[string]time.Time{}}
}

// handle decides what one inbound record causes.
func (s *session) handle(in *wire.Inbound) []kafka.Message {
	var o outputs
	msg := in.GetMessage()
	if msg == nil {
		handled.WithLabelValues("status", "ok").Inc()
		return nil
	}
	now := s.deps.Now()
	if _, dup := s.state.seen[msg.ProviderId]; dup {
		handled.WithLabelValues("message", "duplicate").Inc()
		return nil
	}
	s.state.seen[msg.ProviderId] = now
	if s.state.conversationID == "" {
		s.state.conversationID = ids.New()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ans, err := s.deps.Brains(s.tenant).Answer(ctx, brain.Request{TenantName: s.tenant.Name, Text: msg.Text})
	if err != nil {
		ans = brain.Answer{Text: "Sorry, I can't answer right now. Please try again in a moment.", QueryType: "error"}
	}
	s.logInbound(&o, in, s.state.conversationID, ans.QueryType)
	s.reply(&o, in, s.state.conversationID, ans.Text, ans.QueryType)
	handled.WithLabelValues("message", "ok").Inc()
	return o.msgs
}
