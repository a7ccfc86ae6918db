package delivery

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"google.golang.org/protobuf/proto"

	"github.com/parleyhq/parley/channels"
	"github.com/parleyhq/parley/channels/meta"
	"github.com/parleyhq/parley/channels/twilio"
	"github.com/parleyhq/parley/channels/twilio/twiliotest"
	"github.com/parleyhq/parley/internal/seal"
	"github.com/parleyhq/parley/tenants"
	"github.com/parleyhq/parley/wire"
)

func TestBurstArrivesInOrderAndIsReported(t *testing.T) {
	f := newFixture(t)
	f.start(t)
	for i := range 20 {
		f.send(t, "acme", sam, fmt.Sprintf("reply %02d", i))
	}
	got := f.twilio.WaitFor(20, 20*time.Second)
	if len(got) != 20 {
		t.Fatalf("got %d messages", len(got))
	}
	for i, m := range got {
		if want := fmt.Sprintf("reply %02d", i); m.Body != want || m.To != "whatsapp:"+sam {
			t.Fatalf("message %d = %q to %s, want %q", i, m.Body, m.To, want)
		}
		if m.StatusCallback != "https://parley.example.com/webhooks/twilio/acme/status" {
			t.Fatalf("status callback %q", m.StatusCallback)
		}
	}
	// Each send: Usage messages_out and a DeliveryReport queued with the
	// provider's id, ids derived from the outbound and provider ids.
	var evs map[string]*wire.Event
	eventually(t, 10*time.Second, "40 events", func() bool { evs = eventsByID(f.events(t)); return len(evs) == 40 })
	for _, m := range got {
		u := evs[m.Body+"/usage"].GetUsage()
		if u.GetMetric() != "messages_out" || u.GetValue() != 1 {
			t.Fatalf("usage of %s: %v", m.Body, u)
		}
		d := evs["delivery/"+m.SID+"/queued"]
		if r := d.GetDelivery(); r.GetMessageId() != m.Body || r.GetStatus() != "queued" || r.GetChannel() != "twilio" || d.Tenant != "acme" || d.Phone != sam {
			t.Fatalf("delivery report of %s: %v", m.Body, d)
		}
	}
}

// rateLimitProxy stands in front of the local Twilio and answers the first
// request with 429, Twilio code 20429 and Retry-After, as Twilio does when
// an account sends too fast.
func rateLimitProxy(t *testing.T, target string, retryAfter string) (proxyURL string, failedAt func() time.Time) {
	u, _ := url.Parse(target)
	proxy := httputil.NewSingleHostReverseProxy(u)
	var (
		mu    sync.Mutex
		at    time.Time
		first = true
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		fail := first
		first = false
		if fail {
			at = time.Now()
		}
		mu.Unlock()
		if fail {
			w.Header().Set("Retry-After", retryAfter)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusTooManyRequests)
			fmt.Fprint(w, `{"code":20429,"message":"Too Many Requests","status":429}`)
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL, func() time.Time { mu.Lock(); defer mu.Unlock(); return at }
}

func TestRateLimitAnswerPausesTheNumberForRetryAfter(t *testing.T) {
	f := newFixture(t)
	proxyURL, failedAt := rateLimitProxy(t, f.twilio.URL(), "2")
	cfg := f.twilio.Config(twiliotest.SandboxFrom)
	cfg.APIBaseURL = proxyURL
	reg, err := tenants.NewRegistry([]tenants.Tenant{{ID: "acme", Twilio: cfg}})
	if err != nil {
		t.Fatal(err)
	}
	o := f.options()
	o.Tenants = reg
	f.run(t, o)

	f.send(t, "acme", sam, "first")
	// Sam's message is refused with 429 + Retry-After: 2. Alex's, from the
	// same number, waits out the pause too.
	eventually(t, 20*time.Second, "the 429", func() bool { return !failedAt().IsZero() })
	f.send(t, "acme", alex, "second")
	got := f.twilio.WaitFor(2, 20*time.Second)
	if len(got) != 2 {
		t.Fatalf("got %d messages", len(got))
	}
	for _, m := range got {
		// RetryBase is 20ms: only Retry-After explains a 2s wait.
		if wait := m.DateCreated.Sub(failedAt().Truncate(time.Second)); wait < 2*time.Second {
			t.Fatalf("%q sent %v after the 429", m.Body, wait)
		}
	}
	if n := f.twilio.Attempts(); n != 2 {
		t.Fatalf("%d attempts reached Twilio", n)
	}
}

func TestRetryableFailuresAreRetriedThenDeadLettered(t *testing.T) {
	f := newFixture(t)
	f.start(t)
	f.twilio.FailNext(1, 503, 20503, "Service unavailable")
	f.twilio.FailNext(1, 400, twilio.CodeRateLimited, "Rate limit exceeded for Channel")
	f.twilio.FailNext(1, 500, 20500, "Internal Server Error")
	f.send(t, "acme", sam, "after three failures")
	got := f.twilio.WaitFor(1, 20*time.Second)
	if len(got) != 1 || got[0].Body != "after three failures" {
		t.Fatalf("got %+v", got)
	}

	// MaxAttempts is 4: four 500s and the message is dead-lettered.
	f.twilio.FailNext(4, 500, 20500, "Internal Server Error")
	f.send(t, "acme", alex, "never")
	f.send(t, "acme", alex, "after it")
	got = f.twilio.WaitFor(2, 20*time.Second)
	if len(got) != 2 || got[1].Body != "after it" {
		t.Fatalf("got %q", bodies(got))
	}
	if n := f.twilio.Attempts(); n != 4+4+1 {
		t.Fatalf("%d attempts", n)
	}
	var dl []deadLetter
	eventually(t, 10*time.Second, "a dead letter", func() bool { dl = f.deadLetters(t); return len(dl) == 1 })
	d := dl[0]
	if d.out.GetId() != "never" || d.key != "acme|"+alex || d.headers[HeaderReason] != ReasonRetriesExhausted ||
		d.headers[HeaderAttempts] != "4" || d.headers[HeaderCode] != "20500" || d.headers[HeaderTopic] != wire.TopicOutbound ||
		d.headers[HeaderOutboundID] != "never" || d.headers[HeaderError] == "" {
		t.Fatalf("dead letter %+v", d)
	}
	evs := eventsByID(f.events(t))
	if r := evs["never/failed"].GetDelivery(); r.GetStatus() != "failed" || r.GetErrorCode() != "20500" || r.GetMessageId() != "never" {
		t.Fatalf("failed report %v", r)
	}
}

func TestUnsubscribedCustomerIsOptedOutNotRetried(t *testing.T) {
	f := newFixture(t)
	f.start(t)
	f.twilio.FailNext(1, 400, twilio.CodeUnsubscribed, "Attempt to send to unsubscribed recipient")
	f.send(t, "acme", alex, "to an opted-out customer")
	eventually(t, 20*time.Second, "the refused send", func() bool { return f.twilio.Attempts() == 1 })
	f.send(t, "acme", sam, "someone else")
	got := f.twilio.WaitFor(1, 20*time.Second)
	if len(got) != 1 || got[0].Body != "someone else" {
		t.Fatalf("got %q", bodies(got))
	}
	var dl []deadLetter
	eventually(t, 10*time.Second, "a dead letter", func() bool { dl = f.deadLetters(t); return len(dl) == 1 })
	if d := dl[0]; d.headers[HeaderReason] != ReasonOptedOut || d.headers[HeaderCode] != "21610" || d.headers[HeaderAttempts] != "1" || d.out.GetId() != "to an opted-out customer" {
		t.Fatalf("dead letter %+v", d)
	}
	if n := f.twilio.Attempts(); n != 2 {
		t.Fatalf("%d attempts: 21610 was retried", n)
	}
	evs := eventsByID(f.events(t))
	if r := evs["to an opted-out customer/failed"].GetDelivery(); r.GetStatus() != "failed" || r.GetErrorCode() != "21610" {
		t.Fatalf("failed report %v", r)
	}
	c := evs["to an opted-out customer/opted_out"]
	if cc := c.GetConversation(); cc.GetChange() != "opted_out" || !cc.GetByCustomer() || cc.GetConversationId() != "c-"+alex || c.Phone != alex || c.Tenant != "acme" {
		t.Fatalf("opt-out event %v", c)
	}
	// The session hears of it on its own stream: one OptOut command,
	// after a failed try.
	var recs []kafka.Message
	eventually(t, 10*time.Second, "the opt-out command", func() bool { recs = f.inbound.records(); return len(recs) > 0 })
	if len(recs) != 1 || recs[0].Topic != wire.TopicInbound || string(recs[0].Key) != string(wire.Key("acme", alex)) {
		t.Fatalf("records to sessions %+v", recs)
	}
	in := &wire.Inbound{}
	if err := proto.Unmarshal(recs[0].Value, in); err != nil {
		t.Fatal(err)
	}
	cmd := in.GetCommand()
	if in.Id != "optout/to an opted-out customer" || in.Tenant != "acme" || in.Phone != alex || in.Channel != "twilio" || in.ReceivedAtMs == 0 ||
		cmd.GetOperator() != "provider" || cmd.GetOptOut().GetOutboundId() != "to an opted-out customer" || cmd.GetOptOut().GetErrorCode() != "21610" {
		t.Fatalf("opt-out command %v", in)
	}
}

func TestOutsideTheWindowSendsTheFallbackTemplate(t *testing.T) {
	f := newFixture(t)
	f.start(t)
	f.twilio.FailNext(1, 400, twilio.CodeOutsideWindow, "Failed to send freeform message because you are outside the allowed window")
	f.send(t, "acme", sam, "late reply")
	got := f.twilio.WaitFor(1, 20*time.Second)
	if len(got) != 1 {
		t.Fatalf("got %d", len(got))
	}
	if m := got[0]; m.ContentSID != fallbackSID || m.ContentVariables != `{"1":"there"}` || m.Body != "" || m.To != "whatsapp:"+sam {
		t.Fatalf("sent %+v", m)
	}
	var evs map[string]*wire.Event
	eventually(t, 10*time.Second, "the template's events", func() bool {
		evs = eventsByID(f.events(t))
		return evs["late reply/usage"] != nil
	})
	if u := evs["late reply/usage"].GetUsage(); u.GetMetric() != "templates_out" {
		t.Fatalf("usage %v", u)
	}
	if r := evs["delivery/"+got[0].SID+"/queued"].GetDelivery(); r.GetMessageId() != "late reply" {
		t.Fatalf("report %v", r)
	}

	// A tenant without a fallback: a failed report and a dead letter.
	f.twilio.FailNext(1, 400, twilio.CodeOutsideWindow, "Failed to send freeform message because you are outside the allowed window")
	f.send(t, "bare", sam, "late, no template")
	var dl []deadLetter
	eventually(t, 20*time.Second, "a dead letter", func() bool { dl = f.deadLetters(t); return len(dl) == 1 })
	if d := dl[0]; d.headers[HeaderReason] != ReasonOutsideWindow || d.headers[HeaderCode] != "63016" {
		t.Fatalf("dead letter %+v", d)
	}
	if r := eventsByID(f.events(t))["late, no template/failed"].GetDelivery(); r.GetStatus() != "failed" || r.GetErrorCode() != "63016" {
		t.Fatalf("report %v", r)
	}
	// A template record goes out as a template, with a named template
	// resolved through the catalogue.
	f.produce(t, &wire.Outbound{Id: "tpl", Tenant: "acme", Phone: kim, Template: &wire.Template{ContentSid: "HX00000000000000000000000000000abc", Variables: map[string]string{"1": "Kim"}}})
	got = f.twilio.WaitFor(2, 20*time.Second)
	if len(got) != 2 || got[1].ContentSID != "HX00000000000000000000000000000abc" || got[1].ContentVariables != `{"1":"Kim"}` {
		t.Fatalf("got %+v", got)
	}
}

// The sender dies after a send was recorded in the ledger and before the
// offset was committed: none of its records commit. The next sender gets
// them all again and must send only those never sent.
func TestExactlyOnceAcrossACrashBetweenSendAndCommit(t *testing.T) {
	f := newFixture(t)
	customers := []string{sam, alex, kim}
	var want []string
	for i := range 10 {
		for _, c := range customers {
			out := f.send(t, "acme", c, fmt.Sprintf("%s #%02d", c, i))
			want = append(want, out.Id)
		}
	}

	// First life: every record stops unfinished right after its ledger
	// write (as if the process died there), and after 12 sends the
	// process "dies" for good.
	var sends atomic.Int32
	crashed := make(chan struct{})
	var once sync.Once
	o := f.options()
	o.AfterLedgerWrite = func(*wire.Outbound) bool {
		if sends.Add(1) >= 12 {
			once.Do(func() { close(crashed) })
		}
		return true
	}
	stop := f.run(t, o)
	select {
	case <-crashed:
	case <-time.After(30 * time.Second):
		t.Fatal("the first sender never sent 12 messages")
	}
	stop()
	first := f.twilio.Messages()
	if len(first) < 12 || len(first) >= 30 {
		t.Fatalf("first life sent %d messages", len(first))
	}

	// Second life: a new sender in the same group.
	f.start(t)
	f.twilio.WaitFor(30, 30*time.Second)
	time.Sleep(500 * time.Millisecond) // a duplicate would arrive now
	got := f.twilio.Messages()
	seen := map[string]int{}
	perCustomer := map[string][]string{}
	for _, m := range got {
		seen[m.Body]++
		perCustomer[m.To] = append(perCustomer[m.To], m.Body)
	}
	for _, id := range want {
		if seen[id] != 1 {
			t.Errorf("%q received %d times", id, seen[id])
		}
	}
	if len(got) != 30 {
		t.Fatalf("Twilio received %d messages, want 30", len(got))
	}
	// And in order per customer, across the restart.
	for _, c := range customers {
		for i, body := range perCustomer["whatsapp:"+c] {
			if want := fmt.Sprintf("%s #%02d", c, i); body != want {
				t.Fatalf("%s's message %d is %q, want %q", c, i, body, want)
			}
		}
	}
	// The skipped records were reported again with the same event ids.
	evs := eventsByID(f.events(t))
	for _, m := range got {
		if evs["delivery/"+m.SID+"/queued"] == nil || evs[m.Body+"/usage"] == nil {
			t.Fatalf("no events for %q", m.Body)
		}
	}
	if n := len(evs); n != 60 {
		t.Fatalf("%d distinct events, want 60", n)
	}
}

// A partition that moves to another sender: what the first one sent is in
// the ledger, and the second finds it before sending.
func TestLedgerIsSharedBetweenSenders(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	a := New(f.options())
	if err := a.setup(ctx); err != nil {
		t.Fatal(err)
	}
	defer a.writer.close()
	b := New(f.options())
	if err := b.setup(ctx); err != nil {
		t.Fatal(err)
	}
	defer b.writer.close()

	before := time.Now()
	if err := b.ledger.fresh(ctx, 2, before); err != nil {
		t.Fatal(err)
	}
	e := sentEntry{ProviderID: "SM1", Channel: "twilio", AtMs: time.Now().UnixMilli()}
	if err := a.ledger.put(ctx, 2, "out-1", e); err != nil {
		t.Fatal(err)
	}
	// b's last catch-up started before the write: it does not know yet,
	// and a record fetched before b's catch-up needs none.
	if _, ok := b.ledger.get("out-1"); ok {
		t.Fatal("b knows before reading")
	}
	if err := b.ledger.fresh(ctx, 2, before); err != nil {
		t.Fatal(err)
	}
	if _, ok := b.ledger.get("out-1"); ok {
		t.Fatal("a catch-up that was fresh enough ran again")
	}
	// A record fetched now makes b read on.
	if err := b.ledger.fresh(ctx, 2, time.Now()); err != nil {
		t.Fatal(err)
	}
	if got, ok := b.ledger.get("out-1"); !ok || got != e {
		t.Fatalf("b read %+v, %v", got, ok)
	}
	// Partition 6 of the outbound topic maps to ledger partition 2 (4
	// partitions), and other partitions do not hold it.
	if err := b.ledger.fresh(ctx, 1, time.Now()); err != nil {
		t.Fatal(err)
	}
	if b.ledger.partitionOf(6) != 2 {
		t.Fatal("partition mapping")
	}
	// Old entries are pruned.
	if n := b.ledger.prune(time.Now().Add(49 * time.Hour)); n != 1 || b.ledger.size() != 0 {
		t.Fatalf("pruned %d, %d left", n, b.ledger.size())
	}
}

func TestMetaCloudAPI(t *testing.T) {
	f := newFixture(t)
	f.start(t)
	f.meta.FailNext(1, 400, meta.CodeThroughput, "(#130429) Rate limit hit")
	f.meta.FailNext(1, 500, 131000, "(#131000) Something went wrong")
	f.send(t, "wa", sam, "hello from meta")
	got := f.meta.WaitFor(1, 20*time.Second)
	if len(got) != 1 || got[0].Text != "hello from meta" || got[0].To != sam[1:] || got[0].PhoneNumberID != f.metaCfg.PhoneNumberID {
		t.Fatalf("got %+v", got)
	}
	if n := f.meta.Attempts(); n != 3 {
		t.Fatalf("%d attempts", n)
	}

	// Outside the window: the fallback template, parameters in order.
	f.meta.FailNext(1, 400, meta.CodeOutsideWindow, "(#131047) Re-engagement message")
	f.send(t, "wa", alex, "late")
	got = f.meta.WaitFor(2, 20*time.Second)
	if len(got) != 2 {
		t.Fatalf("got %d", len(got))
	}
	if m := got[1]; m.Type != "template" || m.TemplateName != "reengage" || m.TemplateLanguage != "en_GB" ||
		!slices.Equal(m.TemplateParams, []string{"one", "two", "ten"}) || m.To != alex[1:] {
		t.Fatalf("sent %+v", m)
	}
	// Undeliverable: permanent.
	f.meta.FailNext(1, 400, meta.CodeUndeliverable, "(#131026) Message Undeliverable")
	f.send(t, "wa", kim, "nobody")
	var dl []deadLetter
	eventually(t, 20*time.Second, "a dead letter", func() bool { dl = f.deadLetters(t); return len(dl) == 1 })
	if d := dl[0]; d.headers[HeaderReason] != ReasonPermanent || d.headers[HeaderCode] != "131026" {
		t.Fatalf("dead letter %+v", d)
	}
	var evs map[string]*wire.Event
	eventually(t, 10*time.Second, "events", func() bool { evs = eventsByID(f.events(t)); return evs["nobody/failed"] != nil })
	if r := evs["delivery/"+got[0].ID+"/queued"].GetDelivery(); r.GetChannel() != "meta" || r.GetMessageId() != "hello from meta" {
		t.Fatalf("report %v", r)
	}
	if u := evs["late/usage"].GetUsage(); u.GetMetric() != "templates_out" {
		t.Fatalf("usage %v", u)
	}
	if r := evs["nobody/failed"].GetDelivery(); r.GetErrorCode() != "131026" || r.GetChannel() != "meta" {
		t.Fatalf("report %v", r)
	}
}

func TestUnsendableRecordsAreDeadLettered(t *testing.T) {
	f := newFixture(t)
	f.start(t)
	if err := f.producer.Produce(context.Background(), kafkaMessage(wire.TopicOutbound, "acme|"+sam, []byte{0xff, 0xff})); err != nil {
		t.Fatal(err)
	}
	f.send(t, "nobody", sam, "unknown tenant")
	f.produce(t, &wire.Outbound{Id: "meta on twilio", Tenant: "acme", Phone: sam, Channel: "meta", Text: "x"})
	var dl []deadLetter
	eventually(t, 20*time.Second, "three dead letters", func() bool { dl = f.deadLetters(t); return len(dl) == 3 })
	reasons := map[string]bool{}
	for _, d := range dl {
		reasons[d.headers[HeaderReason]] = true
	}
	for _, r := range []string{ReasonUndecodable, ReasonUnknownTenant, ReasonNoChannel} {
		if !reasons[r] {
			t.Fatalf("no %s dead letter in %+v", r, dl)
		}
	}
	if n := f.twilio.Attempts(); n != 0 {
		t.Fatalf("%d sends", n)
	}
}

func TestSimulatorTenantDeliversToThePage(t *testing.T) {
	f := newFixture(t)
	f.start(t)
	_, live, cancel, err := f.hub.Subscribe("demo", sam)
	if err != nil {
		t.Fatal(err)
	}
	defer cancel()
	f.send(t, "demo", sam, "hello page")
	select {
	case r := <-live:
		if r.Text != "hello page" {
			t.Fatalf("got %+v", r)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no reply on the simulator hub")
	}
	if len(f.twilio.Messages()) != 0 {
		t.Fatal("simulator reply went to Twilio")
	}
}

func TestPerNumberRateLimit(t *testing.T) {
	f := newFixture(t, func(tn *tenants.Tenant) {
		if tn.ID == "acme" {
			limit := 20.0
			tn.Outbound.RateLimit = &limit
		}
	})
	f.start(t)
	// 21 messages from acme's number at 20/s (burst 1) take a second;
	// bare's number is not limited and does not wait for acme's.
	start := time.Now()
	for i := range 21 {
		f.send(t, "acme", fmt.Sprintf("+4477009%05d", i), fmt.Sprintf("limited %02d", i))
		f.send(t, "bare", fmt.Sprintf("+4477009%05d", i), fmt.Sprintf("free %02d", i))
	}
	got := f.twilio.WaitFor(42, 30*time.Second)
	if len(got) != 42 {
		t.Fatalf("got %d", len(got))
	}
	if took := time.Since(start); took < 950*time.Millisecond {
		t.Fatalf("21 sends at 20/s took %v", took)
	}
	lastFree, lastLimited := 0, 0
	for i, m := range got {
		if m.From == twiliotest.SandboxFrom {
			lastLimited = i
		} else {
			lastFree = i
		}
	}
	if lastFree > lastLimited {
		t.Fatalf("the unlimited number finished after the limited one: %s", bodies(got))
	}
}

func TestLaneHoldsItsRate(t *testing.T) {
	l := newLanes(1).get("n")
	ctx := context.Background()
	const rate, n = 200.0, 201
	start := time.Now()
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			if err := l.wait(ctx, rate); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	// n tokens at 200/s with a burst of 1: (n-1)/200 = 1s. (The upper
	// bound is loose for loaded machines; bench/outbound measures the
	// accuracy.)
	if took := time.Since(start); took < 950*time.Millisecond || took > 30*time.Second {
		t.Fatalf("%d waits at %v/s took %v", n, rate, took)
	}
	// Off: no wait.
	start = time.Now()
	for range 1000 {
		_ = l.wait(ctx, 0)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Fatalf("unlimited waits took %v", took)
	}
	// A pause holds the lane.
	l.pause(200 * time.Millisecond)
	start = time.Now()
	_ = l.wait(ctx, 0)
	if took := time.Since(start); took < 190*time.Millisecond {
		t.Fatalf("paused wait took %v", took)
	}
}

func TestClassify(t *testing.T) {
	// Which answers mean what is each provider's (TestClassify in
	// channels/twilio and channels/meta); the sender takes their verdict.
	cases := []struct {
		name        string
		f           failure
		kind        channels.Kind
		code        string
		rateLimited bool
	}{
		{"twilio 429", classify(&channels.SendError{Provider: "twilio", Status: 429, Code: 20429, Kind: channels.Retry, RateLimited: true}), channels.Retry, "20429", true},
		{"twilio 503", classify(&channels.SendError{Provider: "twilio", Status: 503, Kind: channels.Retry}), channels.Retry, "http_503", false},
		{"twilio network", classify(&channels.SendError{Provider: "twilio", Kind: channels.Retry}), channels.Retry, "network", false},
		{"twilio 21610", classify(&channels.SendError{Provider: "twilio", Status: 400, Code: 21610, Kind: channels.OptedOut}), channels.OptedOut, "21610", false},
		{"meta 131047, wrapped", classify(fmt.Errorf("send: %w", &channels.SendError{Provider: "meta", Status: 400, Code: 131047, Kind: channels.OutsideWindow})), channels.OutsideWindow, "131047", false},
		{"refused input", classify(&channels.SendError{Provider: "twilio", Message: "empty body"}), channels.Permanent, "invalid", false},
		{"other error", classify(context.DeadlineExceeded), channels.Retry, "network", false},
	}
	for _, tc := range cases {
		if tc.f.kind != tc.kind || tc.f.code != tc.code || tc.f.rateLimited != tc.rateLimited {
			t.Errorf("%s: got %v %s rateLimited=%v", tc.name, tc.f.kind, tc.f.code, tc.f.rateLimited)
		}
	}
}

// TestSealedTextsAreOpenedOnlyToSend: a one-time code crosses
// parley.outbound sealed; the sender opens it with the shared key and the
// provider gets the text. One sealed with a key the sender does not have
// is dead-lettered (unsealable), never sent sealed or empty.
func TestSealedTextsAreOpenedOnlyToSend(t *testing.T) {
	f := newFixture(t)
	mine, err := seal.FromEnv(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	k, _ := seal.ParseKey(seal.NewKey())
	other, _ := seal.New(k)
	o := f.options()
	o.Secrets = mine
	f.run(t, o)
	code := "Your Sparkle code is 481516"
	f.produce(t, &wire.Outbound{Id: "code-1", Tenant: "acme", Phone: sam, Channel: "twilio", SealedText: mine.Seal([]byte(code), []byte("code-1"))})
	f.produce(t, &wire.Outbound{Id: "code-2", Tenant: "acme", Phone: sam, Channel: "twilio", SealedText: other.Seal([]byte(code), []byte("code-2"))})
	// Sealed for another record: does not open here either.
	f.produce(t, &wire.Outbound{Id: "code-3", Tenant: "acme", Phone: sam, Channel: "twilio", SealedText: mine.Seal([]byte(code), []byte("code-1"))})
	sent := f.twilio.WaitFor(1, 20*time.Second)
	if sent[0].Body != code {
		t.Fatalf("sent %q", sent[0].Body)
	}
	var dl []deadLetter
	eventually(t, 20*time.Second, "two dead letters", func() bool { dl = f.deadLetters(t); return len(dl) == 2 })
	for _, d := range dl {
		if d.headers[HeaderReason] != ReasonUnsealable {
			t.Fatalf("dead letter %+v", d.headers)
		}
	}
	if n := f.twilio.Attempts(); n != 1 {
		t.Fatalf("%d sends, want the one that opened", n)
	}
}
