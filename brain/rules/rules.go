// Package rules is the deterministic, offline brain: intent matching on the
// customer's words. It is the development default and the fallback when a
// language model is unreachable.
package rules

import (
	"context"
	"strings"

	"github.com/parleyhq/parley/brain"
)

// Brain is the rules brain. It holds no state.
type Brain struct{}

// New returns the rules brain.
func New() *Brain { return &Brain{} }

var greetings = []string{"hi", "hello", "hey", "hola", "good morning", "good afternoon", "good evening"}

// Answer implements brain.Brain.
func (Brain) Answer(_ context.Context, r brain.Request) (brain.Answer, error) {
	text := strings.ToLower(strings.TrimSpace(r.Text))
	name := r.FirstName
	switch {
	case isGreeting(text):
		hello := "Hello"
		if name != "" {
			hello += " " + name
		}
		return brain.Answer{
			Text:      hello + "! I'm the " + assistantOf(r.TenantName) + ". " + helpText,
			QueryType: "greeting",
		}, nil
	case strings.Contains(text, "help") || strings.Contains(text, "what can you"):
		return brain.Answer{Text: helpText, QueryType: "help"}, nil
	default:
		return brain.Answer{
			Text:      "Sorry, I didn't quite get that. " + helpText,
			QueryType: "unknown",
		}, nil
	}
}

const helpText = "I can tell you about our services and availability, show or cancel your bookings, " +
	"and answer questions about your account and subscription. Type \"help\" at any time."

func assistantOf(tenant string) string {
	if tenant == "" {
		return "virtual assistant"
	}
	return tenant + " assistant"
}

func isGreeting(text string) bool {
	text = strings.Trim(text, "!.?, ")
	for _, g := range greetings {
		if text == g || strings.HasPrefix(text, g+" ") || strings.HasPrefix(text, g+",") || strings.HasPrefix(text, g+"!") {
			return true
		}
	}
	return false
}
