package twilio

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/parleyhq/parley/channels/twilio/twiliotest"
	"github.com/parleyhq/parley/tenants"
)

const (
	testSID   = "AC00000000000000000000000000000001"
	testToken = "0123456789abcdef0123456789abcdef"
)

func TestSenderAgainstLocalTwilio(t *testing.T) {
	srv := twiliotest.New(testSID, testToken)
	defer srv.Close()
	cfg := &tenants.Twilio{AccountSID: testSID, AuthToken: testToken, From: "whatsapp:+14155238886", APIBaseURL: srv.URL()}
	s := NewSender(nil)

	sid, err := s.Send(context.Background(), cfg, "+447700900456", "Hello Sam", "https://p.example.com/cb")
	if err != nil {
		t.Fatal(err)
	}
	got := srv.Messages()
	if len(got) != 1 || got[0].SID != sid || got[0].To != "whatsapp:+447700900456" || got[0].From != "whatsapp:+14155238886" ||
		got[0].Body != "Hello Sam" || got[0].User != testSID || got[0].Password != testToken || got[0].StatusCallback != "https://p.example.com/cb" {
		t.Fatalf("server got %+v (sid %s)", got, sid)
	}

	cases := []struct {
		name      string
		fail      twiliotest.Failure
		retryable bool
		code      int
	}{
		{"api rate limit", twiliotest.Failure{Status: 429, Code: 20429, Message: "Too Many Requests"}, true, 20429},
		{"whatsapp rate limit", twiliotest.Failure{Status: 400, Code: 63018, Message: "Rate limit exceeded"}, true, 63018},
		{"server error", twiliotest.Failure{Status: 503, Code: 20500, Message: "Service unavailable"}, true, 20500},
		{"unsubscribed", twiliotest.Failure{Status: 400, Code: 21610, Message: "Attempt to send to unsubscribed recipient"}, false, 21610},
		{"outside window", twiliotest.Failure{Status: 400, Code: 63016, Message: "outside the allowed window"}, false, 63016},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv.FailNext(1, tc.fail)
			_, err := s.Send(context.Background(), cfg, "+447700900456", "x", "")
			var se *SendError
			if !errors.As(err, &se) || se.Retryable != tc.retryable || se.Code != tc.code {
				t.Fatalf("err = %#v", err)
			}
		})
	}

	t.Run("wrong token is permanent and not leaked", func(t *testing.T) {
		bad := *cfg
		bad.AuthToken = "ffffffffffffffffffffffffffffffff"
		_, err := s.Send(context.Background(), &bad, "+447700900456", "x", "")
		var se *SendError
		if !errors.As(err, &se) || se.Retryable || se.Status != 401 {
			t.Fatalf("err = %#v", err)
		}
		if strings.Contains(err.Error(), "ffffffffffffffff") || strings.Contains(err.Error(), testToken) {
			t.Fatalf("token in error: %v", err)
		}
	})
}
