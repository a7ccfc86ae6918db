// Package sim is the WhatsApp simulator channel of `parley dev`: a page where
// you type as a customer, and a hub that delivers the session's replies to
// that page instead of to a provider. provider.go puts it behind
// channels.Provider: the page's routes, and sends delivered to the hub.
package sim

import (
	"sync"
	"time"
)

// Reply is one message shown on the simulator page: the business's
// reply, or (Customer) a line the customer typed, kept so that a page
// reloaded or opened in a second tab shows the whole conversation.
type Reply struct {
	ID       string    `json:"id"`
	Text     string    `json:"text"`
	At       time.Time `json:"at"`
	Customer bool      `json:"customer,omitempty"`
}

// Hub fans replies out to the pages watching a conversation. It keeps the
// last replies of each conversation so a page that connects late, or
// reconnects, still sees them.
type Hub struct {
	mu     sync.Mutex
	convs  map[string]*conv
	closed chan struct{}
	once   sync.Once
}

type conv struct {
	recent []Reply
	subs   map[chan Reply]struct{}
}

const keepRecent = 50

// NewHub creates an empty hub.
func NewHub() *Hub { return &Hub{convs: map[string]*conv{}, closed: make(chan struct{})} }

// Close ends every open event stream, so that a server shutting down is not
// held open by pages that never hang up.
func (h *Hub) Close() { h.once.Do(func() { close(h.closed) }) }

func key(tenant, phone string) string { return tenant + "|" + phone }

func (h *Hub) conv(k string) *conv {
	c := h.convs[k]
	if c == nil {
		c = &conv{subs: map[chan Reply]struct{}{}}
		h.convs[k] = c
	}
	return c
}

// Deliver shows a message on every page watching tenant/phone. It never
// blocks: a page too slow to keep up misses the reply live and gets it from
// the recent list on reconnect.
func (h *Hub) Deliver(tenant, phone string, r Reply) {
	h.mu.Lock()
	defer h.mu.Unlock()
	c := h.conv(key(tenant, phone))
	c.recent = append(c.recent, r)
	if len(c.recent) > keepRecent {
		c.recent = c.recent[len(c.recent)-keepRecent:]
	}
	for ch := range c.subs {
		select {
		case ch <- r:
		default:
		}
	}
}

// Subscribe returns the replies so far and a channel of the ones to come;
// cancel stops the subscription.
func (h *Hub) Subscribe(tenant, phone string) (recent []Reply, live <-chan Reply, cancel func()) {
	h.mu.Lock()
	defer h.mu.Unlock()
	c := h.conv(key(tenant, phone))
	ch := make(chan Reply, 64)
	c.subs[ch] = struct{}{}
	recent = append([]Reply(nil), c.recent...)
	return recent, ch, func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		delete(c.subs, ch)
	}
}
