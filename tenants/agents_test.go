package tenants

import (
	"errors"
	"strings"
	"testing"
)

func TestAgentsValidate(t *testing.T) {
	sam := Agent{ID: "agt_sam", Name: "Sam", Email: "sam@example.com", WhatsAppEnabled: true}
	noWA := Agent{ID: "agt_kim", Name: "Kim", Email: "kim@example.com"}
	tw := func(agent string) *Tenant {
		return &Tenant{ID: "acme", Agents: []Agent{sam, noWA}, Number: NumberSettings{Agent: agent},
			Twilio: &Twilio{AccountSID: "AC1", AuthToken: "t", From: "whatsapp:+14155238886"}}
	}
	for _, c := range []struct {
		name    string
		t       *Tenant
		want    string
		unknown bool
	}{
		{"assigned to a WhatsApp agent", tw("agt_sam"), "", false},
		{"not assigned", tw(""), "", false},
		{"assigned to nobody known", tw("agt_zed"), "not one of the tenant's", true},
		{"assigned to an agent without WhatsApp", tw("agt_kim"), "WhatsApp", true},
		{"a bad id", &Tenant{ID: "acme", Sim: true, Agents: []Agent{{ID: "sam", Name: "Sam", Email: "sam@example.com"}}}, "agent id", false},
		{"no name", &Tenant{ID: "acme", Sim: true, Agents: []Agent{{ID: "agt_a", Email: "a@example.com"}}}, "name", false},
		{"a bad email", &Tenant{ID: "acme", Sim: true, Agents: []Agent{{ID: "agt_a", Name: "A", Email: "Sam <a@example.com>"}}}, "email", false},
		{"the same email twice", &Tenant{ID: "acme", Sim: true, Agents: []Agent{sam, {ID: "agt_b", Name: "B", Email: "SAM@example.com"}}}, "twice", false},
	} {
		err := c.t.Validate()
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s: %v, want an error about %q", c.name, err, c.want)
		case c.unknown != errors.Is(err, ErrUnknownAgent):
			t.Errorf("%s: %v: ErrUnknownAgent %v, want %v", c.name, err, errors.Is(err, ErrUnknownAgent), c.unknown)
		}
	}
	if id := NewAgentID(); !agentID.MatchString(id) {
		t.Fatalf("NewAgentID %q", id)
	}
}
