package analytics

import (
	"context"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/parleyhq/parley/internal/browsertest"
	chsink "github.com/parleyhq/parley/sinks/clickhouse"
)

// pageState is what the dashboard shows, read from the DOM.
type pageState struct {
	View    string `json:"view"`
	Loaded  int    `json:"loaded"`
	From    string `json:"from"`
	To      string `json:"to"`
	Error   string `json:"error"`
	Login   string `json:"login"`
	Tenants []string
	Tiles   map[string]struct {
		Text  string `json:"text"`
		Value string `json:"value"`
	} `json:"tiles"`
	Codes string `json:"codes"`
	Top   []struct {
		Query string `json:"query"`
		Count string `json:"count"`
		Text  string `json:"text"`
	} `json:"top"`
	Metric      string    `json:"metric"`
	Step        string    `json:"step"`
	ChartPoints int       `json:"chartPoints"`
	ChartValues []float64 `json:"chartValues"`
	ChartTimes  []string  `json:"chartTimes"`
	Users       []string  `json:"users"`
	UsersText   string    `json:"usersText"`
	LogIDs      []string  `json:"logIds"`
	LogPhones   []string  `json:"logPhones"`
	LogBodies   []string  `json:"logBodies"`
}

const readPage = `(() => {
  const b = document.body.dataset;
  const tiles = {};
  for (const v of document.querySelectorAll('.tile .value')) tiles[v.id.slice(2)] = { text: v.textContent, value: v.dataset.value || '' };
  const rows = (sel) => [...document.querySelectorAll(sel)];
  return {
    view: b.view || '', loaded: Number(b.loaded || 0), from: b.from || '', to: b.to || '',
    error: document.getElementById('error').textContent, login: document.getElementById('login-error').textContent,
    Tenants: rows('#tenant option').map((o) => o.value),
    tiles, codes: document.getElementById('v-codes').textContent,
    top: rows('#top-queries tbody tr[data-query]').map((r) => ({ query: r.dataset.query, count: r.dataset.count, text: r.cells[1].textContent })),
    metric: document.getElementById('metric').value, step: document.getElementById('step').value,
    chartPoints: Number(document.getElementById('chart').dataset.points || 0),
    chartValues: rows('#chart circle').map((c) => Number(c.dataset.v)),
    chartTimes: rows('#chart circle').map((c) => c.dataset.t),
    users: rows('#power-users tbody tr[data-phone]').map((r) => r.dataset.phone),
    usersText: document.querySelector('#power-users tbody').textContent,
    logIds: rows('#log tbody tr[data-event-id]').map((r) => r.dataset.eventId),
    logPhones: rows('#log tbody tr[data-event-id]').map((r) => r.cells[1].textContent),
    logBodies: rows('#log tbody tr[data-event-id]').map((r) => r.cells[3].textContent),
  };
})()`

// fmtInt is the page's number format (en-US grouping).
func fmtInt(n uint64) string {
	s := strconv.FormatUint(n, 10)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

func fmtMsText(ms uint64) string {
	if ms < 1000 {
		return fmt.Sprintf("%d ms", ms)
	}
	return fmt.Sprintf("%.2f s", float64(ms)/1000)
}

// TestDashboardInBrowser drives the dashboard in headless Chromium against
// a real fasthttp server serving the API over the real ClickHouse data set,
// and checks that the page shows exactly the figures the API returns (and
// that those are the hand-counted ones).
func TestDashboardInBrowser(t *testing.T) {
	store := openDataset(t)
	base := serve(t, Options{Store: store})
	ctx := browsertest.New(t)

	// Everything the page writes to the console is kept; exceptions fail
	// the test.
	var (
		mu      sync.Mutex
		console []string
	)
	msgs := chromedp.Console(ctx)
	go func() {
		for m, err := range msgs {
			if err != nil {
				return
			}
			mu.Lock()
			if m.IsException() || m.Type == "error" {
				console = append(console, m.String())
			}
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range console {
			// The browser logs the API's 401 (wrong key) and 403 (the
			// agent's analytics) as failed requests; the page handles
			// them. Anything else is a fault of the page.
			if !strings.Contains(c, "status of 401") && !strings.Contains(c, "status of 403") {
				t.Errorf("browser console: %s", c)
			}
		}
	})

	// Forms are submitted by clicking their button, as a user does:
	// chromedp.Submit calls form.submit(), which skips the page's submit
	// handler.
	step := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		c, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if err := chromedp.Do(c, actions...); err != nil {
			state := read(t, ctx)
			t.Fatalf("%s: %v (page: %+v)", what, err, state)
		}
	}
	wait := func(what, expr string) {
		t.Helper()
		c, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if _, err := chromedp.Run(c, chromedp.Poll[bool](expr, chromedp.WithPollingInterval(50*time.Millisecond))); err != nil {
			t.Fatalf("%s: %v (page: %+v)", what, err, read(t, ctx))
		}
	}

	// The page loads without a key and asks for one.
	step("open", chromedp.Navigate(base+"/dashboard?refresh=2"))
	wait("login form", `document.body.dataset.view === 'login' && !document.getElementById('login').hidden`)
	if s := read(t, ctx); s.Loaded != 0 {
		t.Fatalf("loaded data without a key: %+v", s)
	}

	// A wrong key is refused and asked again.
	step("wrong key", chromedp.SendKeys(chromedp.CSS("#key"), "wrong-key-wrong-key"), chromedp.Click(chromedp.CSS("#login-form button[type=submit]")))
	wait("refusal shown", `document.getElementById('login-error').textContent !== ''`)

	// The analyst's key: acme's figures.
	step("analyst key", chromedp.SendKeys(chromedp.CSS("#key"), keyAnalyst), chromedp.Click(chromedp.CSS("#login-form button[type=submit]")))
	wait("dashboard loaded", `document.body.dataset.view === 'app' && Number(document.body.dataset.loaded) >= 1`)
	s := read(t, ctx)
	if fmt.Sprint(s.Tenants) != "[acme]" {
		t.Errorf("tenant picker %v, want the analyst's one tenant", s.Tenants)
	}
	// The page asked for the server's last 7 days: the data set's range.
	if s.From != dsFrom.Format(time.RFC3339) || s.To != dsNow.Format(time.RFC3339) {
		t.Errorf("page range %s – %s, want %s – %s", s.From, s.To, dsFrom.Format(time.RFC3339), dsNow.Format(time.RFC3339))
	}
	checkFigures(t, base, "acme", keyAnalyst, s)
	// And those are the hand-counted figures.
	if s.Tiles["messages_in"].Value != strconv.Itoa(wantMessagesIn) || s.Tiles["conversations"].Value != strconv.Itoa(wantConversations) ||
		s.Tiles["active_sessions"].Value != strconv.Itoa(wantActiveSessions) || s.Tiles["auth_success_rate"].Text != "76.5%" ||
		s.Tiles["llm_tokens"].Text != "12,000" || s.Tiles["first_response_ms_p50"].Text != "2.15 s" || s.Codes != "13 of 17 codes" {
		t.Errorf("tiles %+v (%s)", s.Tiles, s.Codes)
	}
	// Analysts see masked numbers.
	for _, p := range append(s.Users, s.LogPhones...) {
		if !strings.Contains(p, "****") {
			t.Errorf("unmasked phone %q shown to an analyst", p)
		}
	}

	// The conversation log filtered by customer.
	step("filter log", chromedp.SendKeys(chromedp.CSS("#log-phone"), dsPhone(1)), chromedp.Click(chromedp.CSS("#log-filter button[type=submit]")))
	wait("filtered log", `document.getElementById('log').dataset.rows === '24'`)
	f := read(t, ctx)
	var log struct {
		Messages []chsink.LogEntry `json:"messages"`
	}
	call(t, "GET", base+"/api/v1/tenants/acme/messages?"+url.Values{"from": {f.From}, "to": {f.To}, "phone": {dsPhone(1)}, "limit": {"50"}}.Encode(), keyAnalyst, &log)
	if len(f.LogIDs) != len(log.Messages) {
		t.Fatalf("filtered log: page %d rows, API %d", len(f.LogIDs), len(log.Messages))
	}
	for i, m := range log.Messages {
		if f.LogIDs[i] != m.EventID || f.LogBodies[i] != m.Body {
			t.Errorf("log row %d: page %s %q, API %s %q", i, f.LogIDs[i], f.LogBodies[i], m.EventID, m.Body)
		}
	}

	// Auto-refresh: the page reloads by itself (every 2 s here) and keeps
	// the filter.
	wait("auto-refresh", fmt.Sprintf(`Number(document.body.dataset.loaded) >= %d`, f.Loaded+1))
	if r := read(t, ctx); len(r.LogIDs) != 24 {
		t.Errorf("after refresh the log has %d rows", len(r.LogIDs))
	}

	// Another chart.
	step("chart: conversations per day", chromedp.Evaluate[chromedp.Void](`(() => {
		document.getElementById('metric').value = 'conversations';
		document.getElementById('step').value = 'day';
		document.getElementById('step').dispatchEvent(new Event('change'));
	})()`))
	wait("daily chart", `document.getElementById('chart').dataset.metric === 'conversations' && document.getElementById('chart').dataset.points === '8'`)
	if c := read(t, ctx); fmt.Sprint(c.ChartValues) != "[0 8 8 8 8 8 0 0]" {
		t.Errorf("conversations per day on the page: %v", c.ChartValues)
	}

	// An admin key: every tenant, full numbers, and globex's own figures.
	step("change key", chromedp.Click(chromedp.CSS("#forget-key")))
	wait("login again", `document.body.dataset.view === 'login' && document.body.dataset.loaded === undefined`)
	if l := read(t, ctx); l.Tiles["messages_in"].Text != "–" || len(l.LogIDs) != 0 {
		t.Errorf("the analyst's figures stay on the page after the key was dropped: %+v", l)
	}
	step("admin key", chromedp.SendKeys(chromedp.CSS("#key"), keyAdmin), chromedp.Click(chromedp.CSS("#login-form button[type=submit]")))
	wait("admin dashboard", `document.body.dataset.view === 'app' && document.body.dataset.role === 'admin'`)
	a := read(t, ctx)
	if fmt.Sprint(a.Tenants) != "[acme globex initech]" {
		t.Errorf("admin's tenant picker %v", a.Tenants)
	}
	before := a.Loaded
	step("pick globex", chromedp.Evaluate[chromedp.Void](`(() => {
		document.getElementById('log-phone').value = '';
		const t = document.getElementById('tenant'); t.value = 'globex'; t.dispatchEvent(new Event('change'));
	})()`))
	wait("globex loaded", fmt.Sprintf(`Number(document.body.dataset.loaded) > %d && document.getElementById('v-messages_in').dataset.value === '%d'`, before, globexIn))
	g := read(t, ctx)
	checkFigures(t, base, "globex", keyAdmin, g)
	for _, p := range g.LogPhones {
		if strings.Contains(p, "*") {
			t.Errorf("admin sees masked phone %q", p)
		}
	}

	// An agent's key: no analytics (said so), the conversation log yes.
	step("change key again", chromedp.Click(chromedp.CSS("#forget-key")))
	wait("login again", `document.body.dataset.view === 'login'`)
	step("agent key", chromedp.SendKeys(chromedp.CSS("#key"), keyAgent), chromedp.Click(chromedp.CSS("#login-form button[type=submit]")))
	wait("agent dashboard", `document.body.dataset.view === 'app' && document.body.dataset.role === 'agent' && Number(document.body.dataset.loaded) >= 1`)
	if ag := read(t, ctx); len(ag.Tenants) != 1 || ag.Tenants[0] != "acme" {
		t.Errorf("agent's tenant picker %v", ag.Tenants)
	}
	ag := read(t, ctx)
	if !strings.Contains(ag.Error, "cannot read analytics") || ag.Tiles["messages_in"].Text != "–" || len(ag.LogIDs) == 0 || !strings.Contains(ag.UsersText, "Not available") {
		t.Errorf("agent's page: error %q, tile %q, %d log rows, users %q", ag.Error, ag.Tiles["messages_in"].Text, len(ag.LogIDs), ag.UsersText)
	}
}

func read(t *testing.T, ctx context.Context) pageState {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	s, err := chromedp.Run(c, chromedp.Evaluate[pageState](readPage))
	if err != nil {
		t.Logf("read page: %v", err)
	}
	return s
}

// checkFigures compares what the page shows with what the API answers
// for the page's own range.
func checkFigures(t *testing.T, base, tenant, key string, s pageState) {
	t.Helper()
	q := "?" + url.Values{"from": {s.From}, "to": {s.To}}.Encode()
	var sum Summary
	if code, e := call(t, "GET", base+"/api/v1/tenants/"+tenant+"/analytics/summary"+q, key, &sum); code != 200 {
		t.Fatalf("summary %d %+v", code, e)
	}
	ints := map[string]uint64{
		"conversations": sum.Conversations, "messages_in": sum.MessagesIn, "messages_out": sum.MessagesOut,
		"active_sessions": sum.ActiveSessions, "handoffs": sum.Handoffs, "llm_tokens": uint64(sum.LLMTokens),
	}
	for name, v := range ints {
		tile := s.Tiles[name]
		if tile.Value != strconv.FormatUint(v, 10) || tile.Text != fmtInt(v) {
			t.Errorf("%s %s: page %q (%s), API %d", tenant, name, tile.Text, tile.Value, v)
		}
	}
	rate := s.Tiles["auth_success_rate"]
	if sum.AuthSuccessRate == nil {
		if rate.Text != "–" {
			t.Errorf("%s auth rate: page %q, API null", tenant, rate.Text)
		}
	} else if want := fmt.Sprintf("%.1f%%", *sum.AuthSuccessRate*100); rate.Text != want || rate.Value != strconv.FormatFloat(*sum.AuthSuccessRate, 'f', -1, 64) {
		t.Errorf("%s auth rate: page %q (%s), API %v", tenant, rate.Text, rate.Value, *sum.AuthSuccessRate)
	}
	for name, v := range map[string]*uint64{"first_response_ms_p50": sum.FirstResponseP50, "first_response_ms_p95": sum.FirstResponseP95} {
		tile := s.Tiles[name]
		if v == nil && tile.Text != "–" || v != nil && (tile.Text != fmtMsText(*v) || tile.Value != strconv.FormatUint(*v, 10)) {
			t.Errorf("%s %s: page %q (%s), API %v", tenant, name, tile.Text, tile.Value, v)
		}
	}
	if len(s.Top) != len(sum.TopQueries) {
		t.Errorf("%s top queries: page %d, API %d", tenant, len(s.Top), len(sum.TopQueries))
	}
	for i := range min(len(s.Top), len(sum.TopQueries)) {
		if s.Top[i].Query != sum.TopQueries[i].Query || s.Top[i].Count != strconv.FormatUint(sum.TopQueries[i].Count, 10) || s.Top[i].Text != fmtInt(sum.TopQueries[i].Count) {
			t.Errorf("%s top query %d: page %+v, API %+v", tenant, i, s.Top[i], sum.TopQueries[i])
		}
	}

	// The chart: the metric and step chosen on the page.
	var ser Series
	call(t, "GET", base+"/api/v1/tenants/"+tenant+"/analytics/timeseries"+q+"&metric="+s.Metric+"&step="+s.Step, key, &ser)
	if s.ChartPoints != len(ser.Points) || len(s.ChartValues) != len(ser.Points) {
		t.Errorf("%s chart: page %d points, API %d", tenant, s.ChartPoints, len(ser.Points))
	} else {
		for i, p := range ser.Points {
			if p.Value == nil || s.ChartValues[i] != *p.Value || s.ChartTimes[i] != p.T.Format(time.RFC3339) {
				t.Errorf("%s chart point %d: page %s=%v, API %v=%v", tenant, i, s.ChartTimes[i], s.ChartValues[i], p.T, p.Value)
				break
			}
		}
	}

	var users struct {
		Users []chsink.PowerUser `json:"users"`
	}
	call(t, "GET", base+"/api/v1/tenants/"+tenant+"/analytics/power-users"+q+"&limit=10", key, &users)
	var phones []string
	for _, u := range users.Users {
		phones = append(phones, u.Phone)
	}
	if fmt.Sprint(phones) != fmt.Sprint(s.Users) {
		t.Errorf("%s power users: page %v, API %v", tenant, s.Users, phones)
	}

	var log struct {
		Messages []chsink.LogEntry `json:"messages"`
	}
	call(t, "GET", base+"/api/v1/tenants/"+tenant+"/messages"+q+"&limit=50", key, &log)
	if len(s.LogIDs) != len(log.Messages) {
		t.Errorf("%s log: page %d rows, API %d", tenant, len(s.LogIDs), len(log.Messages))
		return
	}
	for i, m := range log.Messages {
		if s.LogIDs[i] != m.EventID || s.LogPhones[i] != m.Phone || s.LogBodies[i] != m.Body {
			t.Errorf("%s log row %d: page %s %s %q, API %s %s %q", tenant, i, s.LogIDs[i], s.LogPhones[i], s.LogBodies[i], m.EventID, m.Phone, m.Body)
			return
		}
	}
}
