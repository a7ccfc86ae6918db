package e164

import "testing"

func TestValid(t *testing.T) {
	for s, want := range map[string]bool{
		"+447700900123":        true,
		"+4915112345678":       true,
		"+1234567":             true,
		"+123456":              false, // too short
		"+1234567890123456":    false, // 16 digits
		"+0447700900123":       false,
		"447700900123":         false,
		"+44 7700 900123":      false,
		"0151/12345678":        false,
		"+49 (0) 151 12345678": false,
		"":                     false,
	} {
		if got := Valid(s); got != want {
			t.Errorf("Valid(%q) = %v, want %v", s, got, want)
		}
	}
}
