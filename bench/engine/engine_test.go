package main

import (
	"context"
	"net"
	"os"
	"runtime/pprof"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/parleyhq/parley/bench/internal/baseline"
	"github.com/parleyhq/parley/bench/loadgen"
	"github.com/parleyhq/parley/channels/twilio"
	"github.com/parleyhq/parley/tenants"
)

// The product's Twilio sender takes the provider's answers: a SID back,
// the reply recorded with its number, and handed to a sign-in waiting for
// it.
func TestProviderAnswersTheTwilioSender(t *testing.T) {
	p, err := startProvider()
	if err != nil {
		t.Fatal(err)
	}
	defer p.close()
	waits := p.startWatching([]string{"+447400000001"})
	s := twilio.NewSender(nil)
	cfg := &tenants.Twilio{AccountSID: accountSID, AuthToken: tenants.Secret(authToken), From: senderNumber, APIBaseURL: p.URL()}
	sid, err := s.Send(context.Background(), cfg, "+447400000001", "Your verification code is 123456. It is valid for 10 minutes.", publicBaseURL+webhookPath+"/status")
	if err != nil {
		t.Fatal(err)
	}
	if len(sid) != 34 || sid[:2] != "SM" {
		t.Fatalf("sid %q", sid)
	}
	select {
	case m := <-waits["+447400000001"]:
		if m.sid != sid || sixDigits(m.body) != "123456" {
			t.Fatalf("watched %+v", m)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the waiter got nothing")
	}
	if got := p.snapshot(); len(got) != 1 || got[0].phone != "+447400000001" {
		t.Fatalf("replies %+v", got)
	}
}

// Every generated request, messages and status callbacks alike, passes
// the baseline's signature check (and so the engine's: same token, same
// public URL), at its own path.
func TestLoadIsSignedAndMixed(t *testing.T) {
	l := buildLoad(3000, 50, [3]float64{30, 50, 20}, 1)
	for k, n := range l.mixCounts {
		if n < 400 {
			t.Fatalf("kind %s: %d of 3000", kindNames[k], n)
		}
	}
	sids := make([][2]string, 50)
	for j := range sids {
		sids[j] = [2]string{"SMaa" + pad30(j), "SMbb" + pad30(j)}
	}
	l.withStatuses(sids)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	stop := baseline.Serve(ln, publicBaseURL, authToken)
	defer stop(context.Background())
	hc := &fasthttp.HostClient{Addr: ln.Addr().String()}
	phones := map[string]bool{}
	for i, r := range l.forms {
		path := webhookPath
		if l.kind[i] == kindStatus {
			if r.Path != loadgen.StatusPath(webhook()) {
				t.Fatalf("status callback %d goes to %q", i, r.Path)
			}
			path = r.Path
		}
		req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
		req.SetRequestURI("http://" + ln.Addr().String() + path)
		req.Header.SetMethod(fasthttp.MethodPost)
		req.Header.SetContentType("application/x-www-form-urlencoded")
		req.Header.Set("X-Twilio-Signature", r.Signature)
		req.SetBody(r.Body)
		if err := hc.Do(req, resp); err != nil || resp.StatusCode() != 200 {
			t.Fatalf("request %d (%s): %v %d", i, kindNames[l.kind[i]], err, resp.StatusCode())
		}
		form, err := twilio.ParseForm(r.Body)
		if err != nil {
			t.Fatal(err)
		}
		in, err := twilio.Normalize(tenantID, form, time.Now(), func() string { return "id" })
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		if in.Phone != l.phone[i] {
			t.Fatalf("request %d is %s's, the load says %s", i, in.Phone, l.phone[i])
		}
		if l.kind[i] == kindNew {
			if phones[in.Phone] {
				t.Fatalf("new customer %s twice", in.Phone)
			}
			phones[in.Phone] = true
		}
		if st := in.GetStatus(); (st != nil) != (l.kind[i] == kindStatus) {
			t.Fatalf("request %d: kind %s, normalised %v", i, kindNames[l.kind[i]], in.Kind)
		}
		fasthttp.ReleaseRequest(req)
		fasthttp.ReleaseResponse(resp)
	}
}

func pad30(j int) string {
	s := "000000000000000000000000000000"
	d := []byte(s)
	for i := len(d) - 1; j > 0; i-- {
		d[i] = byte('0' + j%10)
		j /= 10
	}
	return string(d)
}

func TestReadyLine(t *testing.T) {
	r, err := readyLine("ready addr=127.0.0.1:1234 clickhouse=127.0.0.1:9000 brokers=127.0.0.1:1,127.0.0.1:2 kafkadir=/tmp/x/kafka chpid=42\n")
	if err != nil || r.addr != "127.0.0.1:1234" || r.clickhouse != "127.0.0.1:9000" || r.chpid != 42 ||
		len(r.brokers) != 2 || r.brokers[1] != "127.0.0.1:2" || r.kafkaDir != "/tmp/x/kafka" {
		t.Fatalf("%+v %v", r, err)
	}
	if _, err := readyLine("serve: boom"); err == nil {
		t.Fatal("want an error")
	}
}

// cpuByRole reads what runtime/pprof writes and gives every sample a role.
func TestCPUByRoleReadsAProfile(t *testing.T) {
	path := t.TempDir() + "/cpu.pprof"
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		t.Fatal(err)
	}
	// Busy on the runtime's own work for a while, so samples exist.
	deadline := time.Now().Add(300 * time.Millisecond)
	var sink []byte
	for time.Now().Before(deadline) {
		sink = make([]byte, 1<<16)
	}
	_ = sink
	pprof.StopCPUProfile()
	f.Close()
	got, err := cpuByRole(path, 1000)
	if err != nil {
		t.Fatal(err)
	}
	var share float64
	for _, r := range got {
		share += r.Share
		if r.Seconds <= 0 || r.PerReq <= 0 {
			t.Fatalf("%+v", r)
		}
	}
	if len(got) == 0 || share < 0.999 || share > 1.001 {
		t.Fatalf("roles %+v (shares sum to %.3f)", got, share)
	}
}
