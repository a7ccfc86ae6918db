package webhooks

import (
	"testing"
	"time"

	"github.com/parleyhq/parley/internal/retry"
)

// TestBreaker: by table, a breaker of threshold 3 and a cool-down of 1s
// doubling up to 4s, driven step by step on a clock of its own.
func TestBreaker(t *testing.T) {
	type step struct {
		at time.Duration // since the start
		op string        // "allow", "ok", "fail"
		// allow: whether it may go, and the wait when not
		ok   bool
		wait time.Duration
		// ok, fail: the change reported
		opened, closed bool
	}
	cases := []struct {
		name  string
		steps []step
	}{
		{"closed lets everything go; failures under the threshold change nothing", []step{
			{at: 0, op: "allow", ok: true},
			{at: 0, op: "fail"},
			{at: 0, op: "fail"},
			{at: 0, op: "ok"},
			{at: 0, op: "fail"},
			{at: 0, op: "fail"},
			{at: 0, op: "allow", ok: true},
		}},
		{"three failures in a row open it for the cool-down", []step{
			{at: 0, op: "fail"},
			{at: 0, op: "fail"},
			{at: 100 * time.Millisecond, op: "fail", opened: true},
			{at: 100 * time.Millisecond, op: "allow", wait: time.Second},
			{at: 600 * time.Millisecond, op: "allow", wait: 500 * time.Millisecond},
		}},
		{"after the cool-down one probe goes, the others wait; its success closes it", []step{
			{at: 0, op: "fail"}, {at: 0, op: "fail"}, {at: 0, op: "fail", opened: true},
			{at: time.Second, op: "allow", ok: true},
			{at: time.Second, op: "allow", wait: probeWait},
			{at: 1100 * time.Millisecond, op: "ok", closed: true},
			{at: 1100 * time.Millisecond, op: "allow", ok: true},
			{at: 1100 * time.Millisecond, op: "fail"}, // the count starts again
			{at: 1100 * time.Millisecond, op: "allow", ok: true},
		}},
		{"a failed probe opens it again for longer, up to the cap", []step{
			{at: 0, op: "fail"}, {at: 0, op: "fail"}, {at: 0, op: "fail", opened: true},
			{at: time.Second, op: "allow", ok: true},
			{at: time.Second, op: "fail"}, // open again: 2s
			{at: time.Second, op: "allow", wait: 2 * time.Second},
			{at: 3 * time.Second, op: "allow", ok: true},
			{at: 3 * time.Second, op: "fail"}, // 4s
			{at: 3 * time.Second, op: "allow", wait: 4 * time.Second},
			{at: 7 * time.Second, op: "allow", ok: true},
			{at: 7 * time.Second, op: "fail"}, // 8s, capped at 4s
			{at: 7 * time.Second, op: "allow", wait: 4 * time.Second},
		}},
		{"a late failure of a request sent before it opened does not extend the cool-down", []step{
			{at: 0, op: "fail"}, {at: 0, op: "fail"}, {at: 0, op: "fail", opened: true},
			{at: 500 * time.Millisecond, op: "fail"},
			{at: 500 * time.Millisecond, op: "allow", wait: 500 * time.Millisecond},
		}},
		{"a probe that never reports is replaced after probeTimeout", []step{
			{at: 0, op: "fail"}, {at: 0, op: "fail"}, {at: 0, op: "fail", opened: true},
			{at: time.Second, op: "allow", ok: true},
			{at: time.Second + probeTimeout, op: "allow", wait: probeWait},
			{at: time.Second + probeTimeout + time.Millisecond, op: "allow", ok: true},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := newBreaker(3, retry.Backoff{Initial: time.Second, Max: 4 * time.Second})
			start := time.Unix(1_700_000_000, 0)
			for i, s := range tc.steps {
				now := start.Add(s.at)
				switch s.op {
				case "allow":
					ok, wait := b.allow(now)
					if ok != s.ok || wait != s.wait {
						t.Fatalf("step %d: allow = %v, %v; want %v, %v", i, ok, wait, s.ok, s.wait)
					}
				default:
					opened, closed := b.result(now, s.op == "ok")
					if opened != s.opened || closed != s.closed {
						t.Fatalf("step %d: %s: opened %v closed %v; want %v %v", i, s.op, opened, closed, s.opened, s.closed)
					}
				}
			}
		})
	}
}
