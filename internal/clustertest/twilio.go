package clustertest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parleyhq/parley/channels/twilio"
	"github.com/parleyhq/parley/channels/twilio/twiliotest"
)

// inbox follows what the local Twilio accepted and sorts it by customer,
// remembering how far each customer's replies were read.
type inbox struct {
	mu      sync.Mutex
	changed chan struct{} // closed and replaced on every new message
	byPhone map[string][]twiliotest.Message
	read    map[string]int
}

func followTwilio(t testing.TB, tw *twiliotest.Server) *inbox {
	in := &inbox{changed: make(chan struct{}), byPhone: map[string][]twiliotest.Message{}, read: map[string]int{}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); <-done })
	go func() {
		defer close(done)
		seen := 0
		for {
			msgs, err := tw.Since(ctx, seen)
			if err != nil {
				return
			}
			seen += len(msgs)
			in.mu.Lock()
			for _, m := range msgs {
				phone := strings.TrimPrefix(m.To, "whatsapp:")
				in.byPhone[phone] = append(in.byPhone[phone], m)
			}
			close(in.changed)
			in.changed = make(chan struct{})
			in.mu.Unlock()
		}
	}()
	return in
}

// Replies are all the messages sent to phone so far, oldest first.
func (c *Cluster) Replies(phone string) []twiliotest.Message {
	c.inbox.mu.Lock()
	defer c.inbox.mu.Unlock()
	return append([]twiliotest.Message(nil), c.inbox.byPhone[phone]...)
}

// ReplyCount is how many messages were sent to phone so far.
func (c *Cluster) ReplyCount(phone string) int {
	c.inbox.mu.Lock()
	defer c.inbox.mu.Unlock()
	return len(c.inbox.byPhone[phone])
}

// NextReply waits up to timeout for a message to phone that no earlier
// NextReply or WaitForReply returned, and returns it.
func (c *Cluster) NextReply(phone string, timeout time.Duration) (twiliotest.Message, error) {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	in := c.inbox
	for {
		in.mu.Lock()
		if i := in.read[phone]; i < len(in.byPhone[phone]) {
			m := in.byPhone[phone][i]
			in.read[phone] = i + 1
			in.mu.Unlock()
			return m, nil
		}
		changed := in.changed
		in.mu.Unlock()
		select {
		case <-changed:
		case <-deadline.C:
			return twiliotest.Message{}, fmt.Errorf("no reply to %s within %s", phone, timeout)
		}
	}
}

// WaitForReply reads phone's replies (as NextReply) until one satisfies
// pred, and returns it. Replies read on the way are named in the error
// when none matches within timeout.
func (c *Cluster) WaitForReply(phone string, pred func(body string) bool, timeout time.Duration) (twiliotest.Message, error) {
	deadline := time.Now().Add(timeout)
	var skipped []string
	for {
		m, err := c.NextReply(phone, time.Until(deadline))
		if err != nil {
			if len(skipped) > 0 {
				return m, fmt.Errorf("%w; got instead: %q", err, skipped)
			}
			return m, err
		}
		if pred(m.Body) {
			return m, nil
		}
		skipped = append(skipped, m.Body)
	}
}

// Unread marks every reply to phone so far as read and returns those no
// NextReply had returned.
func (c *Cluster) Unread(phone string) []twiliotest.Message {
	in := c.inbox
	in.mu.Lock()
	defer in.mu.Unlock()
	all := in.byPhone[phone]
	i := in.read[phone]
	in.read[phone] = len(all)
	return append([]twiliotest.Message(nil), all[i:]...)
}

// NewMessageSID makes a Twilio inbound message id, "SM" and 32 hex digits.
func NewMessageSID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return "SM" + hex.EncodeToString(b)
}

// PostTwilioMessage posts a customer's WhatsApp message to node as Twilio
// does (signed for the node's public URL) with a new message id, and
// returns the id. An answer other than 200 is an error: the message was
// not acknowledged.
func (c *Cluster) PostTwilioMessage(n *Node, phone, body string) (string, error) {
	sid := NewMessageSID()
	status, err := c.PostTwilioSID(n, phone, body, sid)
	if err != nil {
		return sid, err
	}
	if status != http.StatusOK {
		return sid, fmt.Errorf("webhook to %s for %s answered %d", n, phone, status)
	}
	return sid, nil
}

// PostTwilioSID posts a customer's message with a given id, as Twilio
// does when it delivers one again, and returns the HTTP status (200: the
// message is acknowledged). The error is for no answer at all (the node
// is down or died during the request).
func (c *Cluster) PostTwilioSID(n *Node, phone, body, sid string) (int, error) {
	return c.PostTwilioTenant(n, Tenant, phone, body, sid)
}

// PostTwilioTenant is PostTwilioSID for another tenant on the same local
// Twilio account and sender.
func (c *Cluster) PostTwilioTenant(n *Node, tenant, phone, body, sid string) (int, error) {
	return c.PostTwilioTo(n, tenant, twiliotest.SandboxFrom, phone, body, sid)
}

// PostTwilioTo is PostTwilioTenant to the tenant's sender to
// ("whatsapp:+E164"), signed with the test account's token.
func (c *Cluster) PostTwilioTo(n *Node, tenant, to, phone, body, sid string) (int, error) {
	form := url.Values{
		"MessageSid": {sid}, "SmsMessageSid": {sid}, "AccountSid": {twiliotest.TestAccountSID},
		"From": {"whatsapp:" + phone}, "To": {to},
		"Body": {body}, "NumMedia": {"0"}, "ProfileName": {FirstName},
	}
	path := "/webhooks/twilio/" + tenant
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, n.URL()+path, strings.NewReader(form.Encode()))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Twilio-Signature", twilio.Signature(twiliotest.TestAuthToken, n.URL()+path, form))
	res, err := c.http.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res.StatusCode, nil
}

// What the sign-in replies look like (conversation.English).
var (
	codeText = regexp.MustCompile(`verification code is (\d{6})`)
	// signedInText is the greeting after the right code.
	signedInText = "you're signed in"
	// LockedText is in the answer to the wrong code that locks the code.
	LockedText = "blocked after too many wrong attempts"
	// WrongCodeText is in the answer to a wrong code that leaves attempts.
	WrongCodeText = "That code isn't right. You have"
)

// Code returns the verification code in body, if it carries one.
func Code(body string) (string, bool) {
	m := codeText.FindStringSubmatch(body)
	if m == nil {
		return "", false
	}
	return m[1], true
}

// IsCode reports whether body is a message carrying a new code: what a
// customer who should be signed in must never get.
func IsCode(body string) bool { _, ok := Code(body); return ok }

// IsSignedIn reports whether body is the greeting after sign-in.
func IsSignedIn(body string) bool { return strings.Contains(body, signedInText) }

// WrongCode is a 6-digit code that is not code.
func WrongCode(code string) string {
	var n int
	fmt.Sscanf(code, "%d", &n)
	return fmt.Sprintf("%06d", (n+1)%1000000)
}

// ReplyTimeout bounds the wait for one reply in the sign-in helpers: a
// node that just joined may be in a rebalance for a few seconds.
const ReplyTimeout = 45 * time.Second

// RequestCode has phone write to node and returns the code it got back.
func (c *Cluster) RequestCode(n *Node, phone string) (string, error) {
	if _, err := c.PostTwilioMessage(n, phone, "Hello"); err != nil {
		return "", err
	}
	m, err := c.NextReply(phone, ReplyTimeout)
	if err != nil {
		return "", fmt.Errorf("sign-in of %s: %w", phone, err)
	}
	code, ok := Code(m.Body)
	if !ok {
		return "", fmt.Errorf("sign-in of %s: wanted a code, got %q", phone, m.Body)
	}
	return code, nil
}

// SendCode has phone send code to node and returns the reply.
func (c *Cluster) SendCode(n *Node, phone, code string) (string, error) {
	if _, err := c.PostTwilioMessage(n, phone, code); err != nil {
		return "", err
	}
	m, err := c.NextReply(phone, ReplyTimeout)
	if err != nil {
		return "", fmt.Errorf("code from %s: %w", phone, err)
	}
	return m.Body, nil
}

// SignIn signs phone in through node: the customer writes, the code
// arrives through Twilio, the customer sends it back, the greeting comes.
func (c *Cluster) SignIn(n *Node, phone string) error {
	code, err := c.RequestCode(n, phone)
	if err != nil {
		return err
	}
	reply, err := c.SendCode(n, phone, code)
	if err != nil {
		return err
	}
	if !IsSignedIn(reply) {
		return fmt.Errorf("sign-in of %s: after the right code got %q", phone, reply)
	}
	return nil
}

// errNoNode is returned when no node is up to post to.
var errNoNode = errors.New("no node is running")

// Deliver posts a customer's message to the running nodes in turn, with
// one message id, until one acknowledges it (200) or timeout passes, as a
// provider redelivers an unacknowledged webhook: a node going down loses
// nothing it did not acknowledge, and a node that took the message but
// died before answering must not answer it twice. It returns the id and
// the node that acknowledged it.
func (c *Cluster) Deliver(phone, body string, timeout time.Duration) (string, *Node, error) {
	sid := NewMessageSID()
	deadline := time.Now().Add(timeout)
	var last error = errNoNode
	for i := 0; ; i++ {
		if up := c.Up(); len(up) > 0 {
			n := up[(int(c.rr.Add(1))+i)%len(up)]
			status, err := c.PostTwilioSID(n, phone, body, sid)
			if err == nil && status == http.StatusOK {
				return sid, n, nil
			}
			if err == nil {
				err = fmt.Errorf("%s answered %d", n, status)
			}
			last = err
		}
		if time.Now().After(deadline) {
			return sid, nil, fmt.Errorf("message from %s not acknowledged within %s: %w", phone, timeout, last)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
