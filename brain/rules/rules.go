// Package rules is the deterministic, offline brain: intent and slot
// extraction on the customer's words (English and Spanish, typos allowed),
// the same tools as the language-model brain, and replies phrased from the
// tools' results. It is the development default and the fallback when a
// language model is unreachable, so it must answer usefully on its own.
package rules

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/parleyhq/parley/backend"
	"github.com/parleyhq/parley/brain"
	"github.com/parleyhq/parley/brain/internal/nlp"
	"github.com/parleyhq/parley/brain/tools"
)

// Brain is the rules brain. It keeps nothing between messages (the
// conversation's memory travels in brain.State) and is safe for concurrent
// use.
type Brain struct {
	kit *tools.Kit
	now func() time.Time
}

// Option configures a Brain.
type Option func(*Brain)

// WithBackend answers from the tenant's business system. Without one,
// every question that needs it gets the "can't reach it right now" reply.
func WithBackend(b backend.Backend) Option { return func(r *Brain) { r.kit.Backend = b } }

// WithLocation sets the business's time zone (default UTC): "today" and
// the times shown are the business's.
func WithLocation(loc *time.Location) Option { return func(r *Brain) { r.kit.Location = loc } }

// WithClock replaces the wall clock, for tests; Request.Now, when set,
// still wins.
func WithClock(now func() time.Time) Option { return func(r *Brain) { r.now = now } }

// WithDashboardURL is where customers book (offered when they ask to).
func WithDashboardURL(url string) Option { return func(r *Brain) { r.kit.DashboardURL = url } }

// WithKit uses an existing tool kit (its backend, time zone, dashboard).
func WithKit(k *tools.Kit) Option { return func(r *Brain) { r.kit = k } }

// New returns the rules brain.
func New(opts ...Option) *Brain {
	b := &Brain{kit: &tools.Kit{}, now: time.Now}
	for _, o := range opts {
		o(b)
	}
	if b.kit.Backend == nil {
		b.kit.Backend = unreachable{}
	}
	return b
}

// Kit is the brain's tool kit, for a language-model brain that falls back
// to this one and must run tools against the same backend.
func (b *Brain) Kit() *tools.Kit { return b.kit }

// maxNotUnderstood is how many misunderstood messages in a row go to a
// person.
const maxNotUnderstood = 3

// turn is one answer in the making.
type turn struct {
	ctx    context.Context
	req    brain.Request
	words  []string
	now    time.Time
	caller tools.Caller
	say    speaker
	st     brain.State
	ans    brain.Answer
	kit    *tools.Kit
	list   []backend.Service
	listed bool
}

// Answer implements brain.Brain.
func (b *Brain) Answer(ctx context.Context, r brain.Request) (brain.Answer, error) {
	t := b.start(ctx, r)
	b.respond(t)
	return t.finish(), nil
}

func (b *Brain) start(ctx context.Context, r brain.Request) *turn {
	now := r.Now
	if now.IsZero() {
		now = b.now()
	}
	if b.kit.Location != nil {
		now = now.In(b.kit.Location)
	}
	words := nlp.Words(r.Text)
	st := r.State
	lang := st.Language
	if lang == "" {
		var sure bool
		if lang, sure = detect(words); sure {
			st.Language = lang
		}
	}
	first := ""
	if r.Authenticated {
		first = r.FirstName
	}
	t := &turn{ctx: ctx, req: r, words: words, now: now, st: st, kit: b.kit,
		say: speaker{es: lang == Spanish, name: first, today: now, business: r.TenantName, dashboard: b.kit.DashboardURL}}
	t.caller = tools.Caller{Authenticated: r.Authenticated, ProfileID: r.ProfileID, FirstName: first, Now: now}
	if st.Pending.ValidFor(r.ProfileID, now) && r.Authenticated {
		t.caller.Pending = st.Pending
	} else {
		// Expired, or of another profile: never confirmable.
		t.st.Pending = nil
	}
	return t
}

// respond decides and phrases the reply.
func (b *Brain) respond(t *turn) {
	if t.caller.Pending != nil {
		switch yesNo(t.words) {
		case ConfirmYes:
			res := b.kit.Cancel(t.ctx, t.caller, tools.CancelArgs{Confirm: true})
			t.record(res)
			t.reply(tools.CancelBooking, b.phraseCancel(t, res, time.Time{}))
			return
		case ConfirmNo:
			t.st.Pending = nil
			t.reply(tools.CancelBooking, t.say.kept())
			return
		}
		// Anything else moves on: the proposal lapses rather than being
		// confirmed by a later, unrelated "yes".
		t.st.Pending = nil
	}
	when := nlp.ParseWhen(t.req.Text, t.words, t.now)
	intent := classify(t.words, false, when.HasDate())
	mentions := false
	if intent == IntentUnknown || intent == IntentBookingRequest {
		// Only these depend on whether a service is named; asking the
		// backend for its services is saved for them.
		mentions = t.mentionsService()
		intent = classify(t.words, mentions, when.HasDate())
	}
	if intent != IntentUnknown {
		t.st.NotUnderstood = 0
	}
	switch intent {
	case IntentHuman:
		b.handoff(t, brain.HandoffRequested)
	case IntentCancel:
		// The whole message goes as the service: it only narrows
		// several bookings to those whose service it names ("cancel my
		// premium clean").
		args := tools.CancelArgs{Service: t.req.Text}
		if when.HasDate() && !when.Week {
			args.Date = when.Date.Format("2006-01-02")
		}
		res := b.kit.Cancel(t.ctx, t.caller, args)
		t.record(res)
		t.reply(intent, b.phraseCancel(t, res, when.Date))
	case IntentSubscription:
		res := b.kit.Subscription(t.ctx, t.caller)
		t.record(res)
		switch {
		case res.OK:
			quota := nlp.HasAny(t.words, leftWords...)
			t.reply(intent, t.say.subscription(res.Data.(tools.SubscriptionData), quota))
		case res.Code == tools.ErrNotFound:
			t.reply(intent, t.say.noSubscription())
		default:
			t.reply(intent, t.say.failure(res))
		}
	case IntentBookingRequest:
		avail := ""
		if when.HasDate() || mentions {
			res := b.kit.Availability(t.ctx, t.caller, b.availabilityArgs(t, when))
			t.record(res)
			if res.OK {
				avail = t.say.availability(res.Data.(tools.AvailabilityData), false)
			}
		}
		t.reply(intent, t.say.bookingRequest(avail))
	case IntentAvailability:
		res := b.kit.Availability(t.ctx, t.caller, b.availabilityArgs(t, when))
		t.record(res)
		if !res.OK {
			t.reply(intent, t.say.failure(res))
			return
		}
		t.reply(intent, t.say.availability(res.Data.(tools.AvailabilityData), true))
	case IntentBookings:
		args := tools.BookingsArgs{}
		if nlp.HasAny(t.words, "past", "previous", "history", "historial", "pasadas", "anteriores", "last", "ultima", "ultimas") {
			args.When = "past"
		}
		if when.HasDate() && !when.Week {
			// A week is not a day: list them all rather than only its
			// Monday's.
			args.Date = when.Date.Format("2006-01-02")
		}
		res := b.kit.Bookings(t.ctx, t.caller, args)
		t.record(res)
		if !res.OK {
			t.reply(intent, t.say.failure(res))
			return
		}
		next := nlp.HasExact(t.words, "next", "proxima", "proximo", "siguiente")
		t.reply(intent, t.say.bookings(res.Data.(tools.BookingsData), next))
	case IntentServices:
		res := b.kit.Services(t.ctx, t.caller)
		t.record(res)
		if !res.OK {
			t.reply(intent, t.say.failure(res))
			return
		}
		d := res.Data.(tools.ServicesData)
		var only []string
		if list := servicesOf(d); len(list) > 0 {
			if m, specific := tools.MatchServices(list, t.req.Text); specific {
				for _, s := range m {
					only = append(only, s.ID)
				}
			}
		}
		t.reply(intent, t.say.services(d, only))
	case IntentAccount:
		res := b.kit.Account(t.ctx, t.caller)
		t.record(res)
		if !res.OK {
			t.reply(intent, t.say.failure(res))
			return
		}
		t.reply(intent, t.say.account(res.Data.(tools.AccountData)))
	case IntentHelp:
		t.record(b.kit.Help(t.ctx, t.caller))
		t.reply(intent, t.say.help())
	case IntentGreeting:
		t.reply(intent, t.say.greeting())
	case IntentSmallTalk:
		t.reply(intent, t.say.smallTalk(t.words))
	default:
		t.st.NotUnderstood++
		if t.st.NotUnderstood >= maxNotUnderstood {
			b.handoff(t, brain.HandoffNotUnderstood)
			return
		}
		t.reply(IntentUnknown, t.say.notUnderstood())
	}
}

// services lists the business's services once per answer.
func (t *turn) services() []backend.Service {
	if !t.listed {
		t.listed = true
		t.list, _ = t.kit.Backend.Services(t.ctx)
	}
	return t.list
}

// mentionsService reports whether the message names one of the business's
// services, or services in general ("a clean").
func (t *turn) mentionsService() bool {
	if nlp.HasAny(t.words, "clean", "cleaning", "limpieza") {
		return true
	}
	_, specific := tools.MatchServices(t.services(), t.req.Text)
	return specific && len(t.services()) > 0
}

// availabilityArgs are the slots of an availability question: the service
// named (all when none or generic), the day and the part of the day.
func (b *Brain) availabilityArgs(t *turn, when nlp.When) tools.AvailabilityArgs {
	a := tools.AvailabilityArgs{PartOfDay: when.PartOfDay}
	if when.HasDate() {
		a.Date = when.Date.Format("2006-01-02")
	}
	if m, specific := tools.MatchServices(t.services(), t.req.Text); specific && len(m) == 1 {
		a.Service = m[0].ID
	}
	return a
}

func (b *Brain) phraseCancel(t *turn, res tools.Result, day time.Time) string {
	if res.SetPending != nil {
		t.st.Pending = res.SetPending
	}
	if res.ClearPending {
		t.st.Pending = nil
	}
	if !res.OK {
		return t.say.failure(res)
	}
	return t.say.cancel(res.Data.(tools.CancelData), day)
}

// handoff passes the conversation to a person with a summary of the last
// messages.
func (b *Brain) handoff(t *turn, reason string) {
	var why string
	if reason == brain.HandoffNotUnderstood {
		why = "The assistant did not understand " + strconv.Itoa(maxNotUnderstood) + " messages in a row."
	} else {
		why = "The customer asked for a person."
	}
	res := b.kit.Handoff(t.ctx, t.caller, tools.HandoffArgs{Summary: why + recent(t.st.History, t.req.Text)})
	t.record(res)
	h := *res.Handoff
	h.Reason = reason
	t.ans.Handoff = &h
	t.st.NotUnderstood = 0
	t.st.Pending = nil
	t.reply(IntentHuman, t.say.handoff(reason))
}

// recent quotes the customer's last messages for the agent.
func recent(h []brain.Turn, current string) string {
	var quotes []string
	for i := len(h) - 1; i >= 0 && len(quotes) < 2; i-- {
		if h[i].Role == brain.RoleCustomer {
			quotes = append([]string{h[i].Text}, quotes...)
		}
	}
	quotes = append(quotes, current)
	for i, q := range quotes {
		quotes[i] = "\"" + brain.Limit(strings.TrimSpace(q), 120) + "\""
	}
	return " Last messages: " + strings.Join(quotes, " / ")
}

func (t *turn) record(r tools.Result) { t.ans.ToolCalls = append(t.ans.ToolCalls, r.Call) }

func (t *turn) reply(queryType, text string) {
	t.ans.QueryType = queryType
	t.ans.Text = text
}

func (t *turn) finish() brain.Answer {
	t.ans.Text = brain.Finish(t.ans.Text)
	t.st.History = brain.Remember(t.st.History, t.req.Text, t.ans.Text)
	t.ans.State = t.st
	return t.ans
}

func servicesOf(d tools.ServicesData) []backend.Service {
	out := make([]backend.Service, len(d.Services))
	for i, s := range d.Services {
		out[i] = backend.Service{ID: s.ID, Name: s.Name}
	}
	return out
}

// Confirmation is how a message answers a confirmation question.
type Confirmation int

// The answers to a confirmation question.
const (
	// ConfirmOther is neither: the proposal lapses.
	ConfirmOther Confirmation = iota
	ConfirmYes
	ConfirmNo
)

// ReadConfirmation reads the customer's reply to a confirmation question
// ("shall I cancel ...?"). Every brain decides confirmation with it, in
// code: a language model may phrase the answer, but whether the customer
// said yes is never the model's call.
func ReadConfirmation(text string) Confirmation { return yesNo(nlp.Words(text)) }

// yesNo reads a reply to a confirmation question. A "no" first wins ("no,
// keep it"). A yes must be a plain yes ("yes", "yes please cancel it", "sí,
// cancélala"): a message that asks for something else ("ok, and my
// subscription?") is not a confirmation, and the proposal lapses.
func yesNo(words []string) Confirmation {
	if len(words) == 0 {
		return ConfirmOther
	}
	if nlp.HasExact(words[:1], noWords...) {
		return ConfirmNo
	}
	switch classify(words, false, false) {
	case IntentUnknown, IntentSmallTalk, IntentCancel, IntentGreeting:
	default:
		return ConfirmOther
	}
	if nlp.HasExact(words[:1], yesWords...) || hasPhrase(words, yesPhrases) {
		return ConfirmYes
	}
	if len(words) > 6 {
		return ConfirmOther
	}
	yes := nlp.HasExact(words, yesWords...) ||
		len(words) <= 3 && nlp.HasAny(words, cancelWords...) && !nlp.HasExact(words, "other", "otra", "otro", "different")
	no := nlp.HasExact(words, noWords...)
	switch {
	case yes && !no:
		return ConfirmYes
	case no && !yes:
		return ConfirmNo
	}
	return ConfirmOther
}

// unreachable is the backend of a brain configured without one.
type unreachable struct{}

func (unreachable) ProfilesByPhone(context.Context, string) ([]backend.Profile, error) {
	return nil, backend.ErrUnavailable
}
func (unreachable) Services(context.Context) ([]backend.Service, error) {
	return nil, backend.ErrUnavailable
}
func (unreachable) Availability(context.Context, string, time.Time) ([]backend.Slot, error) {
	return nil, backend.ErrUnavailable
}
func (unreachable) Bookings(context.Context, string, backend.BookingFilter) ([]backend.Booking, error) {
	return nil, backend.ErrUnavailable
}
func (unreachable) CancelBooking(context.Context, string, string) (backend.CancelResult, error) {
	return backend.CancelResult{}, backend.ErrUnavailable
}
func (unreachable) Account(context.Context, string) (backend.Account, error) {
	return backend.Account{}, backend.ErrUnavailable
}
func (unreachable) Subscription(context.Context, string) (backend.Subscription, error) {
	return backend.Subscription{}, backend.ErrUnavailable
}
