// The dashboard's script: signs in with the admin token (kept in sessionStorage, sent only as an
// Authorization header to this origin), polls the admin API every second and draws what it returns.
// Everything from the server is written with textContent: names are data, never markup. Styles are
// set through the CSSOM or classes only (the page's CSP allows no inline style attributes).

const TOKEN_KEY = 'modelrelay.adminToken';
const POLL_MS = 1000;
const CREDENTIALS_EVERY = 5; // polls between refreshes of the key and token lists
const CHART_MINUTES = 10;

const $ = (id) => document.getElementById(id);
let token = sessionStorage.getItem(TOKEN_KEY);
let timer;
let polls = 0;
let workersByToken = new Map();
let bucketSecs = 5;

// ---------- talking to the server ----------

class HttpError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

async function api(method, path, body) {
  const headers = { authorization: `Bearer ${token}` };
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), cache: 'no-store' });
  if (res.status === 204) return undefined;
  const data = await res.json().catch(() => ({}));
  if (!res.ok) throw new HttpError(res.status, data?.error?.message ?? `HTTP ${res.status}`);
  return data;
}

// ---------- sign-in ----------

async function signIn(candidate) {
  token = candidate;
  try {
    await api('GET', '/admin/workers');
  } catch (err) {
    token = null;
    throw err;
  }
  sessionStorage.setItem(TOKEN_KEY, candidate);
  showApp();
}

function signOut(message = '') {
  token = null;
  sessionStorage.removeItem(TOKEN_KEY);
  clearTimeout(timer);
  $('app').hidden = true;
  $('signout').hidden = true;
  $('signin-view').hidden = false;
  $('signin-error').textContent = message;
  setStatus('', '');
  $('token').value = '';
  $('token').focus();
}

function showApp() {
  $('signin-view').hidden = true;
  $('app').hidden = false;
  $('signout').hidden = false;
  polls = 0;
  poll();
}

function setStatus(text, cls) {
  const s = $('status');
  s.textContent = text;
  s.className = `status ${cls}`;
}

// ---------- polling ----------

async function poll() {
  clearTimeout(timer);
  try {
    const withCredentials = polls % CREDENTIALS_EVERY === 0;
    const [workers, stats, keys, tokens] = await Promise.all([
      api('GET', '/admin/workers'),
      api('GET', '/admin/stats'),
      withCredentials ? api('GET', '/admin/keys') : undefined,
      withCredentials ? api('GET', '/admin/worker-tokens') : undefined,
    ]);
    polls++;
    renderWorkers(workers.data);
    renderStats(stats);
    if (keys) renderKeys(keys.data);
    if (tokens) renderTokens(tokens.data);
    setStatus(`live · updated ${new Date().toLocaleTimeString()}`, 'live');
  } catch (err) {
    if (err instanceof HttpError && (err.status === 401 || err.status === 403)) return signOut('The admin token was refused. Sign in again.');
    setStatus(`cannot reach the server (${err.message}); retrying`, 'down');
  }
  timer = setTimeout(poll, POLL_MS);
}

function refreshCredentials() {
  polls = 0;
  poll();
}

// ---------- rendering ----------

function el(tag, props = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c);
  return e;
}

function fill(tableId, emptyId, rows) {
  const tbody = $(tableId).tBodies[0];
  tbody.replaceChildren(...rows);
  $(tableId).hidden = rows.length === 0;
  $(emptyId).hidden = rows.length !== 0;
}

function ago(iso) {
  if (!iso) return 'never';
  const s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)}m ago`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ago`;
  return `${Math.floor(s / 86400)}d ago`;
}

function num(n) {
  if (n === null || n === undefined || Number.isNaN(n)) return '–';
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)}M`;
  if (n >= 1e4) return `${(n / 1e3).toFixed(1)}k`;
  return Number.isInteger(n) ? String(n) : n.toFixed(1);
}

function ms(v) {
  return v >= 1000 ? `${(v / 1000).toFixed(v >= 10_000 ? 0 : 1)} s` : `${Math.round(v)} ms`;
}

function renderWorkers(workers) {
  workersByToken = new Map();
  let inFlight = 0;
  let capacity = 0;
  const rows = workers.map((w) => {
    inFlight += w.in_flight;
    capacity += w.max_concurrent;
    if (w.credential.kind === 'worker_token') workersByToken.set(w.credential.id, (workersByToken.get(w.credential.id) ?? 0) + 1);
    const ratio = w.max_concurrent ? w.in_flight / w.max_concurrent : 0;
    const fillSpan = el('span');
    fillSpan.style.width = `${Math.round(ratio * 100)}%`;
    const bar = el('div', { class: `bar${ratio >= 1 ? ' full' : ratio >= 0.5 ? ' busy' : ''}` }, fillSpan);
    const drain = el('button', {
      class: 'danger drain',
      text: 'Drain',
      title: 'Route nothing new to this worker; let its requests finish, then it disconnects',
      onclick: async (ev) => {
        if (!confirm(`Drain worker ${w.name}? It finishes its requests and disconnects.`)) return;
        ev.target.disabled = true;
        try {
          await api('POST', `/admin/workers/${encodeURIComponent(w.id)}/drain`);
        } catch (err) {
          alert(`Could not drain ${w.name}: ${err.message}`);
        }
        poll();
      },
    });
    if (w.state === 'draining') drain.disabled = true;
    return el(
      'tr',
      { 'data-worker': w.name, 'data-worker-id': w.id },
      el('td', { class: 'name', text: w.name, title: `${w.id} · ${w.peer} · protocol ${w.protocol_version}${w.extensions.length ? ' + ' + w.extensions.join(', ') : ''}` }),
      el('td', { class: 'models', text: w.models.join(', '), title: w.models.join(', ') }),
      el('td', {}, el('div', { class: 'load' }, bar, el('small', { text: `${w.in_flight} / ${w.max_concurrent}` }))),
      el(
        'td',
        {},
        el('span', { class: `badge ${w.state}`, text: w.state }),
        ...(w.backend === 'down' ? [' ', el('span', { class: 'badge down', text: 'backend down' })] : []),
        ...(w.breaker && w.breaker !== 'closed' ? [' ', el('span', { class: 'badge down', text: `breaker ${w.breaker.replace('_', '-')}` })] : []),
      ),
      el('td', { class: 'muted', text: w.credential.kind === 'shared_secret' ? 'shared secret' : `token: ${w.credential.name}` }),
      el('td', { class: 'muted', text: ago(w.connected_at) }),
      el('td', { class: 'muted', text: ago(w.last_seen_at) }),
      el('td', { class: 'num' }, drain),
    );
  });
  fill('workers', 'workers-empty', rows);
  $('tile-workers').textContent = String(workers.length);
  $('tile-workers-sub').textContent = workers.some((w) => w.state === 'draining') ? `${workers.filter((w) => w.state === 'draining').length} draining` : workers.length ? 'all active' : 'none connected';
  $('tile-inflight').textContent = String(inFlight);
  $('tile-capacity').textContent = `of ${capacity} slots`;
}

function renderStats(stats) {
  $('queue-total').textContent = String(stats.queue_depth);
  const queued = Object.entries(stats.models).filter(([, m]) => m.queue_depth > 0);
  $('queue-models').textContent = queued.length ? queued.map(([name, m]) => `${name}: ${m.queue_depth}`).join(' · ') : 'nothing waiting';

  const models = Object.entries(stats.models).sort(([a], [b]) => a.localeCompare(b));
  fill(
    'models',
    'models-empty',
    models.map(([name, m]) => {
      const errors = m.requests.client_error + m.requests.backend_error + m.requests.timed_out;
      return el(
        'tr',
        { 'data-model': name },
        el('td', { class: 'name', text: name }),
        el('td', { class: 'num', text: String(m.queue_depth) }),
        el('td', { class: 'num', text: num(m.requests.ok) }),
        el('td', { class: `num${errors ? ' error-code' : ''}`, text: num(errors) }),
        el('td', { class: 'num', text: num(m.latency_ms.total.p50) }),
        el('td', { class: 'num', text: num(m.latency_ms.total.p99) }),
        el('td', { class: 'num', text: num(m.tokens.prompt + m.tokens.completion) }),
      );
    }),
  );

  fill(
    'errors',
    'errors-empty',
    stats.recent_errors.slice(0, 8).map((e) =>
      el(
        'tr',
        {},
        el('td', { class: 'muted', text: new Date(e.at).toLocaleTimeString() }),
        el('td', { text: e.model }),
        el('td', { class: 'muted', text: e.worker ?? '–' }),
        el('td', { class: 'num error-code', text: e.status ? String(e.status) : '–' }),
        el('td', { class: 'error-code', text: e.error ?? 'backend status', title: e.request_id }),
      ),
    ),
  );

  const secs = stats.series.bucket_secs;
  bucketSecs = secs;
  const recent = stats.series.points.slice(-Math.round((CHART_MINUTES * 60) / secs));
  // A fresh server has little history: start the charts a little before its first traffic (at
  // least a minute back) instead of drawing minutes of nothing.
  const first = recent.findIndex((p) => p.requests > 0);
  const minPoints = Math.round(60 / secs);
  const points = first < 0 ? recent.slice(-minPoints) : recent.slice(Math.max(0, Math.min(first - 1, recent.length - minPoints)));
  const lastMinute = points.slice(-Math.round(60 / secs));
  const reqs = lastMinute.reduce((n, p) => n + p.requests, 0);
  const errs = lastMinute.reduce((n, p) => n + p.errors, 0);
  const toks = lastMinute.reduce((n, p) => n + p.tokens, 0);
  $('tile-rate').textContent = num(reqs);
  $('tile-errors').textContent = reqs ? `${errs} errors (${Math.round((100 * errs) / reqs)}%)` : 'no traffic';
  const withLatency = lastMinute.filter((p) => p.p50_ms !== null);
  const p50 = withLatency.length ? withLatency.reduce((n, p) => n + p.p50_ms * p.requests, 0) / withLatency.reduce((n, p) => n + p.requests, 0) : null;
  const p95 = withLatency.length ? Math.max(...withLatency.map((p) => p.p95_ms)) : null;
  $('tile-latency').textContent = p50 === null ? '–' : `${ms(p50)} / ${ms(p95)}`;
  $('tile-tokens').textContent = num(Math.round(toks / 60));

  chart('chart-rate', 'axis-rate', points, [
    { values: points.map((p) => p.requests / secs), cls: 's-req', area: true },
    { values: points.map((p) => p.errors / secs), cls: 's-err' },
  ]);
  chart('chart-latency', 'axis-latency', points, [
    { values: points.map((p) => p.p95_ms), cls: 's-p95' },
    { values: points.map((p) => p.p50_ms), cls: 's-p50', area: true },
  ]);
  chart('chart-tokens', 'axis-tokens', points, [{ values: points.map((p) => p.tokens / secs), cls: 's-tok', area: true }]);
}

/** A small line chart in a 300×90 SVG: lines (and an area under the first), gaps where null. */
function chart(svgId, axisId, points, series) {
  const svg = $(svgId);
  const W = 300;
  const H = 90;
  const max = Math.max(1e-9, ...series.flatMap((s) => s.values.filter((v) => v !== null)));
  const x = (i) => (points.length <= 1 ? W : (i / (points.length - 1)) * W);
  const y = (v) => H - 2 - (v / max) * (H - 8);
  const ns = 'http://www.w3.org/2000/svg';
  const shapes = [];
  for (const s of series) {
    let run = [];
    const runs = [];
    s.values.forEach((v, i) => {
      if (v === null) {
        if (run.length) runs.push(run);
        run = [];
      } else run.push([x(i), y(v)]);
    });
    if (run.length) runs.push(run);
    for (const r of runs) {
      const d = r.map(([px, py], i) => `${i ? 'L' : 'M'}${px.toFixed(1)},${py.toFixed(1)}`).join('');
      if (s.area && r.length > 1) {
        const a = document.createElementNS(ns, 'path');
        a.setAttribute('d', `${d}L${r.at(-1)[0].toFixed(1)},${H}L${r[0][0].toFixed(1)},${H}Z`);
        a.setAttribute('class', `area ${s.cls}`);
        shapes.push(a);
      }
      const p = document.createElementNS(ns, 'path');
      // A lone point (one bucket between gaps) is drawn as a short dash, so it shows.
      p.setAttribute('d', r.length === 1 ? `M${Math.max(0, r[0][0] - 3).toFixed(1)},${r[0][1].toFixed(1)}h6` : d);
      p.setAttribute('class', `line ${s.cls}`);
      shapes.push(p);
    }
  }
  svg.replaceChildren(...shapes);
  const axis = $(axisId);
  const spanSecs = points.length * bucketSecs;
  axis.replaceChildren(el('span', { text: spanSecs >= 120 ? `${Math.round(spanSecs / 60)} min ago` : `${spanSecs}s ago` }), el('span', { text: `max ${num(max >= 10 ? Math.round(max) : Math.round(max * 10) / 10)}` }), el('span', { text: 'now' }));
}

function credentialRow(c, cells, what, path) {
  const revoke = el('button', {
    class: 'danger revoke',
    text: 'Revoke',
    onclick: async (ev) => {
      if (!confirm(`Revoke ${what} "${c.name}"? Anything using it is cut off at once.`)) return;
      ev.target.disabled = true;
      try {
        await api('DELETE', `${path}/${encodeURIComponent(c.id)}`);
      } catch (err) {
        alert(`Could not revoke: ${err.message}`);
      }
      refreshCredentials();
    },
  });
  return el('tr', { 'data-name': c.name, 'data-id': c.id }, el('td', { class: 'name', text: c.name }), el('td', {}, el('code', { text: `${c.prefix}…` })), ...cells, el('td', { class: 'num' }, revoke));
}

function renderKeys(keys) {
  fill(
    'keys',
    'keys-empty',
    keys.map((k) =>
      credentialRow(
        k,
        [
          el('td', { class: 'num', text: num(k.usage.requests.total), title: Object.entries(k.usage.requests).map(([o, n]) => `${o}: ${n}`).join('\n') }),
          el('td', { class: 'num', text: num(k.usage.prompt_tokens + k.usage.completion_tokens), title: `prompt ${k.usage.prompt_tokens}, completion ${k.usage.completion_tokens}` }),
          el('td', { class: 'muted', text: ago(k.usage.last_used_at) }),
        ],
        'key',
        '/admin/keys',
      ),
    ),
  );
}

function renderTokens(tokens) {
  fill(
    'tokens',
    'tokens-empty',
    tokens.map((t) =>
      credentialRow(t, [el('td', { class: 'muted', text: ago(t.created_at) }), el('td', { class: 'num', text: String(workersByToken.get(t.id) ?? 0) })], 'worker token', '/admin/worker-tokens'),
    ),
  );
}

// ---------- forms ----------

function creator(formId, inputId, boxId, secretId, path) {
  $(formId).addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const input = $(inputId);
    try {
      const created = await api('POST', path, { name: input.value });
      $(secretId).textContent = created.secret;
      $(boxId).hidden = false;
      input.value = '';
    } catch (err) {
      alert(`Could not create: ${err.message}`);
    }
    refreshCredentials();
  });
}

$('signin').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const button = $('signin-button');
  button.disabled = true;
  $('signin-error').textContent = '';
  try {
    await signIn($('token').value);
  } catch (err) {
    $('signin-error').textContent = err instanceof HttpError && err.status === 429 ? err.message : err instanceof HttpError ? 'That token was refused.' : `Cannot reach the server: ${err.message}`;
  } finally {
    button.disabled = false;
  }
});
$('signout').addEventListener('click', () => signOut());
creator('create-key', 'key-name', 'key-secret', 'new-key-secret', '/admin/keys');
creator('create-token', 'token-name', 'token-secret', 'new-token-secret', '/admin/worker-tokens');
for (const b of document.querySelectorAll('button.copy')) {
  b.addEventListener('click', () => navigator.clipboard?.writeText($(b.dataset.copy).textContent));
}

if (token) showApp();
