// A/B tests: the experiment's variants against control, the verdict, and the planner (split,
// smallest change worth detecting, power).
import { $, h, fmtInt, fmtPct, fmtMoney, fmtDur } from '../lib/dom.js';
import { report } from '../lib/api.js';
import { state, common, writeUrl } from '../lib/state.js';
import { fill, empty, loadCatalog, eventOptions } from '../lib/panel.js';

export async function show() {
  await fill($('#experiment-result'), async () => {
    const cat = await loadCatalog();
    const list = cat.experiments;
    if (!list.length) return null;
    const names = list.map((r) => r.name);
    state.experiment ||= { name: names[0], control: 'control', goal: cat.events.includes('purchase') ? 'purchase' : cat.events[0], days: 14 };
    const x = state.experiment;
    const options = list.map((r) => h('option', { value: r.name }, `${r.name} (${fmtInt(r.count)} visitors)`));
    if (!names.includes(x.name)) options.unshift(h('option', { value: x.name }, x.name));
    $('#experiment').replaceChildren(...options);
    $('#experiment').value = x.name;
    $('#control').value = x.control;
    $('#goal').replaceChildren(...eventOptions(cat.events, x.goal));
    $('#exp-window').value = x.days;
    $('#exp-split').value = x.split || '';
    $('#exp-mde').value = x.mde ?? 10;
    $('#exp-power').value = x.power ?? 80;
    return load(x);
  }, (r) => (r ? view(r) : empty('No $exposure events in this range. Use footfall.variant(...) in the snippet, or send $exposure events with props.experiment and props.variant.')),
  { loading: 'Loading experiments…' });
}

// "control:50, green:50" → {control: 50, green: 50}; blank: equal split.
function parseSplit(text) {
  const out = {};
  for (const part of String(text || '').split(',').map((p) => p.trim()).filter(Boolean)) {
    const [k, v] = part.split(':').map((p) => p.trim());
    if (k && Number(v) > 0) out[k] = Number(v);
  }
  return out;
}

function load(x) {
  return report('experiment', {
    ...common(), experiment: x.name, control: x.control, goal: { event: x.goal }, window: { value: x.days, unit: 'day' },
    split: parseSplit(x.split), mde: (x.mde ?? 10) / 100, power: (x.power ?? 80) / 100,
  });
}

function view(r) {
  const kind = r.sample_ratio?.mismatch ? 'warn' : / wins: /.test(r.verdict) ? 'win' : '';
  const ci = (c, unit) => (c ? `${c.difference > 0 ? '+' : ''}${c.difference}${unit} (${c.ci_low} to ${c.ci_high})` : '');
  const head = h('tr', {}, ['Variant', 'People', 'Converted', 'Conversion', 'Lift vs control (95% CI)', 'p-value', 'Chance to beat control', 'Chance to be best', 'Revenue / person', 'Avg order value']
    .map((t, i) => h('th', { class: i ? 'n' : '' }, t)));
  const rows = r.variants.map((v) => h('tr', { dataset: { variant: v.variant } },
    h('td', {}, v.is_control && v.variant !== 'control' ? `${v.variant} (control)` : v.variant), h('td', { class: 'n' }, fmtInt(v.people)), h('td', { class: 'n' }, fmtInt(v.converted)),
    h('td', { class: 'n' }, fmtPct(v.conversion_rate)), h('td', { class: 'n' }, ci(v.lift_relative, '%')),
    h('td', { class: 'n' }, v.lift_points ? v.lift_points.p_value.toFixed(4) : ''),
    h('td', { class: 'n' }, v.probability_to_beat_control === null ? '' : fmtPct(v.probability_to_beat_control)),
    h('td', { class: 'n' }, fmtPct(v.probability_to_be_best)), h('td', { class: 'n' }, fmtMoney(v.revenue_per_person)),
    h('td', { class: 'n' }, v.average_order_value === null ? '' : fmtMoney(v.average_order_value))));
  const srm = r.sample_ratio;
  const p = r.planner;
  return [
    h('p', { class: `verdict ${kind}`, id: 'verdict' }, r.verdict),
    h('div', { class: 'scroll' }, h('table', {}, h('thead', {}, head), h('tbody', {}, rows))),
    h('p', { class: 'muted' }, `Converted: did “${r.goal}” within ${fmtDur(r.window_seconds)} of the first exposure.`,
      r.mixed_people ? ` ${fmtInt(r.mixed_people)} people saw more than one variant and are left out.` : '',
      srm ? ` Split check: p = ${srm.p_value < 0.0001 ? srm.p_value.toExponential(1) : srm.p_value.toFixed(4)}${srm.mismatch ? ' (mismatch)' : ' (as intended)'}.` : ''),
    p.people_per_variant ? h('p', { id: 'planner', dataset: { people: p.people_per_variant } },
      `To detect a ${Math.round(p.mde_relative * 100)}% change from ${fmtPct(p.baseline_conversion_rate)} with ${Math.round(p.power * 100)}% power: ${fmtInt(p.people_per_variant)} people per variant`,
      p.people_to_go ? `; ${fmtInt(p.people_to_go)} more in the smallest variant${p.days_to_go != null ? `, about ${Math.ceil(p.days_to_go)} days at the current rate` : ''}.` : ' (reached).') : null,
  ];
}

export function init() {
  $('#experiment-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const clamp = (v, lo, hi, d) => Math.min(hi, Math.max(lo, Number(v) || d));
    state.experiment = {
      name: $('#experiment').value, control: $('#control').value.trim() || 'control', goal: $('#goal').value,
      days: clamp($('#exp-window').value, 1, 90, 14), split: $('#exp-split').value.trim(),
      mde: clamp($('#exp-mde').value, 0.5, 500, 10), power: clamp($('#exp-power').value, 50, 99, 80),
    };
    writeUrl();
    fill($('#experiment-result'), () => load(state.experiment), view);
  });
}
