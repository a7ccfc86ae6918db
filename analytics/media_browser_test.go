package analytics

import (
	"bytes"
	"context"
	"encoding/base64"
	"io"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/parleyhq/parley/internal/browsertest"
	"github.com/parleyhq/parley/tenants"
	"github.com/parleyhq/parley/wire"
)

// onePixelPNG is a 1×1 PNG, the file the customer "sent".
var onePixelPNG, _ = base64.StdEncoding.DecodeString("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==")

// The conversation log offers the files customers sent; a click fetches
// one with the key and shows it, and it stays shown across refreshes.
func TestDashboardShowsCustomerFiles(t *testing.T) {
	store := freshDataset(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const ref = "meta-media:424242"
	photo := &wire.Event{Id: "photo-1", Tenant: "acme", Phone: dsPhone(2), AtMs: dsNow.Add(-time.Second).UnixMilli(),
		Kind: &wire.Event_Message{Message: &wire.MessageLog{Direction: "in", MessageId: "photo-1", Channel: "meta", Body: "the stain\n[image/png]", Media: ref}}}
	if err := store.WriteEvents(ctx, []*wire.Event{photo}); err != nil {
		t.Fatal(err)
	}
	var fetched atomic.Int32
	base := serve(t, Options{Store: store, FetchMedia: func(_ context.Context, tn *tenants.Tenant, r string) (io.ReadCloser, string, int64, error) {
		if tn.ID != "acme" || r != ref {
			return nil, "", 0, ErrMediaNotFound
		}
		fetched.Add(1)
		return io.NopCloser(bytes.NewReader(onePixelPNG)), "image/png", int64(len(onePixelPNG)), nil
	}})

	browser := browsertest.New(t)
	bctx, bcancel := context.WithTimeout(browser, 60*time.Second)
	defer bcancel()
	wait := func(what, expr string) {
		t.Helper()
		if _, err := chromedp.Run(bctx, chromedp.Poll[bool](expr, chromedp.WithPollingInterval(50*time.Millisecond))); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	if err := chromedp.Do(bctx, chromedp.Navigate(base+"/dashboard?refresh=2")); err != nil {
		t.Fatal(err)
	}
	wait("login form", `document.body.dataset.view === 'login'`)
	if err := chromedp.Do(bctx, chromedp.SendKeys(chromedp.CSS("#key"), keyAdmin), chromedp.Click(chromedp.CSS("#login-form button[type=submit]"))); err != nil {
		t.Fatal(err)
	}
	sel := `document.querySelector('#log .media[data-ref="` + ref + `"]')`
	wait("the file's button in the log", sel+` !== null && `+sel+`.querySelector('button') !== null`)
	if err := chromedp.Do(bctx, chromedp.Click(chromedp.CSS(`#log .media[data-ref="`+ref+`"] button`))); err != nil {
		t.Fatal(err)
	}
	wait("the picture shown", sel+`.dataset.state === 'shown' && `+sel+`.querySelector('img').naturalWidth === 1`)
	// A refresh (every 2 s here) redraws the log; the picture stays.
	loaded, err := chromedp.Run(bctx, chromedp.Evaluate[float64](`Number(document.body.dataset.loaded)`))
	if err != nil {
		t.Fatal(err)
	}
	wait("a refresh", `Number(document.body.dataset.loaded) > `+strconv.FormatFloat(loaded, 'f', -1, 64))
	wait("still shown", sel+`.dataset.state === 'shown' && `+sel+`.querySelector('img') !== null`)
	if n := fetched.Load(); n != 1 {
		t.Fatalf("the file was fetched %d times, want once", n)
	}
}
