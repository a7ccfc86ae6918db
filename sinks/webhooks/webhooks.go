// Package webhooks delivers Parley's events to tenants' own webhooks: a
// consumer group on parley.events that POSTs "message.received" and
// "conversation.started" as JSON, signed with HMAC-SHA256 of the body with
// the tenant's secret. Consumers that prefer Kafka read the same events
// from parley.events.
//
// One tenant's endpoint, dead or slow, holds up nobody else's:
//
//   - Queues: each tenant's events wait in queues of their own
//     (internal/keyed): Options.Lanes per tenant, a customer's events
//     always in the same lane, so they arrive in order; different
//     tenants, and different lanes of one, are delivered in parallel.
//   - Retries: a failed post (network, timeout, not 2xx) is retried with
//     backoff (internal/retry) up to Options.Attempts.
//   - Circuit breaker: after Options.BreakerThreshold failures in a row
//     the tenant's endpoint is left alone for a cool-down (growing with
//     each opening in a row, up to Options.BreakerMaxCoolDown); then one
//     request probes it, and its success closes the breaker. Meanwhile
//     the tenant's events wait in its queues.
//   - Bounds: a tenant holds at most Options.Backlog events; an event
//     beyond it, one older than Options.MaxAge, and one still failing
//     after Options.Attempts go to the dead-letter topic
//     (wire.TopicWebhookDeadLetters) with the reason in headers. When the
//     events held over all tenants reach three quarters of the consumer's
//     in-flight bound, new events of tenants whose breaker is open are
//     dead-lettered at once, so broken endpoints can never take the
//     consumer's last slots from the healthy ones.
//   - Offsets: an event is done (its offset may be committed) only once it
//     was delivered, dead-lettered (acks=all), or needs no delivery; a
//     crash replays what was neither, so an acknowledged event is never
//     lost. A replay can deliver an event twice: receivers deduplicate by
//     its id.
package webhooks

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/segmentio/kafka-go"
	"google.golang.org/protobuf/proto"

	"github.com/parleyhq/parley/bus"
	"github.com/parleyhq/parley/internal/keyed"
	"github.com/parleyhq/parley/internal/retry"
	"github.com/parleyhq/parley/tenants"
	"github.com/parleyhq/parley/wire"
)

// Group is the consumer group of the webhook notifier (named "triggers"
// since before the package was: the name holds its committed offsets).
const Group = "triggers"

// SignatureHeader carries "sha256=<hex HMAC-SHA256(secret, body)>".
const SignatureHeader = "X-Parley-Signature"

var (
	deliveries = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "parley_trigger_deliveries_total",
		Help: "Tenant webhook deliveries by result (ok, retried, failed: given up and dead-lettered).",
	}, []string{"result"})
	deadLetters = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "parley_trigger_dead_letters_total",
		Help: "Tenant webhook events written to the dead-letter topic, by reason (backlog_full, circuit_open, expired, retries_exhausted).",
	}, []string{"reason"})
	circuitsOpen = promauto.NewGauge(prometheus.GaugeOpts{
		Name: "parley_trigger_circuits_open",
		Help: "Tenant webhook endpoints whose circuit breaker is open (or half-open, probing).",
	})
	held = promauto.NewGauge(prometheus.GaugeOpts{
		Name: "parley_trigger_queued",
		Help: "Tenant webhook events queued or being delivered.",
	})
)

// Dead-letter reasons (header HeaderReason).
const (
	ReasonBacklogFull      = "backlog_full"      // the tenant held Options.Backlog events already
	ReasonCircuitOpen      = "circuit_open"      // its breaker was open while the consumer was nearly full
	ReasonExpired          = "expired"           // older than Options.MaxAge before it could be delivered
	ReasonRetriesExhausted = "retries_exhausted" // still failing after Options.Attempts
)

// Headers of a dead letter, named as the sender's (sinks/delivery) and
// the sessions' (wire).
// The record's key, value and headers are the event's; these are added.
const (
	HeaderReason    = wire.HeaderDeadLetterReason // one of the Reason constants
	HeaderError     = wire.HeaderDeadLetterError  // the last error, as text
	HeaderAttempts  = "parley-dlq-attempts"       // posts tried
	HeaderTopic     = "parley-dlq-topic"          // where the record was
	HeaderPartition = "parley-dlq-partition"      //
	HeaderOffset    = "parley-dlq-offset"         //
	HeaderTenant    = "parley-dlq-tenant"         //
	HeaderEventID   = "parley-dlq-event-id"       //
	HeaderFailedAt  = "parley-dlq-failed-at"      // RFC 3339, UTC
)

// Every label is exported from the start, at 0, so that a rate over it
// is 0 rather than no data before the first delivery.
func init() {
	for _, r := range []string{"ok", "retried", "failed"} {
		deliveries.WithLabelValues(r)
	}
	for _, r := range []string{ReasonBacklogFull, ReasonCircuitOpen, ReasonExpired, ReasonRetriesExhausted} {
		deadLetters.WithLabelValues(r)
	}
}

// Payload is what a tenant's webhook receives.
type Payload struct {
	ID             string    `json:"id"` // unique per event: receivers deduplicate by it
	Type           string    `json:"type"`
	Tenant         string    `json:"tenant"`
	Phone          string    `json:"phone"`
	ConversationID string    `json:"conversation_id,omitempty"`
	Text           string    `json:"text,omitempty"`
	QueryType      string    `json:"query_type,omitempty"`
	At             time.Time `json:"at"`
}

// Sign computes the signature header value for body.
func Sign(secret string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// Options configure a Notifier. Consumer.Brokers and Tenants are
// required; everything else has a default.
type Options struct {
	Consumer bus.ConsumerOptions
	Tenants  *tenants.Registry
	// HTTP posts; its timeout bounds one post (default 10s).
	HTTP *http.Client
	// Producer writes dead letters (acks=all). Nil: one of the
	// notifier's own on Consumer.Brokers.
	Producer Producer

	// Attempts bounds the posts of one event (default 6); after that it
	// is dead-lettered (retries_exhausted).
	Attempts int
	// Backoff is the first retry delay, doubled each time up to a minute,
	// ±20% jitter (default 1s).
	Backoff time.Duration

	// Lanes is how many queues of its own each tenant has (default 4): a
	// customer's events go through one, in order, and a tenant's
	// deliveries run up to Lanes at once.
	Lanes int
	// Concurrency bounds the events being delivered at once over all
	// tenants (default 512). A lane waiting out its breaker holds one.
	Concurrency int
	// Backlog bounds the events one tenant holds, queued or being
	// delivered (default 1000); an event beyond it is dead-lettered
	// (backlog_full).
	Backlog int
	// MaxAge is how old an event may be (since it was written to
	// parley.events) and still be delivered (default 1h); an older one is
	// dead-lettered (expired). It also bounds how long a dead endpoint
	// holds back the committed offsets of its partitions, and so what a
	// crash replays.
	MaxAge time.Duration

	// BreakerThreshold is how many failed posts in a row open a tenant's
	// breaker (default 5).
	BreakerThreshold int
	// BreakerCoolDown is how long an open breaker waits before a probe
	// (default 5s), doubled for each opening in a row up to
	// BreakerMaxCoolDown (default 5 minutes).
	BreakerCoolDown, BreakerMaxCoolDown time.Duration

	Logger *slog.Logger
}

// Producer writes records to Kafka (acks=all), as bus.Producer does.
type Producer interface {
	Produce(ctx context.Context, msgs ...kafka.Message) error
}

// Notifier posts events to tenants' webhooks.
type Notifier struct {
	o        Options
	consumer *bus.Consumer
	seed     maphash.Seed
	retry    retry.Backoff
	lanes    *keyed.Executor[*job]
	// held counts the events queued or being delivered, over all
	// tenants; shedAt is where open breakers' events start to be shed.
	held   atomic.Int64
	shedAt int64

	bmu      sync.Mutex
	breakers map[string]*breaker // by tenant and URL
	wg       sync.WaitGroup      // dead letters written off the consumer's goroutine
}

// New creates a notifier.
func New(o Options) *Notifier {
	o.Consumer.Topic = wire.TopicEvents
	if o.Consumer.Group == "" {
		o.Consumer.Group = Group
	}
	if o.Consumer.MaxInFlight == 0 {
		o.Consumer.MaxInFlight = 10000
	}
	if o.HTTP == nil {
		o.HTTP = &http.Client{Timeout: 10 * time.Second}
	}
	if o.Attempts <= 0 {
		o.Attempts = 6
	}
	if o.Backoff <= 0 {
		o.Backoff = time.Second
	}
	if o.Lanes <= 0 {
		o.Lanes = 4
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 512
	}
	if o.Backlog <= 0 {
		o.Backlog = 1000
	}
	if o.MaxAge <= 0 {
		o.MaxAge = time.Hour
	}
	if o.BreakerThreshold <= 0 {
		o.BreakerThreshold = 5
	}
	if o.BreakerCoolDown <= 0 {
		o.BreakerCoolDown = 5 * time.Second
	}
	if o.BreakerMaxCoolDown <= 0 {
		o.BreakerMaxCoolDown = 5 * time.Minute
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Consumer.Logger == nil {
		o.Consumer.Logger = o.Logger
	}
	d := &Notifier{
		o:        o,
		consumer: bus.NewConsumer(o.Consumer),
		seed:     maphash.MakeSeed(),
		retry:    retry.Backoff{Initial: o.Backoff, Max: time.Minute, Jitter: 0.2, MaxAttempts: o.Attempts},
		shedAt:   int64(o.Consumer.MaxInFlight) * 3 / 4,
		breakers: map[string]*breaker{},
	}
	d.lanes = keyed.New(keyed.Options{Concurrency: o.Concurrency, Backlog: o.Backlog, Group: tenantOfLane},
		func(ctx context.Context, _ string, j *job) { d.deliver(ctx, j) })
	return d
}

// payloadOf turns an event into a trigger payload, or nil when the event is
// not one tenants subscribe to.
func payloadOf(ev *wire.Event) *Payload {
	p := &Payload{ID: ev.Id, Tenant: ev.Tenant, Phone: ev.Phone, At: time.UnixMilli(ev.AtMs).UTC()}
	switch k := ev.Kind.(type) {
	case *wire.Event_Message:
		if k.Message.Direction != "in" {
			return nil
		}
		p.Type = "message.received"
		p.ConversationID = k.Message.ConversationId
		p.Text = k.Message.Body
		p.QueryType = k.Message.QueryType
	case *wire.Event_Conversation:
		if k.Conversation.Change != "started" {
			return nil
		}
		p.Type = "conversation.started"
		p.ConversationID = k.Conversation.ConversationId
	default:
		return nil
	}
	return p
}

// job is one event on its way to a tenant's webhook.
type job struct {
	m       kafka.Message
	done    func()
	tenant  string
	hook    tenants.Webhook
	payload *Payload
	born    time.Time // when the event was written: MaxAge counts from it
}

// lane is the queue of a job: "tenant|n", n chosen by the customer.
func (d *Notifier) lane(tenant string, key []byte) string {
	return tenant + "|" + strconv.FormatUint(maphash.Bytes(d.seed, key)%uint64(d.o.Lanes), 10)
}

func tenantOfLane(lane string) string {
	return lane[:strings.LastIndexByte(lane, '|')]
}

// Run delivers until ctx ends, then waits for what is under way. It
// writes dead letters through Options.Producer, or a producer of its own.
func (d *Notifier) Run(ctx context.Context) error {
	if d.o.Producer == nil {
		p := bus.NewProducer(d.o.Consumer.Brokers, bus.ProducerOptions{})
		defer p.Close()
		d.o.Producer = p
	}
	err := d.consumer.Run(ctx, func(_ context.Context, m kafka.Message, done func()) {
		d.dispatch(ctx, m, done)
	})
	d.lanes.Wait()
	d.wg.Wait()
	return err
}

// dispatch queues an event its tenant subscribed to, and finishes at once
// any other. It runs on the consumer's goroutine, so it never waits on a
// tenant: what cannot be queued is dead-lettered off it.
func (d *Notifier) dispatch(ctx context.Context, m kafka.Message, done func()) {
	j := d.jobOf(m, done)
	if j == nil {
		done()
		return
	}
	if d.held.Load() >= d.shedAt && d.breakerOf(j).open() {
		d.deadLetterAsync(ctx, j, ReasonCircuitOpen, errors.New("the endpoint's circuit is open and the notifier is nearly full"), 0)
		return
	}
	d.hold(1)
	if err := d.lanes.Submit(ctx, d.lane(j.tenant, m.Key), j); err != nil {
		d.hold(-1)
		err = fmt.Errorf("tenant %s holds %d events already", j.tenant, d.o.Backlog)
		d.deadLetterAsync(ctx, j, ReasonBacklogFull, err, 0)
	}
}

func (d *Notifier) hold(n int64) { held.Set(float64(d.held.Add(n))) }

// jobOf is the job of an event, or nil when there is nothing to post: not
// an event tenants subscribe to, or a tenant without a webhook.
func (d *Notifier) jobOf(m kafka.Message, done func()) *job {
	ev := &wire.Event{}
	if err := proto.Unmarshal(m.Value, ev); err != nil {
		return nil
	}
	p := payloadOf(ev)
	if p == nil {
		return nil
	}
	t := d.o.Tenants.Get(ev.Tenant)
	if t == nil || t.Webhook == nil {
		return nil
	}
	born := m.Time
	if born.IsZero() {
		born = time.Now()
	}
	return &job{m: m, done: done, tenant: t.ID, hook: *t.Webhook, payload: p, born: born}
}

// breakerOf is the breaker of a job's endpoint: one per tenant and URL.
func (d *Notifier) breakerOf(j *job) *breaker {
	k := j.tenant + " " + j.hook.URL
	d.bmu.Lock()
	defer d.bmu.Unlock()
	b := d.breakers[k]
	if b == nil {
		b = newBreaker(d.o.BreakerThreshold, retry.Backoff{Initial: d.o.BreakerCoolDown, Max: d.o.BreakerMaxCoolDown})
		d.breakers[k] = b
	}
	return b
}

// errExpired ends the retries of an event older than MaxAge.
var errExpired = errors.New("older than the notifier's max age")

// deliver posts one event, in its lane: retried, waiting for the
// endpoint's breaker, until it is delivered or dead-lettered. When ctx
// ends first it stays not done, and is delivered again after a restart.
func (d *Notifier) deliver(ctx context.Context, j *job) {
	defer d.hold(-1)
	body, _ := json.Marshal(j.payload)
	sig := Sign(j.hook.Secret.Reveal(), body)
	br := d.breakerOf(j)
	log := d.o.Logger.With("tenant", j.tenant, "event", j.payload.ID)
	attempts := 0
	policy := d.retry
	policy.OnRetry = func(attempt int, err error, wait time.Duration) {
		deliveries.WithLabelValues("retried").Inc()
		log.Warn("tenant webhook failed; retrying", "attempt", attempt, "in", wait, "err", err)
	}
	err := policy.Do(ctx, func(attempt int) error {
		if err := d.await(ctx, br, j); err != nil {
			return retry.Permanent(err)
		}
		attempts = attempt
		err := d.post(ctx, j.hook.URL, body, sig, j.payload)
		opened, closed := br.result(time.Now(), err == nil)
		switch {
		case opened:
			circuitsOpen.Inc()
			log.Warn("tenant webhook failing; circuit open", "err", err)
		case closed:
			circuitsOpen.Dec()
			log.Info("tenant webhook answers again; circuit closed")
		}
		return err
	})
	switch {
	case err == nil:
		deliveries.WithLabelValues("ok").Inc()
		j.done()
	case ctx.Err() != nil:
		// Not done: delivered again after a restart.
	case errors.Is(err, errExpired):
		d.deadLetter(ctx, j, ReasonExpired, err, attempts)
	default:
		log.Error("tenant webhook failed, giving up", "attempts", attempts, "err", err)
		d.deadLetter(ctx, j, ReasonRetriesExhausted, err, attempts)
	}
}

// await waits until the breaker lets a post go, or ctx ends, or the event
// would be older than MaxAge by then (errExpired).
func (d *Notifier) await(ctx context.Context, br *breaker, j *job) error {
	for {
		now := time.Now()
		if now.Sub(j.born) > d.o.MaxAge {
			return errExpired
		}
		ok, wait := br.allow(now)
		if ok {
			return nil
		}
		if now.Add(wait).Sub(j.born) > d.o.MaxAge {
			wait = j.born.Add(d.o.MaxAge).Sub(now) + time.Millisecond
		}
		if err := retry.Sleep(ctx, wait); err != nil {
			return err
		}
	}
}

// deadLetterAsync dead-letters off the calling goroutine (the consumer's).
func (d *Notifier) deadLetterAsync(ctx context.Context, j *job, reason string, cause error, attempts int) {
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		d.deadLetter(ctx, j, reason, cause, attempts)
	}()
}

// deadLetterRetry keeps at a dead letter's write until it works or ctx
// ends (then the event is not done, and comes again after a restart).
var deadLetterRetry = retry.Backoff{Initial: 100 * time.Millisecond, Max: 5 * time.Second, Jitter: 0.2}

// deadLetter writes the event to the dead-letter topic with the reason,
// then marks it done.
func (d *Notifier) deadLetter(ctx context.Context, j *job, reason string, cause error, attempts int) {
	h := append([]kafka.Header(nil), j.m.Headers...)
	add := func(k, v string) { h = append(h, kafka.Header{Key: k, Value: []byte(v)}) }
	add(HeaderReason, reason)
	add(HeaderError, cause.Error())
	add(HeaderAttempts, strconv.Itoa(attempts))
	add(HeaderTopic, j.m.Topic)
	add(HeaderPartition, strconv.Itoa(j.m.Partition))
	add(HeaderOffset, strconv.FormatInt(j.m.Offset, 10))
	add(HeaderTenant, j.tenant)
	add(HeaderEventID, j.payload.ID)
	add(HeaderFailedAt, time.Now().UTC().Format(time.RFC3339Nano))
	rec := kafka.Message{Topic: wire.TopicWebhookDeadLetters, Key: j.m.Key, Value: j.m.Value, Headers: h}
	policy := deadLetterRetry
	policy.OnRetry = func(_ int, err error, _ time.Duration) {
		d.o.Logger.Warn("writing a webhook dead letter failed; retrying", "tenant", j.tenant, "event", j.payload.ID, "err", err)
	}
	if policy.Do(ctx, func(int) error { return d.o.Producer.Produce(ctx, rec) }) != nil {
		return // ctx ended: not done, the event comes again
	}
	deliveries.WithLabelValues("failed").Inc()
	deadLetters.WithLabelValues(reason).Inc()
	d.o.Logger.Warn("tenant webhook event dead-lettered", "tenant", j.tenant, "event", j.payload.ID, "reason", reason, "err", cause)
	j.done()
}

func (d *Notifier) post(ctx context.Context, url string, body []byte, sig string, p *Payload) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(SignatureHeader, sig)
	req.Header.Set("X-Parley-Event", p.Type)
	req.Header.Set("X-Parley-Event-Id", p.ID)
	res, err := d.o.HTTP.Do(req)
	if err != nil {
		return err
	}
	res.Body.Close()
	if res.StatusCode/100 != 2 {
		return fmt.Errorf("webhook answered %s", res.Status)
	}
	return nil
}
