// Saved views (the current tab with its filters, by name, per site) and view-only share links
// (a key that reads this site's reports and nothing else). Both kept by the server.
import { $, h } from '../lib/dom.js';
import { api, sitePath, viewOnly } from '../lib/api.js';
import { state, query, readUrl, changed } from '../lib/state.js';

let views = [];

export async function loadViews() {
  const select = $('#views');
  try {
    views = await api(sitePath(state.site, 'views'));
  } catch { views = []; }
  select.replaceChildren(h('option', { value: '' }, views.length ? 'Saved views…' : 'No saved views'),
    ...views.map((v) => h('option', { value: v.id }, v.name)));
  select.disabled = !views.length;
  $('#save-view').hidden = viewOnly();
  $('#share').hidden = viewOnly();
}

function open(id) {
  const v = views.find((x) => x.id === id);
  if (!v) return;
  const site = state.site;
  readUrl(`?${v.query}`);
  state.site = site;
  history.replaceState(null, '', `?${query()}`);
  changed();
}

async function save() {
  const name = prompt('Name this view (the tab, its settings, the range and the filters):');
  if (!name) return;
  try {
    const v = await api(sitePath(state.site, 'views'), { name, query: query() });
    await loadViews();
    $('#views').value = v.id;
    $('#view-status').textContent = `Saved “${v.name}”.`;
  } catch (e) { $('#view-status').textContent = e.message; }
}

// ---- share links ----------------------------------------------------------------------------------
const link = (key) => `${location.origin}/?${query()}#key=${key}`;

async function drawShares() {
  const list = $('#share-list');
  try {
    const shares = await api(sitePath(state.site, 'shares'));
    list.replaceChildren(...(shares.length ? shares.map((s) => h('li', { dataset: { share: s.id } },
      h('strong', {}, s.name), ' ', h('span', { class: 'muted' }, `created ${s.created_at.slice(0, 10)}`), ' ',
      h('input', { class: 'share-url', readonly: true, value: link(s.key), 'aria-label': `Link of ${s.name}`, onfocus: (e) => e.target.select() }),
      h('button', { type: 'button', class: 'secondary', onclick: () => revoke(s) }, 'Revoke'))) : [h('li', { class: 'muted' }, 'No share links yet.')]));
  } catch (e) { list.replaceChildren(h('li', { class: 'error' }, e.message)); }
}

async function revoke(s) {
  try {
    await api(sitePath(state.site, `shares/${encodeURIComponent(s.id)}`), undefined, { method: 'DELETE' });
    $('#share-status').textContent = `Revoked “${s.name}”: its link no longer opens anything.`;
    drawShares();
  } catch (e) { $('#share-status').textContent = e.message; }
}

export function init() {
  $('#views').addEventListener('change', (e) => open(e.target.value));
  $('#save-view').addEventListener('click', save);
  $('#share').addEventListener('click', () => { $('#share-dialog').showModal(); drawShares(); });
  $('#share-close').addEventListener('click', () => $('#share-dialog').close());
  $('#share-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    try {
      const s = await api(sitePath(state.site, 'shares'), { name: $('#share-name').value });
      $('#share-status').textContent = `Created “${s.name}”. Anyone with its link sees this site's reports, and nothing else.`;
      $('#share-name').value = '';
      drawShares();
    } catch (err) { $('#share-status').textContent = err.message; }
  });
}
