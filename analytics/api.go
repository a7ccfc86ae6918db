package analytics

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/parleyhq/parley/api"
	"github.com/parleyhq/parley/apikeys"
	"github.com/parleyhq/parley/channels"
	"github.com/parleyhq/parley/internal/e164"
	chsink "github.com/parleyhq/parley/sinks/clickhouse"
	"github.com/parleyhq/parley/tenants"
)

// Options configure the API.
type Options struct {
	Store   *chsink.Store
	Tenants *tenants.Registry
	Keys    *apikeys.Set
	// ForgetSession, when set, drops the customer's live session (state
	// in memory and in the changelog): the first step of Store.Forget. An
	// error stops the erasure with 503; nothing is deleted, and the
	// request can be repeated.
	ForgetSession func(tenant, phone string) error
	// DefaultRange is the range when a request gives no from. Default
	// 7 days before to.
	DefaultRange time.Duration
	// QueryTimeout bounds one request's queries. Default 30s; an erasure
	// gets ten times as long (mutations rewrite parts).
	QueryTimeout time.Duration
	// MaxRange bounds a request's from..to (default 400 days): a range of
	// decades over raw rows is a denial of service, not a question.
	MaxRange time.Duration
	// MaxQueries bounds the analytics requests querying ClickHouse at
	// once on this node (default 16); one more waits up to QueueWait
	// (default 5s) for a place, then gets 503 busy. ClickHouse is shared
	// with the sink, which must keep up.
	MaxQueries int
	QueueWait  time.Duration
	Now        func() time.Time
	Logger     *slog.Logger
	// FetchMedia downloads a customer's file by its reference in
	// messages.media, with the tenant's provider credentials (the engine
	// dispatches to Meta or Twilio); ErrMediaNotFound when the provider
	// does not have it. Nil: the media endpoint answers 404.
	FetchMedia func(ctx context.Context, t *tenants.Tenant, ref string) (body io.ReadCloser, contentType string, size int64, err error)
}

// ErrMediaNotFound is what FetchMedia returns for a file the provider does
// not have (any more): the providers' own (channels.Registry.FetchMedia
// can be FetchMedia as it is).
var ErrMediaNotFound = channels.ErrMediaNotFound

// API is the analytics JSON API: the handlers api.Routes mounts under
// /api/v1 (the router has authorized the key and found the tenant):
//
//	Tenants     GET    tenants                                tenants the key may see
//	Summary     GET    tenants/{tenant}/analytics/summary     ?from=&to=
//	Timeseries  GET    tenants/{tenant}/analytics/timeseries  ?metric=&step=hour|day&from=&to=
//	PowerUsers  GET    tenants/{tenant}/analytics/power-users ?from=&to=&limit=
//	Messages    GET    tenants/{tenant}/messages              ?phone=&from=&to=&limit=
//	Media       GET    tenants/{tenant}/media                 ?ref= a file a customer sent (admin, agent)
//	Forget      DELETE tenants/{tenant}/customers/{phone}     GDPR erasure (admin)
//
// from and to are RFC 3339, taken to the second; to defaults to now, from
// to 7 days before to.
type API struct {
	o       Options
	q       *Querier
	queries chan struct{}
}

var _ api.Analytics = (*API)(nil)

// NewAPI creates the API.
func NewAPI(o Options) *API {
	if o.DefaultRange <= 0 {
		o.DefaultRange = 7 * 24 * time.Hour
	}
	if o.QueryTimeout <= 0 {
		o.QueryTimeout = 30 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Keys == nil {
		o.Keys, _ = apikeys.New(nil)
	}
	if o.MaxRange <= 0 {
		o.MaxRange = 400 * 24 * time.Hour
	}
	if o.MaxQueries <= 0 {
		o.MaxQueries = 16
	}
	if o.QueueWait <= 0 {
		o.QueueWait = 5 * time.Second
	}
	return &API{o: o, q: NewQuerier(o.Store, o.Logger), queries: make(chan struct{}, o.MaxQueries)}
}

// Querier is the API's querier.
func (a *API) Querier() *Querier { return a.q }

// TenantInfo is an entry of the tenant list.
type TenantInfo struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// Tenants lists the tenants the key may see.
func (a *API) Tenants(ctx *fasthttp.RequestCtx, c api.Call) {
	key := c.Key
	list := []TenantInfo{}
	for _, t := range a.o.Tenants.All() {
		if key.Reaches(t.ID) {
			list = append(list, TenantInfo{ID: t.ID, Name: t.Name})
		}
	}
	// now lets the dashboard compute "the last 7 days" by the server's
	// clock rather than the browser's, which may be off.
	writeJSON(ctx, map[string]any{"tenants": list, "role": key.Role, "now": a.o.Now().UTC().Truncate(time.Second)})
}

// rangeOf reads from and to, truncated to the second. to defaults to now,
// from to DefaultRange before to.
func (a *API) rangeOf(ctx *fasthttp.RequestCtx) (chsink.Range, bool) {
	args := ctx.QueryArgs()
	parse := func(name string, def time.Time) (time.Time, bool) {
		v := string(args.Peek(name))
		if v == "" {
			return def, true
		}
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			apikeys.WriteError(ctx, fasthttp.StatusBadRequest, "invalid_"+name, name+" must be RFC 3339, e.g. 2024-03-01T00:00:00Z")
			return time.Time{}, false
		}
		return t.UTC().Truncate(time.Second), true
	}
	to, ok := parse("to", a.o.Now().UTC().Truncate(time.Second))
	if !ok {
		return chsink.Range{}, false
	}
	from, ok := parse("from", to.Add(-a.o.DefaultRange))
	if !ok {
		return chsink.Range{}, false
	}
	if to.Sub(from) > a.o.MaxRange {
		apikeys.WriteError(ctx, fasthttp.StatusBadRequest, "range_too_long", fmt.Sprintf("from..to may span at most %d days", int(a.o.MaxRange.Hours()/24)))
		return chsink.Range{}, false
	}
	if !from.Before(to) {
		apikeys.WriteError(ctx, fasthttp.StatusBadRequest, "invalid_range", "from must be before to")
		return chsink.Range{}, false
	}
	if from.Unix() < 0 || to.Unix() > 1<<32-1 {
		apikeys.WriteError(ctx, fasthttp.StatusBadRequest, "invalid_range", "from and to must lie between 1970 and 2106")
		return chsink.Range{}, false
	}
	return chsink.Range{From: from, To: to}, true
}

// limitOf reads limit: default def, 1 to max.
func limitOf(ctx *fasthttp.RequestCtx, def, max int) (int, bool) {
	v := string(ctx.QueryArgs().Peek("limit"))
	if v == "" {
		return def, true
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > max {
		apikeys.WriteError(ctx, fasthttp.StatusBadRequest, "invalid_limit", "limit must be 1 to "+strconv.Itoa(max))
		return 0, false
	}
	return n, true
}

// queryContext takes one of the MaxQueries places and bounds the
// request's queries by d; cancel gives the place back. Without a place
// within QueueWait it answers 503 busy and returns ok false.
func (a *API) queryContext(ctx *fasthttp.RequestCtx, d time.Duration) (_ context.Context, cancel context.CancelFunc, ok bool) {
	wait := time.NewTimer(a.o.QueueWait)
	defer wait.Stop()
	select {
	case a.queries <- struct{}{}:
	case <-wait.C:
		ctx.Response.Header.Set("Retry-After", "1")
		apikeys.WriteError(ctx, fasthttp.StatusServiceUnavailable, "busy", "too many analytics queries at once; retry shortly")
		return nil, nil, false
	}
	qctx, stop := context.WithTimeout(context.Background(), d)
	return qctx, func() { stop(); <-a.queries }, true
}

// fail answers a query error: 504 for a timeout, 500 otherwise. The
// details go to the log, not to the client.
func (a *API) fail(ctx *fasthttp.RequestCtx, what string, err error) {
	a.o.Logger.Error("analytics request failed", "what", what, "path", string(ctx.Path()), "err", err)
	if errors.Is(err, context.DeadlineExceeded) {
		apikeys.WriteError(ctx, fasthttp.StatusGatewayTimeout, "timeout", what+" took too long")
		return
	}
	apikeys.WriteError(ctx, fasthttp.StatusInternalServerError, "internal", what+" failed")
}

// Summary serves the tenant's figures (Querier.Summary).
func (a *API) Summary(ctx *fasthttp.RequestCtx, c api.Call) {
	t := c.Tenant
	r, ok := a.rangeOf(ctx)
	if !ok {
		return
	}
	qctx, cancel, ok := a.queryContext(ctx, a.o.QueryTimeout)
	if !ok {
		return
	}
	defer cancel()
	s, err := a.q.Summary(qctx, t.ID, r, RulesOf(t))
	if err != nil {
		a.fail(ctx, "summary", err)
		return
	}
	writeJSON(ctx, s)
}

// Timeseries serves one metric over time (Querier.Timeseries).
func (a *API) Timeseries(ctx *fasthttp.RequestCtx, c api.Call) {
	t := c.Tenant
	r, ok := a.rangeOf(ctx)
	if !ok {
		return
	}
	args := ctx.QueryArgs()
	metric := string(args.Peek("metric"))
	known := false
	for _, m := range Metrics {
		known = known || m == metric
	}
	if !known {
		apikeys.WriteError(ctx, fasthttp.StatusBadRequest, "invalid_metric", "metric must be one of "+strings.Join(Metrics, ", "))
		return
	}
	step := chsink.Step(args.Peek("step"))
	if step == "" {
		step = chsink.StepHour
		if r.To.Sub(r.From) > 14*24*time.Hour {
			step = chsink.StepDay
		}
	}
	if step != chsink.StepHour && step != chsink.StepDay {
		apikeys.WriteError(ctx, fasthttp.StatusBadRequest, "invalid_step", "step must be hour or day")
		return
	}
	if n := len(Buckets(r, step)); n > MaxPoints {
		apikeys.WriteError(ctx, fasthttp.StatusBadRequest, "too_many_points", "the range has "+strconv.Itoa(n)+" "+string(step)+"s; at most "+strconv.Itoa(MaxPoints))
		return
	}
	qctx, cancel, ok := a.queryContext(ctx, a.o.QueryTimeout)
	if !ok {
		return
	}
	defer cancel()
	s, err := a.q.Timeseries(qctx, t.ID, metric, step, r, RulesOf(t))
	if err != nil {
		a.fail(ctx, "timeseries", err)
		return
	}
	writeJSON(ctx, s)
}

// PowerUsers serves the most active customers, their numbers masked but for admins.
func (a *API) PowerUsers(ctx *fasthttp.RequestCtx, c api.Call) {
	key := c.Key
	t := c.Tenant
	r, ok := a.rangeOf(ctx)
	if !ok {
		return
	}
	limit, ok := limitOf(ctx, 20, 500)
	if !ok {
		return
	}
	qctx, cancel, ok := a.queryContext(ctx, a.o.QueryTimeout)
	if !ok {
		return
	}
	defer cancel()
	users, err := a.q.PowerUsers(qctx, t.ID, r, limit)
	if err != nil {
		a.fail(ctx, "power users", err)
		return
	}
	// Customers' numbers are for admins: the others see the last four
	// digits, enough to tell customers apart.
	if !key.IsAdmin() {
		for i := range users {
			users[i].Phone = MaskPhone(users[i].Phone)
		}
	}
	writeJSON(ctx, map[string]any{"tenant": t.ID, "from": r.From, "to": r.To, "masked": !key.IsAdmin(), "users": users})
}

// Messages serves the conversation log, the numbers masked for analysts.
func (a *API) Messages(ctx *fasthttp.RequestCtx, c api.Call) {
	key := c.Key
	t := c.Tenant
	r, ok := a.rangeOf(ctx)
	if !ok {
		return
	}
	limit, ok := limitOf(ctx, 50, 500)
	if !ok {
		return
	}
	phone := strings.TrimSpace(string(ctx.QueryArgs().Peek("phone")))
	if phone != "" && !e164.Valid(phone) {
		apikeys.WriteError(ctx, fasthttp.StatusBadRequest, "invalid_phone", chsink.ErrInvalidPhone.Error())
		return
	}
	qctx, cancel, ok := a.queryContext(ctx, a.o.QueryTimeout)
	if !ok {
		return
	}
	defer cancel()
	entries, err := a.q.Messages(qctx, t.ID, chsink.MessageFilter{Range: r, Phone: phone, Limit: limit})
	if err != nil {
		a.fail(ctx, "messages", err)
		return
	}
	// Analysts read the log without the numbers; agents and admins talk
	// to the customers and see them.
	masked := key.Role == apikeys.RoleAnalyst
	if masked {
		for i := range entries {
			entries[i].Phone = MaskPhone(entries[i].Phone)
		}
	}
	writeJSON(ctx, map[string]any{"tenant": t.ID, "from": r.From, "to": r.To, "limit": limit, "masked": masked, "messages": entries})
}

// Forget is the GDPR erasure of the customer {phone} (Store.Forget).
func (a *API) Forget(ctx *fasthttp.RequestCtx, c api.Call) {
	key := c.Key
	t := c.Tenant
	phone, err := url.PathUnescape(c.Phone)
	if err != nil || !e164.Valid(phone) {
		apikeys.WriteError(ctx, fasthttp.StatusBadRequest, "invalid_phone", chsink.ErrInvalidPhone.Error())
		return
	}
	var forgetSession func(context.Context) error
	if a.o.ForgetSession != nil {
		forgetSession = func(context.Context) error { return a.o.ForgetSession(t.ID, phone) }
	}
	qctx, cancel, ok := a.queryContext(ctx, 10*a.o.QueryTimeout)
	if !ok {
		return
	}
	defer cancel()
	e, err := a.o.Store.Forget(qctx, t.ID, phone, "api:"+key.Label(), forgetSession)
	if errors.Is(err, chsink.ErrSessionKept) {
		a.o.Logger.Error("forget: live session", "tenant", t.ID, "err", err)
		apikeys.WriteError(ctx, fasthttp.StatusServiceUnavailable, "session_unavailable", "the customer's live session could not be removed; nothing was deleted, try again")
		return
	}
	if err != nil {
		a.fail(ctx, "forget", err)
		return
	}
	a.o.Logger.Info("customer forgotten", "tenant", t.ID, "phone_hash", e.PhoneHash, "actor", key.Label(), "audit_id", e.AuditID)
	writeJSON(ctx, e)
}

func writeJSON(ctx *fasthttp.RequestCtx, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		apikeys.WriteError(ctx, fasthttp.StatusInternalServerError, "internal", "encoding failed")
		return
	}
	ctx.Response.Header.Set("Cache-Control", "no-store")
	ctx.SetContentType("application/json; charset=utf-8")
	ctx.SetBody(b)
}
