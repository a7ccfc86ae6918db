package openai

import (
	"strings"

	goopenai "github.com/sashabaranov/go-openai"

	"github.com/parleyhq/parley/brain"
	"github.com/parleyhq/parley/brain/rules"
	"github.com/parleyhq/parley/brain/tools"
)

// messages builds the conversation sent to the model: the system prompt,
// the recent turns that fit the token budget, and the customer's message.
func (b *Brain) messages(r brain.Request, c tools.Caller) []goopenai.ChatCompletionMessage {
	msgs := []goopenai.ChatCompletionMessage{{Role: goopenai.ChatMessageRoleSystem, Content: b.systemPrompt(r, c)}}
	for _, t := range fitHistory(r.State.History, b.cfg.HistoryTokens) {
		role := goopenai.ChatMessageRoleUser
		if t.Role == brain.RoleAssistant {
			role = goopenai.ChatMessageRoleAssistant
		}
		msgs = append(msgs, goopenai.ChatCompletionMessage{Role: role, Content: t.Text})
	}
	return append(msgs, goopenai.ChatCompletionMessage{Role: goopenai.ChatMessageRoleUser,
		Content: brain.Limit(r.Text, maxMessageChars)})
}

// EstimateTokens is the token estimate used for budgets: about four
// characters a token, which is close for English and errs high for most
// other text. It avoids shipping a tokenizer for a bound that only needs
// to be roughly right.
func EstimateTokens(s string) int { return (len(s) + 3) / 4 }

// fitHistory keeps the most recent turns whose estimated tokens fit the
// budget, oldest first. It never starts on an assistant turn, so the model
// does not read an answer without its question.
func fitHistory(h []brain.Turn, budget int) []brain.Turn {
	used, start := 0, len(h)
	for i := len(h) - 1; i >= 0; i-- {
		used += EstimateTokens(h[i].Text) + 4 // per-message overhead
		if used > budget {
			break
		}
		start = i
	}
	for start < len(h) && h[start].Role == brain.RoleAssistant {
		start++
	}
	return h[start:]
}

// systemPrompt is the per-tenant, per-customer instruction.
func (b *Brain) systemPrompt(r brain.Request, c tools.Caller) string {
	var p strings.Builder
	business := r.TenantName
	if business == "" {
		business = "the business"
	}
	p.WriteString("You are the WhatsApp assistant of " + business + ". ")
	p.WriteString("Tone: friendly and concise. Short plain sentences, a few lines at most; bullets (•) for lists; no markdown headings, tables or links other than the dashboard. ")
	if r.State.Language == rules.Spanish {
		p.WriteString("Answer in Spanish.\n")
	} else {
		p.WriteString("Answer in the customer's language (English unless they write in another).\n")
	}
	if c.Authenticated && c.ProfileID != "" {
		if c.FirstName != "" {
			p.WriteString("The customer is signed in as " + c.FirstName + "; use their first name naturally.\n")
		} else {
			p.WriteString("The customer is signed in.\n")
		}
	} else {
		p.WriteString("The customer has not signed in: answer only general questions (services, availability, what you can do). " +
			"For bookings, account or subscription, tell them to sign in with the 6-digit code sent here on WhatsApp.\n")
	}
	now := c.Now
	if loc := b.cfg.Kit.Location; loc != nil {
		now = now.In(loc)
	}
	p.WriteString("Now: " + now.Format("Monday 2006-01-02 15:04") + " (" + now.Location().String() + "). " +
		"Resolve dates like \"next Wednesday\" or \"on the 20th\" to YYYY-MM-DD yourself and state the date in your answer.\n")
	p.WriteString("Use the tools for every fact about services, times, bookings, account and subscription; never invent them. " +
		"Never show ids, internal codes or full email addresses.\n")
	p.WriteString("You cannot create bookings: say so politely, offer to check availability, and point to the web dashboard")
	if u := b.cfg.Kit.DashboardURL; u != "" {
		p.WriteString(" (" + u + ")")
	}
	p.WriteString(".\n")
	p.WriteString("Cancelling takes two steps: call cancel_booking without confirm, tell the customer what would be cancelled and ask them to confirm. " +
		"Only when they say yes in a later message, call cancel_booking with confirm=true.\n")
	if c.Pending != nil {
		p.WriteString("Pending: you asked the customer to confirm cancelling " + c.Pending.Summary + " (booking_id " + c.Pending.BookingID +
			"). If this message confirms it, call cancel_booking with confirm=true; if not, it is not cancelled.\n")
	}
	p.WriteString("If the customer asks for a person, or needs something you cannot do, call handoff_to_human with a one-sentence summary.")
	return p.String()
}
