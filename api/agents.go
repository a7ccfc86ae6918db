package api

import (
	"context"
	"strconv"
	"strings"

	"github.com/valyala/fasthttp"

	"github.com/parleyhq/parley/tenants"
)

// A tenant's agents: the people who answer when the assistant hands a
// conversation over. They live in the tenant's record on parley.config;
// numbers are assigned to them and keys made for them (POST /keys with
// "agent").

// agentRequest is the body of POST and PATCH on agents.
type agentRequest struct {
	Name            *string `json:"name"`
	Email           *string `json:"email"`
	WhatsAppEnabled *bool   `json:"whatsapp_enabled"`
}

// listAgents is GET /tenants/{tenant}/agents: whom numbers and
// conversations can be assigned to.
func (a *API) listAgents(ctx *fasthttp.RequestCtx, c Call) {
	items := c.Tenant.Agents
	if items == nil {
		items = []tenants.Agent{}
	}
	writeJSON(ctx, fasthttp.StatusOK, map[string]any{"items": items})
}

// createAgent is POST /tenants/{tenant}/agents {"name", "email",
// "whatsapp_enabled"}.
func (a *API) createAgent(ctx *fasthttp.RequestCtx, c Call) {
	if !a.configured(ctx) || !a.notFromFile(ctx, c.Tenant.ID) {
		return
	}
	var req agentRequest
	if err := decodeStrict(ctx.PostBody(), &req); err != nil {
		Error(ctx, fasthttp.StatusBadRequest, "invalid_json", err.Error())
		return
	}
	ag := tenants.Agent{ID: tenants.NewAgentID()}
	applyAgent(&ag, req)
	t := c.Tenant.Clone()
	if !checkAgent(ctx, &t, ag) {
		return
	}
	t.Agents = append(t.Agents, ag)
	if a.writeTenant(ctx, t) {
		writeJSON(ctx, fasthttp.StatusCreated, ag)
		a.audit(c, "agent.create", t.ID, ag.ID)
	}
}

// updateAgent is PATCH /tenants/{tenant}/agents/{id}.
func (a *API) updateAgent(ctx *fasthttp.RequestCtx, c Call) {
	if !a.configured(ctx) || !a.notFromFile(ctx, c.Tenant.ID) {
		return
	}
	ag, ok := a.theAgent(ctx, c)
	if !ok {
		return
	}
	var req agentRequest
	if err := decodeStrict(ctx.PostBody(), &req); err != nil {
		Error(ctx, fasthttp.StatusBadRequest, "invalid_json", err.Error())
		return
	}
	applyAgent(&ag, req)
	t := c.Tenant.Clone()
	if !checkAgent(ctx, &t, ag) {
		return
	}
	if n, assigned := assignedNumber(&t, ag.ID); assigned && !ag.WhatsAppEnabled {
		Error(ctx, fasthttp.StatusConflict, "agent_assigned", "agent "+ag.ID+" is assigned number "+n+": assign it to another agent before turning WhatsApp off")
		return
	}
	for i := range t.Agents {
		if t.Agents[i].ID == ag.ID {
			t.Agents[i] = ag
		}
	}
	if a.writeTenant(ctx, t) {
		writeJSON(ctx, fasthttp.StatusOK, ag)
		a.audit(c, "agent.update", t.ID, ag.ID+" fields "+fieldsOf(ctx.PostBody()))
	}
}

// deleteAgent is DELETE /tenants/{tenant}/agents/{id}: refused while a
// number is assigned to the agent; the agent's keys are revoked.
func (a *API) deleteAgent(ctx *fasthttp.RequestCtx, c Call) {
	if !a.configured(ctx) || !a.notFromFile(ctx, c.Tenant.ID) {
		return
	}
	ag, ok := a.theAgent(ctx, c)
	if !ok {
		return
	}
	t := c.Tenant.Clone()
	if n, assigned := assignedNumber(&t, ag.ID); assigned {
		Error(ctx, fasthttp.StatusConflict, "agent_assigned", "agent "+ag.ID+" is assigned number "+n+": assign it to another agent first")
		return
	}
	// The agent's keys go first: a key must not outlive whom it names.
	wait, cancel := context.WithTimeout(context.Background(), configTimeout)
	defer cancel()
	for _, info := range a.o.Keys.List(c.Key) {
		if info.Agent == ag.ID && info.ID != "" {
			if err := a.o.Config.DeleteKey(wait, info.ID); err != nil {
				configError(ctx, err)
				return
			}
		}
	}
	kept := t.Agents[:0]
	for _, x := range t.Agents {
		if x.ID != ag.ID {
			kept = append(kept, x)
		}
	}
	t.Agents = kept
	if a.writeTenant(ctx, t) {
		ctx.SetStatusCode(fasthttp.StatusNoContent)
		a.audit(c, "agent.delete", t.ID, ag.ID)
	}
}

func (a *API) theAgent(ctx *fasthttp.RequestCtx, c Call) (tenants.Agent, bool) {
	ag, ok := c.Tenant.AgentByID(c.Param("id"))
	if !ok {
		Error(ctx, fasthttp.StatusNotFound, "unknown_agent", "tenant "+c.Tenant.ID+" has no agent "+strconv.Quote(c.Param("id")))
	}
	return ag, ok
}

func applyAgent(ag *tenants.Agent, req agentRequest) {
	if req.Name != nil {
		ag.Name = strings.TrimSpace(*req.Name)
	}
	if req.Email != nil {
		ag.Email = strings.TrimSpace(*req.Email)
	}
	if req.WhatsAppEnabled != nil {
		ag.WhatsAppEnabled = *req.WhatsAppEnabled
	}
}

// checkAgent answers 400 invalid_agent for an agent that is not valid and
// 409 agent_exists for another agent's email.
func checkAgent(ctx *fasthttp.RequestCtx, t *tenants.Tenant, ag tenants.Agent) bool {
	if err := ag.Validate(); err != nil {
		Error(ctx, fasthttp.StatusBadRequest, "invalid_agent", err.Error())
		return false
	}
	for _, x := range t.Agents {
		if x.ID != ag.ID && strings.EqualFold(x.Email, ag.Email) {
			Error(ctx, fasthttp.StatusConflict, "agent_exists", "agent "+x.ID+" has the email "+ag.Email)
			return false
		}
	}
	return true
}

// assignedNumber is a number of t assigned to agent id, if there is one.
func assignedNumber(t *tenants.Tenant, id string) (string, bool) {
	for n := range t.EachNumber() {
		if n.Agent == id {
			return n.ID(), true
		}
	}
	return "", false
}

// checkAssignment answers 400 when number n, made active by the request
// (connected, or switched on), has no agent, and when its agent is not
// one of t's with WhatsApp enabled.
func checkAssignment(ctx *fasthttp.RequestCtx, t *tenants.Tenant, n tenants.Number, activated bool) bool {
	if n.Agent == "" {
		if activated && !n.Inactive {
			Error(ctx, fasthttp.StatusBadRequest, "agent_required",
				"an active number needs an assigned_agent: one of the tenant's agents with WhatsApp enabled (GET/POST .../agents)")
			return false
		}
		return true
	}
	ag, ok := t.AgentByID(n.Agent)
	switch {
	case !ok:
		Error(ctx, fasthttp.StatusBadRequest, "unknown_agent", "assigned_agent "+strconv.Quote(n.Agent)+" is not one of the tenant's agents")
		return false
	case !ag.WhatsAppEnabled:
		Error(ctx, fasthttp.StatusBadRequest, "unknown_agent", "agent "+ag.ID+" does not have WhatsApp enabled: only such agents are assigned numbers")
		return false
	}
	return true
}
