package conversation

import (
	"bytes"
	"fmt"
	"testing"
	"time"
)

var fpHello, fpBye = []byte("fingerprint:hello"), []byte("fingerprint:bye")

func TestRecall(t *testing.T) {
	h := newHarness(t)
	h.do(RememberResult{Key: "k1", Fingerprint: fpHello, Result: []byte("out-1")})
	ttl := DefaultPolicy().IdempotencyTTL
	tests := []struct {
		name   string
		key    string
		fp     []byte
		after  time.Duration
		want   KeyStatus
		result string
	}{
		{"no key", "", fpHello, 0, KeyNew, ""},
		{"repeat", "k1", fpHello, time.Minute, KeyRepeat, "out-1"},
		{"same key, another request", "k1", fpBye, time.Minute, KeyConflict, ""},
		{"no fingerprint is another request", "k1", nil, time.Minute, KeyConflict, ""},
		{"another key", "k2", fpHello, time.Minute, KeyNew, ""},
		{"keys are exact", "K1", fpHello, time.Minute, KeyNew, ""},
		{"the last second", "k1", fpHello, ttl - time.Second, KeyRepeat, "out-1"},
		{"expired", "k1", fpHello, ttl, KeyNew, ""},
		{"expired, another request", "k1", fpBye, ttl, KeyNew, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, res := h.s.Recall(h.p, tc.key, tc.fp, t0.Add(tc.after))
			if status != tc.want || string(res) != tc.result {
				t.Fatalf("Recall = %v %q, want %v %q", status, res, tc.want, tc.result)
			}
		})
	}
}

// TestRecallRefusesPastTheBound: a session keeping IdempotencyMax live
// results refuses a new key (KeyFull) rather than forget a result whose
// retry would then be carried out again; repeats of kept keys still
// replay, and an expired result makes room.
func TestRecallRefusesPastTheBound(t *testing.T) {
	h := newHarness(t)
	h.p = Policy{IdempotencyMax: 2, IdempotencyTTL: time.Hour}
	h.do(RememberResult{Key: "a", Fingerprint: fpHello, Result: []byte("ra")})
	h.wait(time.Minute)
	h.do(RememberResult{Key: "b", Fingerprint: fpHello, Result: []byte("rb")})
	for _, tc := range []struct {
		name  string
		key   string
		after time.Duration
		want  KeyStatus
	}{
		{"a new key past the bound", "c", 0, KeyFull},
		{"a kept key still replays", "a", 0, KeyRepeat},
		{"no key is not counted", "", 0, KeyNew},
		{"the oldest expired makes room", "c", time.Hour, KeyNew},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got, _ := h.s.Recall(h.p, tc.key, fpHello, h.now.Add(tc.after)); got != tc.want {
				t.Fatalf("Recall(%q) = %v, want %v", tc.key, got, tc.want)
			}
		})
	}
}

func TestRememberResult(t *testing.T) {
	remember := func(key string, fp byte, result string) Event {
		return RememberResult{Key: key, Fingerprint: []byte{fp}, Result: []byte(result)}
	}
	tests := []struct {
		name   string
		policy Policy
		events []Event // one a minute from t0
		at     time.Duration
		key    string
		fp     byte
		want   KeyStatus
		result string
		kept   int
	}{
		{"remembered", Policy{}, []Event{remember("k", 1, "r1")}, 0, "k", 1, KeyRepeat, "r1", 1},
		{"the latest result of a key", Policy{}, []Event{remember("k", 1, "r1"), remember("k", 2, "r2")}, 0, "k", 2, KeyRepeat, "r2", 1},
		{"no key is not remembered", Policy{}, []Event{remember("", 1, "r1")}, 0, "", 1, KeyNew, "", 0},
		// A shell that remembers past the bound without asking Recall
		// first loses the oldest; Recall then refuses new keys.
		{"the oldest goes first", Policy{IdempotencyMax: 2}, []Event{remember("a", 1, "ra"), remember("b", 1, "rb"), remember("c", 1, "rc")}, 0, "a", 1, KeyFull, "", 2},
		{"the newer stay", Policy{IdempotencyMax: 2}, []Event{remember("a", 1, "ra"), remember("b", 1, "rb"), remember("c", 1, "rc")}, 0, "b", 1, KeyRepeat, "rb", 2},
		{"expired ones make room", Policy{IdempotencyTTL: time.Minute, IdempotencyMax: 2},
			[]Event{remember("a", 1, "ra"), remember("b", 1, "rb"), remember("c", 1, "rc")}, time.Minute, "b", 1, KeyNew, "", 1},
		{"the default bound", Policy{}, nil, 0, "k0", 0, KeyFull, "", 64},
		{"a tenant's TTL", Policy{IdempotencyTTL: time.Hour}, []Event{remember("k", 1, "r1")}, time.Hour, "k", 1, KeyNew, "", 1},
	}
	for i := range 70 {
		tests[6].events = append(tests[6].events, remember(fmt.Sprint("k", i), 0, "r"))
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			h.p = tc.policy
			var last time.Time
			for i, ev := range tc.events {
				h.now = t0.Add(time.Duration(i) * time.Minute)
				last = h.now
				eff := h.do(ev)
				if ev.(RememberResult).Key == "" {
					eqEff(t, eff, Dropped{Reason: DropInvalid})
				} else {
					eqEff(t, eff)
				}
			}
			status, res := h.s.Recall(h.p, tc.key, []byte{tc.fp}, last.Add(tc.at))
			if status != tc.want || string(res) != tc.result {
				t.Fatalf("Recall = %v %q, want %v %q", status, res, tc.want, tc.result)
			}
			if len(h.s.keyed) != tc.kept {
				t.Fatalf("%d results kept, want %d", len(h.s.keyed), tc.kept)
			}
		})
	}
}

// The core keeps its own copies: the shell may reuse its buffers.
func TestRememberResultCopies(t *testing.T) {
	h := newHarness(t)
	fp, res := []byte("fp"), []byte("result")
	h.do(RememberResult{Key: "k", Fingerprint: fp, Result: res})
	copy(fp, "xx")
	copy(res, "XXXXXX")
	if st, got := h.s.Recall(h.p, "k", []byte("fp"), t0); st != KeyRepeat || !bytes.Equal(got, []byte("result")) {
		t.Fatalf("Recall = %v %q after the caller reused its buffers", st, got)
	}
}

func TestCompactForgetsExpiredResults(t *testing.T) {
	h := newHarness(t)
	h.do(RememberResult{Key: "old", Result: []byte("r")})
	h.wait(time.Hour)
	h.do(RememberResult{Key: "new", Result: []byte("r")})
	h.wait(23 * time.Hour)
	h.s.Compact(h.p, h.now)
	if len(h.s.keyed) != 1 || h.s.keyed[0].key != "new" {
		t.Fatalf("kept %+v", h.s.keyed)
	}
	h.wait(time.Hour)
	h.s.Compact(h.p, h.now)
	if h.s.keyed != nil {
		t.Fatalf("kept %+v", h.s.keyed)
	}
}
