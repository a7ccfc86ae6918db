package clustertest

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// WaitGroupStable waits until consumer group (a classic group: Parley's
// use cooperative-sticky assignment) is stable with members members and
// every one of partitions partitions assigned, spread so that no member
// that could hold one holds none. Nodes answer /readyz before their
// groups settle; a test that wants a quiet cluster to start from waits for
// this too, since a partition moving under a customer is a disruption of
// its own.
func (c *Cluster) WaitGroupStable(group string, members, partitions int, timeout time.Duration) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.Broker.Addr))
	if err != nil {
		return err
	}
	defer cl.Close()
	deadline := time.Now().Add(timeout)
	for {
		state, ok := describe(cl, group, members, partitions)
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("group %s not stable with %d members within %s: %s", group, members, timeout, state)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// describe says what group looks like and whether it is settled.
func describe(cl *kgo.Client, group string, members, partitions int) (string, bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req := kmsg.NewPtrDescribeGroupsRequest()
	req.Groups = []string{group}
	res, err := req.RequestWith(ctx, cl)
	if err != nil {
		return err.Error(), false
	}
	if len(res.Groups) != 1 {
		return fmt.Sprintf("%d groups described", len(res.Groups)), false
	}
	g := res.Groups[0]
	if err := kerr.ErrorForCode(g.ErrorCode); err != nil {
		return err.Error(), false
	}
	state := fmt.Sprintf("state %s, %d members", g.State, len(g.Members))
	if g.State != "Stable" || len(g.Members) != members {
		return state, false
	}
	total := 0
	for _, m := range g.Members {
		var a kmsg.ConsumerMemberAssignment
		if err := a.ReadFrom(m.MemberAssignment); err != nil {
			return state + ": " + err.Error(), false
		}
		n := 0
		for _, t := range a.Topics {
			n += len(t.Partitions)
		}
		if n == 0 && members <= partitions {
			return state + ", a member without partitions", false
		}
		total += n
	}
	if total != partitions {
		return fmt.Sprintf("%s, %d of %d partitions assigned", state, total, partitions), false
	}
	return state, true
}
