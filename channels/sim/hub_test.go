package sim

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/parleyhq/parley/tenants"
)

func phone(i int) string { return fmt.Sprintf("+4477009%05d", i) }

// TestHubIsBounded: conversations, watchers per conversation and watchers
// in all stay under their bounds however many numbers are made up, and a
// page that leaves frees its place.
func TestHubIsBounded(t *testing.T) {
	t.Run("conversations", func(t *testing.T) {
		h := NewHub()
		for i := range MaxConversations + 500 {
			h.Deliver("demo", phone(i), Reply{ID: "r", Text: "hi"})
		}
		if n := h.Conversations(); n > MaxConversations {
			t.Fatalf("%d conversations, bound %d", n, MaxConversations)
		}
	})
	t.Run("a watched conversation is never dropped", func(t *testing.T) {
		h := NewHub()
		recent, _, cancel, err := h.Subscribe("demo", phone(0))
		if err != nil || len(recent) != 0 {
			t.Fatal(recent, err)
		}
		defer cancel()
		h.Deliver("demo", phone(0), Reply{ID: "kept"})
		for i := 1; i <= MaxConversations+10; i++ {
			h.Deliver("demo", phone(i), Reply{ID: "r"})
		}
		again, _, cancel2, err := h.Subscribe("demo", phone(0))
		if err != nil {
			t.Fatal(err)
		}
		defer cancel2()
		if len(again) != 1 || again[0].ID != "kept" {
			t.Fatalf("the watched conversation lost its replies: %+v", again)
		}
	})
	t.Run("idle conversations expire", func(t *testing.T) {
		h := NewHub()
		now := time.Unix(1_700_000_000, 0)
		h.now = func() time.Time { return now }
		for i := range MaxConversations {
			h.Deliver("demo", phone(i), Reply{ID: "r"})
		}
		now = now.Add(IdleExpiry)
		h.Deliver("demo", phone(MaxConversations), Reply{ID: "r"})
		if n := h.Conversations(); n != 1 {
			t.Fatalf("%d conversations after an hour idle, want the one new", n)
		}
	})
	t.Run("watchers per conversation", func(t *testing.T) {
		h := NewHub()
		var cancels []func()
		for range MaxWatchersPerConversation {
			_, _, c, err := h.Subscribe("demo", phone(1))
			if err != nil {
				t.Fatal(err)
			}
			cancels = append(cancels, c)
		}
		if _, _, _, err := h.Subscribe("demo", phone(1)); !errors.Is(err, ErrBusy) {
			t.Fatalf("one watcher too many: %v", err)
		}
		cancels[0]()
		cancels[0]() // twice is once
		if _, _, c, err := h.Subscribe("demo", phone(1)); err != nil {
			t.Fatalf("after one left: %v", err)
		} else {
			c()
		}
	})
	t.Run("watchers in all", func(t *testing.T) {
		h := NewHub()
		for i := range MaxWatchers {
			if _, _, _, err := h.Subscribe("demo", phone(i)); err != nil {
				t.Fatalf("watcher %d: %v", i, err)
			}
		}
		if _, _, _, err := h.Subscribe("demo", phone(MaxWatchers)); !errors.Is(err, ErrBusy) {
			t.Fatalf("one watcher too many: %v", err)
		}
	})
	t.Run("forget", func(t *testing.T) {
		h := NewHub()
		h.Deliver("demo", phone(1), Reply{ID: "secret code"})
		h.Forget("demo", phone(1))
		recent, _, cancel, _ := h.Subscribe("demo", phone(1))
		defer cancel()
		if len(recent) != 0 {
			t.Fatalf("erased conversation still shows %+v", recent)
		}
	})
}

// TestEventsOnlyForSimulatorTenants: the event stream of an unknown or a
// non-simulator tenant is 404 and leaves nothing behind, however many
// made-up numbers are asked for.
func TestEventsOnlyForSimulatorTenants(t *testing.T) {
	reg, err := tenants.NewRegistry([]tenants.Tenant{
		{ID: "demo", Sim: true},
		{ID: "acme", Twilio: &tenants.Twilio{AccountSID: "AC1", AuthToken: "0123456789abcdef0123456789abcdef", From: "whatsapp:+14155238886"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	h := NewHub()
	for i := range 5000 {
		for _, tenant := range []string{"nobody", "acme"} {
			var ctx fasthttp.RequestCtx
			ctx.Request.SetRequestURI("/simulator/api/events?tenant=" + tenant + "&phone=%2B" + phone(i)[1:])
			h.Events(&ctx, reg)
			if code := ctx.Response.StatusCode(); code != fasthttp.StatusNotFound {
				t.Fatalf("tenant %s: status %d, want 404", tenant, code)
			}
		}
	}
	if n := h.Conversations(); n != 0 {
		t.Fatalf("%d conversations made by refused requests", n)
	}
}
