package conversation

import "strings"

// startLookup (re)starts sign-in: forget any profile and code and ask the
// shell for the profiles of this number. It is always the last thing a
// step does, so LookupProfiles is always the last effect.
func (c *step) startLookup() {
	s := c.s
	s.clearProfile()
	s.clearCode()
	s.phase = PhaseAwaitingLookup
	s.phaseAt = c.t
	c.auth(AuthProfileLookup, "", 0)
	c.emit(LookupProfiles{})
}

// fail ends an unsuccessful sign-in; the next message starts over, so a
// customer whose account is fixed meanwhile gets in without help.
func (c *step) fail() {
	c.s.clearProfile()
	c.s.clearCode()
	c.s.phase = PhaseNew
}

func (c *step) profilesFound(e ProfilesFound) {
	s := c.s
	if s.phase != PhaseAwaitingLookup {
		// A late or repeated answer (the lookup was retried, or the
		// session restarted meanwhile) must not overwrite the flow.
		c.emit(Dropped{Reason: DropUnexpected})
		return
	}
	if s.aiOff {
		// Answering now would be an automatic reply behind the operator's
		// back; start over when AI is back on.
		s.phase = PhaseNew
		c.emit(Dropped{Reason: DropAIOff})
		return
	}
	ps := e.Profiles
	switch {
	case len(ps) == 0:
		c.fail()
		c.auth(AuthNoProfile, "", 0)
		c.reply(c.tx.NoProfile)
	case len(ps) == 1:
		c.selectProfile(ps[0].ID, ps[0].Name, ps[0].WhatsAppEnabled)
	case !anyEnabled(ps):
		// Asking which one is pointless when every answer leads to
		// "access disabled".
		c.fail()
		c.auth(AuthAccessDisabled, "", 0)
		c.reply(c.tx.AccessDisabled)
	default:
		ps = ps[:min(len(ps), maxCandidates)]
		s.candidates = make([]candidate, len(ps))
		for i, p := range ps {
			s.candidates[i] = candidate{id: p.ID, name: strings.TrimSpace(p.Name), maskedEmail: MaskEmail(p.Email), enabled: p.WhatsAppEnabled}
		}
		s.phase = PhaseChoosingProfile
		s.phaseAt = c.t
		c.auth(AuthProfileChoiceAsked, "", 0)
		c.reply(c.tx.ChooseProfile(c.profileList()))
	}
}

func anyEnabled(ps []Profile) bool {
	for _, p := range ps {
		if p.WhatsAppEnabled {
			return true
		}
	}
	return false
}

func (c *step) profileList() string {
	var b strings.Builder
	for i, cd := range c.s.candidates {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(c.tx.ProfileLine(i+1, cd.name, cd.maskedEmail))
	}
	return b.String()
}

func (c *step) lookupFailed() {
	s := c.s
	if s.phase != PhaseAwaitingLookup {
		c.emit(Dropped{Reason: DropUnexpected})
		return
	}
	s.phase = PhaseNew
	if s.aiOff {
		c.emit(Dropped{Reason: DropAIOff})
		return
	}
	c.reply(c.tx.LookupFailed)
}

// choose handles the answer to "which profile are you?".
func (c *step) choose(raw, text string) {
	if isHelp(text) {
		c.askGeneral(raw)
		return
	}
	i, ok := matchCandidate(c.s.candidates, raw)
	if !ok {
		c.auth(AuthProfileChoiceAsked, "", 0)
		c.reply(c.tx.ChooseAgain(c.profileList()))
		return
	}
	cd := c.s.candidates[i]
	c.selectProfile(cd.id, cd.name, cd.enabled)
}

// selectProfile takes the profile the customer is (the only one, or the
// chosen one) and sends it a code, unless WhatsApp access is disabled.
func (c *step) selectProfile(id, name string, enabled bool) {
	s := c.s
	if !enabled {
		c.fail()
		c.auth(AuthAccessDisabled, id, 0)
		c.reply(c.tx.AccessDisabled)
		return
	}
	s.candidates = nil
	s.profileID = id
	s.firstName = firstName(name)
	s.phase = PhaseAwaitingCode
	s.phaseAt = c.t
	c.auth(AuthProfileSelected, id, 0)
	c.sendCode()
}

// awaitingCode handles a message while a code is expected.
func (c *step) awaitingCode(raw, text string, idle bool) {
	s := c.s
	expiredNow := false
	if s.hasCode() && c.t >= s.codeSentAt+secs(c.p.CodeTTL) {
		c.auth(AuthCodeExpired, s.profileID, 0)
		s.clearCode()
		expiredNow = true
	}
	if idle {
		// The customer left mid sign-in hours ago; whatever they write now,
		// start over (which sends a fresh code if the limits allow).
		c.startLookup()
		return
	}
	switch code, isCode := parseCode(raw); {
	case isResend(text):
		c.sendCode()
	case isCode && expiredNow:
		c.reply(c.tx.CodeExpired)
	case isCode:
		c.tryCode(code)
	case isHelp(text):
		c.askGeneral(raw)
	case expiredNow:
		c.reply(c.tx.CodeExpired)
	case s.hasCode():
		c.reply(c.tx.AskForCode)
	default:
		c.reply(c.tx.NoActiveCode)
	}
}

// sendCode sends a new code for the chosen profile if the limits allow;
// a new code replaces the previous one and its attempts. When refused, a
// still-valid previous code stays usable.
func (c *step) sendCode() {
	s := c.s
	s.pruneCodesSent(c.t)
	if retryAt, limited := s.codeRetryAt(c.t, c.p); limited {
		c.auth(AuthCodeLimit, s.profileID, 0)
		c.reply(c.tx.CodeLimit(durationSecs(retryAt - c.t)))
		return
	}
	code := c.r.mustCode()
	s.codeSalt = c.r.Salt
	s.codeHash = hashCode(s.codeSalt, code)
	s.codeSentAt = c.t
	s.attempts = 0
	s.recordCodeSent(c.t)
	c.auth(AuthCodeSent, s.profileID, 0)
	c.emit(SendCode{Code: code, Text: c.tx.CodeMessage(code, c.p.CodeTTL)})
}

// tryCode checks an entered code against the current one.
func (c *step) tryCode(code string) {
	s := c.s
	if !s.hasCode() {
		// Locked, expired earlier, or refused by the limits: not an
		// attempt, there is nothing to attempt against.
		c.reply(c.tx.NoActiveCode)
		return
	}
	s.attempts++
	n := int(s.attempts)
	if checkCode(s.codeSalt, s.codeHash, code) {
		c.auth(AuthCodeVerified, s.profileID, n)
		s.clearCode()
		s.phase = PhaseAuthenticated
		s.phaseAt = c.t
		s.authAt = c.t
		s.authUntil = c.t + secs(c.p.SessionTTL)
		c.reply(c.tx.Verified(s.firstName))
		return
	}
	c.auth(AuthCodeFailed, s.profileID, n)
	if n >= c.p.MaxAttempts {
		c.auth(AuthCodeLocked, s.profileID, n)
		s.clearCode()
		c.reply(c.tx.CodeLocked)
		return
	}
	c.reply(c.tx.CodeWrong(c.p.MaxAttempts - n))
}
