// Acquisition: the conversions (and their revenue) each channel, source or campaign is credited
// with under five attribution models, side by side, with a lookback control.
import { $, h, fmtMoney, fmtDec } from '../lib/dom.js';
import { report } from '../lib/api.js';
import { state, common, writeUrl } from '../lib/state.js';
import { fill, empty, loadCatalog, eventOptions } from '../lib/panel.js';

const MODELS = [['first_touch', 'First touch'], ['last_touch', 'Last touch'], ['last_non_direct', 'Last non-direct'], ['linear', 'Linear'], ['position_based', 'Position-based']];
const settings = () => ({ dimension: 'channel', lookback: 30, goal: 'purchase', measure: 'conversions', ...(state.acquisition || {}) });

export async function show() {
  await fill($('#acquisition-result'), async () => {
    const cat = await loadCatalog();
    const s = settings();
    $('#attr-dimension').value = s.dimension;
    $('#attr-lookback').value = String(s.lookback);
    $('#attr-goal').replaceChildren(...eventOptions(cat.events, s.goal));
    $('#attr-measure').value = s.measure;
    return load(s);
  }, draw);
}

const load = (s) => report('attribution', { ...common(), dimension: s.dimension, lookback_days: s.lookback, goal: { event: s.goal } });

function draw(r) {
  if (!r.conversions) return empty(`No ${settings().goal} in this range.`);
  const s = settings();
  const money = s.measure === 'revenue';
  const values = [...new Set(MODELS.flatMap(([m]) => (r.models[m] || []).map((c) => c.value)))];
  const credit = (m, v) => (r.models[m] || []).find((c) => c.value === v)?.[money ? 'revenue' : 'conversions'] ?? 0;
  values.sort((a, b) => credit('last_touch', b) - credit('last_touch', a));
  const max = Math.max(1e-9, ...values.flatMap((v) => MODELS.map(([m]) => credit(m, v))));
  const cell = (m, v) => {
    const x = credit(m, v);
    const bar = h('span', { class: 'bar' });
    bar.style.width = `${(x / max) * 100}%`;
    return h('td', { class: 'n barcell', dataset: { model: m, value: x } }, bar, h('span', {}, money ? fmtMoney(x) : fmtDec(x)));
  };
  const label = { channel: 'Channel', source: 'Source', medium: 'Medium', campaign: 'Campaign' }[r.dimension] || r.dimension;
  return [
    h('p', {}, `${fmtDec(r.conversions)} conversions worth ${fmtMoney(r.revenue)}, credited to the ${label.toLowerCase()} of each person's sessions in the ${r.lookback_days} days before.`),
    h('div', { class: 'scroll' }, h('table', { id: 'attribution-table' },
      h('caption', { class: 'sr' }, `${money ? 'Revenue' : 'Conversions'} credited per ${label.toLowerCase()} by each model`),
      h('thead', {}, h('tr', {}, h('th', {}, label), MODELS.map(([, t]) => h('th', { class: 'n' }, t)))),
      h('tbody', {}, values.map((v) => h('tr', { dataset: { value: v ?? '' } }, h('td', {}, v ?? '(no touch in the lookback)'), MODELS.map(([m]) => cell(m, v))))))),
    h('p', { class: 'muted' }, 'Last touch ignores Direct unless every touch was Direct (as GA4); last non-direct is Universal Analytics\' default. Fractions come from models that share a conversion.'),
  ];
}

export function init() {
  $('#acquisition-form').addEventListener('submit', (e) => {
    e.preventDefault();
    state.acquisition = {
      dimension: $('#attr-dimension').value, lookback: Number($('#attr-lookback').value), goal: $('#attr-goal').value, measure: $('#attr-measure').value,
    };
    writeUrl();
    fill($('#acquisition-result'), () => load(settings()), draw);
  });
}
