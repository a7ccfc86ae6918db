// Parley analytics dashboard. Plain JavaScript, no libraries: the page is
// embedded in the binary and must work without internet access. Every
// value from the API is put into the page with textContent, never as HTML
// (message bodies are customers' text).
'use strict';
(() => {
  const KEY = 'parley.apiKey';
  const TENANT = 'parley.tenant';
  const $ = (id) => document.getElementById(id);
  const params = new URLSearchParams(location.search);
  // ?refresh=N sets the auto-refresh period in seconds (default 30).
  const refreshSeconds = Math.max(1, Number(params.get('refresh')) || 30);
  // skew is the server's clock minus the browser's, learnt from the
  // tenant list: ranges like "the last 7 days" are the server's.
  const state = { tenant: '', role: '', seq: 0, timer: 0, busy: false, skew: 0 };

  class APIError extends Error {
    constructor(status, code, message) {
      super(message);
      this.status = status;
      this.code = code;
    }
  }

  // A link with #key=… (what `parley dev` prints) signs the page in: the
  // key is kept for the tab and taken out of the address at once. A
  // fragment never reaches the server, so the key is in no access log.
  const fromLink = new URLSearchParams(location.hash.slice(1)).get('key');
  if (fromLink) {
    sessionStorage.setItem(KEY, fromLink);
    history.replaceState(null, '', location.pathname + location.search);
  }

  const apiKey = () => sessionStorage.getItem(KEY) || '';

  async function api(path, method, body) {
    let res;
    const headers = { Authorization: 'Bearer ' + apiKey() };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    try {
      res = await fetch(path, { method: method || 'GET', headers, cache: 'no-store',
        body: body === undefined ? undefined : JSON.stringify(body) });
    } catch (e) {
      throw new APIError(0, 'network', 'the server cannot be reached');
    }
    let answer = null;
    try { answer = await res.json(); } catch (e) { /* not JSON, or 204 */ }
    if (!res.ok) {
      const err = (answer && answer.error) || {};
      throw new APIError(res.status, err.code || 'http_' + res.status, err.message || res.statusText);
    }
    return answer;
  }

  // Formatting. The raw value of every figure is kept in data-value.
  const fmtInt = (n) => Number(n).toLocaleString('en-US');
  const fmtRate = (r) => (r == null ? '–' : (r * 100).toFixed(1) + '%');
  const fmtMs = (ms) => (ms == null ? '–' : ms < 1000 ? ms + ' ms' : (ms / 1000).toFixed(2) + ' s');
  const iso = (d) => d.toISOString().replace(/\.\d{3}Z$/, 'Z');
  const fmtTime = (s) => s.replace('T', ' ').replace(/(\.\d+)?Z$/, '');
  const e164 = /^\+[1-9][0-9]{6,14}$/;

  // localUTC reads a datetime-local input as UTC.
  function localUTC(v) {
    if (!v) return '';
    if (/T\d\d:\d\d$/.test(v)) v += ':00';
    return v + 'Z';
  }

  function el(tag, attrs, text) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === 'class') e.className = v;
      else if (k.startsWith('data-')) e.dataset[k.slice(5).replace(/-(\w)/g, (_, c) => c.toUpperCase())] = v;
      else e.setAttribute(k, v);
    }
    if (text != null) e.textContent = text;
    return e;
  }

  function showLogin(message) {
    clearInterval(state.timer);
    // Nothing the previous key could see stays on the page.
    state.seq++;
    renderSummary(null);
    renderChart(null);
    $('power-users').tBodies[0].replaceChildren();
    $('log').tBodies[0].replaceChildren();
    $('numbers').tBodies[0].replaceChildren();
    $('numbers-card').hidden = true;
    $('error').textContent = '';
    delete document.body.dataset.loaded;
    $('login').hidden = false;
    $('app').hidden = true;
    $('controls').hidden = true;
    $('login-error').textContent = message || '';
    $('key').value = '';
    $('key').focus();
    document.body.dataset.view = 'login';
  }

  async function start() {
    if (!apiKey()) return showLogin('');
    let list;
    try {
      list = await api('/api/v1/tenants');
    } catch (e) {
      if (e.status === 401) sessionStorage.removeItem(KEY);
      return showLogin(e.message);
    }
    if (!list.tenants.length) return showLogin('This key may not see any tenant.');
    state.role = list.role;
    if (list.now) state.skew = Date.parse(list.now) - Date.now();
    const sel = $('tenant');
    sel.replaceChildren(...list.tenants.map((t) => el('option', { value: t.id }, t.name ? t.name + ' (' + t.id + ')' : t.id)));
    const wanted = params.get('tenant') || sessionStorage.getItem(TENANT);
    if (wanted && list.tenants.some((t) => t.id === wanted)) sel.value = wanted;
    state.tenant = sel.value;
    $('login').hidden = true;
    $('app').hidden = false;
    $('controls').hidden = false;
    document.body.dataset.view = 'app';
    document.body.dataset.role = state.role;
    loadNumbers();
    await refresh();
    clearInterval(state.timer);
    state.timer = setInterval(() => { if (!state.busy) refresh(); }, refreshSeconds * 1000);
  }

  function range() {
    const sel = $('range').value;
    if (sel === 'custom') {
      return { from: localUTC($('from').value), to: localUTC($('to').value) };
    }
    const to = new Date(Date.now() + state.skew);
    to.setMilliseconds(0);
    const hours = { '24h': 24, '7d': 168, '30d': 720 }[sel];
    return { from: iso(new Date(to.getTime() - hours * 3600e3)), to: iso(to) };
  }

  const qs = (o) => '?' + Object.entries(o).filter(([, v]) => v !== '' && v != null)
    .map(([k, v]) => k + '=' + encodeURIComponent(v)).join('&');

  async function refresh() {
    const seq = ++state.seq;
    state.busy = true;
    $('status').textContent = 'Loading…';
    const base = '/api/v1/tenants/' + encodeURIComponent(state.tenant);
    const r = range();
    document.body.dataset.from = r.from;
    document.body.dataset.to = r.to;
    const results = await Promise.allSettled([
      api(base + '/analytics/summary' + qs(r)),
      api(base + '/analytics/timeseries' + qs({ ...r, metric: $('metric').value, step: $('step').value })),
      api(base + '/analytics/power-users' + qs({ ...r, limit: 10 })),
      api(base + '/messages' + logQuery(r)),
    ]);
    state.busy = false;
    if (seq !== state.seq) return; // a newer refresh is under way
    if (results.some((x) => x.status === 'rejected' && x.reason.status === 401)) {
      sessionStorage.removeItem(KEY);
      return showLogin('The key was refused.');
    }
    const [summary, series, users, log] = results;
    const problems = [];
    const use = (res, ok, bad) => {
      if (res.status === 'fulfilled') ok(res.value);
      else { problems.push(res.reason); bad(res.reason); }
    };
    use(summary, renderSummary, () => renderSummary(null));
    use(series, renderChart, (e) => renderChart(null, e));
    use(users, renderUsers, (e) => renderUsers(null, e));
    use(log, renderLog, (e) => renderLog(null, e));
    const analytics = problems.find((e) => e.code === 'forbidden_role');
    $('error').textContent = analytics ? 'This key’s role (' + state.role + ') cannot read analytics.' :
      problems.filter((e) => e.status !== 400).map((e) => e.message).join('; ');
    $('status').textContent = 'Updated ' + new Date().toLocaleTimeString('en-GB') + ' · every ' + refreshSeconds + ' s';
    document.body.dataset.loaded = String(seq);
  }

  function setTile(name, raw, text) {
    const v = $('v-' + name);
    v.textContent = text;
    v.dataset.value = raw == null ? '' : String(raw);
  }

  function renderSummary(s) {
    if (!s) {
      for (const n of ['conversations', 'messages_in', 'messages_out', 'active_sessions', 'auth_success_rate',
        'first_response_ms_p50', 'first_response_ms_p95', 'handoffs', 'llm_tokens']) setTile(n, null, '–');
      $('v-codes').textContent = '\u00a0';
      renderTop([]);
      return;
    }
    for (const n of ['conversations', 'messages_in', 'messages_out', 'active_sessions', 'handoffs', 'llm_tokens']) {
      setTile(n, s[n], fmtInt(s[n]));
    }
    setTile('auth_success_rate', s.auth_success_rate, fmtRate(s.auth_success_rate));
    $('v-codes').textContent = fmtInt(s.codes_verified) + ' of ' + fmtInt(s.codes_sent) + ' codes';
    setTile('first_response_ms_p50', s.first_response_ms_p50, fmtMs(s.first_response_ms_p50));
    setTile('first_response_ms_p95', s.first_response_ms_p95, fmtMs(s.first_response_ms_p95));
    renderTop(s.top_queries);
  }

  function renderTop(list) {
    const body = $('top-queries').tBodies[0];
    const most = Math.max(1, ...list.map((q) => q.count));
    body.replaceChildren(...list.map((q) => {
      const bar = el('div', { class: 'bar' });
      bar.style.width = (100 * q.count / most).toFixed(1) + '%';
      const tr = el('tr', { 'data-query': q.query, 'data-count': String(q.count) });
      tr.append(el('td', {}, q.query), el('td', { class: 'num' }, fmtInt(q.count)), el('td', {}, null));
      tr.lastChild.append(bar);
      return tr;
    }));
    if (!list.length) body.append(emptyRow(3, 'No customer messages in this range.'));
  }

  function emptyRow(cols, text) {
    const tr = el('tr', { class: 'empty' });
    tr.append(el('td', { colspan: String(cols) }, text));
    return tr;
  }

  const SVG = 'http://www.w3.org/2000/svg';
  function svg(tag, attrs, text) {
    const e = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    if (text != null) e.textContent = text;
    return e;
  }

  // renderChart draws the series as an SVG line with a point per bucket
  // that has a value (data-t, data-v on each point).
  function renderChart(series, err) {
    const box = $('chart');
    box.replaceChildren();
    box.dataset.points = '0';
    if (!series) {
      $('chart-note').textContent = err ? err.message : '';
      return;
    }
    const rate = series.metric === 'auth_success_rate';
    const pts = series.points;
    const vals = pts.filter((p) => p.value != null).map((p) => p.value);
    const top = rate ? 1 : Math.max(1, ...vals);
    const W = 900, H = 260, L = 64, R = 16, T = 12, B = 30;
    const x = (i) => L + (pts.length < 2 ? (W - L - R) / 2 : i * (W - L - R) / (pts.length - 1));
    const y = (v) => T + (H - T - B) * (1 - v / top);
    const g = svg('svg', { viewBox: '0 0 ' + W + ' ' + H, role: 'img', 'aria-label': series.metric });
    for (const f of [0, 0.5, 1]) {
      g.append(svg('line', { class: 'axis', x1: L, x2: W - R, y1: y(top * f), y2: y(top * f) }));
      g.append(svg('text', { x: L - 6, y: y(top * f) + 4, 'text-anchor': 'end' }, rate ? fmtRate(top * f) : fmtInt(Math.round(top * f))));
    }
    const labels = pts.length ? [0, Math.floor((pts.length - 1) / 2), pts.length - 1] : [];
    for (const i of new Set(labels)) {
      g.append(svg('text', { x: x(i), y: H - 8, 'text-anchor': 'middle' }, fmtTime(pts[i].t).slice(0, series.step === 'day' ? 10 : 16)));
    }
    let d = '';
    let pen = false;
    pts.forEach((p, i) => {
      if (p.value == null) { pen = false; return; }
      d += (pen ? 'L' : 'M') + x(i).toFixed(1) + ' ' + y(p.value).toFixed(1) + ' ';
      pen = true;
    });
    if (d) g.append(svg('path', { class: 'line', d: d.trim() }));
    let n = 0;
    pts.forEach((p, i) => {
      if (p.value == null) return;
      n++;
      const c = svg('circle', { class: 'pt', cx: x(i).toFixed(1), cy: y(p.value).toFixed(1), r: pts.length > 200 ? 1.5 : 3, 'data-t': p.t, 'data-v': String(p.value) });
      c.append(svg('title', {}, fmtTime(p.t) + ': ' + (rate ? fmtRate(p.value) : fmtInt(p.value))));
      g.append(c);
    });
    box.append(g);
    box.dataset.points = String(n);
    box.dataset.metric = series.metric;
    const total = vals.reduce((a, b) => a + b, 0);
    $('chart-note').textContent = pts.length + ' ' + series.step + 's, UTC' +
      (rate || series.metric === 'active_sessions' ? '' : ' · total ' + fmtInt(total)) +
      (series.metric === 'active_sessions' ? ' · sessions at the end of each ' + series.step : '');
  }

  function renderUsers(res, err) {
    const body = $('power-users').tBodies[0];
    if (!res) {
      body.replaceChildren(emptyRow(5, err.code === 'forbidden_role' ? 'Not available to this key’s role.' : err.message));
      return;
    }
    body.replaceChildren(...res.users.map((u) => {
      const tr = el('tr', { 'data-phone': u.phone });
      tr.append(el('td', { class: 'mono' }, u.phone), el('td', { class: 'num' }, fmtInt(u.messages_in)),
        el('td', { class: 'num' }, fmtInt(u.messages_out)), el('td', { class: 'num' }, fmtInt(u.conversations)),
        el('td', {}, fmtTime(u.last_seen)));
      if (!res.masked) {
        tr.firstChild.classList.add('link');
        tr.firstChild.addEventListener('click', () => { $('log-phone').value = u.phone; reloadLog(); });
      }
      return tr;
    }));
    if (!res.users.length) body.append(emptyRow(5, 'No customers in this range.'));
  }

  function logQuery(r) {
    return qs({
      phone: $('log-phone').value.trim(),
      from: localUTC($('log-from').value) || r.from,
      to: localUTC($('log-to').value) || r.to,
      limit: $('log-limit').value,
    });
  }

  function renderLog(res, err) {
    const body = $('log').tBodies[0];
    if (!res) {
      body.replaceChildren();
      $('log-error').textContent = err.message;
      return;
    }
    $('log-error').textContent = '';
    body.replaceChildren(...res.messages.map((m) => {
      const tr = el('tr', { 'data-event-id': m.event_id, 'data-direction': m.direction });
      tr.append(
        el('td', { class: 'mono' }, fmtTime(m.at)),
        el('td', { class: 'mono' }, m.phone),
        el('td', { class: 'dir-' + m.direction, title: m.direction === 'in' ? 'from the customer' : 'to the customer' }, m.direction === 'in' ? '←' : '→'),
        bodyCell(m),
        el('td', {}, m.query_type),
        el('td', { class: 'mono' }, m.conversation_id.slice(0, 8)));
      return tr;
    }));
    if (!res.messages.length) body.append(emptyRow(6, 'No messages match.'));
    $('log').dataset.rows = String(res.messages.length);
  }

  // bodyCell is a message's text and, for each file the customer sent, a
  // button that fetches it with the key (a plain link could not carry
  // it) and shows it: an image in place, anything else as a link to the
  // downloaded copy. Files are for admin and agent keys.
  const fetchedMedia = new Map(); // ref → Blob, kept across refreshes

  function showMedia(holder, blob, i) {
    const url = URL.createObjectURL(blob);
    const shown = blob.type.startsWith('image/')
      ? el('img', { src: url, alt: 'file ' + (i + 1) + ' from the customer' })
      : el('a', { href: url, download: 'file-' + (i + 1) }, 'Download file ' + (i + 1) + ' (' + (blob.type || 'unknown type') + ')');
    holder.replaceChildren(shown);
    holder.dataset.state = 'shown';
  }

  function bodyCell(m) {
    const td = el('td', { class: 'body' }, m.body);
    (m.media || []).forEach((ref, i) => {
      const holder = el('div', { class: 'media', 'data-ref': ref, 'data-state': '' });
      td.append(holder);
      if (fetchedMedia.has(ref)) return showMedia(holder, fetchedMedia.get(ref), i);
      const button = el('button', { type: 'button' }, 'Show file ' + (i + 1));
      button.addEventListener('click', async () => {
        holder.dataset.state = 'loading';
        let res;
        try {
          res = await fetch('/api/v1/tenants/' + encodeURIComponent(state.tenant) + '/media?ref=' + encodeURIComponent(ref),
            { headers: { Authorization: 'Bearer ' + apiKey() } });
        } catch (e) {
          res = null;
        }
        if (!res || !res.ok) {
          holder.dataset.state = 'error';
          button.textContent = res && res.status === 403 ? 'Files need an admin or agent key' : 'File unavailable';
          return;
        }
        const blob = await res.blob();
        fetchedMedia.set(ref, blob);
        showMedia(holder, blob, i);
      });
      holder.append(button);
    });
    return td;
  }

  async function reloadLog() {
    const phone = $('log-phone').value.trim();
    if (phone && !e164.test(phone)) {
      $('log-error').textContent = 'Enter the number in E.164 form, e.g. +4915112345678.';
      return;
    }
    try {
      renderLog(await api('/api/v1/tenants/' + encodeURIComponent(state.tenant) + '/messages' + logQuery(range())));
    } catch (e) {
      if (e.status === 401) { sessionStorage.removeItem(KEY); return showLogin('The key was refused.'); }
      renderLog(null, e);
    }
  }

  // Numbers: the tenant's WhatsApp number, for admin keys (the numbers
  // routes need tenants:manage). Changes go to parley.config and reach
  // every node within a second.
  const numbersBase = () => '/api/v1/tenants/' + encodeURIComponent(state.tenant) + '/numbers';

  async function loadNumbers() {
    const card = $('numbers-card');
    if (state.role !== 'admin') { card.hidden = true; return; }
    const tenant = state.tenant;
    let res, agents;
    try {
      [res, agents] = await Promise.all([api(numbersBase()),
        api('/api/v1/tenants/' + encodeURIComponent(state.tenant) + '/agents')]);
    } catch (e) {
      if (tenant !== state.tenant) return;
      card.hidden = e.code === 'forbidden_role';
      $('numbers-error').textContent = e.message;
      return;
    }
    if (tenant !== state.tenant) return;
    card.hidden = false;
    state.agents = agents.items || [];
    // Numbers are assigned to agents who answer WhatsApp.
    const pick = $('n-agent');
    const was = pick.value;
    pick.replaceChildren(el('option', { value: '' }, state.agents.some((a) => a.whatsapp_enabled) ? 'Assigned agent…' : 'No agent with WhatsApp'),
      ...state.agents.filter((a) => a.whatsapp_enabled).map((a) => el('option', { value: a.id }, a.name)));
    pick.value = was;
    renderNumbers(res.items || []);
  }

  function renderNumbers(items) {
    const body = $('numbers').tBodies[0];
    body.replaceChildren(...items.map(numberRow));
    if (!items.length) body.append(emptyRow(6, 'No number connected: connect one below.'));
    $('number-form').hidden = false;
    $('numbers-card').dataset.count = String(items.length);
  }

  function numberRow(n) {
    const tr = el('tr', { 'data-number': n.id, 'data-active': String(n.active) });
    tr.append(el('td', { class: 'mono' }, n.id + (n.first ? ' (first)' : '')), el('td', {}, n.channel === 'meta' ? 'Meta' : 'Twilio'));
    const name = el('input', { value: n.display_name || '', 'aria-label': 'display name', class: 'n-name' });
    // The agent, among those who answer WhatsApp (and the current one,
    // whatever it is, so that saving a name does not change it).
    const agents = (state.agents || []).filter((a) => a.whatsapp_enabled || a.id === n.assigned_agent);
    const agent = el('select', { 'aria-label': 'assigned agent', class: 'n-agent' });
    agent.append(el('option', { value: '' }, '–'), ...agents.map((a) => el('option', { value: a.id }, a.name)));
    agent.value = n.assigned_agent || '';
    const save = el('button', { type: 'button', class: 'n-save' }, 'Save');
    save.addEventListener('click', () => changeNumber(n, { display_name: name.value.trim(), assigned_agent: agent.value }, 'Saved'));
    const nameCell = el('td');
    nameCell.append(name);
    const agentCell = el('td');
    agentCell.append(agent, ' ', save);
    tr.append(nameCell, agentCell, el('td', { class: n.active ? 'dir-in' : 'muted' }, n.active ? 'Active' : 'Inactive'));
    const toggle = el('button', { type: 'button', class: 'n-toggle' }, n.active ? 'Switch off' : 'Switch on');
    toggle.addEventListener('click', () => changeNumber(n, { active: !n.active }, n.active ? 'Switched off' : 'Switched on'));
    // Deleting takes a second click, on the same button.
    const del = el('button', { type: 'button', class: 'n-delete' }, 'Delete');
    del.addEventListener('click', async () => {
      if (del.dataset.armed !== 'true') {
        del.dataset.armed = 'true';
        del.textContent = 'Confirm delete';
        return;
      }
      await numberCall(() => api(numbersBase() + '/' + encodeURIComponent(n.id), 'DELETE'), 'Deleted');
    });
    const actions = el('td');
    actions.append(toggle, ' ', del);
    tr.append(actions);
    return tr;
  }

  function changeNumber(n, change, done) {
    return numberCall(() => api(numbersBase() + '/' + encodeURIComponent(n.id), 'PATCH', change), done);
  }

  // numberCall runs one change and shows the list as it is afterwards.
  async function numberCall(call, done) {
    $('numbers-status').textContent = 'Saving…';
    try {
      await call();
      $('numbers-error').textContent = '';
      $('numbers-status').textContent = done;
    } catch (e) {
      $('numbers-error').textContent = e.message;
      $('numbers-status').textContent = '';
    }
    await loadNumbers();
  }

  async function connectNumber() {
    const v = (id) => $(id).value.trim();
    const body = { display_name: v('n-display'), assigned_agent: $('n-agent').value };
    if ($('n-provider').value === 'meta') {
      body.meta = { phone_number_id: v('n-pnid'), access_token: v('n-access'), app_secret: v('n-secret'), verify_token: v('n-verify') };
    } else {
      body.twilio = { from: v('n-from'), account_sid: v('n-sid'), auth_token: v('n-token') };
    }
    await numberCall(() => api(numbersBase(), 'POST', body), 'Connected');
    if (!$('numbers-error').textContent) {
      for (const id of ['n-display', 'n-from', 'n-sid', 'n-token', 'n-pnid', 'n-access', 'n-secret', 'n-verify']) $(id).value = '';
    }
  }

  document.addEventListener('DOMContentLoaded', () => {
    $('number-form').addEventListener('submit', (ev) => { ev.preventDefault(); connectNumber(); });
    $('n-provider').addEventListener('change', () => {
      const meta = $('n-provider').value === 'meta';
      $('n-meta').hidden = !meta;
      $('n-twilio').hidden = meta;
    });
    $('login-form').addEventListener('submit', (ev) => {
      ev.preventDefault();
      sessionStorage.setItem(KEY, $('key').value.trim());
      start();
    });
    $('forget-key').addEventListener('click', () => { sessionStorage.removeItem(KEY); showLogin(''); });
    $('tenant').addEventListener('change', () => {
      state.tenant = $('tenant').value;
      sessionStorage.setItem(TENANT, state.tenant);
      refresh();
      $('numbers-error').textContent = '';
      $('numbers-status').textContent = '';
      loadNumbers();
    });
    $('range').addEventListener('change', () => {
      const custom = $('range').value === 'custom';
      $('custom-range').hidden = !custom;
      if (!custom) refresh();
    });
    $('apply-range').addEventListener('click', refresh);
    $('metric').addEventListener('change', refresh);
    $('step').addEventListener('change', refresh);
    $('log-filter').addEventListener('submit', (ev) => { ev.preventDefault(); reloadLog(); });
    $('log-clear').addEventListener('click', () => {
      for (const id of ['log-phone', 'log-from', 'log-to']) $(id).value = '';
      reloadLog();
    });
    start();
  });
})();
