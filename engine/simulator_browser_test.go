package engine

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/parleyhq/parley/internal/browsertest"
)

// readSimLog lists the simulator page's bubbles as "in:text" (the
// customer) and "out:text" (the business), in order.
const readSimLog = `[...document.querySelectorAll('#log .msg')].map((d) => (d.classList.contains('in') ? 'in:' : 'out:') + d.firstChild.textContent)`

// The simulator page in headless Chromium: the customer's line and the
// reply show once each, and a reload shows the same conversation.
func TestSimulatorPageInBrowser(t *testing.T) {
	h := startHarness(t)
	browser := browsertest.New(t)
	ctx, cancel := context.WithTimeout(browser, 60*time.Second)
	defer cancel()

	conversation := func(what string) []string {
		t.Helper()
		log, err := chromedp.Run(ctx, chromedp.Poll[[]string](`(() => {
			const l = `+readSimLog+`;
			return l.some((m) => m === 'in:hello') && l.some((m) => m.startsWith('out:') && m.includes('verification code')) ? l : null;
		})()`, chromedp.WithPollingInterval(50*time.Millisecond)))
		if err != nil {
			now, _ := chromedp.Run(browser, chromedp.Evaluate[[]string](readSimLog))
			t.Fatalf("%s: %v; the page shows %q", what, err, now)
		}
		return log
	}
	if err := chromedp.Do(ctx, chromedp.Navigate(h.engine.URL()+"/simulator")); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`document.getElementById('status').textContent === 'connected'`)); err != nil {
		t.Fatalf("the page did not connect: %v", err)
	}
	if err := chromedp.Do(ctx, chromedp.SendKeys(chromedp.CSS("#text"), "hello"), chromedp.Click(chromedp.CSS("#compose button"))); err != nil {
		t.Fatal(err)
	}
	before := conversation("after sending")
	if len(before) != 2 || before[0] != "in:hello" {
		t.Fatalf("the page shows %q, want the customer's line once, then the reply", before)
	}
	if err := chromedp.Do(ctx, chromedp.Reload()); err != nil {
		t.Fatal(err)
	}
	after := conversation("after a reload")
	if strings.Join(after, "\n") != strings.Join(before, "\n") {
		t.Fatalf("after a reload the page shows %q, before it showed %q", after, before)
	}
}
