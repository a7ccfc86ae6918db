package meta

import (
	"net/http"
	"slices"
	"strconv"
	"testing"

	"github.com/parleyhq/parley/channels"
)

func TestPositionalTemplateParameters(t *testing.T) {
	got := positional(map[string]string{"10": "j", "2": "b", "1": "a", "name": "n", "b": "x"})
	if want := []string{"a", "b", "j", "x", "n"}; !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	if positional(nil) != nil {
		t.Fatal("nil variables")
	}
}

func TestClassify(t *testing.T) {
	answer := func(code int) []byte {
		if code == 0 {
			return []byte("<html>Too Many Requests</html>")
		}
		return []byte(`{"error":{"message":"m","code":` + strconv.Itoa(code) + `,"fbtrace_id":"A1"}}`)
	}
	cases := []struct {
		name        string
		status      int
		code        int
		kind        channels.Kind
		report      string
		rateLimited bool
	}{
		{"meta 130429", 400, 130429, channels.Retry, "130429", true},
		{"meta 131056 pair", 400, 131056, channels.Retry, "131056", false},
		{"meta 429", 429, 0, channels.Retry, "http_429", true},
		{"meta 131047", 400, 131047, channels.OutsideWindow, "131047", false},
		{"meta 131050", 400, 131050, channels.Permanent, "131050", false},
	}
	for _, tc := range cases {
		se := classify(&http.Response{StatusCode: tc.status, Header: http.Header{}}, answer(tc.code), "")
		if se.Kind != tc.kind || se.ReportCode() != tc.report || se.RateLimited != tc.rateLimited {
			t.Errorf("%s: got %v %s rateLimited=%v", tc.name, se.Kind, se.ReportCode(), se.RateLimited)
		}
	}
	if se := refused("empty body"); se.Kind != channels.Permanent || se.ReportCode() != "invalid" {
		t.Errorf("refused input: got %v %s", se.Kind, se.ReportCode())
	}
}
