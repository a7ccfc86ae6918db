package main

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/parleyhq/parley/internal/clustertest"
	"github.com/parleyhq/parley/wire"
)

// TestExactlyOnceAcrossCrashPoints holds the session role to issue 10's
// exactly-once (item 4): the node is killed (PARLEY_FAULT, SIGKILL) at each
// step of the transaction that handles a batch — after a session's
// outputs were handed to it, after its changelog record, and after the
// whole batch was produced and flushed but before the offsets commit — and
// started again without the fault. Each crash batch holds three messages of
// one partition, each acknowledged (200) before the node's first poll:
//
//   - a signed-in customer asks a question: after the restart exactly one
//     answer, a real one (not a code), and the next question too: still
//     signed in;
//   - a customer with a code (3 attempts allowed) sends a wrong one: after
//     the restart exactly one answer, "2 attempts left", and then two more
//     wrong codes lock it, not one: the attempt counted once;
//   - a new customer says hello: exactly one code arrives, and that code
//     signs them in: the state holds the code that was sent, not one the
//     dead attempt minted.
//
// The dead attempt's records are read off the broker (read_uncommitted) to
// show the crash came where it says: its replies and states were written,
// and neither reached a customer nor the restored sessions. A replayed
// record that met the dead attempt's state would be dropped as a
// redelivery (its message id is in that state) or count the attempt
// twice; an output of the dead attempt that leaked would be a second
// message.
func TestExactlyOnceAcrossCrashPoints(t *testing.T) {
	const sessionTimeout = 6 * time.Second
	start := time.Now()
	c := clustertest.Start(t, clustertest.Options{Nodes: 1, SessionTimeout: sessionTimeout})
	n := c.Nodes[0]

	cases := []crashCase{
		// Only the session that reached the step first is sure to have
		// written its outputs; the others of the batch run in parallel.
		{point: "after-outputs", minOutputs: 1},
		{point: "after-changelog", minOutputs: 1, minChangelog: 1},
		// The whole batch was produced: every session's reply and state.
		{point: "before-commit", minOutputs: 3, minChangelog: 3, everyone: true},
	}
	groups := samePartitionPhones(len(cases), 3, c.Opts.Partitions)
	for i := range cases {
		cases[i].signedIn, cases[i].pending, cases[i].newcomer = groups[i][0], groups[i][1], groups[i][2]
	}

	// Setup on the node as it runs normally: the signed-in customers sign
	// in, the pending ones get a code.
	var wg sync.WaitGroup
	errs := make(chan error, 2*len(cases))
	for i := range cases {
		cc := &cases[i]
		wg.Add(2)
		go func() { defer wg.Done(); errs <- c.SignIn(n, cc.signedIn) }()
		go func() {
			defer wg.Done()
			code, err := c.RequestCode(n, cc.pending)
			cc.code = code
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("setup: %v", err)
		}
	}
	t.Logf("setup: %d customers ready in %.1fs", 2*len(cases), time.Since(start).Seconds())

	for i := range cases {
		cc := &cases[i]
		if !t.Run(cc.point, func(t *testing.T) { cc.run(t, c, n, sessionTimeout) }) {
			// The node may be left dead or faulted: the next case would
			// test nothing.
			t.FailNow()
		}
	}
	t.Logf("%d crash points in %.1fs", len(cases), time.Since(start).Seconds())
}

// crashCase is one crash point, what the dead attempt must have left on the
// broker for the crash to have come at that step, and its customers.
type crashCase struct {
	point string
	// minOutputs and minChangelog are the least outbound replies and
	// changelog records of the case's customers the dead attempt wrote;
	// everyone: each customer has at least one reply and exactly one
	// changelog record in it.
	minOutputs, minChangelog int
	everyone                 bool

	signedIn, pending, newcomer string // one partition
	code                        string // pending's valid code
}

// The crash batch's messages, and the answers the committed history
// implies for them.
const (
	crashQuestion  = "my bookings" // answered with clustertest.BookingName
	secondQuestion = "what services do you offer"
	twoLeft        = "You have 2 attempts left."
	oneLeft        = "You have 1 attempt left."
)

func (cc *crashCase) run(t *testing.T, c *clustertest.Cluster, n *clustertest.Node, sessionTimeout time.Duration) {
	phones := []string{cc.signedIn, cc.pending, cc.newcomer}
	part := int32(clustertest.Partition(cc.signedIn, c.Opts.Partitions))
	before := map[string]int{}
	for _, p := range phones {
		before[p] = c.ReplyCount(p)
	}

	// The sender writes its ledger of sent messages right after Twilio
	// accepted one; a kill inside that moment would resend it, which is
	// the sender's business, not this test's.
	time.Sleep(time.Second)
	// The node is killed first, idle, rather than stopped: its dead member
	// holds the sessions group for the session timeout, so the restarted
	// node listens for webhooks seconds before it can poll, and the three
	// messages are all in parley.inbound by its first poll: one batch, the
	// one it dies in. (After a graceful stop it joins at once, and which
	// messages share the first batch would be a race.)
	c.Kill9(n)
	outFrom := hwm(t, c, wire.TopicOutbound, part)
	logFrom := hwm(t, c, wire.TopicSessions, part)
	c.SetEnv(n, "PARLEY_FAULT="+cc.point)
	c.Restart(n)
	status, body := waitListening(t, c, n)
	if status != http.StatusServiceUnavailable || !waitingForSessions(body) {
		t.Fatalf("the faulted node was polling as soon as it listened (/readyz %d %q): which messages share its first batch would be a race", status, body)
	}
	messages := map[string]string{
		cc.signedIn: crashQuestion,
		cc.pending:  clustertest.WrongCode(cc.code),
		cc.newcomer: "Hello",
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var postErrs []string
	for phone, text := range messages {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Deliver: acknowledged (200) or an error.
			if _, _, err := c.Deliver(phone, text, 10*time.Second); err != nil {
				mu.Lock()
				postErrs = append(postErrs, err.Error())
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(postErrs) > 0 {
		t.Fatalf("crash batch not acknowledged: %v", postErrs)
	}
	// Still not polling: the three are in its first batch.
	status, body, err := c.Readyz(n)
	if err != nil || status != http.StatusServiceUnavailable || !waitingForSessions(body) {
		t.Fatalf("the faulted node may have polled before the last message: /readyz %d %q %v", status, body, err)
	}

	state, err := c.WaitExit(n, 4*sessionTimeout+20*time.Second)
	if err != nil {
		t.Fatalf("the node did not kill itself at %s: %v\n%s", cc.point, err, n.Tail(30))
	}
	crashAt := time.Now()
	if ws, ok := state.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("the node ended with %v, not SIGKILL\n%s", state, n.Tail(30))
	}
	if want := "PARLEY_FAULT " + cc.point + ": killing the process"; !strings.Contains(n.RunLog(), want) {
		t.Fatalf("SIGKILL, but its log has no %q: killed elsewhere\n%s", want, n.Tail(30))
	}
	for _, p := range phones {
		if got := c.ReplyCount(p); got != before[p] {
			t.Errorf("%s got %d messages from the attempt that died, before its commit", p, got-before[p])
		}
	}
	cc.checkDeadAttempt(t, c, part, outFrom, logFrom, phones)

	// Without the fault. Its own transactional id fences the dead
	// attempt's transaction; the dead member holds the group until the
	// session timeout.
	c.SetEnv(n)
	c.Restart(n)
	// The answers are waited for as the node comes back, so their times
	// are when they reached the local Twilio.
	type readiness struct {
		after time.Duration
		err   error
	}
	readyIn := make(chan readiness, 1)
	go func() {
		_, err := c.WaitReady(n, 90*time.Second)
		readyIn <- readiness{time.Since(crashAt), err}
	}()
	replies := map[string]string{}
	var answered time.Duration
	var lost []string
	deadline := time.Now().Add(clustertest.ReplyTimeout)
	for _, p := range phones {
		m, err := c.NextReply(p, max(time.Until(deadline), time.Second))
		if err != nil {
			lost = append(lost, err.Error())
			continue
		}
		replies[p] = m.Body
		answered = max(answered, time.Since(crashAt))
	}
	if len(lost) > 0 {
		t.Fatalf("acknowledged before the crash, never answered (the replayed record met the dead attempt's state and was dropped as a redelivery?): %v", lost)
	}
	r := <-readyIn
	if r.err != nil {
		t.Fatal(r.err)
	}
	t.Logf("%s: killed by SIGKILL; ready again %.1fs after the crash, the crash batch answered %.1fs after it (session timeout %s)",
		cc.point, r.after.Seconds(), answered.Seconds(), sessionTimeout)

	if r := replies[cc.signedIn]; !strings.Contains(r, clustertest.BookingName) || clustertest.IsCode(r) {
		t.Errorf("signed-in %s asked %q across the crash, got %q", cc.signedIn, crashQuestion, r)
	}
	if r := replies[cc.pending]; !strings.Contains(r, twoLeft) {
		t.Errorf("the first wrong code of %s across the crash answered %q, want %q: the attempt counted other than once", cc.pending, r, twoLeft)
	}
	code, ok := clustertest.Code(replies[cc.newcomer])
	if !ok {
		t.Errorf("hello from %s across the crash answered %q, want a code", cc.newcomer, replies[cc.newcomer])
	}
	// Duplicates of the dead attempt's replies would come with the
	// committed ones, from the same partition of parley.outbound.
	time.Sleep(time.Second)
	for _, p := range phones {
		for _, m := range c.Unread(p) {
			t.Errorf("%s: a second answer to its one message across the crash: %q", p, m.Body)
		}
	}

	// The state the committed history implies.
	ask := func(phone, text string, want func(string) bool, what string) {
		t.Helper()
		if _, err := c.PostTwilioMessage(n, phone, text); err != nil {
			t.Errorf("after the crash: %v", err)
			return
		}
		m, err := c.NextReply(phone, clustertest.ReplyTimeout)
		switch {
		case err != nil:
			t.Errorf("after the crash: %v", err)
		case !want(m.Body):
			t.Errorf("after the crash %s sent %q and got %q, want %s", phone, text, m.Body, what)
		}
	}
	ask(cc.signedIn, secondQuestion, func(b string) bool {
		return strings.Contains(b, clustertest.ServiceName) && !clustertest.IsCode(b)
	}, "a real answer: still signed in")
	ask(cc.pending, clustertest.WrongCode(cc.code), func(b string) bool { return strings.Contains(b, oneLeft) },
		fmt.Sprintf("%q (the second attempt)", oneLeft))
	ask(cc.pending, clustertest.WrongCode(cc.code), func(b string) bool { return strings.Contains(b, clustertest.LockedText) },
		"the lock (the third attempt)")
	if ok {
		ask(cc.newcomer, code, clustertest.IsSignedIn, "the greeting: the code sent is the code held")
	}

	time.Sleep(time.Second)
	want := map[string]int{cc.signedIn: 2, cc.pending: 3, cc.newcomer: 2}
	for _, p := range phones {
		if got := c.ReplyCount(p) - before[p]; got != want[p] {
			t.Errorf("%s: %d messages since the crash batch, want %d (last %q)", p, got, want[p], lastBody(c, p))
		}
	}
}

// checkDeadAttempt reads what the dead attempt left on the broker past
// the marks taken before the crash batch, to show the crash came at the
// case's step: its replies and states were written (and, the rest of the
// test shows, never reached anyone).
func (cc *crashCase) checkDeadAttempt(t *testing.T, c *clustertest.Cluster, part int32, outFrom, logFrom int64, phones []string) {
	t.Helper()
	count := func(topic string, from int64) (map[string]int, int) {
		recs, err := c.UncommittedRecords(topic, part, from)
		if err != nil {
			t.Fatalf("reading what the dead attempt wrote: %v", err)
		}
		by := map[string]int{}
		for _, r := range recs {
			by[phoneOf(r)]++
		}
		total := 0
		for _, p := range phones {
			total += by[p]
		}
		return by, total
	}
	outs, nOut := count(wire.TopicOutbound, outFrom)
	logs, nLog := count(wire.TopicSessions, logFrom)
	t.Logf("%s: the dead attempt wrote %d replies and %d changelog records (by customer: replies %v, states %v)", cc.point, nOut, nLog, outs, logs)
	if nOut < cc.minOutputs || nLog < cc.minChangelog {
		t.Errorf("the dead attempt wrote %d replies and %d changelog records, want at least %d and %d at %s", nOut, nLog, cc.minOutputs, cc.minChangelog, cc.point)
	}
	if cc.everyone {
		for _, p := range phones {
			if outs[p] < 1 || logs[p] != 1 {
				t.Errorf("%s: the dead attempt wrote %d replies and %d states for %s, want 1 or more and 1: the whole batch is produced before the commit", cc.point, outs[p], logs[p], p)
			}
		}
	}
}

// phoneOf is the customer of a record keyed as parley.inbound is.
func phoneOf(r *kgo.Record) string {
	_, phone, _ := wire.SplitKey(r.Key)
	return phone
}

func hwm(t *testing.T, c *clustertest.Cluster, topic string, part int32) int64 {
	t.Helper()
	o, err := c.HighWatermark(topic, part)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// waitListening waits until the node answers /readyz at all and returns
// that first answer.
func waitListening(t *testing.T, c *clustertest.Cluster, n *clustertest.Node) (int, string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		status, body, err := c.Readyz(n)
		if err == nil {
			return status, body
		}
		if !n.Running() || time.Now().After(deadline) {
			t.Fatalf("%s never listened: %v\n%s", n, err, n.Tail(30))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitingForSessions: /readyz says the sessions role has not joined or is
// restoring, so no inbound record was fetched yet.
func waitingForSessions(body string) bool {
	return strings.Contains(body, "sessions: joining") || strings.Contains(body, "sessions: restoring")
}

// samePartitionPhones makes groups groups of size numbers each, the numbers
// of a group in one partition of parley.inbound and the groups in
// different partitions, so each group shares one batch.
func samePartitionPhones(groups, size, partitions int) [][]string {
	buckets := map[int][]string{}
	var order []int
	full := 0
	for i := 0; full < groups; i++ {
		phone := fmt.Sprintf("+4477008%05d", i)
		p := clustertest.Partition(phone, partitions)
		if len(buckets[p]) == 0 {
			if len(order) == groups {
				continue
			}
			order = append(order, p)
		}
		if len(buckets[p]) < size {
			buckets[p] = append(buckets[p], phone)
			if len(buckets[p]) == size {
				full++
			}
		}
	}
	out := make([][]string, groups)
	for i, p := range order {
		out[i] = buckets[p]
	}
	return out
}
