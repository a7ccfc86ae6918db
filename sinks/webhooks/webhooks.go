// Package webhooks delivers Parley's events to tenants' own webhooks: a
// consumer group on parley.events that POSTs "message.received" and
// "conversation.started" as JSON, signed with HMAC-SHA256 of the body with
// the tenant's secret, retrying failed deliveries with backoff. Consumers
// that prefer Kafka read the same events from parley.events.
package webhooks

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash/maphash"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/segmentio/kafka-go"
	"google.golang.org/protobuf/proto"

	"github.com/parleyhq/parley/bus"
	"github.com/parleyhq/parley/internal/retry"
	"github.com/parleyhq/parley/tenants"
	"github.com/parleyhq/parley/wire"
)

// Group is the consumer group of the webhook notifier (named "triggers"
// since before the package was: the name holds its committed offsets).
const Group = "triggers"

// SignatureHeader carries "sha256=<hex HMAC-SHA256(secret, body)>".
const SignatureHeader = "X-Parley-Signature"

var deliveries = promauto.NewCounterVec(prometheus.CounterOpts{
	Name: "parley_trigger_deliveries_total",
	Help: "Tenant webhook deliveries by result (ok, retried, failed).",
}, []string{"result"})

// Every result is exported from the start, at 0, so that a rate over it
// is 0 rather than no data before the first delivery.
func init() {
	for _, r := range []string{"ok", "retried", "failed"} {
		deliveries.WithLabelValues(r)
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

// Options configure a Notifier.
type Options struct {
	Consumer bus.ConsumerOptions
	Tenants  *tenants.Registry
	HTTP     *http.Client
	// Attempts bounds deliveries of one event (default 6: about a minute
	// of backoff); after that it is logged and dropped.
	Attempts int
	// Backoff is the first retry delay, doubled each time (default 1s).
	Backoff time.Duration
	Workers int
	Logger  *slog.Logger
}

// Notifier posts events to tenants' webhooks.
type Notifier struct {
	o        Options
	consumer *bus.Consumer
	seed     maphash.Seed
}

// New creates a notifier.
func New(o Options) *Notifier {
	o.Consumer.Topic = wire.TopicEvents
	if o.Consumer.Group == "" {
		o.Consumer.Group = Group
	}
	if o.HTTP == nil {
		o.HTTP = &http.Client{Timeout: 10 * time.Second}
	}
	if o.Attempts == 0 {
		o.Attempts = 6
	}
	if o.Backoff == 0 {
		o.Backoff = time.Second
	}
	if o.Workers == 0 {
		o.Workers = 16
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return &Notifier{o: o, consumer: bus.NewConsumer(o.Consumer), seed: maphash.MakeSeed()}
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

type job struct {
	m    kafka.Message
	done func()
}

// Run delivers until ctx ends. Events of one customer are delivered in
// order; different customers in parallel.
func (d *Notifier) Run(ctx context.Context) error {
	queues := make([]chan job, d.o.Workers)
	var wg sync.WaitGroup
	for i := range queues {
		queues[i] = make(chan job, 64)
		wg.Add(1)
		go func(q chan job) {
			defer wg.Done()
			for j := range q {
				if d.deliver(ctx, j.m) {
					j.done()
				}
			}
		}(queues[i])
	}
	err := d.consumer.Run(ctx, func(_ context.Context, m kafka.Message, done func()) {
		queues[maphash.Bytes(d.seed, m.Key)%uint64(len(queues))] <- job{m, done}
	})
	for _, q := range queues {
		close(q)
	}
	wg.Wait()
	return err
}

// deliver posts one event if its tenant subscribed. It reports false only
// when ctx ended first, so the event is delivered again after a restart.
func (d *Notifier) deliver(ctx context.Context, m kafka.Message) bool {
	ev := &wire.Event{}
	if err := proto.Unmarshal(m.Value, ev); err != nil {
		return true
	}
	t := d.o.Tenants.Get(ev.Tenant)
	if t == nil || t.Webhook == nil {
		return true
	}
	p := payloadOf(ev)
	if p == nil {
		return true
	}
	body, _ := json.Marshal(p)
	sig := Sign(t.Webhook.Secret.Reveal(), body)
	attempts := 0
	policy := retry.Backoff{Initial: d.o.Backoff, Max: time.Minute, MaxAttempts: d.o.Attempts,
		OnRetry: func(int, error, time.Duration) { deliveries.WithLabelValues("retried").Inc() }}
	err := policy.Do(ctx, func(attempt int) error {
		attempts = attempt
		return d.post(ctx, t.Webhook.URL, body, sig, p)
	})
	switch {
	case err == nil:
		deliveries.WithLabelValues("ok").Inc()
	case attempts >= d.o.Attempts:
		deliveries.WithLabelValues("failed").Inc()
		d.o.Logger.Error("tenant webhook failed, giving up", "tenant", t.ID, "event", p.ID, "attempts", attempts, "err", err)
	default:
		return false // ctx ended: delivered again after a restart
	}
	return true
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
