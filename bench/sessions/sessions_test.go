package main

import (
	"io"
	"testing"
	"time"
)

func TestHistQuantiles(t *testing.T) {
	var h hist
	for i := 1; i <= 1000; i++ {
		h.add(time.Duration(i) * time.Microsecond)
	}
	for _, c := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 500 * time.Microsecond}, {0.99, 990 * time.Microsecond}, {1, time.Millisecond}} {
		got := h.quantile(c.q)
		if d := got - c.want; d < -c.want/50 || d > c.want/50 {
			t.Errorf("q%.2f = %v, want %v ±2%%", c.q, got, c.want)
		}
	}
	for _, v := range []int64{0, 1, 127, 128, 129, 1 << 20, 1<<40 + 12345, 1<<62 + 1} {
		if got := valueOf(bucketOf(v)); v >= 128 && (got < v-v/60 || got > v+v/60) || v < 128 && got != v {
			t.Errorf("bucket of %d holds %d", v, got)
		}
	}
}

func TestSixDigits(t *testing.T) {
	for in, want := range map[string]string{
		"Your verification code is 042137. It is valid for 10 minutes.": "042137",
		"1234567 is too long, 12345 too short":                          "",
		"code 999999":                                                   "999999",
	} {
		if got := sixDigits(in); got != want {
			t.Errorf("sixDigits(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestRunSmall runs every phase on a few hundred sessions: all sign in,
// all passivate, the dormant ones resume signed in.
func TestRunSmall(t *testing.T) {
	if testing.Short() {
		t.Skip("takes a few seconds")
	}
	logTo = io.Discard
	r, err := run(options{
		n: 300, drivers: 8, workers: 16, extra: []string{"hello", "help"},
		rate: 200, quiet: 300 * time.Millisecond, idle: time.Second, tail: 200 * time.Millisecond, resume: 50,
	})
	if err != nil {
		t.Fatal(err)
	}
	if r.Activation.Errors != 0 || r.Quiet.Errors != 0 || r.Passivation.Stream.Errors != 0 {
		t.Fatalf("errors: activation %d (%s), quiet %d, passivation %d",
			r.Activation.Errors, r.Activation.FirstError, r.Quiet.Errors, r.Passivation.Stream.Errors)
	}
	if r.Memory.Live.Live != 300 {
		t.Errorf("live sessions after activation: %d", r.Memory.Live.Live)
	}
	if !r.Passivation.Completed || r.Memory.Dormant.Live != 0 || r.Memory.Dormant.Dormant < 300+r.Quiet.Sessions {
		t.Errorf("passivation: completed %v, then %d live %d dormant", r.Passivation.Completed, r.Memory.Dormant.Live, r.Memory.Dormant.Dormant)
	}
	if r.Resume.Greeted != r.Resume.Sessions {
		t.Errorf("resumed %d of %d signed in", r.Resume.Greeted, r.Resume.Sessions)
	}
	if !r.State.Authenticated || r.State.EncodedLen == 0 {
		t.Errorf("reference state %+v", r.State)
	}
}
