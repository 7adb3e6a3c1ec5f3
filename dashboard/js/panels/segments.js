// Segments: the templates and saved ones with their sizes; a builder for the conditions the
// definition language has (no JSON to type); save, edit, rename and delete (admin key).
import { $, h, fmtInt, download } from '../lib/dom.js';
import { api, report, sitePath, viewOnly } from '../lib/api.js';
import { state, changed } from '../lib/state.js';
import { fill, empty, loadCatalog, catalogNow, dimOptions, eventOptions } from '../lib/panel.js';
import { forgetSegments } from './funnel.js';

// Each condition type: its label and fields [name, kind, label]. kinds: event, dim, values, int, money.
const TYPES = {
  did: ['did', [['event', 'event', 'event'], ['at_least', 'int', 'at least (times)'], ['within_days', 'int', 'in the last (days)'], ['not_event', 'event?', 'and then not'], ['not_days', 'int', 'within (days)']]],
  did_not: ['did not', [['event', 'event', 'event'], ['within_days', 'int', 'in the last (days)']]],
  property: ['has property', [['dimension', 'dim', 'dimension'], ['op', 'op', 'is'], ['values', 'values', 'values (comma-separated)'], ['within_days', 'int', 'in the last (days)']]],
  first_touch: ['first came from', [['dimension', 'dim', 'dimension'], ['op', 'op', 'is'], ['values', 'values', 'values (comma-separated)']]],
  orders: ['orders', [['at_least', 'int', 'at least'], ['at_most', 'int', 'at most'], ['within_days', 'int', 'in the last (days)']]],
  revenue: ['revenue', [['at_least', 'money', 'at least'], ['at_most', 'money', 'at most'], ['within_days', 'int', 'in the last (days)']]],
  last_purchase: ['last purchase', [['more_than_days_ago', 'int', 'more than (days ago)'], ['within_days', 'int', 'or within (days)']]],
  first_seen: ['first seen', [['within_days', 'int', 'in the last (days)']]],
};

// The builder's state: {match: 'all'|'any', conditions: [{type, ...fields as strings}]}.
let draft = { id: null, name: '', match: 'all', conditions: [{ type: 'did', event: 'product_view', within_days: '14', not_event: 'purchase', not_days: '1' }] };

const intOrNull = (v) => (v === '' || v === undefined || v === null ? undefined : Math.round(Number(v)));
const numOrNull = (v) => (v === '' || v === undefined || v === null ? undefined : Number(v));

// The builder's state → a definition the server takes.
export function toDefinition(d) {
  const one = (c) => {
    const out = { type: c.type };
    switch (c.type) {
      case 'did':
        Object.assign(out, { event: { event: c.event }, at_least: intOrNull(c.at_least), within_days: intOrNull(c.within_days) });
        if (c.not_event) out.then_not = { event: { event: c.not_event }, within: { value: intOrNull(c.not_days) || 1, unit: 'day' } };
        break;
      case 'did_not': Object.assign(out, { event: { event: c.event }, within_days: intOrNull(c.within_days) }); break;
      case 'property': case 'first_touch':
        Object.assign(out, { dimension: c.dimension, op: c.op || 'is', values: String(c.values || '').split(',').map((v) => v.trim()).filter(Boolean) });
        if (c.type === 'property') out.within_days = intOrNull(c.within_days);
        break;
      case 'orders': Object.assign(out, { at_least: intOrNull(c.at_least), at_most: intOrNull(c.at_most), within_days: intOrNull(c.within_days) }); break;
      case 'revenue': Object.assign(out, { at_least: numOrNull(c.at_least), at_most: numOrNull(c.at_most), within_days: intOrNull(c.within_days) }); break;
      case 'last_purchase': Object.assign(out, { more_than_days_ago: intOrNull(c.more_than_days_ago), within_days: intOrNull(c.within_days) }); break;
      default: out.within_days = intOrNull(c.within_days);
    }
    return JSON.parse(JSON.stringify(out)); // drops the undefined fields
  };
  const conds = d.conditions.map(one);
  return conds.length === 1 ? conds[0] : { type: d.match, conditions: conds };
}

// A saved definition → the builder's state (null when it uses what the builder cannot show).
export function fromDefinition(def) {
  const flat = def.type === 'all' || def.type === 'any' ? def.conditions : [def];
  if (flat.some((c) => !TYPES[c.type] || c.conditions || c.date_range || c.at_most !== undefined && c.type === 'did')) return null;
  const s = (v) => (v === undefined || v === null ? '' : String(v));
  return {
    match: def.type === 'any' ? 'any' : 'all',
    conditions: flat.map((c) => ({
      type: c.type, event: c.event?.event, at_least: s(c.at_least), at_most: s(c.at_most), within_days: s(c.within_days),
      not_event: c.then_not?.event?.event || '', not_days: s(c.then_not?.within?.value), dimension: c.dimension, op: c.op || 'is',
      values: (c.values || []).join(', '), more_than_days_ago: s(c.more_than_days_ago),
    })),
  };
}

function control(c, [name, kind, label], i) {
  const id = `cond-${i}-${name}`;
  const set = (e) => { c[name] = e.target.value; };
  const events = catalogNow()?.events || [];
  let el;
  if (kind === 'event' || kind === 'event?') el = h('select', { id, onchange: set }, eventOptions(events, c[name], kind === 'event?' ? '(nothing)' : undefined));
  else if (kind === 'dim') {
    // A first touch is one event's value: no item dimensions there.
    el = h('select', { id, onchange: set }, dimOptions(null, { breakdown: c.type === 'first_touch' }).filter((o) => o.value !== 'entry_page'));
    el.value = c[name] || 'country';
    c[name] = el.value;
  }
  else if (kind === 'op') { el = h('select', { id, onchange: set }, ['is', 'is_not', 'contains'].map((o) => h('option', { value: o, selected: (c[name] || 'is') === o }, o.replace('_', ' ')))); }
  else el = h('input', { id, class: kind === 'values' ? '' : 'num', type: kind === 'values' ? 'text' : 'number', min: 0, step: kind === 'money' ? 'any' : 1, value: c[name] ?? '', oninput: set });
  return h('label', {}, label, el);
}

function drawBuilder() {
  const box = $('#segment-conditions');
  box.replaceChildren(...draft.conditions.map((c, i) => h('div', { class: 'row cond', dataset: { cond: i } },
    h('label', {}, i === 0 ? 'People who' : draft.match === 'all' ? 'and' : 'or',
      h('select', { id: `cond-${i}-type`, class: 'cond-type', onchange: (e) => { draft.conditions[i] = { type: e.target.value }; drawBuilder(); } },
        Object.entries(TYPES).map(([k, [label]]) => h('option', { value: k, selected: k === c.type }, label)))),
    TYPES[c.type][1].map((f) => control(c, f, i)),
    draft.conditions.length > 1 ? h('button', { type: 'button', class: 'secondary', 'aria-label': `Remove condition ${i + 1}`, onclick: () => { draft.conditions.splice(i, 1); drawBuilder(); } }, '×') : null)));
  $('#segment-match').value = draft.match;
  $('#segment-name').value = draft.name;
  $('#segment-save').textContent = draft.id ? 'Save changes' : 'Save segment';
  $('#segment-cancel').hidden = !draft.id;
}

// Which list is on screen: sizes of a list drawn over (a segment saved, edited or deleted since)
// are not asked for any more.
let listRun = 0;

async function sizes(rows, run) {
  // Two at a time: each is a query over every person.
  const queue = [...rows];
  const worker = async () => {
    for (let r = queue.shift(); r && run === listRun; r = queue.shift()) {
      try {
        const v = await report('segment', { site: state.site, definition: r.s.id, limit: 0 });
        r.size.textContent = fmtInt(v.size);
        r.size.dataset.value = v.size;
      } catch (e) { r.size.textContent = '–'; r.size.title = e.message; }
    }
  };
  await Promise.all([worker(), worker()]);
}

function edit(s) {
  const b = fromDefinition(s.definition);
  if (!b) { $('#segment-status').textContent = `“${s.name}” uses conditions the builder cannot show (nested groups or dates); change it with the API.`; return; }
  draft = { id: s.id, name: s.name, ...b };
  drawBuilder();
  $('#segment-name').focus();
}

async function remove(s) {
  if (!confirm(`Delete the segment “${s.name}”? Reports that use it will stop working.`)) return;
  try {
    await api(sitePath(state.site, `segments/${encodeURIComponent(s.id)}`), undefined, { method: 'DELETE' });
    $('#segment-status').textContent = `Deleted ${s.name}.`;
    forgetSegments();
    list();
  } catch (e) { $('#segment-status').textContent = e.message; }
}

function list() {
  const res = $('#segments-result');
  const run = ++listRun;
  let rows = [];
  return fill(res, () => api(sitePath(state.site, 'segments')), (l) => {
    const all = [...l.saved.map((s) => ({ ...s, saved: true })), ...l.templates];
    if (!all.length) return empty('No segments yet.');
    rows = all.map((s) => {
      const size = h('td', { class: 'n size' }, '…');
      const exportCsv = async () => {
        try {
          const r = await api('/api/segments/members.csv', { site: state.site, definition: s.id }, { raw: true });
          download(`${s.id}.csv`, await r.blob());
        } catch (e) { $('#segment-status').textContent = e.message; }
      };
      const use = () => { state.segment = s.id; state.tab = 'overview'; changed(); };
      return { s, size, tr: h('tr', { dataset: { segment: s.id } }, h('td', {}, s.name, s.saved ? '' : h('span', { class: 'muted' }, ' (template)')), size,
        h('td', { class: 'actions' }, h('button', { type: 'button', class: 'secondary', onclick: use }, 'Filter reports'),
          viewOnly() ? null : h('button', { type: 'button', class: 'secondary', onclick: exportCsv }, 'Export CSV'),
          s.saved && !viewOnly() ? h('button', { type: 'button', class: 'secondary', onclick: () => edit(s) }, 'Edit') : null,
          s.saved && !viewOnly() ? h('button', { type: 'button', class: 'secondary', onclick: () => remove(s) }, 'Delete') : null)) };
    });
    queueMicrotask(() => sizes(rows, run));
    return [h('h2', {}, 'Segments (people now)'), h('table', {},
      h('thead', {}, h('tr', {}, h('th', {}, 'Segment'), h('th', { class: 'n' }, 'People'), h('th', { 'aria-label': 'Actions' }))),
      h('tbody', {}, rows.map((r) => r.tr)))];
  }, { loading: 'Loading segments…' });
}

export async function show() {
  $('#segment-form').hidden = viewOnly();
  await loadCatalog().catch(() => null);
  drawBuilder();
  await list();
}

export function init() {
  $('#segment-add').addEventListener('click', () => { draft.conditions.push({ type: 'orders', at_least: '1' }); drawBuilder(); });
  $('#segment-match').addEventListener('change', (e) => { draft.match = e.target.value; drawBuilder(); });
  $('#segment-name').addEventListener('input', (e) => { draft.name = e.target.value; });
  $('#segment-cancel').addEventListener('click', () => { draft = { id: null, name: '', match: 'all', conditions: [{ type: 'orders', at_least: '2' }] }; drawBuilder(); });
  $('#segment-preview').addEventListener('click', async () => {
    const status = $('#segment-status');
    try {
      const r = await report('segment', { site: state.site, definition: toDefinition(draft), limit: 0 });
      status.textContent = `${fmtInt(r.size)} people match now.`;
      status.dataset.size = r.size;
    } catch (e) { status.textContent = e.message; }
  });
  $('#segment-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const status = $('#segment-status');
    const body = { name: draft.name, definition: toDefinition(draft) };
    try {
      const path = draft.id ? `segments/${encodeURIComponent(draft.id)}` : 'segments';
      const r = await api(sitePath(state.site, path), body, { method: draft.id ? 'PUT' : 'POST' });
      status.textContent = `Saved as ${r.id}.`;
      draft = { ...draft, id: r.id };
      drawBuilder();
      forgetSegments();
      list();
    } catch (err) { status.textContent = err.message; }
  });
}
