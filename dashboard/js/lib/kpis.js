// KPI cards against the previous period: a percent change for counts and amounts, points for
// rates; green when it moved the good way (`lower` marks figures where down is good).
import { h } from './dom.js';

// defs = [{key, label, fmt, rate, lower}]; cur/prev = {key: value}; prev null while loading.
export function kpiCards(defs, cur, prev, { selected, onPick, noPrev = 'no data before' } = {}) {
  return defs.map(({ key, label, fmt, rate, lower }) => {
    const v = cur?.[key] ?? 0;
    const p = prev?.[key] ?? 0;
    let delta = '';
    let cls = '';
    if (!prev) {
      delta = '…';
    } else if (rate) {
      const d = v - p;
      delta = `${d >= 0 ? '↑' : '↓'} ${Math.abs(d).toFixed(1)} pts`;
      cls = d === 0 ? '' : (d > 0) !== Boolean(lower) ? 'up' : 'down';
    } else if (p > 0) {
      const d = ((v - p) / p) * 100;
      delta = `${d >= 0 ? '↑' : '↓'} ${Math.abs(d).toFixed(0)}%`;
      cls = d === 0 ? '' : (d > 0) !== Boolean(lower) ? 'up' : 'down';
    } else {
      delta = noPrev;
    }
    const kids = [h('span', { class: 'label' }, label), h('span', { class: 'value', dataset: { value: v } }, fmt(v)),
      h('span', { class: `delta ${cls}` }, delta, h('span', { class: 'sr' }, ' compared with the previous period'))];
    const attrs = { class: 'kpi', dataset: { metric: key }, title: prev ? `Previous period: ${fmt(p)}` : undefined };
    return onPick
      ? h('button', { type: 'button', ...attrs, 'aria-pressed': String(key === selected), onclick: () => onPick(key) }, ...kids)
      : h('div', attrs, ...kids);
  });
}

// One KPI card without a comparison (figures that have no previous period); null shows '–'.
export const kpiCard = (key, label, v, fmt) => h('div', { class: 'kpi', dataset: { metric: key } }, h('span', { class: 'label' }, label),
  h('span', { class: 'value', dataset: { value: v ?? '' } }, v === null || v === undefined ? '–' : fmt(v)));
