package bus

import (
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestMemberKilledMidJoinHoldsTheGroupOnlyForTheRebalanceTimeout is the
// crash CI once met: a node killed while its JoinGroup was in flight. The
// broker's answer to that join never arrives, so the dead member's session
// clock never starts; only the rebalance timeout removes it, and until then
// the live member gets no partitions (its replies wait). The dead member
// here joins with the timeouts every Parley client asks for and its
// connection is cut while the join waits; the member that takes over
// after the live one stops must be consuming within that rebalance
// timeout, not kgo's 60 s default.
func TestMemberKilledMidJoinHoldsTheGroupOnlyForTheRebalanceTimeout(t *testing.T) {
	const sessionTimeout = 6 * time.Second // the broker's floor
	rebalance := RebalanceTimeout(sessionTimeout)
	brokers := startBroker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := EnsureTopics(ctx, brokers, 1, 1, "t"); err != nil {
		t.Fatal(err)
	}
	p := NewProducer(brokers, ProducerOptions{})
	defer p.Close()
	produce := func(v string) {
		t.Helper()
		if err := p.Produce(ctx, kafka.Message{Topic: "t", Key: []byte("k"), Value: []byte(v)}); err != nil {
			t.Fatal(err)
		}
	}

	live := NewConsumer(ConsumerOptions{Brokers: brokers, Topic: "t", Group: "g", SessionTimeout: sessionTimeout})
	got := make(chan string, 10)
	liveCtx, stopLive := context.WithCancel(ctx)
	liveDone := make(chan struct{})
	go func() {
		defer close(liveDone)
		_ = live.Run(liveCtx, func(_ context.Context, m kafka.Message, done func()) {
			got <- string(m.Value)
			done()
		})
	}()
	produce("before")
	select {
	case <-got:
	case <-ctx.Done():
		t.Fatal("the live consumer never consumed")
	}

	// The member that dies: its join is sent, and its connections are cut
	// while the broker holds the join for the rebalance.
	var mu sync.Mutex
	var conns []net.Conn
	dead, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.Dialer(func(ctx context.Context, network, host string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, network, host)
		if err == nil {
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
		return c, err
	}))
	if err != nil {
		t.Fatal(err)
	}
	defer dead.Close()
	meta := kmsg.NewConsumerMemberMetadata()
	meta.Version = 1
	meta.Topics = []string{"t"}
	join := kmsg.NewPtrJoinGroupRequest()
	join.Group = "g"
	join.SessionTimeoutMillis = int32(sessionTimeout / time.Millisecond)
	join.RebalanceTimeoutMillis = int32(rebalance / time.Millisecond)
	join.ProtocolType = "consumer"
	proto := kmsg.NewJoinGroupRequestProtocol()
	proto.Name = "cooperative-sticky"
	proto.Metadata = meta.AppendTo(nil)
	join.Protocols = []kmsg.JoinGroupRequestProtocol{proto}
	resp, err := join.RequestWith(ctx, dead)
	if err != nil {
		t.Fatal(err)
	}
	if !errors.Is(kerr.ErrorForCode(resp.ErrorCode), kerr.MemberIDRequired) {
		t.Fatalf("first join: %v, want MEMBER_ID_REQUIRED", kerr.ErrorForCode(resp.ErrorCode))
	}
	join.MemberID = resp.MemberID
	go func() { _, _ = join.RequestWith(ctx, dead) }()
	time.Sleep(300 * time.Millisecond) // the join is with the broker
	mu.Lock()
	for _, c := range conns {
		_ = c.Close()
	}
	mu.Unlock()
	dead.Close()

	// The live member goes through that rebalance (cooperative: it keeps
	// its partition), then stops, as a node does in a rolling restart; the
	// member that takes over must wait for the dead one.
	time.Sleep(3 * time.Second)
	stopLive()
	<-liveDone
	next := NewConsumer(ConsumerOptions{Brokers: brokers, Topic: "t", Group: "g", SessionTimeout: sessionTimeout})
	go func() {
		_ = next.Run(ctx, func(_ context.Context, m kafka.Message, done func()) {
			got <- string(m.Value)
			done()
		})
	}()
	started := time.Now()
	produce("after")
	select {
	case v := <-got:
		took := time.Since(started)
		t.Logf("a member killed mid-join held the group %.1fs from the next member's start (rebalance timeout %s, session timeout %s)", took.Seconds(), rebalance, sessionTimeout)
		if v != "after" {
			t.Fatalf("consumed %q, want the record produced after the kill", v)
		}
		if limit := rebalance + sessionTimeout; took > limit {
			t.Fatalf("the next member consumed %.1fs after it started, more than the rebalance timeout allows (%s)", took.Seconds(), limit)
		}
	case <-ctx.Done():
		t.Fatal("the live consumer never resumed after a member died mid-join")
	}
}
