package channels

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
		{"301", MaxRetryAfter},
		{"99999999999999999999", 0}, // does not parse as an int or a date
		{"soon", 0},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{now.Add(-time.Minute).Format(http.TimeFormat), 0},
		{now.Add(24 * time.Hour).Format(http.TimeFormat), MaxRetryAfter},
	}
	for _, tc := range cases {
		if got := ParseRetryAfter(tc.header, now); got != tc.want {
			t.Errorf("ParseRetryAfter(%q) = %v, want %v", tc.header, got, tc.want)
		}
	}
}

func TestSendErrorText(t *testing.T) {
	cases := []struct {
		err  *SendError
		want string
	}{
		{&SendError{Provider: "twilio", Status: 400, Code: 21610, Message: "Attempt to send to unsubscribed recipient"},
			"twilio send: status 400 code 21610 Attempt to send to unsubscribed recipient"},
		{&SendError{Provider: "twilio", Status: 429, Code: 20429, Message: "Too Many Requests", Kind: Retry},
			"twilio send: status 429 code 20429 Too Many Requests (retryable)"},
		{&SendError{Provider: "twilio", Message: "dial tcp: connection refused", Kind: Retry},
			"twilio send: dial tcp: connection refused (retryable)"},
		{&SendError{Provider: "meta", Status: 400, Code: 131047, Message: "(#131047) Re-engagement message",
			Details: "Message failed to send because more than 24 hours have passed since the customer last replied to this number."},
			"meta send: status 400 code 131047 (#131047) Re-engagement message: Message failed to send because more than 24 hours have passed since the customer last replied to this number."},
		{&SendError{Provider: "meta", Status: 400, Code: 130429, Message: "(#130429) Rate limit hit", Kind: Retry},
			"meta send: status 400 code 130429 (#130429) Rate limit hit (retryable)"},
		{&SendError{Provider: "meta", Status: 400, Code: 100, Subcode: 33, Message: "Unsupported post request."},
			"meta send: status 400 code 100 subcode 33 Unsupported post request."},
		{&SendError{Provider: "meta", Message: "dial tcp: connection refused", Kind: Retry},
			"meta send: dial tcp: connection refused (retryable)"},
	}
	for _, tc := range cases {
		if got := tc.err.Error(); got != tc.want {
			t.Errorf("got %q, want %q", got, tc.want)
		}
	}
}
