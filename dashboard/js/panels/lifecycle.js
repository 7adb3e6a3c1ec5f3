// Lifecycle: per day, week or month, the active people split into new, returning and
// resurrecting, and the dormant ones (active the period before, not in this one) below zero.
import { $, h, fmtInt, fmtDec, num, table } from '../lib/dom.js';
import { report } from '../lib/api.js';
import { state, common, writeUrl } from '../lib/state.js';
import { fill, empty, loadCatalog, eventOptions } from '../lib/panel.js';
import { stackedChart } from '../lib/charts.js';

const PARTS = [
  { key: 'new', label: 'new', cls: 'new', sign: 1 },
  { key: 'returning', label: 'returning', cls: 'returning', sign: 1 },
  { key: 'resurrecting', label: 'resurrecting', cls: 'resurrecting', sign: 1 },
  { key: 'dormant', label: 'dormant', cls: 'dormant', sign: -1 },
];
const settings = () => ({ period: 'week', event: '', ...(state.lifecycle || {}) });
let last = null;

const load = (s) => report('lifecycle', { ...common(), period: s.period, event: s.event ? { event: s.event } : undefined });

export async function show() {
  await fill($('#lifecycle-result'), async () => {
    const cat = await loadCatalog();
    const s = settings();
    $('#life-period').value = s.period;
    $('#life-event').replaceChildren(...eventOptions(cat.events, s.event, 'Any event'));
    return load(s);
  }, draw);
}

function draw(r) {
  last = r;
  if (!r.periods.length || r.periods.every((p) => !p.active && !p.dormant)) return empty('Nobody was active in this range.');
  const rows = r.periods.map((p) => ({ label: p.period, values: p, partial: !p.complete }));
  return [
    h('div', { class: 'legend' }, PARTS.map((p) => h('span', {}, h('i', { class: `sw ${p.cls}` }), p.label))),
    h('div', { class: 'chart' }, stackedChart($('#lifecycle-result'), { rows, parts: PARTS, label: `People per ${r.period}: new, returning, resurrecting and dormant`, interval: r.period === 'month' ? 'month' : 'day' })),
    h('div', { class: 'scroll' }, table(['Period', '#New', '#Returning', '#Resurrecting', '#Dormant', '#Active', '#Quick ratio'],
      r.periods.map((p) => h('tr', { dataset: { period: p.period }, class: p.complete ? '' : 'partial' }, h('td', {}, p.period, p.complete ? '' : ' *'),
        num(p.new), num(p.returning), num(p.resurrecting), num(p.dormant, (v) => `−${fmtInt(v)}`), num(p.active), num(p.quick_ratio, fmtDec))), 'People per period')),
    h('p', { class: 'muted' }, '* the period is not over (still running, or cut by the end of the range). Quick ratio: (new + resurrecting) ÷ dormant; above 1 the active base grows.'),
  ];
}

export function resize() {
  if (last && $('#lifecycle-result').dataset.state === 'ready') $('#lifecycle-result').replaceChildren(...draw(last));
}

export function init() {
  $('#lifecycle-form').addEventListener('submit', (e) => {
    e.preventDefault();
    state.lifecycle = { period: $('#life-period').value, event: $('#life-event').value };
    writeUrl();
    fill($('#lifecycle-result'), () => load(settings()), draw);
  });
}
