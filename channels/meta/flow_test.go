package meta

import (
	"errors"
	"strings"
	"testing"
)

// TestFlowResponse: a Flow's response_json is kept compact when it is a
// JSON object within the bound, and refused (malformed) otherwise.
func TestFlowResponse(t *testing.T) {
	for _, tc := range []struct {
		name, raw, want string
		ok              bool
	}{
		{"none", "", "", true},
		{"an object", `{ "a": 1,  "b": "x" }`, `{"a":1,"b":"x"}`, true},
		{"nested", `{"items":[{"id":"1"}]}`, `{"items":[{"id":"1"}]}`, true},
		{"an array", `[1,2]`, "", false},
		{"a string", `"hello"`, "", false},
		{"broken", `{"a":`, "", false},
		{"too large", `{"a":"` + strings.Repeat("x", MaxFlowResponse) + `"}`, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := flowResponse(tc.raw)
			if tc.ok != (err == nil) || got != tc.want || (err != nil && !errors.Is(err, ErrMalformed)) {
				t.Fatalf("flowResponse = %q, %v", got, err)
			}
		})
	}
}
