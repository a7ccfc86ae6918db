package conversation

import "time"

// Step is the whole domain logic: it returns the state after ev at now and
// the effects the shell must carry out, in order. It is pure: the same
// arguments always give the same result, s is not modified (Step works on
// a deep copy), and nothing outside the arguments is read.
//
// r must be filled with fresh randomness for every event (see Rand).
func Step(p Policy, s State, ev Event, now time.Time, r Rand) (State, []Effect) {
	s = s.Clone()
	eff := s.Apply(p, ev, now, r)
	return s, eff
}

// Apply is Step in place: it changes *s instead of copying it. The shell
// owns its state exclusively, so it can use Apply and skip the copy; tests
// and anything that keeps old states use Step.
func (s *State) Apply(p Policy, ev Event, now time.Time, r Rand) []Effect {
	p = p.withDefaults()
	c := &step{p: p, tx: p.Texts, s: s, t: now.Unix(), r: r}
	profile, conv := s.profileID, s.conversationID
	switch e := ev.(type) {
	case Inbound:
		c.inbound(e)
	case ProfilesFound:
		c.profilesFound(e)
	case LookupFailed:
		c.lookupFailed()
	case SetStatus:
		c.setStatus(e)
	case SetAI:
		c.setAI(e)
	case SendRequest:
		c.sendRequest(e)
	case OptOut:
		c.optOut()
	case DeliveryStatus:
		c.deliveryStatus(e)
	case RememberResult:
		c.rememberResult(e)
	case SetMemory:
		s.memory = cloneSlice(e.Memory)
	case Forget:
		// Erasure: nothing of the customer stays.
		*s = State{}
	case Expire:
		before := e.IdleBefore.Unix()
		if !e.DisposableIdleBefore.IsZero() && s.Disposable() {
			before = max(before, e.DisposableIdleBefore.Unix())
		}
		if s.lastInbound != 0 && s.lastInbound < before {
			*s = State{}
		} else {
			c.emit(Dropped{Reason: DropUnchanged})
		}
	default:
		c.emit(Dropped{Reason: DropInvalid})
	}
	if s.profileID != profile || s.conversationID != conv {
		// Another customer or a new conversation: the brain must not
		// carry history or a pending action across.
		s.memory = nil
	}
	return c.out
}

// step is one application of an event: the inputs and the effects so far.
type step struct {
	p   Policy
	tx  *Texts
	s   *State
	t   int64 // now, unix seconds
	r   Rand
	out []Effect
}

func (c *step) emit(e Effect)     { c.out = append(c.out, e) }
func (c *step) reply(text string) { c.emit(Reply{Text: text}) }

func (c *step) auth(name AuthName, profileID string, attempt int) {
	c.emit(AuthEvent{Name: name, ProfileID: profileID, Attempt: attempt})
}

// askGeneral hands a help request made during sign-in to the brain,
// without any identity.
func (c *step) askGeneral(text string) {
	c.emit(AskBrain{Text: text})
}

// inbound handles a customer message: dedupe, conversation bookkeeping,
// activity and window, then the sign-in flow or the brain.
func (c *step) inbound(e Inbound) {
	s := c.s
	if e.ProviderID != "" {
		h, ttl := HashID(e.ProviderID), secs(c.p.DedupeTTL)
		if s.hasSeen(h, c.t, ttl) {
			c.emit(Dropped{Reason: DropDuplicate, ProviderID: e.ProviderID})
			return
		}
		s.pruneSeen(c.t, ttl)
		s.remember(h, c.t, c.p.DedupeMax)
	}
	if e.Group {
		// Said in a group, not to the business: answering it privately
		// would answer the wrong conversation.
		c.emit(LogInbound{ProviderID: e.ProviderID, Group: true})
		return
	}
	// Writing again is the customer opting back in (a redelivery of a
	// message from before the opt-out, dropped above, is not).
	s.optedOut = false
	s.number = e.Number
	c.openConversation()

	// Judge the session against the previous message's deadlines before
	// this message moves them.
	wasAuth := s.authenticatedAt(c.t)
	idle := c.t >= s.idleUntil
	// A clock that steps back (a session moved to a node whose clock is a
	// little behind) must not pull deadlines earlier.
	s.lastInbound = max(s.lastInbound, c.t)
	s.idleUntil = s.lastInbound + secs(c.p.IdleTimeout)
	s.windowUntil = s.lastInbound + secs(c.p.WindowTTL)

	_, isCode := parseCode(e.Text)
	c.emit(LogInbound{ProviderID: e.ProviderID, Human: s.aiOff, Code: isCode && s.phase == PhaseAwaitingCode})
	if s.aiOff || c.p.Quiet {
		// A human is answering, or the number is switched off: no
		// automatic reply of any kind, and the sign-in flow stands still
		// (no lookup, no code checks) so that nothing happens behind the
		// operator's back.
		return
	}

	text := normalize(e.Text)
	switch s.phase {
	case PhaseNew:
		// Answer a help request too, but sign-in starts regardless.
		if isHelp(text) {
			c.askGeneral(e.Text)
		}
		c.startLookup()
	case PhaseAwaitingLookup:
		if isHelp(text) {
			c.askGeneral(e.Text)
		}
		// The answer normally comes within the same second; only a lookup
		// the shell lost is asked again, so bursts of messages do not
		// multiply backend calls.
		if c.t >= s.phaseAt+secs(c.p.LookupTimeout) {
			c.startLookup()
		}
	case PhaseChoosingProfile:
		if idle {
			// The list may be stale after hours: look it up again.
			c.startLookup()
			return
		}
		c.choose(e.Text, text)
	case PhaseAwaitingCode:
		c.awaitingCode(e.Text, text, idle)
	case PhaseAuthenticated:
		if !wasAuth {
			c.auth(AuthSessionExpired, s.profileID, 0)
			c.reply(c.tx.SessionExpired)
			c.startLookup()
			return
		}
		c.emit(AskBrain{Text: e.Text, Authenticated: true, ProfileID: s.profileID, FirstName: s.firstName})
	}
}

// openConversation makes sure the message has an active conversation to
// go into: the first one, a new one after a closed one, or the archived
// one reopened.
func (c *step) openConversation() {
	s := c.s
	switch {
	case s.conversationID == "":
		s.conversationID = c.r.mustConversationID()
		s.status = StatusActive
		c.emit(ConversationStarted{ID: s.conversationID})
	case s.status == StatusClosed:
		prev := s.conversationID
		s.conversationID = c.r.mustConversationID()
		s.status = StatusActive
		// Turning AI off is an operator's decision about one case; once
		// that case is closed, a new conversation starts with the
		// assistant answering again.
		s.aiOff = false
		c.emit(ConversationStarted{ID: s.conversationID, PreviousID: prev})
	case s.status == StatusArchived:
		s.status = StatusActive
		c.emit(StatusChanged{ConversationID: s.conversationID, From: StatusArchived, To: StatusActive, ByCustomer: true})
	}
}

func (c *step) setStatus(e SetStatus) {
	s := c.s
	switch {
	case !e.Status.valid():
		c.emit(Dropped{Reason: DropInvalid})
	case s.conversationID == "":
		c.emit(Dropped{Reason: DropNoConversation})
	case s.status == StatusClosed:
		c.emit(Dropped{Reason: DropClosed})
	case s.status == e.Status:
		c.emit(Dropped{Reason: DropUnchanged})
	default:
		from := s.status
		s.status = e.Status
		c.emit(StatusChanged{ConversationID: s.conversationID, From: from, To: e.Status})
	}
}

func (c *step) setAI(e SetAI) {
	if c.s.aiOff == !e.Enabled {
		c.emit(Dropped{Reason: DropUnchanged})
		return
	}
	c.s.aiOff = !e.Enabled
	c.emit(AIChanged(e))
}

// sendRequest applies WhatsApp's rule: free text only inside the window,
// templates always; nothing at all to a customer who unsubscribed.
func (c *step) sendRequest(e SendRequest) {
	d := SendDecision{Template: e.Template, Text: e.Text, WindowUntil: unixOrZero(c.s.windowUntil)}
	switch {
	case c.s.optedOut:
		d.Reason = SendOptedOut
	case e.Template:
		d.Allowed, d.Reason = true, SendTemplate
	case c.t < c.s.windowUntil:
		d.Allowed, d.Reason = true, SendWindowOpen
	default:
		d.Reason = SendOutsideWindow
	}
	c.emit(d)
}

// optOut records that the customer unsubscribed.
func (c *step) optOut() {
	if c.s.optedOut {
		c.emit(Dropped{Reason: DropUnchanged})
		return
	}
	c.s.optedOut = true
}
