package providertest

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
	"google.golang.org/protobuf/proto"

	"github.com/parleyhq/parley/channels"
	"github.com/parleyhq/parley/internal/e164"
	"github.com/parleyhq/parley/wire"
)

// IncomingCase is one request to a provider's routes and what must come of
// it: the answer, and the records the ingress would produce.
type IncomingCase struct {
	Label string
	// Method is the request method; "" is POST.
	Method string
	// Path is the request path, with its query if any.
	Path string
	// Data names the testdata file the body is made from (through
	// Incoming.Body); Body is the body when Data is "".
	Data string
	Body []byte
	// Prep, when set, changes the body before it is signed and sent: a
	// variant of a stored payload.
	Prep func(t testing.TB, body []byte) []byte
	// Headers are sent as they are; Sign, when set, adds the headers
	// computed from the URL the provider called (Env.PublicBaseURL and
	// Path) and the body: the signature.
	Headers map[string]string
	Sign    func(url string, body []byte) map[string]string

	// Status is the answer's status; 0 is 200.
	Status int
	// BodyContains, when set, is in the answer's body.
	BodyContains string
	// Inbound are the records the route hands to the ingress, in order.
	// Their Id and ReceivedAtMs are left empty here: the harness checks
	// that each record has an id of its own and the time of the request.
	Inbound []*wire.Inbound
}

// Incoming runs IncomingCases through a provider's routes, as the ingress
// does (route by path, the route's body cap, Accept, Ack), without a
// broker: the records Accept returns are what the ingress would produce.
type Incoming struct {
	Provider channels.Provider
	Env      channels.Env
	// Body turns a testdata file into the body the provider sends; nil:
	// the file's bytes.
	Body func(t testing.TB, file []byte) []byte
	// Mask, when set, changes each record (its Id still set) before it is
	// compared, for fields the provider derives from the id.
	Mask func(in *wire.Inbound)
}

// Run runs the cases, each as a subtest.
func (h Incoming) Run(t *testing.T, cases []IncomingCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.Label, func(t *testing.T) { h.run(t, tc) })
	}
}

// CheckCoverage fails t for every testdata/*.json that none of cases
// sends: every stored payload has an expectation.
func CheckCoverage(t *testing.T, cases ...[]IncomingCase) {
	t.Helper()
	covered := map[string]bool{}
	for _, cs := range cases {
		for _, tc := range cs {
			covered[tc.Data] = true
		}
	}
	for _, f := range TestdataFiles(t) {
		if !covered[f] {
			t.Errorf("testdata/%s has no expectation", f)
		}
	}
}

// Load reads testdata/name.
func Load(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (h Incoming) run(t *testing.T, tc IncomingCase) {
	body := tc.Body
	if tc.Data != "" {
		body = Load(t, tc.Data)
		if h.Body != nil {
			body = h.Body(t, body)
		}
	}
	if tc.Prep != nil {
		body = tc.Prep(t, body)
	}
	method := tc.Method
	if method == "" {
		method = fasthttp.MethodPost
	}
	ctx := &fasthttp.RequestCtx{}
	ctx.Request.Header.SetMethod(method)
	ctx.Request.SetRequestURI(tc.Path)
	ctx.Request.Header.SetHost("parley.test")
	ctx.Request.SetBody(body)
	for k, v := range tc.Headers {
		ctx.Request.Header.Set(k, v)
	}
	if tc.Sign != nil {
		for k, v := range tc.Sign(h.Env.PublicBaseURL+tc.Path, body) {
			ctx.Request.Header.Set(k, v)
		}
	}

	env := h.Env
	if env.Logger == nil {
		env.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	before := time.Now()
	ins := serve(ctx, h.Provider, env)
	after := time.Now()

	status := ctx.Response.StatusCode()
	want := tc.Status
	if want == 0 {
		want = fasthttp.StatusOK
	}
	if status != want {
		t.Fatalf("status %d (%s), want %d", status, ctx.Response.Body(), want)
	}
	if tc.BodyContains != "" && !bytes.Contains(ctx.Response.Body(), []byte(tc.BodyContains)) {
		t.Fatalf("answer %q does not contain %q", ctx.Response.Body(), tc.BodyContains)
	}
	if len(ins) != len(tc.Inbound) {
		t.Fatalf("got %d records, want %d: %v", len(ins), len(tc.Inbound), ins)
	}
	seen := map[string]bool{}
	for i, in := range ins {
		// What the ingress does next must work.
		if _, err := proto.Marshal(in); err != nil {
			t.Fatalf("record %d does not encode: %v", i, err)
		}
		if in.Id == "" || seen[in.Id] {
			t.Fatalf("record %d: id %q is empty or not its own", i, in.Id)
		}
		seen[in.Id] = true
		if at := in.ReceivedAtMs; at < before.UnixMilli() || at > after.UnixMilli() {
			t.Fatalf("record %d: received at %d, not the time of the request", i, at)
		}
		got := proto.Clone(in).(*wire.Inbound)
		if h.Mask != nil {
			h.Mask(got)
		}
		got.Id, got.ReceivedAtMs = "", 0
		if !proto.Equal(got, tc.Inbound[i]) {
			t.Fatalf("record %d\ngot  %v\nwant %v", i, got, tc.Inbound[i])
		}
	}
}

// serve finds the route of the request's path (an exact path, else the
// longest prefix), applies its body cap and runs it; it returns the
// records the ingress would produce. Nothing is produced, so Ack follows
// Accept at once.
func serve(ctx *fasthttp.RequestCtx, p channels.Provider, env channels.Env) []*wire.Inbound {
	path := string(ctx.Path())
	routes := p.Routes()
	sort.SliceStable(routes, func(i, j int) bool { return len(routes[i].Path) > len(routes[j].Path) })
	for _, r := range routes {
		if r.Path != path && (!r.Prefix || !strings.HasPrefix(path, r.Path)) {
			continue
		}
		if r.MaxBodyBytes > 0 && len(ctx.Request.Body()) > r.MaxBodyBytes {
			ctx.Error("request body too large", fasthttp.StatusRequestEntityTooLarge)
			return nil
		}
		ins, answered := r.Accept(ctx, env)
		if answered {
			return nil
		}
		if r.Ack != nil {
			r.Ack(ctx, ins)
		}
		return ins
	}
	ctx.Error("not found", fasthttp.StatusNotFound)
	return nil
}

// FormBody turns a testdata file that holds a form as a JSON object of
// field to value into the form-encoded body: Twilio's webhooks.
func FormBody(t testing.TB, file []byte) []byte {
	t.Helper()
	return []byte(Form(t, file).Encode())
}

// Form reads a JSON object of field to value as a form.
func Form(t testing.TB, file []byte) url.Values {
	t.Helper()
	var m map[string]string
	if err := json.Unmarshal(file, &m); err != nil {
		t.Fatalf("form: %v", err)
	}
	v := url.Values{}
	for k, x := range m {
		v.Set(k, x)
	}
	return v
}

// CheckRecord checks what every accepted record must be, whatever came in
// (fuzz targets call it): an E.164 phone, a message or a status with the
// provider's id, Parley's envelope (channel and id), and it encodes as
// protobuf. It returns the provider's id.
func CheckRecord(t testing.TB, in *wire.Inbound, channel, id string) string {
	t.Helper()
	if !e164.Valid(in.Phone) {
		t.Fatalf("phone %q is not E.164", in.Phone)
	}
	var providerID string
	switch k := in.Kind.(type) {
	case *wire.Inbound_Message:
		providerID = k.Message.GetProviderId()
	case *wire.Inbound_Status:
		providerID = k.Status.GetProviderId()
	default:
		t.Fatalf("no kind: %v", in)
	}
	if providerID == "" {
		t.Fatal("empty provider id")
	}
	if in.Channel != channel || in.Id != id {
		t.Fatalf("envelope %v", in)
	}
	if _, err := proto.Marshal(in); err != nil {
		t.Fatalf("accepted webhook does not encode: %v", err)
	}
	return providerID
}

// Refused reports whether err refused a fuzzed input, failing t when it is
// not sentinel, the provider's one error for input it cannot read.
func Refused(t testing.TB, err, sentinel error, what string) bool {
	t.Helper()
	if err != nil && !errors.Is(err, sentinel) {
		t.Fatalf("%s error not %v: %v", what, sentinel, err)
	}
	return err != nil
}
