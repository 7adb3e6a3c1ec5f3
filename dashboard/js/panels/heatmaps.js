// Heatmaps: where people click and how far they read, from the click add-on (/h.js) and the
// snippet's engagement reports. Pages by clicks (pick one), then for that page and a viewport
// class: the elements clicked with their rage and dead clicks, the click density over the page
// (columns of the document's width, 50 px rows) and the scroll map.
import { $, h, svg, fmtInt, fmtPct, num, pickRow, table } from '../lib/dom.js';
import { report } from '../lib/api.js';
import { common } from '../lib/state.js';
import { fill, empty } from '../lib/panel.js';
import { kpiCard } from '../lib/kpis.js';
import { depthBands } from '../lib/charts.js';

// The page and viewport picked here (no page: the one with the most clicks).
const pick = { page: '', device: '' };
const CELL = 12;

export async function show() {
  await fill($('#heatmap-result'), () => report('heatmap', { ...common(), page: pick.page || undefined, device: pick.device || undefined, limit: 20 }), draw);
}

function draw(r) {
  if (!r.pages.length && !r.scroll.views) {
    return empty('No clicks in this range. Add the click add-on after the snippet: <script defer src="…/h.js"></script> (README, "Heatmaps").');
  }
  pick.page = r.page || '';
  const device = h('select', { id: 'heatmap-device', 'aria-label': 'Viewport' },
    [['', 'Every device'], ['desktop', 'Desktop'], ['tablet', 'Tablet'], ['mobile', 'Mobile']].map(([v, l]) => h('option', { value: v }, l)));
  device.value = pick.device;
  device.addEventListener('change', () => { pick.device = device.value; show(); });
  const pages = r.pages.map((p) => pickRow(`Show the heatmap of ${p.page}`, () => { pick.page = p.page; show(); },
    { dataset: { page: p.page }, class: p.page === r.page ? 'picked' : '' },
    h('td', { class: 'label', title: p.page }, p.page), num(p.clicks), num(p.rage_clicks), num(p.dead_clicks)));
  const elements = r.elements.map((e) => h('tr', { dataset: { selector: e.selector } },
    h('td', { class: 'label mono', title: e.selector }, e.selector), num(e.clicks), num(e.share, fmtPct), num(e.rage_clicks), num(e.dead_clicks)));
  const bands = depthBands(r.scroll.bands.map((b) => ({ label: `Reached ${b.depth}%`, share: b.share, dataset: { depth: b.depth } })));
  return [
    h('div', { class: 'row heatmap-pick' }, h('label', {}, 'Viewport ', device), h('span', { class: 'muted' }, r.page ? `Page ${r.page}` : '')),
    h('div', { class: 'kpis five' },
      kpiCard('clicks', 'Clicks', r.totals.clicks, fmtInt), kpiCard('rage_clicks', 'Rage clicks', r.totals.rage_clicks, fmtInt),
      kpiCard('dead_clicks', 'Dead clicks', r.totals.dead_clicks, fmtInt), kpiCard('views', 'Views', r.scroll.views, fmtInt),
      kpiCard('avg_depth', 'Average scroll depth', r.scroll.avg_depth, fmtPct)),
    h('div', { class: 'heatmap-cols' },
      h('div', {}, h('h2', {}, 'Pages by clicks'),
        h('div', { class: 'scroll top-table' }, table(['Page', '#Clicks', '#Rage', '#Dead'], pages, 'Pages by clicks; pick one to map it'))),
      h('div', {}, h('h2', {}, 'Click density'), grid(r))),
    h('h2', {}, 'Elements clicked'),
    elements.length ? h('div', { class: 'scroll top-table' }, table(['Element', '#Clicks', '#Share', '#Rage', '#Dead'], elements, `Elements clicked on ${r.page}`)) : h('p', { class: 'empty' }, 'No clicks on this page for this viewport.'),
    h('h2', {}, 'Scroll map'), bands,
    h('p', { class: 'muted' }, 'Rage clicks: three clicks within a second in one spot (counted once per burst). Dead clicks: nothing changed within a second. ',
      'To see this over the page itself, open it with #footfall-heatmap=<a share link\'s key> at the end of its address.'),
  ];
}

// The grid as an SVG: one square per cell with clicks, darker with more.
function grid(r) {
  const g = r.grid;
  const rows = Math.max(1, ...g.cells.map((c) => c.row + 1));
  const out = svg('svg', { class: 'heatgrid', width: g.columns * CELL, height: rows * CELL, viewBox: `0 0 ${g.columns * CELL} ${rows * CELL}`, role: 'img',
    'aria-label': `Click density on ${r.page}: ${g.cells.length} cells with clicks, at most ${g.max} in one` });
  out.append(svg('rect', { class: 'page', x: 0, y: 0, width: g.columns * CELL, height: rows * CELL }));
  for (const c of g.cells) {
    const cell = svg('rect', { x: c.column * CELL, y: c.row * CELL, width: CELL, height: CELL, 'fill-opacity': (0.15 + 0.85 * c.clicks / g.max).toFixed(3) });
    cell.dataset.column = c.column;
    cell.dataset.row = c.row;
    cell.dataset.clicks = c.clicks;
    cell.append(svg('title', {}, `${c.clicks} clicks, ${c.row * g.row_height}–${(c.row + 1) * g.row_height} px from the top`));
    out.append(cell);
  }
  return h('div', { class: 'heatgrid-box' }, out, h('p', { class: 'muted' }, `${g.columns} columns across the page's width, ${g.row_height} px rows from the top.`));
}
