// One runner for every panel's result box: loading, error and empty states in one place, and a
// late answer to an older request never overwrites a newer one.
import { h } from './dom.js';
import { Unauthorized, report } from './api.js';
import { state, rangeDates, TZ } from './state.js';

const runs = new WeakMap();

// An empty result: `render` returns empty('No data…') and the box says so (data-state=empty).
export const empty = (text) => ({ empty: text });

// fill(box, load, render): box shows "Loading…", then render(await load()) or the error.
// render returns nodes, or empty(text).
export async function fill(box, load, render, { loading = 'Loading…' } = {}) {
  const run = (runs.get(box) || 0) + 1;
  runs.set(box, run);
  box.dataset.state = 'loading';
  box.setAttribute('aria-busy', 'true');
  box.replaceChildren(h('p', { class: 'empty' }, loading));
  const current = () => runs.get(box) === run;
  try {
    const data = await load();
    if (!current()) return;
    const out = render(data);
    if (out && out.empty !== undefined) {
      box.replaceChildren(h('p', { class: 'empty' }, out.empty));
      box.dataset.state = 'empty';
    } else {
      box.replaceChildren(...[out].flat().filter(Boolean));
      box.dataset.state = 'ready';
    }
  } catch (e) {
    if (!current() || e instanceof Unauthorized) return;
    box.replaceChildren(h('p', { class: 'error', role: 'alert' }, e.message || String(e)));
    box.dataset.state = 'error';
  } finally {
    if (current()) box.removeAttribute('aria-busy');
  }
}

// ---- what the site's events hold (for pickers): the catalog report ------------------------------
let catalog = null;
let catalogFor = '';
export async function loadCatalog() {
  const [from, to] = rangeDates();
  const k = `${state.site}|${from}|${to}`;
  if (catalog && catalogFor === k) return catalog;
  const r = await report('catalog', { site: state.site, date_range: { from, to }, timezone: TZ });
  catalog = { events: r.events.map((e) => e.name), props: r.properties.map((p) => p.name), experiments: r.experiments };
  catalogFor = k;
  return catalog;
}
export const forgetCatalog = () => { catalog = null; };
export const catalogNow = () => catalog;

// [name, label, level] of every dimension reports accept, from GET /api/dimensions at sign-in.
// Level `item` (product, category) only filters; `breakdown: true` leaves those out.
export const dims = { list: [] };
export const dimLabel = (d) => (d.startsWith('prop:') ? `Property ${d.slice(5)}` : (dims.list.find(([k]) => k === d) || [d, d])[1]);
export function dimOptions(first, { only, breakdown = false } = {}) {
  const list = (only ? dims.list.filter(([k]) => only.includes(k)) : dims.list).filter(([, , level]) => !breakdown || level !== 'item');
  return [first === null ? null : h('option', { value: '' }, first), ...list.map(([k, l]) => h('option', { value: k }, l)),
    ...(only ? [] : (catalog?.props || []).map((p) => h('option', { value: `prop:${p}` }, `Property ${p}`)))].filter(Boolean);
}
export function eventOptions(names, selected, first) {
  const all = selected && !names.includes(selected) ? [selected, ...names] : names;
  return [first ? h('option', { value: '', selected: !selected }, first) : null, ...all.map((n) => h('option', { value: n, selected: n === selected }, n))].filter(Boolean);
}

