// Paths: where sessions go after (or came from before) an event or a page, as a Sankey-style
// tree; click a step to start from it.
import { $, h, fmtInt } from '../lib/dom.js';
import { report } from '../lib/api.js';
import { state, common, writeUrl } from '../lib/state.js';
import { fill, empty, loadCatalog, eventOptions } from '../lib/panel.js';
import { pathTree } from '../lib/charts.js';

const settings = () => ({ event: 'pageview', page: '', direction: 'next', steps: 3, branches: 5, ...(state.paths || {}) });
let last = null;

function start(s) {
  return { event: s.event, filters: s.page ? [{ dimension: 'page', values: [s.page] }] : [] };
}
const load = (s) => report('paths', { ...common(), start: start(s), direction: s.direction, steps: s.steps, branches: s.branches });

export async function show() {
  await fill($('#paths-result'), async () => {
    const cat = await loadCatalog();
    const s = settings();
    $('#path-event').replaceChildren(...eventOptions(cat.events.filter((e) => !e.startsWith('$')), s.event));
    $('#path-page').value = s.page;
    $('#path-direction').value = s.direction;
    $('#path-steps').value = String(s.steps);
    return load(s);
  }, draw);
}

// A step's label is a page path (a pageview) or an event name: start from it.
function follow(node) {
  const s = settings();
  state.paths = node.label.startsWith('/') ? { ...s, event: 'pageview', page: node.label } : { ...s, event: node.label, page: '' };
  writeUrl();
  show();
}

function draw(r) {
  last = r;
  if (!r.root.sessions) return empty('No session in this range has this start.');
  const s = settings();
  const what = s.page ? `${s.page}` : `“${r.root.label}”`;
  return [h('p', {}, `${fmtInt(r.root.sessions)} sessions with ${what}: the ${s.direction === 'next' ? 'steps that followed' : 'steps that led to it'}. Click a step to start from it.`),
    h('div', { class: 'scroll' }, pathTree($('#paths-result'), r.root, { onPick: follow, label: `Paths ${s.direction === 'next' ? 'from' : 'to'} ${what}` }))];
}

export function resize() {
  if (last && $('#paths-result').dataset.state === 'ready') $('#paths-result').replaceChildren(...draw(last));
}

export function init() {
  $('#paths-form').addEventListener('submit', (e) => {
    e.preventDefault();
    state.paths = {
      event: $('#path-event').value, page: $('#path-page').value.trim(), direction: $('#path-direction').value,
      steps: Number($('#path-steps').value), branches: 5,
    };
    writeUrl();
    fill($('#paths-result'), () => load(settings()), draw);
  });
}
