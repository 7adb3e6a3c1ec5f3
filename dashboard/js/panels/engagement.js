// Engagement: how far people scroll (share of views reaching 25/50/75/100%) and how long they
// engage, for the site and per page; click a page to filter every report by it.
import { $, h, fmtInt, fmtPct, fmtDur, num, pickRow, table } from '../lib/dom.js';
import { report } from '../lib/api.js';
import { common, addFilter } from '../lib/state.js';
import { fill, empty } from '../lib/panel.js';
import { kpiCards } from '../lib/kpis.js';
import { depthBands } from '../lib/charts.js';

const BANDS = [['reached_25', '25%'], ['reached_50', '50%'], ['reached_75', '75%'], ['reached_100', '100%']];

export async function show() {
  await fill($('#engagement-result'), () => report('engagement', { ...common(), limit: 20 }), draw);
}

function draw(r) {
  if (!r.totals.views) return empty('No engagement reports in this range: the snippet sends them when a page is left or hidden.');
  const t = r.totals;
  const kpis = [
    { key: 'views', label: 'Views with engagement', fmt: fmtInt },
    { key: 'avg_scroll', label: 'Average scroll depth', fmt: fmtPct },
    { key: 'avg_engaged_seconds', label: 'Average engaged time', fmt: fmtDur },
    { key: 'median_engaged_seconds', label: 'Median engaged time', fmt: fmtDur },
  ];
  const bands = depthBands(BANDS.map(([k, label]) => ({ label: `Reached ${label}`, share: t[k], dataset: { band: k } })));
  const rows = r.pages.map((p) => pickRow(`Filter by page ${p.page}`, () => addFilter('page', p.page), { dataset: { page: p.page } },
    h('td', { class: 'label', title: p.page }, p.page), num(p.views), BANDS.map(([k]) => num(p[k], fmtPct)), num(p.avg_engaged_seconds, fmtDur), num(p.median_engaged_seconds, fmtDur)));
  return [
    h('div', { class: 'kpis four' }, kpiCards(kpis, t, t)),
    h('h2', {}, 'Scroll depth'), bands,
    h('h2', {}, 'Per page'),
    h('div', { class: 'scroll top-table' }, table(['Page', '#Views', '#25%', '#50%', '#75%', '#100%', '#Avg engaged', '#Median engaged'], rows, 'Scroll depth and engaged time per page')),
    h('p', { class: 'muted' }, 'Engaged time is the time the tab was visible and focused; scroll depth the deepest point seen, in percent of the page.'),
  ];
}
