// Package delivery is the sender: it consumes parley.outbound and delivers
// each message through the tenant's channel (Twilio, Meta's Cloud API, or
// the simulator page), in order per customer.
//
// What it guarantees, and how:
//
//   - Order: the records of one customer (one Kafka key) are sent one after
//     another, each after the previous one finished (sent, or given up on).
//     Every customer with records in flight has its own queue, so a customer
//     waiting out a retry, or a throttled sender number, holds up nobody
//     else.
//   - Rate: each sender number has a token bucket (the tenant's
//     outbound.rate_limit, default 80 messages/s); a provider's rate-limit
//     answer pauses the whole number for the time it asked.
//   - Retries: temporary failures (HTTP 429/5xx, Twilio 20429/63018, Meta
//     throttling, network) are retried with exponential backoff and jitter
//     (internal/retry), or after the provider's Retry-After, up to
//     Options.MaxAttempts. Permanent ones are not: 21610 (unsubscribed)
//     reports the customer opted out and tells their session (an OptOut
//     command on parley.inbound); 63016/131047 (outside the 24-hour window)
//     sends the tenant's fallback template instead, if it has one.
//   - Sent once: the provider's message id is written against the outbound
//     id to a compacted ledger topic (acks=all) before the offset may be
//     committed; a record that comes again — after a crash between send and
//     commit, or a rebalance — is recognised and only reported, not sent.
//     The one window left is a crash during the provider's HTTP exchange or
//     between its answer and the ledger write (milliseconds): neither
//     Twilio's nor Meta's API takes an idempotency key.
//   - Nothing is dropped: what cannot be sent goes to the dead-letter topic
//     with the reason, and a failed DeliveryReport goes to parley.events.
package delivery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/segmentio/kafka-go"
	"google.golang.org/protobuf/proto"

	"github.com/parleyhq/parley/bus"
	"github.com/parleyhq/parley/channels"
	"github.com/parleyhq/parley/internal/keyed"
	"github.com/parleyhq/parley/internal/retry"
	"github.com/parleyhq/parley/internal/seal"
	"github.com/parleyhq/parley/tenants"
	"github.com/parleyhq/parley/wire"
)

var (
	results = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "parley_outbound_total",
		Help: "Outbound messages by channel and result (sent, template_fallback, duplicate_skipped, retried, opted_out, failed, dead_lettered).",
	}, []string{"channel", "result"})
	sendSeconds = promauto.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "parley_outbound_send_seconds",
		Help:    "Duration of one provider send request.",
		Buckets: prometheus.ExponentialBuckets(0.001, 2, 15),
	}, []string{"channel"})
	ledgerEntries = promauto.NewGauge(prometheus.GaugeOpts{
		Name: "parley_outbound_ledger_entries",
		Help: "Sent outbound ids the sender remembers (the last 48 hours of its partitions).",
	})
)

// Options configure a Deliverer. Consumer.Brokers, Tenants and Providers
// are required; everything else has a default.
//
// What to do for a tenant is read from the tenant (tenants.OutboundConfig),
// at every send, so a reloaded configuration applies at once: the rate
// limit of its number (DefaultRateLimit unless set; 0: none), and the
// fallback template sent in place of free text the provider refused as
// outside the 24-hour window (Twilio 63016, Meta 131047; none: the
// message fails).
type Options struct {
	Consumer bus.ConsumerOptions
	Tenants  *tenants.Registry
	// Providers send: a record goes through the provider it names, else
	// the first that has a number for its tenant. A local provider (the
	// simulator) delivers without rate limit, retries or ledger.
	Providers *channels.Registry
	// Producer tells the session that its customer unsubscribed (Twilio
	// 21610): an OptOut command on parley.inbound, keyed by the session,
	// produced after the events are written and before the record is
	// committed, retried until it is written. The session learns of it
	// through its own stream, like everything else that changes it. Nil:
	// events only (benchmarks).
	Producer Producer
	// Secrets open the texts sessions seal (one-time codes).
	Secrets *seal.Box

	// RateBurst is the token bucket's depth. Default 1: sends are spaced
	// evenly, never bunched.
	RateBurst int
	// MaxConcurrentSends bounds provider requests in flight over all
	// numbers. Default 256.
	MaxConcurrentSends int

	// MaxAttempts bounds the sends of one message (first try included)
	// before it is dead-lettered. Default 8.
	MaxAttempts int
	// RetryBase is the wait after the first temporary failure when the
	// provider names none; it doubles per attempt up to RetryMax, ±20%
	// jitter. Defaults 2s and 5 minutes. A provider's Retry-After is
	// honoured as it is (Twilio's is capped at 5 minutes).
	RetryBase, RetryMax time.Duration
	// SendTimeout bounds one provider request. A request is not aborted
	// by shutdown: it finishes, and its result is recorded, so that a
	// stopping sender does not leave a message sent but unrecorded.
	// Default 30s.
	SendTimeout time.Duration

	// LedgerTopic is the compacted topic of sent ids. Default wire.TopicOutboundSent.
	LedgerTopic string
	// LedgerRetention is how long sent ids are kept. Default 48h.
	LedgerRetention time.Duration
	// DeadLetterTopic defaults to wire.TopicOutboundDeadLetters.
	DeadLetterTopic string
	// Replication of the topics the sender creates when they are
	// missing (ledger, dead letters). Default 1; production: 3.
	Replication int

	// AfterLedgerWrite, when set, runs after a send was recorded in the
	// ledger and before the record is marked done; returning true stops
	// the record there, unfinished, as if the process died at that
	// instant. For crash tests.
	AfterLedgerWrite func(out *wire.Outbound) (crash bool)

	Logger *slog.Logger
}

// Producer writes records to Kafka (acks=all), as bus.Producer does.
type Producer interface {
	Produce(ctx context.Context, msgs ...kafka.Message) error
}

// Deliverer delivers outbound records through the providers.
type Deliverer struct {
	o        Options
	consumer *bus.Consumer
	lanes    *lanes
	slots    chan struct{}
	// retry spaces the sends of one message after temporary failures.
	retry retry.Backoff

	// Set up by Run.
	writer *recordWriter
	ledger *ledger

	// keys sends each customer's records one after another (internal/keyed);
	// the consumer's in-flight bound caps what it holds.
	keys *keyed.Executor[job]
}

// New creates a sender.
func New(o Options) *Deliverer {
	o.Consumer.Topic = wire.TopicOutbound
	if o.Consumer.Group == "" {
		o.Consumer.Group = wire.GroupSender
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Consumer.Logger == nil {
		o.Consumer.Logger = o.Logger
	}
	if o.RateBurst <= 0 {
		o.RateBurst = 1
	}
	if o.MaxConcurrentSends <= 0 {
		o.MaxConcurrentSends = 256
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 8
	}
	if o.RetryBase <= 0 {
		o.RetryBase = 2 * time.Second
	}
	if o.RetryMax <= 0 {
		o.RetryMax = 5 * time.Minute
	}
	if o.SendTimeout <= 0 {
		o.SendTimeout = 30 * time.Second
	}
	if o.LedgerTopic == "" {
		o.LedgerTopic = wire.TopicOutboundSent
	}
	if o.LedgerRetention <= 0 {
		o.LedgerRetention = 48 * time.Hour
	}
	if o.DeadLetterTopic == "" {
		o.DeadLetterTopic = wire.TopicOutboundDeadLetters
	}
	if o.Replication <= 0 {
		o.Replication = 1
	}
	s := &Deliverer{
		o:        o,
		consumer: bus.NewConsumer(o.Consumer),
		lanes:    newLanes(o.RateBurst),
		slots:    make(chan struct{}, o.MaxConcurrentSends),
		// MaxAttempts is counted by send itself: a fallback template is
		// sent even after the last attempt, as the answer to it.
		retry: retry.Backoff{Initial: o.RetryBase, Max: o.RetryMax, Jitter: 0.2},
	}
	s.keys = keyed.New(keyed.Options{}, func(ctx context.Context, _ string, j job) {
		if s.process(ctx, j) {
			j.done()
		}
	})
	return s
}

// Run sends until ctx ends. It creates the ledger and dead-letter topics
// when they are missing. A record whose send was cut short by ctx stays
// uncommitted: the next owner of the partition finishes it.
func (s *Deliverer) Run(ctx context.Context) error {
	if err := s.setup(ctx); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	defer s.writer.close()
	go s.pruneLoop(ctx)
	err := s.consumer.Run(ctx, func(_ context.Context, m kafka.Message, done func()) {
		// A record queues behind the customer's earlier ones; nothing is
		// refused (no backlog bound), so the error is always nil.
		_ = s.keys.Submit(ctx, string(m.Key), job{m: m, done: done})
	})
	s.keys.Wait()
	return err
}

// setup creates the sender's topics and its ledger, retrying while the
// brokers are unreachable.
func (s *Deliverer) setup(ctx context.Context) error {
	sec := s.o.Consumer.Security
	client := sec.Client(s.o.Consumer.Brokers, 10*time.Second)
	policy := retry.Backoff{Initial: 200 * time.Millisecond, Max: 5 * time.Second, MaxAttempts: 10,
		OnRetry: func(_ int, err error, _ time.Duration) { s.o.Logger.Warn("sender setup failed; retrying", "err", err) }}
	return policy.Do(ctx, func(int) error {
		partitions, err := s.createTopics(ctx, client)
		if err != nil {
			return err
		}
		w, err := newRecordWriter(s.o.Consumer.Brokers, sec, s.o.LedgerTopic)
		if err != nil {
			return retry.Permanent(err)
		}
		s.writer = w
		s.ledger = newLedger(sec.Client(s.o.Consumer.Brokers, 10*time.Second), w, s.o.LedgerTopic, partitions, s.o.LedgerRetention, s.o.Logger)
		return nil
	})
}

// createTopics creates the ledger and dead-letter topics with as many
// partitions as parley.outbound, and returns the ledger's partition count.
func (s *Deliverer) createTopics(ctx context.Context, client *kafka.Client) (int, error) {
	partitions, err := partitionCount(ctx, client, wire.TopicOutbound)
	if err != nil {
		return 0, fmt.Errorf("outbound topic metadata: %w", err)
	}
	if partitions == 0 {
		partitions = 8 // the outbound topic does not exist yet: kfake's default
	}
	ledgerConfig := map[string]string{
		"cleanup.policy": "compact,delete",
		"retention.ms":   msString(s.o.LedgerRetention),
		// Compaction and deletion work on closed segments only.
		"segment.ms": msString(min(s.o.LedgerRetention/4, 6*time.Hour)),
	}
	dlqConfig := map[string]string{"retention.ms": msString(14 * 24 * time.Hour)}
	if s.o.Replication >= 3 {
		ledgerConfig["min.insync.replicas"] = "2"
		dlqConfig["min.insync.replicas"] = "2"
	}
	brokers := s.o.Consumer.Brokers
	if err := bus.EnsureTopic(ctx, brokers, s.o.Consumer.Security, s.o.LedgerTopic, partitions, s.o.Replication, ledgerConfig); err != nil {
		return 0, err
	}
	if err := bus.EnsureTopic(ctx, brokers, s.o.Consumer.Security, s.o.DeadLetterTopic, partitions, s.o.Replication, dlqConfig); err != nil {
		return 0, err
	}
	n, err := partitionCount(ctx, client, s.o.LedgerTopic)
	if err != nil {
		return 0, fmt.Errorf("ledger topic metadata: %w", err)
	}
	if n == 0 {
		return 0, fmt.Errorf("ledger topic %s not visible yet", s.o.LedgerTopic)
	}
	return n, nil
}

func (s *Deliverer) pruneLoop(ctx context.Context) {
	t := time.NewTicker(10 * time.Minute)
	defer t.Stop()
	for {
		ledgerEntries.Set(float64(s.ledger.size()))
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			s.ledger.prune(now)
		}
	}
}

type job struct {
	m    kafka.Message
	done func()
}

// process handles one record. It reports true when the record is finished
// (sent, reported, or dead-lettered, all durably) and false when ctx ended
// first.
func (s *Deliverer) process(ctx context.Context, j job) bool {
	if ctx.Err() != nil {
		return false
	}
	out := &wire.Outbound{}
	if err := proto.Unmarshal(j.m.Value, out); err != nil {
		s.o.Logger.Error("dead-lettering undecodable outbound record", "partition", j.m.Partition, "offset", j.m.Offset, "err", err)
		results.WithLabelValues("unknown", "dead_lettered").Inc()
		return s.produce(ctx, s.deadLetter(j.m, "", ReasonUndecodable, failure{kind: channels.Permanent, msg: err.Error()}, 0))
	}
	if len(out.SealedText) > 0 {
		// A one-time code: sealed on the topic, opened only here, just
		// before it goes to the provider.
		plain, err := s.open(out)
		if err != nil {
			s.o.Logger.Error("dead-lettering sealed outbound that does not open", "tenant", out.Tenant, "id", out.Id, "err", err)
			results.WithLabelValues(channelName(out.Channel), "dead_lettered").Inc()
			return s.produce(ctx, s.deadLetter(j.m, out.Id, ReasonUnsealable, failure{kind: channels.Permanent, msg: err.Error()}, 0))
		}
		out.Text, out.SealedText = string(plain), nil
	}
	t := s.o.Tenants.Get(out.Tenant)
	if t == nil {
		s.o.Logger.Error("dead-lettering outbound for unknown tenant", "tenant", out.Tenant, "id", out.Id)
		results.WithLabelValues("unknown", "dead_lettered").Inc()
		return s.produce(ctx, s.deadLetter(j.m, out.Id, ReasonUnknownTenant, failure{kind: channels.Permanent, msg: "unknown tenant " + out.Tenant}, 0))
	}
	// The tenant as its number out.From (the one the customer wrote to,
	// or the caller chose); a number since removed: the first active one.
	t, _ = t.Via(out.From)
	ch, simulated := s.providerFor(t, out)
	if simulated {
		return s.simulate(ctx, t, out)
	}
	if ch == nil {
		f := failure{kind: channels.Permanent, code: "no_channel", msg: fmt.Sprintf("tenant %s has no channel for %q", t.ID, out.Channel)}
		return s.fail(ctx, j, out, channelName(out.Channel), ReasonNoChannel, f, 0)
	}
	return s.send(ctx, j, out, t, ch)
}

// open opens a sealed text with Options.Secrets.
func (s *Deliverer) open(out *wire.Outbound) ([]byte, error) {
	if s.o.Secrets == nil {
		return nil, errors.New("a sealed text, and no secrets key configured")
	}
	return s.o.Secrets.Open(out.SealedText, []byte(out.Id))
}

// providerFor picks the provider of a record: the one it names, else the
// first with a number for the tenant. simulated: the tenant talks to the
// simulator page.
func (s *Deliverer) providerFor(t *tenants.Tenant, out *wire.Outbound) (p channels.Provider, simulated bool) {
	if out.Channel == tenants.ChannelSimulator {
		return nil, t.Sim || t.Channel() == tenants.ChannelSimulator
	}
	if p := s.o.Providers.Get(out.Channel); p != nil && !channels.IsLocal(p) {
		if p.Number(t) != "" {
			return p, false
		}
		return nil, false
	}
	for _, p := range s.o.Providers.All() {
		if !channels.IsLocal(p) && p.Number(t) != "" {
			return p, false
		}
	}
	return nil, t.Channel() == tenants.ChannelSimulator
}

func channelName(c string) string {
	if c == "" {
		return "unknown"
	}
	return c
}

// simulate delivers to the simulator page (development tenants), through
// the local provider when there is one.
func (s *Deliverer) simulate(ctx context.Context, t *tenants.Tenant, out *wire.Outbound) bool {
	if p := s.o.Providers.Get(tenants.ChannelSimulator); p != nil {
		_, _ = p.Send(ctx, t, out, out.Template)
	}
	results.WithLabelValues(tenants.ChannelSimulator, "sent").Inc()
	e := sentEntry{ProviderID: "sim-" + out.Id, Channel: tenants.ChannelSimulator, Template: out.Template != nil, AtMs: time.Now().UnixMilli()}
	return s.produce(ctx, eventRecords(sentEvents(out, e))...)
}

// send sends a record through its channel, retrying what is temporary.
// It reports true when the record is finished, false when ctx ended first.
func (s *Deliverer) send(ctx context.Context, j job, out *wire.Outbound, t *tenants.Tenant, ch channels.Provider) bool {
	tpl := out.Template
	fallback := false
	number := ch.Number(t)
	l := s.lanes.get(number)
	log := s.o.Logger
	// An attempt that returns end(…) ends the loop, finished or not (ctx
	// ended); one that returns a failure is tried again.
	finished := false
	end := func(ok bool) error { finished = ok; return nil }
	policy := s.retry
	policy.OnRetry = func(_ int, err error, wait time.Duration) {
		f, _ := err.(failure)
		if f.kind == channels.OutsideWindow {
			return // the fallback template goes at once
		}
		if f.rateLimited {
			l.pause(wait)
		}
		results.WithLabelValues(ch.Name(), "retried").Inc()
		log.Warn("outbound retry", "in", wait)
	}
	err := policy.Do(ctx, func(attempt int) error {
		if err := l.wait(ctx, rateLimit(t)); err != nil {
			return end(false)
		}
		// Sent already — by this process before it died, or by the
		// partition's previous owner (even one still finishing its
		// records after a rebalance)? Then report it, do not send it.
		e, found, ok := s.sentBefore(ctx, j, out)
		if !ok {
			return end(false)
		}
		if found {
			results.WithLabelValues(e.Channel, "duplicate_skipped").Inc()
			s.o.Logger.Info("outbound already sent; not sending again", "tenant", out.Tenant, "id", out.Id, "provider_id", e.ProviderID)
			return end(s.produce(ctx, eventRecords(sentEvents(out, e))...))
		}
		select {
		case s.slots <- struct{}{}:
		case <-ctx.Done():
			return end(false)
		}
		// From here on the request runs to its end even if ctx ends: a
		// message that reached the provider must reach the ledger too.
		sendCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.o.SendTimeout)
		start := time.Now()
		pid, err := ch.Send(sendCtx, t, out, tpl)
		cancel()
		<-s.slots
		sendSeconds.WithLabelValues(ch.Name()).Observe(time.Since(start).Seconds())
		if err == nil {
			return end(s.sent(ctx, j, out, ch, sentEntry{
				ProviderID: pid, Channel: ch.Name(), Template: tpl != nil, Fallback: fallback, AtMs: time.Now().UnixMilli(),
			}))
		}
		f := classify(err)
		log = s.o.Logger.With("tenant", t.ID, "id", out.Id, "channel", ch.Name(), "attempt", attempt, "code", f.code, "err", f.msg)
		switch f.kind {
		case channels.OutsideWindow:
			if fb := fallbackTemplate(t); tpl == nil && fb != nil {
				log.Info("outside the 24-hour window; sending the fallback template")
				results.WithLabelValues(ch.Name(), "template_fallback").Inc()
				tpl, fallback = fb, true
				return retry.After(f, 0)
			}
			log.Warn("outside the 24-hour window and no fallback template")
			return end(s.fail(ctx, j, out, ch.Name(), ReasonOutsideWindow, f, attempt))
		case channels.OptedOut:
			log.Info("customer opted out")
			return end(s.optedOut(ctx, j, out, ch.Name(), f, attempt))
		case channels.Permanent:
			log.Warn("outbound refused")
			return end(s.fail(ctx, j, out, ch.Name(), ReasonPermanent, f, attempt))
		}
		if attempt >= s.o.MaxAttempts {
			log.Error("outbound still failing; giving up")
			return end(s.fail(ctx, j, out, ch.Name(), ReasonRetriesExhausted, f, attempt))
		}
		if f.retryAfter > 0 {
			return retry.After(f, f.retryAfter)
		}
		return f
	})
	return err == nil && finished
}

// sentBefore looks the record up in the ledger, after reading the
// ledger partition up to now. ok is false when ctx ended first.
func (s *Deliverer) sentBefore(ctx context.Context, j job, out *wire.Outbound) (e sentEntry, found, ok bool) {
	policy := kafkaRetry
	policy.OnRetry = func(_ int, err error, _ time.Duration) {
		s.o.Logger.Warn("ledger catch-up failed; retrying", "partition", j.m.Partition, "err", err)
	}
	if policy.Do(ctx, func(int) error { return s.ledger.fresh(ctx, j.m.Partition, time.Now()) }) != nil {
		return e, false, false // it gives up only when ctx ends
	}
	e, found = s.ledger.get(out.Id)
	return e, found, true
}

// kafkaRetry is how the sender keeps at a Kafka read or write that must
// happen before its record can finish: until it works, or ctx ends.
var kafkaRetry = retry.Backoff{Initial: 100 * time.Millisecond, Max: 5 * time.Second}

// sent records an accepted send in the ledger and reports it, in one
// write. The write is not abandoned when ctx ends: it is what keeps the
// message from going out twice.
func (s *Deliverer) sent(ctx context.Context, j job, out *wire.Outbound, ch channels.Provider, e sentEntry) bool {
	results.WithLabelValues(ch.Name(), "sent").Inc()
	entry, err := s.ledger.record(j.m.Partition, out.Id, e)
	if err != nil {
		s.o.Logger.Error("cannot encode a ledger entry", "id", out.Id, "err", err)
		return false
	}
	msgs := append([]kafka.Message{entry}, eventRecords(sentEvents(out, e))...)
	wctx := context.WithoutCancel(ctx)
	gctx, cancel := afterGrace(ctx, 15*time.Second)
	defer cancel()
	policy := retry.Backoff{Initial: 100 * time.Millisecond, Max: 2 * time.Second,
		OnRetry: func(_ int, err error, _ time.Duration) {
			s.o.Logger.Warn("ledger write failed; retrying", "id", out.Id, "err", err)
		}}
	err = policy.Do(gctx, func(int) error {
		pctx, cancel := context.WithTimeout(wctx, 10*time.Second)
		defer cancel()
		return s.writer.write(pctx, msgs...)
	})
	if err != nil {
		s.o.Logger.Error("sent but not recorded: the message may go out again after a restart",
			"tenant", out.Tenant, "id", out.Id, "provider_id", e.ProviderID, "err", err)
		return false
	}
	s.ledger.remember(out.Id, e)
	if s.o.AfterLedgerWrite != nil && s.o.AfterLedgerWrite(out) {
		return false
	}
	return true
}

// fail reports a message that will not be sent and dead-letters it.
func (s *Deliverer) fail(ctx context.Context, j job, out *wire.Outbound, channel, reason string, f failure, attempts int) bool {
	results.WithLabelValues(channel, "failed").Inc()
	msgs := eventRecords([]*wire.Event{failedEvent(out, channel, f.code, time.Now())})
	msgs = append(msgs, s.deadLetter(j.m, out.Id, reason, f, attempts))
	return s.produce(ctx, msgs...)
}

// optedOut reports an unsubscribed customer: a failed DeliveryReport with
// the provider's code (21610), a ConversationChange "opted_out" and a dead
// letter, then tells the session (Options.Producer).
func (s *Deliverer) optedOut(ctx context.Context, j job, out *wire.Outbound, channel string, f failure, attempts int) bool {
	results.WithLabelValues(channel, "opted_out").Inc()
	now := time.Now()
	msgs := eventRecords([]*wire.Event{failedEvent(out, channel, f.code, now), optedOutEvent(out, now)})
	msgs = append(msgs, s.deadLetter(j.m, out.Id, ReasonOptedOut, f, attempts))
	if !s.produce(ctx, msgs...) {
		return false
	}
	if s.o.Producer == nil {
		return true
	}
	cmd, err := optOutCommand(out, now)
	if err != nil {
		s.o.Logger.Error("cannot encode an opt-out command", "id", out.Id, "err", err)
		return false
	}
	policy := kafkaRetry
	policy.OnRetry = func(_ int, err error, _ time.Duration) {
		s.o.Logger.Warn("telling the session of an opt-out failed; retrying", "tenant", out.Tenant, "id", out.Id, "err", err)
	}
	return policy.Do(ctx, func(int) error {
		err := s.o.Producer.Produce(ctx, cmd)
		if errors.Is(err, context.Canceled) {
			return retry.Permanent(err)
		}
		return err
	}) == nil
}

// afterGrace is a context that ends grace after ctx ends: for work that
// must outlive a stop for a while, and not for ever.
func afterGrace(ctx context.Context, grace time.Duration) (context.Context, context.CancelFunc) {
	g, cancel := context.WithCancel(context.WithoutCancel(ctx))
	stop := context.AfterFunc(ctx, func() {
		t := time.AfterFunc(grace, cancel)
		context.AfterFunc(g, func() { t.Stop() })
	})
	return g, func() { stop(); cancel() }
}
