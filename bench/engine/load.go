package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/parleyhq/parley/bench/loadgen"
)

// The one tenant: the same token and public URL for the engine and the
// baseline, so the same signed forms are valid on both.
const (
	tenantID      = "acme"
	authToken     = "0123456789abcdef0123456789abcdef"
	publicBaseURL = "https://parley.example.com"
	webhookPath   = "/webhooks/twilio/" + tenantID
	senderNumber  = "whatsapp:+14155238886"
)

var accountSID = loadgen.AccountSID(1)

func webhook() loadgen.Webhook {
	return loadgen.Webhook{
		PublicBaseURL: publicBaseURL,
		Path:          webhookPath,
		AuthToken:     authToken,
		AccountSID:    accountSID,
		To:            senderNumber,
	}
}

// What a request of the load is.
const (
	kindNew      uint8 = iota // a new customer's first message: the code goes out
	kindQuestion              // a signed-in customer asks: the brain answers
	kindStatus                // Twilio's status callback on an earlier reply: no reply
)

var kindNames = [...]string{"new", "question", "status"}

// firstWords are new customers' first messages; whatever they say, they
// are asked to sign in.
var firstWords = []string{
	"Hi",
	"Hello, is anyone there?",
	"Can I book a clean for Saturday morning?",
	"What time do you open tomorrow?",
	"Hi, I'd like to check my appointment please",
}

// questions are what signed-in customers ask, one reply each: most run a
// tool against the business's system (services, availability, bookings,
// plan, account), some do not (help, thanks). None hands over to a person
// or cancels, which would change what later questions get.
var questions = []string{
	"What services do you offer?",
	"When is my next clean?",
	"Do you have any free slots on Friday?",
	"How many sessions do I have left on my plan?",
	"Can you show my account details?",
	"What can you help me with?",
	"Thanks!",
	"How much is a deep clean?",
	"What bookings do I have coming up?",
	"Is there availability for a premium clean next Monday?",
}

// statuses are the callbacks Twilio posts about each reply.
var statuses = []string{"sent", "delivered", "read"}

// customers are the numbers of the load: signedIn[j] signs in before the
// load starts (and asks the questions); new customers are fresh numbers.
func signedInWaID(j int) string { return fmt.Sprintf("4474%08d", j) }
func newWaID(i int) string      { return fmt.Sprintf("4475%08d", i) }

// load is the pre-built mixed load: forms[i] is request i; kind[i] and
// phone[i] say what it is and whose. Status callbacks name replies that
// exist only once the signed-in customers have signed in, so they are
// filled per target (withStatuses).
type load struct {
	forms []loadgen.Request
	kind  []uint8
	phone []string
	// statusOf[i], for a status callback, is which (customer, reply,
	// status) it reports: customer*6 + reply*3 + status.
	statusOf  []int32
	signedIn  int
	mixCounts [3]int
}

// buildLoad makes n requests, their kinds drawn with the weights of mix
// (new, question, status), for `signedIn` signed-in customers.
func buildLoad(n, signedIn int, mix [3]float64, seed uint64) *load {
	r := rand.New(rand.NewPCG(seed, 0x656e67696e65))
	w := webhook()
	l := &load{forms: make([]loadgen.Request, n), kind: make([]uint8, n), phone: make([]string, n),
		statusOf: make([]int32, n), signedIn: signedIn}
	total := mix[0] + mix[1] + mix[2]
	var nNew, nQ, nS int
	for i := range n {
		x := r.Float64() * total
		k := kindStatus
		switch {
		case x < mix[0]:
			k = kindNew
		case x < mix[0]+mix[1]:
			k = kindQuestion
		}
		l.kind[i] = k
		l.mixCounts[k]++
		sid := fmt.Sprintf("SM%02x%014x%016x", k, r.Uint64()>>8, uint64(i))
		switch k {
		case kindNew:
			wa := newWaID(nNew)
			nNew++
			l.phone[i] = "+" + wa
			l.forms[i] = loadgen.Message(w, sid, wa, "Sam", firstWords[r.IntN(len(firstWords))])
		case kindQuestion:
			// Customers take turns, so one customer's questions are far
			// apart in the load and never in flight together.
			wa := signedInWaID(nQ % signedIn)
			nQ++
			l.phone[i] = "+" + wa
			l.forms[i] = loadgen.Message(w, sid, wa, "Sam", questions[r.IntN(len(questions))])
		case kindStatus:
			j := nS % signedIn
			combo := (nS / signedIn) % 6
			nS++
			l.phone[i] = "+" + signedInWaID(j)
			l.statusOf[i] = int32(j*6 + combo)
		}
	}
	// Until a target fills them in, status callbacks name made-up SIDs
	// (all the baseline needs: it checks signatures, nothing else).
	l.withStatuses(nil)
	return l
}

// withStatuses fills the status callbacks from the SIDs of the signed-in
// customers' replies (sids[j] = their code message and greeting); nil
// makes SIDs up.
func (l *load) withStatuses(sids [][2]string) {
	w := webhook()
	for i, k := range l.kind {
		if k != kindStatus {
			continue
		}
		c := int(l.statusOf[i])
		j, rep, st := c/6, (c%6)/3, c%3
		sid := fmt.Sprintf("SM%016x%016x", j, rep)
		if sids != nil {
			sid = sids[j][rep]
		}
		l.forms[i] = loadgen.Status(w, sid, strings.TrimPrefix(l.phone[i], "+"), statuses[st])
	}
}

// signIn signs in customers 0..n-1 over the engine's webhook, as people
// would: "Hi", read the code in the reply that reaches the provider, send
// it, wait for the greeting. It returns the SIDs of the two replies each
// got, for the status callbacks of the load.
func signIn(ctx context.Context, addr string, p *provider, n, conns int, timeout time.Duration) ([][2]string, error) {
	phones := make([]string, n)
	for j := range phones {
		phones[j] = "+" + signedInWaID(j)
	}
	waits := p.startWatching(phones)
	defer p.stopWatching()
	hc := &fasthttp.HostClient{Addr: addr, MaxConns: conns, MaxIdemponentCallAttempts: 1,
		ReadTimeout: timeout, WriteTimeout: timeout}
	defer hc.CloseIdleConnections()
	w := webhook()
	post := func(r loadgen.Request) error {
		req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
		defer fasthttp.ReleaseRequest(req)
		defer fasthttp.ReleaseResponse(resp)
		req.SetRequestURI("http://" + addr + webhookPath)
		req.Header.SetMethod(fasthttp.MethodPost)
		req.Header.SetContentType("application/x-www-form-urlencoded")
		req.Header.Set("X-Twilio-Signature", r.Signature)
		req.SetBodyRaw(r.Body)
		if err := hc.Do(req, resp); err != nil {
			return err
		}
		if resp.StatusCode() != fasthttp.StatusOK {
			return fmt.Errorf("webhook answered %d: %s", resp.StatusCode(), resp.Body())
		}
		return nil
	}
	await := func(c chan watched) (watched, error) {
		t := time.NewTimer(timeout)
		defer t.Stop()
		select {
		case m := <-c:
			return m, nil
		case <-t.C:
			return watched{}, fmt.Errorf("no reply within %v", timeout)
		case <-ctx.Done():
			return watched{}, ctx.Err()
		}
	}
	sids := make([][2]string, n)
	var (
		next     atomic.Int64
		wg       sync.WaitGroup
		errMu    sync.Mutex
		firstErr error
	)
	fail := func(err error) {
		errMu.Lock()
		defer errMu.Unlock()
		if firstErr == nil {
			firstErr = err
		}
	}
	for range conns {
		wg.Go(func() {
			for {
				j := int(next.Add(1) - 1)
				if j >= n || ctx.Err() != nil {
					return
				}
				wa, c := signedInWaID(j), waits[phones[j]]
				if err := post(loadgen.Message(w, fmt.Sprintf("SMff%030x", 2*j), wa, "Sam", "Hi")); err != nil {
					fail(fmt.Errorf("customer %d hi: %w", j, err))
					return
				}
				m, err := await(c)
				if err != nil {
					fail(fmt.Errorf("customer %d code: %w", j, err))
					return
				}
				code := sixDigits(m.body)
				if code == "" {
					fail(fmt.Errorf("customer %d: no code in %q", j, m.body))
					return
				}
				sids[j][0] = m.sid
				if err := post(loadgen.Message(w, fmt.Sprintf("SMff%030x", 2*j+1), wa, "Sam", code)); err != nil {
					fail(fmt.Errorf("customer %d code: %w", j, err))
					return
				}
				m, err = await(c)
				if err != nil {
					fail(fmt.Errorf("customer %d greeting: %w", j, err))
					return
				}
				if !strings.Contains(m.body, "signed in") {
					fail(fmt.Errorf("customer %d: code not accepted: %q", j, m.body))
					return
				}
				sids[j][1] = m.sid
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	return sids, ctx.Err()
}
