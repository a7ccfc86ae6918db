package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/parleyhq/parley/internal/browsertest"
)

// TestDashboardNumbersInBrowser (issue 13): against `parley dev`, an admin
// opens the dashboard on a tenant created through the API without a
// number, and in headless Chromium connects its Twilio number (a token
// twilio-go would refuse is shown refused first), renames it, assigns it
// to another agent, switches it off and deletes it; after each step the
// API says the same, and no credential is on the page.
func TestDashboardNumbersInBrowser(t *testing.T) {
	base, key, stop := startDev(t, freeAddr(t), t.TempDir())
	defer stop()
	call := func(method, path string, body any) (int, []byte) {
		t.Helper()
		var rd io.Reader
		if body != nil {
			b, _ := json.Marshal(body)
			rd = bytes.NewReader(b)
		}
		req, _ := http.NewRequest(method, base+"/api/v1/"+path, rd)
		req.Header.Set("Authorization", "Bearer "+key)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, b
	}
	if status, body := call(http.MethodPost, "tenants", map[string]any{"id": "bravo", "name": "Bravo Cleaning"}); status != http.StatusCreated {
		t.Fatalf("create bravo: %d %s", status, body)
	}
	status, body := call(http.MethodPost, "tenants/bravo/agents", map[string]any{"name": "Sam Smith", "email": "sam@bravo.example", "whatsapp_enabled": true})
	var sam struct{ ID string }
	if status != http.StatusCreated || json.Unmarshal(body, &sam) != nil {
		t.Fatalf("bravo's agent: %d %s", status, body)
	}
	status, body = call(http.MethodPost, "tenants/bravo/agents", map[string]any{"name": "Kim Lee", "email": "kim@bravo.example", "whatsapp_enabled": true})
	var kim struct{ ID string }
	if status != http.StatusCreated || json.Unmarshal(body, &kim) != nil {
		t.Fatalf("bravo's second agent: %d %s", status, body)
	}
	type number struct {
		ID          string `json:"id"`
		DisplayName string `json:"display_name"`
		Agent       string `json:"assigned_agent"`
		Active      bool   `json:"active"`
	}
	numbers := func() []number {
		t.Helper()
		status, body := call(http.MethodGet, "tenants/bravo/numbers", nil)
		var list struct{ Items []number }
		if status != http.StatusOK || json.Unmarshal(body, &list) != nil {
			t.Fatalf("GET numbers: %d %s", status, body)
		}
		return list.Items
	}

	ctx := browsertest.New(t)
	c, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	wait := func(what, cond string) {
		t.Helper()
		w, stop := context.WithTimeout(c, 20*time.Second)
		defer stop()
		if _, err := chromedp.Run(w, chromedp.Poll[bool](cond, chromedp.WithPollingInterval(50*time.Millisecond))); err != nil {
			shown, _ := chromedp.Run(c, chromedp.Evaluate[string](`document.getElementById('numbers-card').innerText + ' | ' + document.getElementById('numbers-error').textContent`))
			t.Fatalf("%s: %v\nthe numbers card shows: %s", what, err, shown)
		}
	}
	run := func(js string) {
		t.Helper()
		if _, err := chromedp.Run(c, chromedp.Evaluate[any](js)); err != nil {
			t.Fatalf("%s: %v", js, err)
		}
	}
	if err := chromedp.Do(c, chromedp.Navigate(base+"/dashboard?tenant=bravo#key="+key)); err != nil {
		t.Fatal(err)
	}
	wait("the numbers card of a tenant without a number",
		`document.body.dataset.view === 'app' && !document.getElementById('numbers-card').hidden && document.getElementById('numbers-card').dataset.count === '0' && !document.getElementById('number-form').hidden`)

	const token = "0123456789abcdef0123456789abcdef"
	fill := func(tok string) {
		run(`(() => {
		  const set = (id, v) => { document.getElementById(id).value = v; };
		  set('n-display', 'Front desk'); set('n-from', 'whatsapp:+14155238886');
		  set('n-sid', 'AC0123456789abcdef0123456789abcdef'); set('n-token', ` + jsString(tok) + `);
		  set('n-agent', ` + jsString(sam.ID) + `);
		  document.querySelector('#number-form button[type=submit]').click();
		})()`)
	}
	fill("has-dashes-0123456789")
	wait("a token twilio-go refuses is shown refused", `document.getElementById('numbers-error').textContent.includes('letters and digits')`)
	if len(numbers()) != 0 {
		t.Fatal("a refused number was connected")
	}
	fill(token)
	wait("connected", `document.getElementById('numbers-card').dataset.count === '1' && !!document.querySelector('#numbers tr[data-number="+14155238886"][data-active="true"]')`)
	wait("the agent in the row", `(() => { const s = document.querySelector('#numbers tr[data-number] .n-agent'); return s.value === `+jsString(sam.ID)+` && s.selectedOptions[0].textContent === 'Sam Smith'; })()`)
	if n := numbers(); len(n) != 1 || n[0].ID != "+14155238886" || n[0].DisplayName != "Front desk" || !n[0].Active || n[0].Agent != sam.ID {
		t.Fatalf("after connect: %+v", n)
	}

	run(`(() => { const r = document.querySelector('#numbers tr[data-number]'); r.querySelector('.n-name').value = 'Reception'; r.querySelector('.n-save').click(); })()`)
	wait("renamed", `document.getElementById('numbers-status').textContent === 'Saved' && document.querySelector('#numbers tr[data-number] .n-name').value === 'Reception'`)
	run(`(() => { const r = document.querySelector('#numbers tr[data-number]'); r.querySelector('.n-agent').value = ` + jsString(kim.ID) + `; r.querySelector('.n-save').click(); })()`)
	wait("reassigned", `document.querySelector('#numbers tr[data-number] .n-agent').value === `+jsString(kim.ID))
	if n := numbers(); len(n) != 1 || n[0].Agent != kim.ID || n[0].DisplayName != "Reception" {
		t.Fatalf("after reassigning: %+v", n)
	}
	run(`document.querySelector('#numbers tr[data-number] .n-toggle').click()`)
	wait("switched off", `!!document.querySelector('#numbers tr[data-number][data-active="false"]')`)
	if n := numbers(); len(n) != 1 || n[0].DisplayName != "Reception" || n[0].Active {
		t.Fatalf("after rename and switching off: %+v", n)
	}
	html, err := chromedp.Run(c, chromedp.Evaluate[string](`document.documentElement.outerHTML`))
	if err != nil || strings.Contains(html, token) {
		t.Fatalf("the page holds the auth token (%v)", err)
	}

	run(`document.querySelector('#numbers tr[data-number] .n-delete').click()`)
	if len(numbers()) != 1 {
		t.Fatal("one click deleted the number")
	}
	run(`document.querySelector('#numbers tr[data-number] .n-delete').click()`)
	wait("deleted", `document.getElementById('numbers-card').dataset.count === '0' && !document.getElementById('number-form').hidden`)
	// Connecting without an agent is refused with the reason on the page.
	run(`(() => {
	  const set = (id, v) => { document.getElementById(id).value = v; };
	  set('n-from', 'whatsapp:+14155238886'); set('n-sid', 'AC0123456789abcdef0123456789abcdef');
	  set('n-token', ` + jsString(token) + `); set('n-agent', '');
	  document.querySelector('#number-form button[type=submit]').click();
	})()`)
	wait("an active number needs an agent", `document.getElementById('numbers-error').textContent.includes('assigned_agent')`)
	if n := numbers(); len(n) != 0 {
		t.Fatalf("after delete: %+v", n)
	}
}

// jsString is s as a JavaScript string literal.
func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
