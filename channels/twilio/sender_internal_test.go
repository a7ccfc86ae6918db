package twilio

import (
	"net/http"
	"testing"
	"time"
)

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	cases := []struct {
		header string
		want   time.Duration
	}{
		{"", 0},
		{"0", 0},
		{"-5", 0},
		{"3", 3 * time.Second},
		{"300", 5 * time.Minute},
		{"301", maxRetryAfter},
		{"99999999999999999999", 0}, // does not parse as an int or a date
		{"soon", 0},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{now.Add(-time.Minute).Format(http.TimeFormat), 0},
		{now.Add(24 * time.Hour).Format(http.TimeFormat), maxRetryAfter},
	}
	for _, tc := range cases {
		if got := parseRetryAfter(tc.header, now); got != tc.want {
			t.Errorf("parseRetryAfter(%q) = %v, want %v", tc.header, got, tc.want)
		}
	}
}

func TestSendErrorText(t *testing.T) {
	cases := []struct {
		err  *SendError
		want string
	}{
		{&SendError{Status: 400, Code: 21610, Message: "Attempt to send to unsubscribed recipient"},
			"twilio send: status 400 code 21610 Attempt to send to unsubscribed recipient"},
		{&SendError{Status: 429, Code: 20429, Message: "Too Many Requests", Retryable: true},
			"twilio send: status 429 code 20429 Too Many Requests (retryable)"},
		{&SendError{Message: "dial tcp: connection refused", Retryable: true},
			"twilio send: dial tcp: connection refused (retryable)"},
	}
	for _, tc := range cases {
		if got := tc.err.Error(); got != tc.want {
			t.Errorf("got %q, want %q", got, tc.want)
		}
	}
}
