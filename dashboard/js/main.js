// footfall's dashboard: plain JavaScript modules, no framework, no build step, no third-party
// code. Every number comes from /api/reports/* (and /api/sql on the SQL tab) with the key the
// user signed in with, kept in this tab's sessionStorage. The view lives in the URL.
import { $, h } from './lib/dom.js';
import { KEY, TABS, state, hooks as stateHooks, readUrl, writeUrl, rangeDates } from './lib/state.js';
import { api, hooks as apiHooks, Unauthorized, clearError, viewOnly } from './lib/api.js';
import { dims, dimLabel, forgetCatalog } from './lib/panel.js';
import * as overview from './panels/overview.js';
import * as ecommerce from './panels/ecommerce.js';
import * as acquisition from './panels/acquisition.js';
import * as funnel from './panels/funnel.js';
import * as retention from './panels/retention.js';
import * as paths from './panels/paths.js';
import * as lifecycle from './panels/lifecycle.js';
import * as engagement from './panels/engagement.js';
import * as heatmaps from './panels/heatmaps.js';
import * as live from './panels/live.js';
import * as experiments from './panels/experiments.js';
import * as segments from './panels/segments.js';
import * as predictions from './panels/predictions.js';
import * as sql from './panels/sql.js';
import * as views from './panels/views.js';

const PANELS = { overview, ecommerce, acquisition, funnel, retention, paths, lifecycle, engagement, heatmaps, live, experiments, segments, predictions, sql };
// Tabs a share link's key cannot use.
const FULL_ONLY = new Set(['sql']);

function signOut(message) {
  live.stop();
  sessionStorage.removeItem(KEY);
  $('#app').hidden = true;
  $('#login').hidden = false;
  $('#login-error').textContent = message || '';
  $('#login-key').focus();
}
apiHooks.signOut = signOut;

async function signIn(key) {
  sessionStorage.setItem(KEY, key);
  let sites;
  try {
    const [list, d] = await Promise.all([api('/api/sites'), api('/api/dimensions')]);
    sites = list;
    dims.list = d.dimensions.map((x) => [x.name, x.label, x.level]);
  } catch (e) {
    if (!(e instanceof Unauthorized)) $('#login-error').textContent = e.message;
    return;
  }
  if (!sites.length) {
    signOut('This key reads no site. Add one with: footfall site add <id>');
    return;
  }
  const select = $('#site');
  select.replaceChildren(...sites.map((s) => h('option', { value: s.id }, s.id)));
  if (!sites.some((s) => s.id === state.site)) state.site = sites[0].id;
  select.value = state.site;
  // A share link's key: no SQL tab (and, in the panels, no exports or changes). Set both ways:
  // the same browser tab may sign in with a read key after a share link.
  if (viewOnly()) document.body.dataset.viewOnly = 'true';
  else delete document.body.dataset.viewOnly;
  for (const t of FULL_ONLY) $(`#tab-${t}`).hidden = viewOnly();
  if (FULL_ONLY.has(state.tab) && viewOnly()) state.tab = 'overview';
  $('#view-only-note').hidden = !viewOnly();
  $('#login').hidden = true;
  $('#app').hidden = false;
  syncControls();
  views.loadViews();
  show(state.tab);
}

function syncControls() {
  $('#range').value = state.range;
  $('#custom-range').hidden = state.range !== 'custom';
  const [from, to] = rangeDates();
  $('#from').value = from;
  $('#to').value = to;
  $('#site').value = state.site;
  renderFilters();
}

function renderFilters() {
  const segment = state.segment ? [h('span', { class: 'chip' }, `Segment ${state.segment}`,
    h('button', { type: 'button', 'aria-label': 'Remove the segment', onclick: () => { state.segment = ''; changed(); } }, '×'))] : [];
  const chips = state.filters.map((f, i) => h('span', { class: 'chip' },
    `${dimLabel(f.dimension)} ${f.op === 'is_not' ? 'is not' : f.op === 'contains' ? 'contains' : 'is'} ${f.values.join(' or ')}`,
    h('button', { type: 'button', 'aria-label': `Remove filter ${dimLabel(f.dimension)}`, onclick: () => { state.filters.splice(i, 1); changed(); } }, '×')));
  $('#filters').replaceChildren(...segment, ...chips);
}

// The view changed: write the URL, forget loaded panels, redraw the visible one.
const loaded = new Set();
function changed() {
  loaded.clear();
  forgetCatalog();
  clearError();
  syncControls();
  writeUrl();
  show(state.tab);
}
stateHooks.changed = changed;

function show(tab) {
  if (FULL_ONLY.has(tab) && viewOnly()) tab = 'overview';
  if (state.tab === 'live' && tab !== 'live') live.stop();
  state.tab = tab;
  writeUrl();
  for (const b of document.querySelectorAll('[role=tab]')) {
    const on = b.dataset.tab === tab;
    b.setAttribute('aria-selected', String(on));
    b.tabIndex = on ? 0 : -1;
    $(`#panel-${b.dataset.tab}`).hidden = !on;
  }
  $('#filters').hidden = tab === 'sql' || tab === 'live' || tab === 'predictions';
  if (loaded.has(tab) && tab !== 'live') return;
  loaded.add(tab);
  const t0 = performance.now();
  Promise.resolve(PANELS[tab].show()).finally(() => {
    // Time to this tab's first complete panel, for the bench (bench/dashboard-tabs.mjs).
    document.body.dataset[`ms${tab[0].toUpperCase()}${tab.slice(1)}`] = String(Math.round(performance.now() - t0));
  });
}

function init() {
  readUrl();
  $('#login-form').addEventListener('submit', (e) => { e.preventDefault(); signIn($('#login-key').value.trim()); });
  $('#logout').addEventListener('click', () => signOut(''));
  $('#site').addEventListener('change', (e) => {
    state.site = e.target.value;
    state.filters = [];
    for (const k of ['funnel', 'experiment', 'paths']) state[k] = null;
    funnel.forgetSegments();
    views.loadViews();
    changed();
  });
  $('#range').addEventListener('change', (e) => {
    if (e.target.value === 'custom') { [state.from, state.to] = rangeDates(); }
    state.range = e.target.value;
    changed();
  });
  for (const id of ['from', 'to']) {
    $(`#${id}`).addEventListener('change', () => {
      if ($('#from').value && $('#to').value && $('#from').value <= $('#to').value) {
        state.from = $('#from').value;
        state.to = $('#to').value;
        changed();
      }
    });
  }
  const tabs = [...document.querySelectorAll('[role=tab]')];
  tabs.forEach((b) => {
    b.addEventListener('click', () => show(b.dataset.tab));
    b.addEventListener('keydown', (e) => {
      const d = e.key === 'ArrowRight' ? 1 : e.key === 'ArrowLeft' ? -1 : 0;
      if (!d) return;
      const shown = tabs.filter((t) => !t.hidden);
      const next = shown[(shown.indexOf(b) + d + shown.length) % shown.length];
      next.focus();
      show(next.dataset.tab);
    });
  });
  for (const p of [...Object.values(PANELS), views]) p.init?.();
  let resizing;
  window.addEventListener('resize', () => {
    clearTimeout(resizing);
    resizing = setTimeout(() => PANELS[state.tab].resize?.(), 150);
  });

  // `footfall demo` and share links carry the key in the fragment: take it, then drop it.
  const m = location.hash.match(/key=([^&]+)/);
  if (m) {
    sessionStorage.setItem(KEY, decodeURIComponent(m[1]));
    history.replaceState(null, '', location.pathname + location.search);
  }
  const key = sessionStorage.getItem(KEY);
  if (key) signIn(key);
  else signOut('');
}
init();
if (!TABS.every((t) => PANELS[t])) throw new Error('a tab has no panel');
