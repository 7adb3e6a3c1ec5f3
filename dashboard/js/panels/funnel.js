// Funnels: steps (one event, or any of several; optional; filtered on any dimension or
// property), exclusions, window, order, breakdown, and up to four segments side by side.
import { $, h, fmtInt, fmtPct, fmtDur, download } from '../lib/dom.js';
import { report, showError, api, sitePath, viewOnly } from '../lib/api.js';
import { state, common, writeUrl } from '../lib/state.js';
import { fill, empty, loadCatalog, catalogNow, dimOptions, dimLabel, eventOptions } from '../lib/panel.js';

function defaultFunnel(names) {
  const shop = ['product_view', 'add_to_cart', 'checkout_start', 'purchase'].filter((n) => names.includes(n));
  const steps = (shop.length >= 2 ? shop : names.slice(0, 3)).map((event) => ({ event }));
  return { steps: steps.length >= 2 ? steps : [{ event: 'pageview' }, { event: 'pageview' }], window: { value: 1, unit: 'day' }, order: 'ordered', breakdown: '', exclusions: [], compare: [] };
}

let segmentsList = null;
async function segmentChoices() {
  if (!segmentsList) {
    const r = await api(sitePath(state.site, 'segments'));
    segmentsList = [...r.saved, ...r.templates].map((s) => [s.id, s.name]);
  }
  return segmentsList;
}
export const forgetSegments = () => { segmentsList = null; };

function stepRow(f, s, i, events) {
  const n = f.steps.length;
  const alts = s.or || [];
  const li = h('li', { dataset: { step: i } },
    h('label', { class: 'sr', for: `step-${i}` }, `Step ${i + 1} event`),
    h('select', { id: `step-${i}`, class: 'step-event', onchange: (e) => { s.event = e.target.value; } }, eventOptions(events, s.event)),
    alts.map((a, k) => [h('span', { class: 'muted' }, 'or'),
      h('label', { class: 'sr', for: `step-${i}-or-${k}` }, `Step ${i + 1} alternative ${k + 1}`),
      h('select', { id: `step-${i}-or-${k}`, class: 'step-or', onchange: (e) => { alts[k] = e.target.value; } }, eventOptions(events, a)),
      h('button', { type: 'button', class: 'link', 'aria-label': `Remove alternative ${k + 1} of step ${i + 1}`, onclick: () => { alts.splice(k, 1); drawForm(); } }, '×')]),
    h('button', { type: 'button', class: 'link', 'aria-label': `Step ${i + 1}: also any other event`, onclick: () => { s.or = [...alts, events[0] || 'pageview']; drawForm(); } }, '+ or'),
    h('label', { class: 'sr', for: `step-${i}-dim` }, `Step ${i + 1} where`),
    h('select', { id: `step-${i}-dim`, class: 'step-dim', onchange: (e) => { s.dimension = e.target.value; } }, dimOptions('where… (any)')),
    h('label', { class: 'sr', for: `step-${i}-value` }, `Step ${i + 1} value`),
    h('input', { id: `step-${i}-value`, class: 'step-value', placeholder: 'value', value: s.value || '', oninput: (e) => { s.value = e.target.value; } }),
    i > 0 && i < n - 1 ? h('label', { class: 'check' }, h('input', { type: 'checkbox', class: 'step-optional', checked: Boolean(s.optional), onchange: (e) => { s.optional = e.target.checked; } }), 'optional') : null,
    n > 2 ? h('button', { type: 'button', class: 'secondary', 'aria-label': `Remove step ${i + 1}`, onclick: () => { f.steps.splice(i, 1); drawForm(); } }, '×') : null);
  $('.step-dim', li).value = s.dimension || '';
  return li;
}

function exclusionRow(f, x, i, events) {
  const n = f.steps.length;
  const stepOpts = (sel) => Array.from({ length: n }, (_, k) => h('option', { value: k + 1, selected: k + 1 === sel }, `step ${k + 1}`));
  return h('li', { dataset: { exclusion: i } },
    h('label', { class: 'sr', for: `excl-${i}` }, `Exclusion ${i + 1} event`),
    h('select', { id: `excl-${i}`, class: 'excl-event', onchange: (e) => { x.event = e.target.value; } }, eventOptions(events, x.event)),
    h('span', { class: 'muted' }, 'between'),
    h('label', { class: 'sr', for: `excl-${i}-from` }, `Exclusion ${i + 1} from step`),
    h('select', { id: `excl-${i}-from`, onchange: (e) => { x.from = Number(e.target.value); } }, stepOpts(x.from || 1)),
    h('span', { class: 'muted' }, 'and'),
    h('label', { class: 'sr', for: `excl-${i}-to` }, `Exclusion ${i + 1} to step`),
    h('select', { id: `excl-${i}-to`, onchange: (e) => { x.to = Number(e.target.value); } }, stepOpts(Math.min(x.to || n, n))),
    h('button', { type: 'button', class: 'secondary', 'aria-label': `Remove exclusion ${i + 1}`, onclick: () => { f.exclusions.splice(i, 1); drawForm(); } }, '×'));
}

export function drawForm() {
  const f = state.funnel;
  const events = catalogNow()?.events || [];
  f.exclusions ||= [];
  f.compare ||= [];
  $('#steps').replaceChildren(...f.steps.map((s, i) => stepRow(f, s, i, events)));
  $('#exclusions').replaceChildren(...f.exclusions.map((x, i) => exclusionRow(f, x, i, events)));
  $('#add-step').disabled = f.steps.length >= 20;
  $('#window-value').value = f.window.value;
  $('#window-unit').value = f.window.unit;
  $('#order').value = f.order;
  const bd = $('#funnel-breakdown');
  bd.replaceChildren(...dimOptions('None', { breakdown: true }).filter((o) => o.value !== 'entry_page'));
  bd.value = f.breakdown || '';
  const box = $('#funnel-compare');
  box.replaceChildren(...(segmentsList || []).map(([id, name]) => h('label', { class: 'check' },
    h('input', { type: 'checkbox', value: id, checked: f.compare.includes(id), onchange: (e) => {
      f.compare = e.target.checked ? [...f.compare, id] : f.compare.filter((c) => c !== id);
      if (f.compare.length > 4) { f.compare.shift(); drawForm(); }
    } }), name)));
}

export function request(peopleLimit) {
  const f = state.funnel;
  const where = (s) => (s.dimension && s.value ? [{ dimension: s.dimension, values: [s.value] }] : []);
  const steps = f.steps.map((s, i) => {
    const optional = Boolean(s.optional) && i > 0 && i < f.steps.length - 1 ? true : undefined;
    return s.or?.length
      ? { any_of: [s.event, ...s.or].map((event) => ({ event, filters: where(s) })), optional }
      : { event: s.event, filters: where(s), optional };
  });
  return {
    ...common(), steps, window: f.window, order: f.order, breakdown: f.breakdown || undefined, people_limit: peopleLimit,
    exclusions: (f.exclusions || []).map((x) => ({ event: x.event, from_step: x.from || 1, to_step: Math.min(x.to || f.steps.length, f.steps.length) })),
    compare_segments: f.compare?.length >= 2 ? f.compare : undefined,
  };
}

export async function show() {
  const res = $('#funnel-result');
  await fill(res, async () => {
    const [cat] = await Promise.all([loadCatalog(), segmentChoices().catch(() => [])]);
    if (!state.funnel || !Array.isArray(state.funnel.steps)) state.funnel = defaultFunnel(cat.events);
    drawForm();
    return report('funnel', request(1));
  }, draw, { loading: 'Loading event names…' });
}

export function run() {
  const f = state.funnel;
  f.window = { value: Math.max(1, Number($('#window-value').value) || 1), unit: $('#window-unit').value };
  f.order = $('#order').value;
  f.breakdown = $('#funnel-breakdown').value;
  writeUrl();
  return fill($('#funnel-result'), () => report('funnel', request(1)), draw);
}

function bars(r) {
  const first = r.steps[0]?.count || 0;
  return r.steps.map((s, i) => {
    const bar = h('div', { class: 'fill' });
    bar.style.width = `${first ? (s.count / first) * 100 : 0}%`;
    const prev = i ? r.steps[i - 1].count : s.count;
    const drop = h('div', { class: 'drop' });
    drop.style.left = bar.style.width;
    drop.style.width = `${first ? (Math.max(0, prev - s.count) / first) * 100 : 0}%`;
    return h('div', { class: 'fstep', dataset: { step: i + 1, count: s.count } },
      h('div', {}, h('strong', {}, `${i + 1}. ${s.label}`), s.optional ? h('span', { class: 'muted' }, ' (optional)') : null),
      h('div', { class: 'track', role: 'img', 'aria-label': `${s.label}: ${fmtInt(s.count)} people, ${fmtPct(s.conversion_from_first)} of the first step` }, bar, drop),
      h('div', { class: 'meta' },
        h('span', {}, h('strong', { class: 'count' }, fmtInt(s.count)), ` ${r.unit === 'sessions' ? 'sessions' : 'people'}`),
        h('span', {}, h('strong', {}, fmtPct(s.conversion_from_first)), ' of step 1'),
        i ? h('span', {}, h('strong', {}, fmtPct(s.conversion_from_previous)), ' from previous') : null,
        i && s.median_time_to_convert_seconds !== null ? h('span', {}, 'median ', h('strong', {}, fmtDur(s.median_time_to_convert_seconds)), ' to convert') : null,
        s.dropped ? h('span', {}, h('strong', {}, fmtInt(s.dropped)), ' dropped here ',
          viewOnly() ? null : h('button', { type: 'button', class: 'secondary', onclick: () => exportDropped(i) }, 'Export CSV')) : null));
  });
}

function draw(r) {
  const first = r.steps[0]?.count || 0;
  if (!first) return empty(`Nobody did “${r.steps[0]?.label}” in this range.`);
  const total = r.steps.at(-1)?.count || 0;
  const parts = [h('p', {}, h('strong', {}, fmtPct((total / first) * 100)), ` of ${fmtInt(first)} people who did “${r.steps[0]?.label}” went on to “${r.steps.at(-1)?.label}” ${r.window_seconds == null ? 'at any time after' : `within ${fmtDur(r.window_seconds)}`}.`),
    h('div', { class: 'funnel' }, bars(r))];
  const stepHeads = r.steps.map((s, i) => h('th', { class: 'n' }, `${i + 1}. ${s.label}`));
  if (r.by_segment?.length) {
    const name = (seg) => (segmentsList || []).find(([id]) => id === seg)?.[1] || (typeof seg === 'string' ? seg : 'segment');
    parts.push(h('h2', {}, 'By segment'), h('div', { class: 'scroll' }, h('table', { id: 'funnel-by-segment' },
      h('thead', {}, h('tr', {}, h('th', {}, 'Segment'), stepHeads, h('th', { class: 'n' }, 'Conversion'))),
      h('tbody', {}, r.by_segment.map((b) => h('tr', { dataset: { segment: typeof b.segment === 'string' ? b.segment : '' } }, h('td', {}, name(b.segment)),
        b.report.steps.map((s) => h('td', { class: 'n', dataset: { value: s.count } }, fmtInt(s.count))),
        h('td', { class: 'n' }, fmtPct(b.report.steps.at(-1)?.conversion_from_first))))))));
  }
  if (r.breakdowns?.length) {
    parts.push(h('h2', {}, `By ${dimLabel(r.breakdown)}`), h('div', { class: 'scroll' }, h('table', {},
      h('thead', {}, h('tr', {}, h('th', {}, dimLabel(r.breakdown)), stepHeads, h('th', { class: 'n' }, 'Conversion'))),
      h('tbody', {}, r.breakdowns.map((b) => h('tr', {}, h('td', {}, b.value ?? '(none)'), b.steps.map((s) => h('td', { class: 'n' }, fmtInt(s.count))),
        h('td', { class: 'n' }, fmtPct(b.steps.at(-1)?.conversion_from_first))))))));
  }
  if (r.excluded_people) parts.push(h('p', { class: 'muted', id: 'funnel-excluded', dataset: { value: r.excluded_people } }, `${fmtInt(r.excluded_people)} people left out by exclusions.`));
  return parts;
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
    const r = await report('funnel', request(10000));
    const s = r.steps[i];
    download(`funnel-step-${i + 1}-dropped.csv`, new Blob([['person_id', ...s.dropped_people.map(csvCell)].join('\n') + '\n'], { type: 'text/csv' }));
    if (s.dropped_people_truncated) showError(new Error(`Only the first 10,000 of ${fmtInt(s.dropped)} people were exported.`));
  } catch (e) { showError(e); }
}

export function init() {
  $('#add-step').addEventListener('click', () => { state.funnel.steps.push({ event: catalogNow()?.events[0] || 'pageview' }); drawForm(); });
  $('#add-exclusion').addEventListener('click', () => {
    const f = state.funnel;
    (f.exclusions ||= []).push({ event: catalogNow()?.events[0] || 'pageview', from: 1, to: f.steps.length });
    drawForm();
  });
  $('#funnel-form').addEventListener('submit', (e) => { e.preventDefault(); run(); });
}
