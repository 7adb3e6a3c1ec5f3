// footfall's dashboard: plain JavaScript, no framework, no third-party code. Every number comes
// from /api/reports/* or /api/sql with the key the user signed in with (kept in this tab's
// sessionStorage). The view (tab, site, range, filters, funnel, retention, SQL) lives in the URL
// so it can be shared; the key never does.
'use strict';

const KEY = 'footfall.key';
const TZ = Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
const $ = (sel, el = document) => el.querySelector(sel);

// h('td', {class: 'n'}, 'text', child): an element; strings become text nodes (never HTML).
function h(tag, attrs = {}, ...kids) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const kid of kids.flat()) if (kid !== null && kid !== undefined && kid !== false) el.append(kid);
  return el;
}
const svg = (tag, attrs = {}) => {
  const el = document.createElementNS('http://www.w3.org/2000/svg', tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  return el;
};

// ---- formatting -------------------------------------------------------------------------
const fmtInt = (v) => Math.round(v ?? 0).toLocaleString('en-US');
const fmtPct = (v) => `${(v ?? 0).toFixed(1)}%`;
const fmtMoney = (v) => (v ?? 0).toLocaleString('en-US', { maximumFractionDigits: Math.abs(v ?? 0) >= 100 ? 0 : 2 });
function fmtDur(s) {
  s = Math.round(s ?? 0);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`;
  const two = (a, ua, b, ub) => (b ? `${a}${ua} ${b}${ub}` : `${a}${ua}`);
  if (s < 86400) return two(Math.floor(s / 3600), 'h', Math.floor((s % 3600) / 60), 'm');
  return two(Math.floor(s / 86400), 'd', Math.floor((s % 86400) / 3600), 'h');
}

const METRICS = [
  ['visitors', 'Visitors', fmtInt],
  ['sessions', 'Sessions', fmtInt],
  ['pageviews', 'Pageviews', fmtInt],
  ['bounce_rate', 'Bounce rate', fmtPct],
  ['visit_duration', 'Visit duration', fmtDur],
  ['revenue', 'Revenue', fmtMoney],
  ['conversion_rate', 'Conversion rate', fmtPct],
];
const RATES = new Set(['bounce_rate', 'conversion_rate']);
const LOWER_IS_BETTER = new Set(['bounce_rate']);
const TABLES = [
  ['page', 'Top pages', ['visitors', 'pageviews'], [{ dimension: 'event', values: ['pageview'] }]],
  ['entry_page', 'Entry pages', ['visitors', 'sessions']],
  ['channel', 'Channels', ['visitors', 'revenue', 'conversion_rate']],
  ['source', 'Sources', ['visitors', 'revenue', 'conversion_rate']],
  ['campaign', 'Campaigns', ['visitors', 'revenue', 'conversion_rate']],
  ['country', 'Countries', ['visitors']],
  ['region', 'Regions', ['visitors']],
  ['device', 'Devices', ['visitors']],
  ['browser', 'Browsers', ['visitors']],
];
// [name, label] of every dimension reports accept, from GET /api/dimensions at sign-in.
let DIMENSIONS = [];
const dimLabel = (d) => (d.startsWith('prop:') ? `Property ${d.slice(5)}` : (DIMENSIONS.find(([k]) => k === d) || [d, d])[1]);
const metricOf = (k) => METRICS.find(([m]) => m === k) || METRICS[0];

// ---- dates --------------------------------------------------------------------------------
const today = () => new Date().toLocaleDateString('en-CA', { timeZone: TZ });
const addDays = (d, n) => new Date(Date.parse(`${d}T00:00:00Z`) + n * 86400000).toISOString().slice(0, 10);
const daysBetween = (a, b) => Math.round((Date.parse(`${b}T00:00:00Z`) - Date.parse(`${a}T00:00:00Z`)) / 86400000);
function rangeDates() {
  const t = today();
  const month = `${t.slice(0, 8)}01`;
  switch (state.range) {
    case 'today': return [t, t];
    case 'yesterday': return [addDays(t, -1), addDays(t, -1)];
    case '7d': return [addDays(t, -6), t];
    case 'month': return [month, t];
    case 'last_month': { const end = addDays(month, -1); return [`${end.slice(0, 8)}01`, end]; }
    case '90d': return [addDays(t, -89), t];
    case 'custom': if (state.from && state.to && state.from <= state.to) return [state.from, state.to]; // fall through
    default: return [addDays(t, -29), t];
  }
}
function interval(from, to) {
  const days = daysBetween(from, to) + 1;
  return days <= 2 ? 'hour' : days <= 92 ? 'day' : days <= 400 ? 'week' : 'month';
}

// ---- state in the URL -------------------------------------------------------------------------
const state = { tab: 'overview', site: '', range: '30d', from: '', to: '', filters: [], segment: '', metric: 'visitors', funnel: null, retention: null, experiment: null, sql: '' };
function readUrl() {
  const p = new URLSearchParams(location.search);
  const json = (k, d) => { try { return p.has(k) ? JSON.parse(p.get(k)) : d; } catch { return d; } };
  state.tab = ['overview', 'funnel', 'retention', 'experiments', 'segments', 'sql'].includes(p.get('tab')) ? p.get('tab') : 'overview';
  state.segment = p.get('segment') || '';
  state.site = p.get('site') || '';
  state.range = p.get('range') || (p.get('from') ? 'custom' : '30d');
  state.from = p.get('from') || '';
  state.to = p.get('to') || '';
  state.filters = (json('filters', []) || []).filter((f) => f && typeof f.dimension === 'string' && Array.isArray(f.values));
  state.metric = metricOf(p.get('metric'))[0];
  state.funnel = json('funnel', null);
  state.retention = json('retention', null);
  state.experiment = json('experiment', null);
  state.sql = p.get('sql') || '';
}
function writeUrl() {
  const p = new URLSearchParams();
  if (state.tab !== 'overview') p.set('tab', state.tab);
  if (state.site) p.set('site', state.site);
  if (state.range !== '30d') p.set('range', state.range);
  if (state.range === 'custom') { p.set('from', state.from); p.set('to', state.to); }
  if (state.filters.length) p.set('filters', JSON.stringify(state.filters));
  if (state.segment) p.set('segment', state.segment);
  if (state.metric !== 'visitors') p.set('metric', state.metric);
  if (state.funnel) p.set('funnel', JSON.stringify(state.funnel));
  if (state.retention) p.set('retention', JSON.stringify(state.retention));
  if (state.experiment) p.set('experiment', JSON.stringify(state.experiment));
  if (state.sql) p.set('sql', state.sql);
  const q = p.toString();
  history.replaceState(null, '', q ? `?${q}` : location.pathname);
}
function common() {
  const [from, to] = rangeDates();
  return { site: state.site, date_range: { from, to }, timezone: TZ, filters: state.filters, ...(state.segment ? { segment: state.segment } : {}) };
}

// ---- API --------------------------------------------------------------------------------------
class Unauthorized extends Error {}
async function api(path, body, { raw = false } = {}) {
  const r = await fetch(path, {
    method: body === undefined ? 'GET' : 'POST',
    headers: { authorization: `Bearer ${sessionStorage.getItem(KEY) || ''}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (r.status === 401) {
    signOut('The key was refused. Sign in again.');
    throw new Unauthorized();
  }
  if (!r.ok) {
    let msg = `${r.status} ${r.statusText}`;
    try {
      const e = (await r.json()).error;
      if (e) msg = e.field ? `${e.message} (field: ${e.field})` : e.message;
    } catch { /* not JSON */ }
    throw new Error(msg);
  }
  return raw ? r : r.json();
}
const report = (kind, body) => api(`/api/reports/${kind}`, body);
const sqlRows = (sql) => api('/api/sql', { sql, format: 'json' });
const quote = (s) => `'${String(s).replace(/'/g, "''")}'`;

function showError(err) {
  if (err instanceof Unauthorized) return;
  const el = $('#error');
  el.textContent = err.message || String(err);
  el.hidden = false;
}
const clearError = () => { $('#error').hidden = true; };

function download(name, blob) {
  const a = h('a', { href: URL.createObjectURL(blob), download: name });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 10000);
}

// ---- sign in ----------------------------------------------------------------------------------
function signOut(message) {
  sessionStorage.removeItem(KEY);
  $('#app').hidden = true;
  $('#login').hidden = false;
  $('#login-error').textContent = message || '';
  $('#login-key').focus();
}
async function signIn(key) {
  sessionStorage.setItem(KEY, key);
  let sites;
  try {
    const [list, dims] = await Promise.all([api('/api/sites'), api('/api/dimensions')]);
    sites = list;
    DIMENSIONS = dims.dimensions.map((d) => [d.name, d.label]);
  } catch (e) {
    if (!(e instanceof Unauthorized)) $('#login-error').textContent = e.message;
    return;
  }
  if (!sites.length) {
    signOut('This key reads no site. Add one with: footfall site add <id>');
    return;
  }
  const select = $('#site');
  select.replaceChildren(...sites.map((s) => h('option', { value: s.id }, s.id)));
  if (!sites.some((s) => s.id === state.site)) state.site = sites[0].id;
  select.value = state.site;
  $('#login').hidden = true;
  $('#app').hidden = false;
  syncControls();
  show(state.tab);
}

// ---- controls ---------------------------------------------------------------------------------
function syncControls() {
  $('#range').value = state.range;
  $('#custom-range').hidden = state.range !== 'custom';
  const [from, to] = rangeDates();
  $('#from').value = from;
  $('#to').value = to;
  renderFilters();
}
function renderFilters() {
  const segment = state.segment ? [h('span', { class: 'chip' }, `Segment ${state.segment}`,
    h('button', { type: 'button', 'aria-label': 'Remove the segment', onclick: () => { state.segment = ''; changed(); } }, '×'))] : [];
  const chips = state.filters.map((f, i) => h('span', { class: 'chip' },
    `${dimLabel(f.dimension)} ${f.op === 'is_not' ? 'is not' : f.op === 'contains' ? 'contains' : 'is'} ${f.values.join(' or ')}`,
    h('button', { type: 'button', 'aria-label': `Remove filter ${dimLabel(f.dimension)}`, onclick: () => { state.filters.splice(i, 1); changed(); } }, '×')));
  $('#filters').replaceChildren(...segment, ...chips);
}
function addFilter(dimension, value) {
  state.filters = state.filters.filter((f) => f.dimension !== dimension);
  state.filters.push({ dimension, op: 'is', values: [value] });
  changed();
}
// The view changed: write the URL, redraw the visible panel, forget loaded panels.
const loaded = new Set();
function changed() {
  loaded.clear();
  meta = null;
  clearError();
  syncControls();
  writeUrl();
  show(state.tab);
}
function show(tab) {
  state.tab = tab;
  writeUrl();
  for (const b of document.querySelectorAll('[role=tab]')) {
    const on = b.dataset.tab === tab;
    b.setAttribute('aria-selected', String(on));
    b.tabIndex = on ? 0 : -1;
    $(`#panel-${b.dataset.tab}`).hidden = !on;
  }
  $('#filters').hidden = tab === 'sql';
  if (loaded.has(tab)) return;
  loaded.add(tab);
  ({ overview, funnel: funnelPanel, retention: retentionPanel, experiments: experimentsPanel, segments: segmentsPanel, sql: sqlPanel })[tab]();
}

// ---- overview -------------------------------------------------------------------------------
let overviewRun = 0;
let lastTrends = null;
async function overview() {
  const run = ++overviewRun;
  const panel = $('#panel-overview');
  panel.dataset.state = 'loading';
  const base = common();
  const [from, to] = [base.date_range.from, base.date_range.to];
  const box = $('#tables');
  box.replaceChildren(...TABLES.map(([dim, title]) => h('div', { class: 'card top-table', id: `table-${dim}`, dataset: { state: 'loading' } },
    h('h2', {}, title), h('p', { class: 'empty' }, 'Loading…'))));
  const chart = $('#chart');
  chart.dataset.state = 'loading';
  const metrics = METRICS.map(([m]) => m);
  try {
    // The numbers first (this period's totals: the cheapest report), then the chart with the
    // previous period (which also gives the comparisons), and the tables.
    const r = await report('trends', { ...base, metrics, series: false });
    if (run !== overviewRun) return;
    lastTrends = r;
    renderKpis(r);
    panel.dataset.state = 'ready';
    document.body.dataset.firstReportMs ||= String(Math.round(performance.now())); // since navigation
  } catch (e) {
    panel.dataset.state = 'error';
    showError(e);
    return;
  }
  const series = report('trends', { ...base, metrics, interval: interval(from, to), compare: true }).then((r) => {
    if (run !== overviewRun) return;
    lastTrends = r;
    renderKpis(r);
    renderChart(r);
    chart.dataset.state = 'ready';
  }, (e) => {
    if (run !== overviewRun) return;
    chart.dataset.state = 'error';
    chart.replaceChildren(h('p', { class: 'error' }, e.message || String(e)));
  });
  await series; // the chart before the tables: both cores go to it first
  const show = ([dim, title, metrics], results) => {
    if (run !== overviewRun) return;
    const card = $(`#table-${dim}`);
    card.replaceChildren(h('h2', {}, title), topTable(dim, metrics, results));
    card.dataset.state = 'ready';
  };
  const fail = ([dim, title], e) => {
    if (run !== overviewRun) return;
    const card = $(`#table-${dim}`);
    card.replaceChildren(h('h2', {}, title), h('p', { class: 'error' }, e.message || String(e)));
    card.dataset.state = 'error';
  };
  // Tables with a filter of their own (top pages) ask alone; the others share one request
  // (`breakdowns`: one round trip, and the server runs their queries two at a time).
  const alone = TABLES.filter((t) => t[3]);
  const shared = TABLES.filter((t) => !t[3]);
  const union = [...new Set(shared.flatMap((t) => t[2]))];
  const requests = alone.map(async (t) => {
    const [dim, , metrics, only] = t;
    try {
      const r = await report('trends', { ...base, filters: [...base.filters, ...only], metrics, breakdown: dim, breakdown_limit: 10, series: false });
      show(t, r.results);
    } catch (e) { fail(t, e); }
  });
  requests.push((async () => {
    try {
      const r = await report('trends', { ...base, metrics: union, breakdowns: shared.map((t) => t[0]), breakdown_limit: 10, series: false });
      shared.forEach((t, i) => show(t, r.by_breakdown[i].results));
    } catch (e) { shared.forEach((t) => fail(t, e)); }
  })());
  await Promise.all(requests);
}

function renderKpis(r) {
  const cur = r.results[0]?.totals || {};
  const prev = r.previous?.results[0]?.totals;
  $('#kpis').replaceChildren(...METRICS.map(([m, label, fmt]) => {
    const v = cur[m] ?? 0;
    const p = prev?.[m] ?? 0;
    let delta = '';
    let cls = '';
    if (!prev) {
      delta = '…';
    } else if (RATES.has(m)) {
      const d = v - p;
      delta = `${d >= 0 ? '↑' : '↓'} ${Math.abs(d).toFixed(1)} pts`;
      cls = d === 0 ? '' : (d > 0) !== LOWER_IS_BETTER.has(m) ? 'up' : 'down';
    } else if (p > 0) {
      const d = ((v - p) / p) * 100;
      delta = `${d >= 0 ? '↑' : '↓'} ${Math.abs(d).toFixed(0)}%`;
      cls = d === 0 ? '' : d > 0 ? 'up' : 'down';
    } else {
      delta = 'no data before';
    }
    return h('button', {
      type: 'button', class: 'kpi', 'aria-pressed': String(m === state.metric), dataset: { metric: m },
      title: prev ? `Previous period: ${fmt(p)}` : undefined,
      onclick: () => { state.metric = m; writeUrl(); renderKpis(lastTrends); if (lastTrends.results[0]?.series.length) renderChart(lastTrends); },
    }, h('span', { class: 'label' }, label), h('span', { class: 'value', dataset: { value: v } }, fmt(v)),
    h('span', { class: `delta ${cls}` }, delta, h('span', { class: 'sr' }, ' compared with the previous period')));
  }));
}

function bucketLabel(b, iv) {
  const d = new Date(b.replace(' ', 'T') + (b.length <= 10 ? 'T00:00:00Z' : 'Z'));
  if (Number.isNaN(d.getTime())) return b;
  if (iv === 'hour') return d.toLocaleTimeString('en-GB', { hour: '2-digit', minute: '2-digit', timeZone: 'UTC' });
  if (iv === 'month') return d.toLocaleDateString('en-GB', { month: 'short', year: 'numeric', timeZone: 'UTC' });
  return d.toLocaleDateString('en-GB', { day: 'numeric', month: 'short', timeZone: 'UTC' });
}

function renderChart(r) {
  const [m, label, fmt] = metricOf(state.metric);
  $('#chart-title').textContent = label;
  const cur = (r.results[0]?.series || []).map((p) => p[m] ?? 0);
  const prev = (r.previous?.results[0]?.series || []).map((p) => p[m] ?? 0);
  const labels = (r.results[0]?.series || []).map((p) => p.bucket);
  const box = $('#chart');
  const W = Math.max(280, box.clientWidth || 900), H = W < 600 ? 200 : 240, L = 52, R = 12, T = 12, B = 26;
  const max = Math.max(1, ...cur, ...prev);
  const mag = 10 ** Math.floor(Math.log10(max));
  const top = Math.ceil(max / mag) * mag;
  const x = (i) => L + (cur.length <= 1 ? 0 : (i * (W - L - R)) / (cur.length - 1));
  const y = (v) => T + (H - T - B) * (1 - v / top);
  const s = svg('svg', { viewBox: `0 0 ${W} ${H}`, height: H, role: 'img', 'aria-label': `${label} per ${r.interval}` });
  for (let k = 0; k <= 4; k++) {
    const v = (top * k) / 4;
    s.append(svg('line', { class: 'grid-line', x1: L, x2: W - R, y1: y(v), y2: y(v) }));
    const t = svg('text', { x: L - 6, y: y(v) + 4, 'text-anchor': 'end' });
    t.textContent = fmt(v);
    s.append(t);
  }
  const step = Math.max(1, Math.ceil(labels.length / Math.max(2, Math.floor(W / 110))));
  labels.forEach((b, i) => {
    if (i % step) return;
    const t = svg('text', { x: x(i), y: H - 8, 'text-anchor': 'middle' });
    t.textContent = bucketLabel(b, r.interval);
    s.append(t);
  });
  const path = (vals) => vals.map((v, i) => `${i ? 'L' : 'M'}${x(i).toFixed(1)},${y(v).toFixed(1)}`).join('');
  if (prev.length) s.append(svg('path', { class: 'prev', d: path(prev.slice(0, cur.length)) }));
  if (cur.length) {
    s.append(svg('path', { class: 'area', d: `${path(cur)}L${x(cur.length - 1)},${y(0)}L${x(0)},${y(0)}Z` }));
    s.append(svg('path', { class: 'cur', d: path(cur) }));
    cur.forEach((v, i) => {
      const c = svg('circle', { class: 'dot', cx: x(i), cy: y(v), r: 4 });
      const t = svg('title', {});
      t.textContent = `${labels[i]}: ${fmt(v)}${prev[i] !== undefined ? ` (previous: ${fmt(prev[i])})` : ''}`;
      c.append(t);
      s.append(c);
    });
  }
  box.replaceChildren(s);
}

function topTable(dim, metrics, results) {
  if (!results.length) return h('p', { class: 'empty' }, 'No data for this range.');
  const max = Math.max(1, ...results.map((r) => r.totals.visitors || 0));
  const head = h('tr', {}, h('th', {}, dimLabel(dim)), metrics.map((m) => h('th', { class: 'n' }, metricOf(m)[1])));
  const rows = results.map((r) => {
    const pick = r.value !== null && r.value !== '';
    const act = () => addFilter(dim, r.value);
    const bar = h('span', { class: 'bar' });
    bar.style.width = `${((r.totals.visitors || 0) / max) * 100}%`;
    return h('tr', pick ? {
      class: 'pick', tabindex: 0, role: 'button', 'aria-label': `Filter by ${dimLabel(dim)} ${r.value}`, dataset: { value: r.value },
      onclick: act, onkeydown: (e) => { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); act(); } },
    } : {}, h('td', { class: 'label', title: r.value ?? '(none)' }, bar, h('span', {}, r.value ?? '(none)')),
    metrics.map((m) => h('td', { class: 'n', dataset: { metric: m, value: r.totals[m] ?? 0 } }, metricOf(m)[2](r.totals[m]))));
  });
  return h('table', {}, h('thead', {}, head), h('tbody', {}, rows));
}

// ---- event names and properties seen (for pickers) -------------------------------------------
let meta = null;
async function loadMeta() {
  if (meta) return meta;
  const [from, to] = rangeDates();
  const where = `site = ${quote(state.site)} AND date BETWEEN DATE ${quote(addDays(from, -1))} AND DATE ${quote(addDays(to, 1))}`;
  const [events, props] = await Promise.all([
    sqlRows(`SELECT name, count(*) AS events FROM events WHERE ${where} GROUP BY name ORDER BY events DESC, name LIMIT 300`),
    sqlRows(`SELECT k AS key, count(*) AS events FROM (SELECT unnest(map_keys(props)) AS k FROM events WHERE ${where}) GROUP BY k ORDER BY events DESC, k LIMIT 100`),
  ]);
  meta = { events: events.map((r) => r.name), props: props.map((r) => r.key) };
  return meta;
}
function dimOptions(first) {
  return [h('option', { value: '' }, first), ...DIMENSIONS.map(([k, l]) => h('option', { value: k }, l)),
    ...(meta?.props || []).map((p) => h('option', { value: `prop:${p}` }, `Property ${p}`))];
}
function eventOptions(names, selected) {
  const all = selected && !names.includes(selected) ? [selected, ...names] : names;
  return all.map((n) => h('option', { value: n, selected: n === selected }, n));
}

// ---- funnels ----------------------------------------------------------------------------------
function defaultFunnel(names) {
  const shop = ['product_view', 'add_to_cart', 'checkout_start', 'purchase'].filter((n) => names.includes(n));
  const steps = (shop.length >= 2 ? shop : names.slice(0, 3)).map((event) => ({ event }));
  return { steps: steps.length >= 2 ? steps : [{ event: 'pageview' }, { event: 'pageview' }], window: { value: 1, unit: 'day' }, order: 'ordered', breakdown: '' };
}
async function funnelPanel() {
  const res = $('#funnel-result');
  res.replaceChildren(h('p', { class: 'empty' }, 'Loading event names…'));
  try { await loadMeta(); } catch (e) { showError(e); return; }
  if (!state.funnel || !Array.isArray(state.funnel.steps)) state.funnel = defaultFunnel(meta.events);
  drawFunnelForm();
  await runFunnel();
}
function drawFunnelForm() {
  const f = state.funnel;
  $('#steps').replaceChildren(...f.steps.map((s, i) => {
    const li = h('li', { dataset: { step: i } },
      h('label', { class: 'sr', for: `step-${i}` }, `Step ${i + 1} event`),
      h('select', { id: `step-${i}`, class: 'step-event', onchange: (e) => { s.event = e.target.value; } }, eventOptions(meta.events, s.event)),
      h('label', { class: 'sr', for: `step-${i}-dim` }, `Step ${i + 1} where`),
      h('select', { id: `step-${i}-dim`, class: 'step-dim', onchange: (e) => { s.dimension = e.target.value; } }, dimOptions('where… (any)')),
      h('label', { class: 'sr', for: `step-${i}-value` }, `Step ${i + 1} value`),
      h('input', { id: `step-${i}-value`, class: 'step-value', placeholder: 'value', value: s.value || '', oninput: (e) => { s.value = e.target.value; } }),
      f.steps.length > 2 ? h('button', { type: 'button', class: 'secondary', 'aria-label': `Remove step ${i + 1}`, onclick: () => { f.steps.splice(i, 1); drawFunnelForm(); } }, '×') : null);
    $('.step-dim', li).value = s.dimension || '';
    return li;
  }));
  $('#add-step').disabled = f.steps.length >= 20;
  $('#window-value').value = f.window.value;
  $('#window-unit').value = f.window.unit;
  $('#order').value = f.order;
  const bd = $('#funnel-breakdown');
  bd.replaceChildren(...dimOptions('None').filter((o) => o.value !== 'entry_page'));
  bd.value = f.breakdown || '';
}
function funnelRequest(peopleLimit) {
  const f = state.funnel;
  return {
    ...common(),
    steps: f.steps.map((s) => ({ event: s.event, filters: s.dimension && s.value ? [{ dimension: s.dimension, values: [s.value] }] : [] })),
    window: f.window, order: f.order, breakdown: f.breakdown || undefined, people_limit: peopleLimit,
  };
}
let funnelRun = 0;
async function runFunnel() {
  const run = ++funnelRun;
  const res = $('#funnel-result');
  res.dataset.state = 'loading';
  res.replaceChildren(h('p', { class: 'empty' }, 'Loading…'));
  try {
    const r = await report('funnel', funnelRequest(1));
    if (run !== funnelRun) return;
    drawFunnel(r);
    res.dataset.state = 'ready';
  } catch (e) {
    if (run !== funnelRun) return;
    res.dataset.state = 'error';
    res.replaceChildren(h('p', { class: 'error' }, e.message || String(e)));
    showError(e);
  }
}
function drawFunnel(r) {
  const first = r.steps[0]?.count || 0;
  const total = r.steps.at(-1)?.count || 0;
  const summary = h('p', {}, h('strong', {}, fmtPct(first ? (total / first) * 100 : 0)), ` of ${fmtInt(first)} people who did “${r.steps[0]?.label}” went on to “${r.steps.at(-1)?.label}” ${r.window_seconds == null ? 'at any time after' : `within ${fmtDur(r.window_seconds)}`}.`);
  const bars = r.steps.map((s, i) => {
    const fill = h('div', { class: 'fill' });
    fill.style.width = `${first ? (s.count / first) * 100 : 0}%`;
    const prev = i ? r.steps[i - 1].count : s.count;
    const drop = h('div', { class: 'drop' });
    drop.style.left = fill.style.width;
    drop.style.width = `${first ? ((prev - s.count) / first) * 100 : 0}%`;
    return h('div', { class: 'fstep', dataset: { step: i + 1, count: s.count } },
      h('div', {}, h('strong', {}, `${i + 1}. ${s.label}`)),
      h('div', { class: 'track', role: 'img', 'aria-label': `${s.label}: ${fmtInt(s.count)} people, ${fmtPct(s.conversion_from_first)} of the first step` }, fill, drop),
      h('div', { class: 'meta' },
        h('span', {}, h('strong', { class: 'count' }, fmtInt(s.count)), ' people'),
        h('span', {}, h('strong', {}, fmtPct(s.conversion_from_first)), ' of step 1'),
        i ? h('span', {}, h('strong', {}, fmtPct(s.conversion_from_previous)), ' from previous') : null,
        i && s.median_time_to_convert_seconds !== null ? h('span', {}, 'median ', h('strong', {}, fmtDur(s.median_time_to_convert_seconds)), ' to convert') : null,
        s.dropped ? h('span', {}, h('strong', {}, fmtInt(s.dropped)), ' dropped here ',
          h('button', { type: 'button', class: 'secondary', onclick: () => exportDropped(i) }, 'Export CSV')) : null));
  });
  const parts = [summary, h('div', { class: 'funnel' }, bars)];
  if (r.breakdowns?.length) {
    parts.push(h('h2', {}, `By ${dimLabel(r.breakdown)}`), h('div', { class: 'scroll' }, h('table', {},
      h('thead', {}, h('tr', {}, h('th', {}, dimLabel(r.breakdown)), r.steps.map((s, i) => h('th', { class: 'n' }, `${i + 1}. ${s.label}`)), h('th', { class: 'n' }, 'Conversion'))),
      h('tbody', {}, r.breakdowns.map((b) => h('tr', {}, h('td', {}, b.value ?? '(none)'), b.steps.map((s) => h('td', { class: 'n' }, fmtInt(s.count))),
        h('td', { class: 'n' }, fmtPct(b.steps.at(-1)?.conversion_from_first))))))));
  }
  if (r.excluded_people) parts.push(h('p', { class: 'muted' }, `${fmtInt(r.excluded_people)} people left out by exclusions.`));
  $('#funnel-result').replaceChildren(...parts);
}
// A CSV cell a spreadsheet will not run as a formula (OWASP's CSV injection advice), quoted
// when it needs to be: the server's CSV exports do the same.
function csvCell(v) {
  let s = String(v ?? '');
  if (/^[=+\-@\t\r]/.test(s)) s = "'" + s;
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}
async function exportDropped(i) {
  try {
    const r = await report('funnel', funnelRequest(10000));
    const s = r.steps[i];
    download(`funnel-step-${i + 1}-dropped.csv`, new Blob([['person_id', ...s.dropped_people.map(csvCell)].join('\n') + '\n'], { type: 'text/csv' }));
    if (s.dropped_people_truncated) showError(new Error(`Only the first 10,000 of ${fmtInt(s.dropped)} people were exported.`));
  } catch (e) { showError(e); }
}

// ---- retention ------------------------------------------------------------------------------
async function retentionPanel() {
  const res = $('#retention-result');
  res.replaceChildren(h('p', { class: 'empty' }, 'Loading…'));
  try { await loadMeta(); } catch (e) { showError(e); return; }
  state.retention ||= { start: '', ret: '', period: 'week', periods: 6, type: 'first_time' };
  const r = state.retention;
  $('#start-event').replaceChildren(h('option', { value: '' }, 'First visit'), ...eventOptions(meta.events, r.start));
  $('#return-event').replaceChildren(h('option', { value: '' }, 'Any event'), ...eventOptions(meta.events, r.ret));
  $('#start-event').value = r.start;
  $('#return-event').value = r.ret;
  $('#period').value = r.period;
  $('#periods').value = r.periods;
  $('#retention-type').value = r.type;
  await runRetention();
}
let retentionRun = 0;
async function runRetention() {
  const run = ++retentionRun;
  const s = state.retention;
  const res = $('#retention-result');
  res.dataset.state = 'loading';
  try {
    const r = await report('retention', {
      ...common(), period: s.period, periods: s.periods, retention_type: s.type,
      start_event: s.start ? { event: s.start } : undefined, return_event: s.ret ? { event: s.ret } : undefined,
    });
    if (run !== retentionRun) return;
    res.replaceChildren(heatTable(r));
    res.dataset.state = 'ready';
  } catch (e) {
    if (run !== retentionRun) return;
    res.dataset.state = 'error';
    res.replaceChildren(h('p', { class: 'error' }, e.message || String(e)));
    showError(e);
  }
}
function heatTable(r) {
  if (!r.cohorts.length) return h('p', { class: 'empty' }, 'No cohorts in this range.');
  const unit = { day: 'Day', week: 'Week', month: 'Month' }[r.period];
  const head = h('tr', {}, h('th', {}, 'Cohort'), h('th', { class: 'n' }, 'People'),
    Array.from({ length: r.periods }, (_, k) => h('th', { class: 'n' }, `${unit} ${k}`)));
  const rows = r.cohorts.map((c) => h('tr', {}, h('td', {}, c.cohort), h('td', { class: 'n' }, fmtInt(c.size)),
    Array.from({ length: r.periods }, (_, k) => {
      const cell = c.values.find((v) => v.period === k);
      if (!cell) return h('td', { class: 'cell' });
      const td = h('td', {
        class: `cell${cell.complete ? '' : ' partial'}`, dataset: { people: cell.people, percent: cell.percent },
        title: `${fmtInt(cell.people)} of ${fmtInt(c.size)} people${cell.complete ? '' : ' (period still running)'}`,
      }, fmtPct(cell.percent));
      td.style.background = `rgba(79, 70, 229, ${(0.06 + (cell.percent / 100) * 0.85).toFixed(3)})`;
      if (cell.percent > 45) td.style.color = '#fff';
      return td;
    })));
  return h('div', {}, h('table', { class: 'heat' }, h('caption', { class: 'sr' }, 'Share of each cohort that came back, per period'), h('thead', {}, head), h('tbody', {}, rows)),
    h('p', { class: 'muted' }, `Cohorts by ${r.retention_type === 'recurring' ? 'every' : 'first'} ${unit.toLowerCase()} of the start event; figures in italics are for a period still running.`));
}

// ---- experiments -------------------------------------------------------------------------------
async function experimentsPanel() {
  const res = $('#experiment-result');
  res.dataset.state = 'loading';
  res.replaceChildren(h('p', { class: 'empty' }, 'Loading experiments…'));
  let list;
  try {
    const [from, to] = rangeDates();
    [list] = await Promise.all([
      sqlRows(`SELECT props['experiment'] AS experiment, count(DISTINCT visitor_id) AS visitors, max(ts) AS last_seen FROM events WHERE site = ${quote(state.site)} AND name = '$exposure' AND date BETWEEN DATE ${quote(from)} AND DATE ${quote(to)} AND props['experiment'] IS NOT NULL GROUP BY props['experiment'] ORDER BY last_seen DESC LIMIT 100`),
      loadMeta(),
    ]);
  } catch (e) { showError(e); return; }
  if (!list.length) {
    res.dataset.state = 'ready';
    res.replaceChildren(h('p', { class: 'empty' }, 'No $exposure events in this range. Use footfall.variant(...) in the snippet, or send $exposure events with props.experiment and props.variant.'));
    return;
  }
  const names = list.map((r) => r.experiment);
  state.experiment ||= { name: names[0], control: 'control', goal: meta.events.includes('purchase') ? 'purchase' : meta.events[0], days: 14 };
  const x = state.experiment;
  const options = list.map((r) => h('option', { value: r.experiment }, `${r.experiment} (${fmtInt(r.visitors)} visitors)`));
  if (!names.includes(x.name)) options.unshift(h('option', { value: x.name }, x.name));
  $('#experiment').replaceChildren(...options);
  $('#experiment').value = x.name;
  $('#control').value = x.control;
  $('#goal').replaceChildren(...eventOptions(meta.events, x.goal));
  $('#exp-window').value = x.days;
  await runExperiment();
}
let experimentRun = 0;
async function runExperiment() {
  const run = ++experimentRun;
  const x = state.experiment;
  const res = $('#experiment-result');
  res.dataset.state = 'loading';
  try {
    const r = await report('experiment', { ...common(), experiment: x.name, control: x.control, goal: { event: x.goal }, window: { value: x.days, unit: 'day' } });
    if (run !== experimentRun) return;
    res.replaceChildren(...experimentView(r));
    res.dataset.state = 'ready';
  } catch (e) {
    if (run !== experimentRun) return;
    res.dataset.state = 'error';
    res.replaceChildren(h('p', { class: 'error' }, e.message || String(e)));
  }
}
function experimentView(r) {
  const kind = r.sample_ratio?.mismatch ? 'warn' : / wins: /.test(r.verdict) ? 'win' : '';
  const interval = (c, unit) => (c ? `${c.difference > 0 ? '+' : ''}${c.difference}${unit} (${c.ci_low} to ${c.ci_high})` : '');
  const head = h('tr', {}, ['Variant', 'People', 'Converted', 'Conversion', 'Lift vs control (95% CI)', 'p-value', 'Chance to beat control', 'Chance to be best', 'Revenue / person', 'Avg order value']
    .map((t, i) => h('th', { class: i ? 'n' : '' }, t)));
  const rows = r.variants.map((v) => h('tr', { dataset: { variant: v.variant } },
    h('td', {}, v.is_control && v.variant !== 'control' ? `${v.variant} (control)` : v.variant), h('td', { class: 'n' }, fmtInt(v.people)), h('td', { class: 'n' }, fmtInt(v.converted)),
    h('td', { class: 'n' }, fmtPct(v.conversion_rate)), h('td', { class: 'n' }, interval(v.lift_relative, '%')),
    h('td', { class: 'n' }, v.lift_points ? v.lift_points.p_value.toFixed(4) : ''),
    h('td', { class: 'n' }, v.probability_to_beat_control === null ? '' : fmtPct(v.probability_to_beat_control)),
    h('td', { class: 'n' }, fmtPct(v.probability_to_be_best)), h('td', { class: 'n' }, fmtMoney(v.revenue_per_person)),
    h('td', { class: 'n' }, v.average_order_value === null ? '' : fmtMoney(v.average_order_value))));
  const srm = r.sample_ratio;
  const p = r.planner;
  return [
    h('p', { class: `verdict ${kind}`, id: 'verdict' }, r.verdict),
    h('table', {}, h('thead', {}, head), h('tbody', {}, rows)),
    h('p', { class: 'muted' }, `Converted: did “${r.goal}” within ${fmtDur(r.window_seconds)} of the first exposure.`,
      r.mixed_people ? ` ${fmtInt(r.mixed_people)} people saw more than one variant and are left out.` : '',
      srm ? ` Split check: p = ${srm.p_value < 0.0001 ? srm.p_value.toExponential(1) : srm.p_value.toFixed(4)}${srm.mismatch ? ' (mismatch)' : ' (as intended)'}.` : '',
      p.people_per_variant ? ` To detect a ${Math.round(p.mde_relative * 100)}% change from ${fmtPct(p.baseline_conversion_rate)} with ${Math.round(p.power * 100)}% power: ${fmtInt(p.people_per_variant)} people per variant.` : ''),
  ];
}

// ---- segments ---------------------------------------------------------------------------------
async function segmentsPanel() {
  const res = $('#segments-result');
  res.dataset.state = 'loading';
  res.replaceChildren(h('p', { class: 'empty' }, 'Loading segments…'));
  let list;
  try {
    list = await api(`/api/sites/${encodeURIComponent(state.site)}/segments`);
  } catch (e) { showError(e); res.dataset.state = 'error'; return; }
  const all = [...list.saved.map((s) => ({ ...s, saved: true })), ...list.templates];
  const rows = all.map((s) => {
    const size = h('td', { class: 'n size' }, '…');
    const exportCsv = async () => {
      try {
        const r = await api('/api/segments/members.csv', { site: state.site, definition: s.id }, { raw: true });
        download(`${s.id}.csv`, await r.blob());
      } catch (e) { showError(e); }
    };
    const use = () => { state.segment = s.id; state.tab = 'overview'; changed(); };
    return { s, size, tr: h('tr', { dataset: { segment: s.id } }, h('td', {}, s.name, s.saved ? '' : h('span', { class: 'muted' }, ' (template)')), size,
      h('td', {}, h('button', { type: 'button', class: 'secondary', onclick: use }, 'Filter reports'), ' ',
        h('button', { type: 'button', class: 'secondary', onclick: exportCsv }, 'Export CSV'))) };
  });
  res.replaceChildren(h('h2', {}, 'Segments (people now)'), h('table', {},
    h('thead', {}, h('tr', {}, h('th', {}, 'Segment'), h('th', { class: 'n' }, 'People'), h('th', {}, ''))),
    h('tbody', {}, rows.map((r) => r.tr))));
  // Sizes two at a time: each is a query over every person.
  const queue = [...rows];
  const worker = async () => {
    for (let r = queue.shift(); r; r = queue.shift()) {
      try {
        const v = await report('segment', { site: state.site, definition: r.s.id, limit: 1 });
        r.size.textContent = fmtInt(v.size);
        r.size.dataset.value = v.size;
      } catch (e) { r.size.textContent = '–'; r.size.title = e.message; }
    }
  };
  await Promise.all([worker(), worker()]);
  res.dataset.state = 'ready';
}

// ---- SQL console ------------------------------------------------------------------------------
function sqlPanel() {
  const text = $('#sql-text');
  if (!text.value) text.value = state.sql || `SELECT channel, count(DISTINCT visitor_id) AS visitors, sum(revenue) FILTER (WHERE name = 'purchase') AS revenue\nFROM events\nWHERE site = ${quote(state.site)}\nGROUP BY channel\nORDER BY visitors DESC`;
}
async function runSql() {
  const sql = $('#sql-text').value;
  state.sql = sql;
  writeUrl();
  const res = $('#sql-result');
  const status = $('#sql-status');
  res.dataset.state = 'loading';
  status.textContent = 'Running…';
  const t = performance.now();
  try {
    const r = await api('/api/sql', { sql, format: 'json' }, { raw: true });
    const rows = await r.json();
    const cut = r.headers.get('x-footfall-truncated') === 'true';
    status.textContent = `${fmtInt(rows.length)} rows in ${Math.round(performance.now() - t)} ms${cut ? ' (cut at the row limit)' : ''}`;
    const cols = rows.length ? Object.keys(rows[0]) : [];
    const shown = rows.slice(0, 1000);
    res.replaceChildren(rows.length ? h('table', { class: 'sql-table' },
      h('thead', {}, h('tr', {}, cols.map((c) => h('th', {}, c)))),
      h('tbody', {}, shown.map((row) => h('tr', {}, cols.map((c) => {
        const v = row[c];
        return h('td', { class: typeof v === 'number' ? 'n' : '' }, v === null || v === undefined ? 'NULL' : typeof v === 'object' ? JSON.stringify(v) : String(v));
      }))))) : h('p', { class: 'empty' }, 'No rows.'),
    rows.length > shown.length ? h('p', { class: 'muted' }, `Showing the first 1,000 rows; download the CSV for all.`) : null);
    res.dataset.state = 'ready';
  } catch (e) {
    status.textContent = '';
    res.dataset.state = 'error';
    res.replaceChildren(h('p', { class: 'error' }, e.message || String(e)));
  }
}
async function sqlCsv() {
  try {
    const r = await api('/api/sql', { sql: $('#sql-text').value, format: 'csv' }, { raw: true });
    download('footfall-query.csv', await r.blob());
  } catch (e) {
    $('#sql-result').replaceChildren(h('p', { class: 'error' }, e.message || String(e)));
  }
}

// ---- wiring -------------------------------------------------------------------------------------
function init() {
  readUrl();
  $('#login-form').addEventListener('submit', (e) => { e.preventDefault(); signIn($('#login-key').value.trim()); });
  $('#logout').addEventListener('click', () => signOut(''));
  $('#site').addEventListener('change', (e) => { state.site = e.target.value; state.filters = []; state.funnel = null; state.experiment = null; changed(); });
  $('#range').addEventListener('change', (e) => {
    if (e.target.value === 'custom') { [state.from, state.to] = rangeDates(); }
    state.range = e.target.value;
    changed();
  });
  for (const id of ['from', 'to']) {
    $(`#${id}`).addEventListener('change', () => {
      if ($('#from').value && $('#to').value && $('#from').value <= $('#to').value) {
        state.from = $('#from').value;
        state.to = $('#to').value;
        changed();
      }
    });
  }
  const tabs = [...document.querySelectorAll('[role=tab]')];
  tabs.forEach((b, i) => {
    b.addEventListener('click', () => show(b.dataset.tab));
    b.addEventListener('keydown', (e) => {
      const d = e.key === 'ArrowRight' ? 1 : e.key === 'ArrowLeft' ? -1 : 0;
      if (!d) return;
      const next = tabs[(i + d + tabs.length) % tabs.length];
      next.focus();
      show(next.dataset.tab);
    });
  });
  $('#add-step').addEventListener('click', () => { state.funnel.steps.push({ event: meta.events[0] || 'pageview' }); drawFunnelForm(); });
  $('#funnel-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const f = state.funnel;
    f.window = { value: Math.max(1, Number($('#window-value').value) || 1), unit: $('#window-unit').value };
    f.order = $('#order').value;
    f.breakdown = $('#funnel-breakdown').value;
    writeUrl();
    runFunnel();
  });
  $('#retention-form').addEventListener('submit', (e) => {
    e.preventDefault();
    state.retention = {
      start: $('#start-event').value, ret: $('#return-event').value, period: $('#period').value,
      periods: Math.min(60, Math.max(2, Number($('#periods').value) || 6)), type: $('#retention-type').value,
    };
    writeUrl();
    runRetention();
  });
  $('#experiment-form').addEventListener('submit', (e) => {
    e.preventDefault();
    state.experiment = { name: $('#experiment').value, control: $('#control').value.trim() || 'control', goal: $('#goal').value, days: Math.min(90, Math.max(1, Number($('#exp-window').value) || 14)) };
    writeUrl();
    runExperiment();
  });
  $('#segment-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const status = $('#segment-status');
    try {
      const definition = JSON.parse($('#segment-definition').value);
      const r = await api(`/api/sites/${encodeURIComponent(state.site)}/segments`, { name: $('#segment-name').value, definition });
      status.textContent = `Saved as ${r.id}.`;
      loaded.delete('segments');
      segmentsPanel();
    } catch (err) { status.textContent = err instanceof SyntaxError ? `Not JSON: ${err.message}` : err.message; }
  });
  $('#sql-form').addEventListener('submit', (e) => { e.preventDefault(); runSql(); });
  $('#sql-text').addEventListener('keydown', (e) => { if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) { e.preventDefault(); runSql(); } });
  $('#sql-csv').addEventListener('click', sqlCsv);
  let resizing;
  window.addEventListener('resize', () => {
    clearTimeout(resizing);
    resizing = setTimeout(() => { if (lastTrends?.results[0]?.series.length && state.tab === 'overview') renderChart(lastTrends); }, 150);
  });

  // `footfall demo` prints a URL with the key in the fragment: take it, then drop it from the URL.
  const m = location.hash.match(/key=([^&]+)/);
  if (m) {
    sessionStorage.setItem(KEY, decodeURIComponent(m[1]));
    history.replaceState(null, '', location.pathname + location.search);
  }
  const key = sessionStorage.getItem(KEY);
  if (key) signIn(key);
  else signOut('');
}
init();
