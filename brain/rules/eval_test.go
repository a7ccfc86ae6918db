package rules_test

import (
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/parleyhq/parley/backend/demo"
	"github.com/parleyhq/parley/brain"
	"github.com/parleyhq/parley/brain/rules"
)

// evalSet is brain/testdata/eval.json.
type evalSet struct {
	Clock time.Time  `json:"clock"`
	Cases []evalCase `json:"cases"`
}

type evalCase struct {
	Text string `json:"text"`
	// Profile is the signed-in profile: absent means Sam, "" means not
	// signed in.
	Profile      *string  `json:"profile"`
	FirstName    string   `json:"first_name"`
	Lang         string   `json:"lang"`
	Pending      string   `json:"pending"`
	Expect       string   `json:"expect"`
	Facts        []string `json:"facts"`
	Absent       []string `json:"absent"`
	PendingAfter string   `json:"pending_after"`
	Handoff      bool     `json:"handoff"`
}

func loadEval(t testing.TB) evalSet {
	t.Helper()
	raw, err := os.ReadFile("../testdata/eval.json")
	if err != nil {
		t.Fatal(err)
	}
	var set evalSet
	if err := json.Unmarshal(raw, &set); err != nil {
		t.Fatal(err)
	}
	return set
}

// request builds the case's request at now: who is signed in and what the
// conversation state holds.
func (c evalCase) request(now time.Time) brain.Request {
	r := brain.Request{TenantName: "Sparkle Cleaning", Text: c.Text, State: brain.State{Language: c.Lang}}
	profile, first := demo.ProfileSam, "Sam"
	if c.Profile != nil {
		profile, first = *c.Profile, c.FirstName
	}
	if profile != "" {
		r.Authenticated, r.ProfileID, r.FirstName = true, profile, first
	}
	if c.Pending != "" {
		r.State.Pending = &brain.PendingAction{Kind: brain.PendingCancel, ProfileID: profile, BookingID: c.Pending,
			Summary: "booking " + c.Pending, Expires: now.Add(10 * time.Minute)}
	}
	return r
}

// check lists what is wrong with an answer.
func (c evalCase) check(a brain.Answer) []string {
	var wrong []string
	if a.QueryType != c.Expect {
		wrong = append(wrong, "query type "+a.QueryType+", want "+c.Expect)
	}
	text := strings.ToLower(a.Text)
	for _, f := range c.Facts {
		if !strings.Contains(text, strings.ToLower(f)) {
			wrong = append(wrong, "missing "+f)
		}
	}
	for _, f := range c.Absent {
		if strings.Contains(text, strings.ToLower(f)) {
			wrong = append(wrong, "should not say "+f)
		}
	}
	if c.PendingAfter != "" && (a.State.Pending == nil || a.State.Pending.BookingID != c.PendingAfter) {
		wrong = append(wrong, "pending cancellation of "+c.PendingAfter+" not set")
	}
	if c.Handoff != (a.Handoff != nil) {
		wrong = append(wrong, "handoff mismatch")
	}
	if len([]rune(a.Text)) > brain.MaxReplyChars {
		wrong = append(wrong, "reply too long")
	}
	return wrong
}

// TestEval runs the evaluation set against the rules brain on the demo
// business at a fixed clock and reports the accuracy: the share of
// phrasings answered with the expected tool and every expected fact.
func TestEval(t *testing.T) {
	set := loadEval(t)
	if len(set.Cases) < 60 {
		t.Fatalf("the evaluation set has %d cases, want at least 60", len(set.Cases))
	}
	now := set.Clock.In(demo.Location)
	clock := func() time.Time { return now }
	passed := 0
	byIntent := map[string][2]int{}
	for _, c := range set.Cases {
		// A fresh business per case: cancellations must not leak
		// between cases.
		b := rules.New(rules.WithBackend(demo.NewAt(clock)), rules.WithLocation(demo.Location), rules.WithClock(clock))
		a, err := b.Answer(context.Background(), c.request(now))
		if err != nil {
			t.Fatalf("%q: %v", c.Text, err)
		}
		n := byIntent[c.Expect]
		n[1]++
		if wrong := c.check(a); len(wrong) > 0 {
			t.Logf("MISS %q: %s\n    answer: %q", c.Text, strings.Join(wrong, "; "), a.Text)
		} else {
			if os.Getenv("EVAL_SHOW") != "" {
				t.Logf("ok %q [%s]\n%s", c.Text, a.QueryType, a.Text)
			}
			passed++
			n[0]++
		}
		byIntent[c.Expect] = n
	}
	accuracy := float64(passed) / float64(len(set.Cases))
	for intent, n := range byIntent {
		t.Logf("  %-20s %d/%d", intent, n[0], n[1])
	}
	t.Logf("rules brain accuracy: %.1f%% (%d/%d phrasings)", 100*accuracy, passed, len(set.Cases))
	if accuracy < 0.95 {
		t.Errorf("accuracy %.1f%% is below the 95%% goal", 100*accuracy)
	}
}
