// Overview: the site's figures against the previous period, a chart, and top-N tables whose
// rows filter everything.
import { $, h, fmtInt, fmtPct, fmtMoney, fmtDur, pickRow } from '../lib/dom.js';
import { report, showError } from '../lib/api.js';
import { state, common, interval, writeUrl, addFilter } from '../lib/state.js';
import { dimLabel } from '../lib/panel.js';
import { lineChart } from '../lib/charts.js';
import { kpiCards } from '../lib/kpis.js';

export const METRICS = [
  { key: 'visitors', label: 'Visitors', fmt: fmtInt },
  { key: 'sessions', label: 'Sessions', fmt: fmtInt },
  { key: 'pageviews', label: 'Pageviews', fmt: fmtInt },
  { key: 'bounce_rate', label: 'Bounce rate', fmt: fmtPct, rate: true, lower: true },
  { key: 'visit_duration', label: 'Visit duration', fmt: fmtDur },
  { key: 'revenue', label: 'Revenue', fmt: fmtMoney },
  { key: 'conversion_rate', label: 'Conversion rate', fmt: fmtPct, rate: true },
];
const metricOf = (k) => METRICS.find((m) => m.key === k) || METRICS[0];
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

let run = 0;
let last = null;

function renderKpis(r) {
  $('#kpis').replaceChildren(...kpiCards(METRICS, r.results[0]?.totals, r.previous?.results[0]?.totals, {
    selected: state.metric,
    onPick: (m) => { state.metric = m; writeUrl(); renderKpis(last); if (last.results[0]?.series.length) renderChart(last); },
  }));
}

function renderChart(r) {
  const m = metricOf(state.metric);
  $('#chart-title').textContent = m.label;
  const pick = (res) => (res?.series || []).map((p) => p[m.key] ?? 0);
  $('#chart').replaceChildren(lineChart($('#chart'), {
    lines: [{ values: pick(r.results[0]), cls: 'cur' }, { values: pick(r.previous?.results[0]), cls: 'prev' }],
    labels: (r.results[0]?.series || []).map((p) => p.bucket), fmt: m.fmt, interval: r.interval, label: `${m.label} per ${r.interval}`,
  }));
}

function topTable(dim, metrics, results) {
  if (!results.length) return h('p', { class: 'empty' }, 'No data for this range.');
  const max = Math.max(1, ...results.map((r) => r.totals.visitors || 0));
  const head = h('tr', {}, h('th', {}, dimLabel(dim)), metrics.map((m) => h('th', { class: 'n' }, metricOf(m).label)));
  const rows = results.map((r) => {
    const bar = h('span', { class: 'bar' });
    bar.style.width = `${((r.totals.visitors || 0) / max) * 100}%`;
    const cells = [h('td', { class: 'label', title: r.value ?? '(none)' }, bar, h('span', {}, r.value ?? '(none)')),
      metrics.map((m) => h('td', { class: 'n', dataset: { metric: m, value: r.totals[m] ?? 0 } }, metricOf(m).fmt(r.totals[m])))];
    return r.value !== null && r.value !== ''
      ? pickRow(`Filter by ${dimLabel(dim)} ${r.value}`, () => addFilter(dim, r.value), { dataset: { value: r.value } }, cells)
      : h('tr', {}, cells);
  });
  return h('table', {}, h('thead', {}, head), h('tbody', {}, rows));
}

export async function show() {
  const mine = ++run;
  const panel = $('#panel-overview');
  panel.dataset.state = 'loading';
  const base = common();
  const { from, to } = base.date_range;
  $('#tables').replaceChildren(...TABLES.map(([dim, title]) => h('div', { class: 'card top-table', id: `table-${dim}`, dataset: { state: 'loading' } },
    h('h2', {}, title), h('p', { class: 'empty' }, 'Loading…'))));
  const chart = $('#chart');
  chart.dataset.state = 'loading';
  const metrics = METRICS.map((m) => m.key);
  try {
    // The numbers first (this period's totals: the cheapest report), then the chart with the
    // previous period (which also gives the comparisons), and the tables.
    const r = await report('trends', { ...base, metrics, series: false });
    if (mine !== run) return;
    last = r;
    renderKpis(r);
    panel.dataset.state = 'ready';
    document.body.dataset.firstReportMs ||= String(Math.round(performance.now())); // since navigation
  } catch (e) {
    panel.dataset.state = 'error';
    showError(e);
    return;
  }
  await report('trends', { ...base, metrics, interval: interval(from, to), compare: true }).then((r) => {
    if (mine !== run) return;
    last = r;
    renderKpis(r);
    renderChart(r);
    chart.dataset.state = 'ready';
  }, (e) => {
    if (mine !== run) return;
    chart.dataset.state = 'error';
    chart.replaceChildren(h('p', { class: 'error' }, e.message || String(e)));
  });
  const put = ([dim, title, ms], results) => {
    if (mine !== run) return;
    const card = $(`#table-${dim}`);
    card.replaceChildren(h('h2', {}, title), topTable(dim, ms, results));
    card.dataset.state = 'ready';
  };
  const fail = ([dim, title], e) => {
    if (mine !== run) return;
    const card = $(`#table-${dim}`);
    card.replaceChildren(h('h2', {}, title), h('p', { class: 'error' }, e.message || String(e)));
    card.dataset.state = 'error';
  };
  // Tables with a filter of their own (top pages) ask alone; the others share one request
  // (`breakdowns`: one round trip, and the server runs their queries two at a time).
  const alone = TABLES.filter((t) => t[3]);
  const shared = TABLES.filter((t) => !t[3]);
  const union = [...new Set(shared.flatMap((t) => t[2]))];
  await Promise.all([
    ...alone.map(async (t) => {
      const [dim, , ms, only] = t;
      try {
        const r = await report('trends', { ...base, filters: [...base.filters, ...only], metrics: ms, breakdown: dim, breakdown_limit: 10, series: false });
        put(t, r.results);
      } catch (e) { fail(t, e); }
    }),
    (async () => {
      try {
        const r = await report('trends', { ...base, metrics: union, breakdowns: shared.map((t) => t[0]), breakdown_limit: 10, series: false });
        shared.forEach((t, i) => put(t, r.by_breakdown[i].results));
      } catch (e) { shared.forEach((t) => fail(t, e)); }
    })(),
  ]);
}

export function resize() {
  if (last?.results[0]?.series.length) renderChart(last);
}
