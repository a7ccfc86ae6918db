// Package sim is the WhatsApp simulator channel of `parley dev`: a page where
// you type as a customer, and a hub that delivers the session's replies to
// that page instead of to a provider. provider.go puts it behind
// channels.Provider: the page's routes, and sends delivered to the hub.
package sim

import (
	"errors"
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
//
// It is bounded: at most MaxConversations conversations (the one idle
// longest, with no page watching, makes room; one idle for IdleExpiry goes
// anyway) and MaxWatchers pages watching in all, MaxWatchersPerConversation
// of them on one conversation. The page's API is unauthenticated, so a
// stream of requests for made-up numbers must not grow the process.
type Hub struct {
	mu       sync.Mutex
	convs    map[string]*conv
	watchers int
	closed   chan struct{}
	once     sync.Once
	now      func() time.Time
}

type conv struct {
	recent []Reply
	subs   map[chan Reply]struct{}
	used   time.Time
}

// The hub's bounds.
const (
	keepRecent                 = 50
	MaxConversations           = 10000
	MaxWatchers                = 1000
	MaxWatchersPerConversation = 8
	IdleExpiry                 = time.Hour
)

// ErrBusy is Subscribe's answer past the watcher bounds.
var ErrBusy = errors.New("simulator: too many pages watching")

// NewHub creates an empty hub.
func NewHub() *Hub {
	return &Hub{convs: map[string]*conv{}, closed: make(chan struct{}), now: time.Now}
}

// Close ends every open event stream, so that a server shutting down is not
// held open by pages that never hang up.
func (h *Hub) Close() { h.once.Do(func() { close(h.closed) }) }

func key(tenant, phone string) string { return tenant + "|" + phone }

// conv finds or makes the conversation of k; nil when the hub is full of
// watched conversations. It holds h.mu.
func (h *Hub) conv(k string) *conv {
	now := h.now()
	c := h.convs[k]
	if c == nil {
		if len(h.convs) >= MaxConversations && !h.makeRoom(now) {
			return nil
		}
		c = &conv{subs: map[chan Reply]struct{}{}}
		h.convs[k] = c
	}
	c.used = now
	return c
}

// makeRoom drops the conversations idle for IdleExpiry, and if none was,
// the one idle longest; never one a page watches. It holds h.mu.
func (h *Hub) makeRoom(now time.Time) bool {
	var oldest string
	var oldestAt time.Time
	dropped := false
	for k, c := range h.convs {
		if len(c.subs) > 0 {
			continue
		}
		if now.Sub(c.used) >= IdleExpiry {
			delete(h.convs, k)
			dropped = true
		} else if oldest == "" || c.used.Before(oldestAt) {
			oldest, oldestAt = k, c.used
		}
	}
	if !dropped && oldest != "" {
		delete(h.convs, oldest)
		dropped = true
	}
	return dropped
}

// Deliver shows a message on every page watching tenant/phone. It never
// blocks: a page too slow to keep up misses the reply live and gets it from
// the recent list on reconnect.
func (h *Hub) Deliver(tenant, phone string, r Reply) {
	h.mu.Lock()
	defer h.mu.Unlock()
	c := h.conv(key(tenant, phone))
	if c == nil {
		return
	}
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
// cancel stops the subscription. Past the watcher bounds it returns ErrBusy.
func (h *Hub) Subscribe(tenant, phone string) (recent []Reply, live <-chan Reply, cancel func(), err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.watchers >= MaxWatchers {
		return nil, nil, nil, ErrBusy
	}
	k := key(tenant, phone)
	if c := h.convs[k]; c != nil && len(c.subs) >= MaxWatchersPerConversation {
		return nil, nil, nil, ErrBusy
	}
	c := h.conv(k)
	if c == nil {
		return nil, nil, nil, ErrBusy
	}
	ch := make(chan Reply, 64)
	c.subs[ch] = struct{}{}
	h.watchers++
	recent = append([]Reply(nil), c.recent...)
	var once sync.Once
	return recent, ch, func() {
		once.Do(func() {
			h.mu.Lock()
			defer h.mu.Unlock()
			delete(c.subs, ch)
			h.watchers--
			c.used = h.now()
		})
	}, nil
}

// Forget drops what the hub shows of tenant/phone (erasure).
func (h *Hub) Forget(tenant, phone string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	k := key(tenant, phone)
	if c := h.convs[k]; c != nil {
		c.recent = nil
		if len(c.subs) == 0 {
			delete(h.convs, k)
		}
	}
}

// Conversations is how many conversations the hub holds.
func (h *Hub) Conversations() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.convs)
}
