package tenants

import (
	"fmt"
	"net/mail"
	"regexp"
	"strings"

	"github.com/parleyhq/parley/internal/ids"
)

// Agent is one of the business's people who answer customers when the
// assistant hands a conversation over. A number is assigned to one; keys
// made for one (apikeys, Stored.Agent) say who acted.
type Agent struct {
	ID    string `yaml:"id" json:"id"`
	Name  string `yaml:"name" json:"name"`
	Email string `yaml:"email" json:"email"`
	// WhatsAppEnabled: the agent answers WhatsApp conversations, and so
	// may be assigned numbers and conversations.
	WhatsAppEnabled bool `yaml:"whatsapp_enabled" json:"whatsapp_enabled"`
}

var agentID = regexp.MustCompile(`^agt_[a-z0-9]{1,40}$`)

// NewAgentID is a new agent id: agt_ and 12 random lower-case characters.
func NewAgentID() string { return ids.Short("agt_", 12) }

// Validate reports what is wrong with the agent.
func (a *Agent) Validate() error {
	switch {
	case !agentID.MatchString(a.ID):
		return fmt.Errorf("agent id %q: agt_ and lower-case letters or digits", a.ID)
	case strings.TrimSpace(a.Name) == "":
		return fmt.Errorf("agent %s: name is required", a.ID)
	}
	if addr, err := mail.ParseAddress(a.Email); err != nil || addr.Address != a.Email {
		return fmt.Errorf("agent %s: email %q is not an address like name@example.com", a.ID, a.Email)
	}
	return nil
}

// AgentByID returns the tenant's agent with that id.
func (t *Tenant) AgentByID(id string) (Agent, bool) {
	for _, a := range t.Agents {
		if a.ID == id {
			return a, true
		}
	}
	return Agent{}, false
}

// ErrUnknownAgent says a number is assigned to no agent of its tenant.
var ErrUnknownAgent = fmt.Errorf("unknown agent")

// validateAgents checks the agents (valid, ids and emails once) and the
// numbers' assignments (an agent of the tenant, WhatsApp enabled).
func (t *Tenant) validateAgents() error {
	ids, emails := map[string]bool{}, map[string]bool{}
	for i := range t.Agents {
		a := &t.Agents[i]
		if err := a.Validate(); err != nil {
			return fmt.Errorf("tenant %s: %w", t.ID, err)
		}
		email := strings.ToLower(a.Email)
		if ids[a.ID] || emails[email] {
			return fmt.Errorf("tenant %s: agent %s or its email is there twice", t.ID, a.ID)
		}
		ids[a.ID], emails[email] = true, true
	}
	for n := range t.EachNumber() {
		if n.Agent == "" {
			continue
		}
		a, ok := t.AgentByID(n.Agent)
		switch {
		case !ok:
			return fmt.Errorf("tenant %s: number %s is assigned to agent %q, who is not one of the tenant's: %w", t.ID, n.ID(), n.Agent, ErrUnknownAgent)
		case !a.WhatsAppEnabled:
			return fmt.Errorf("tenant %s: number %s is assigned to agent %s, who does not have WhatsApp enabled: %w", t.ID, n.ID(), a.ID, ErrUnknownAgent)
		}
	}
	return nil
}
