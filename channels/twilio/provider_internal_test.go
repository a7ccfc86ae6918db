package twilio

import (
	"context"
	"errors"
	"testing"

	"github.com/twilio/twilio-go/client"

	"github.com/parleyhq/parley/channels"
)

func TestClassify(t *testing.T) {
	rest := func(status, code int) error { return &client.TwilioRestError{Status: status, Code: code, Message: "m"} }
	cases := []struct {
		name        string
		err         error
		status      int // what the recorder saw
		kind        channels.Kind
		report      string
		rateLimited bool
	}{
		{"twilio 429", rest(429, 20429), 429, channels.Retry, "20429", true},
		{"twilio 63018", rest(400, 63018), 400, channels.Retry, "63018", true},
		{"twilio 503", errors.New("unexpected end of JSON input"), 503, channels.Retry, "http_503", false},
		{"twilio network", errors.New("dial tcp: connection refused"), 0, channels.Retry, "network", false},
		{"twilio 21610", rest(400, 21610), 400, channels.OptedOut, "21610", false},
		{"twilio 63016", rest(400, 63016), 400, channels.OutsideWindow, "63016", false},
		{"twilio 21211", rest(400, 21211), 400, channels.Permanent, "21211", false},
	}
	for _, tc := range cases {
		se := classify(context.Background(), tc.err, &recorder{status: tc.status}, "")
		if se.Kind != tc.kind || se.ReportCode() != tc.report || se.RateLimited != tc.rateLimited {
			t.Errorf("%s: got %v %s rateLimited=%v", tc.name, se.Kind, se.ReportCode(), se.RateLimited)
		}
	}
	if se := refused("empty body"); se.Kind != channels.Permanent || se.ReportCode() != "invalid" {
		t.Errorf("refused input: got %v %s", se.Kind, se.ReportCode())
	}
}
