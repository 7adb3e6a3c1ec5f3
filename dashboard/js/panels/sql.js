// The SQL console (read keys and the admin key; a share link cannot run SQL).
import { $, h, fmtInt, download } from '../lib/dom.js';
import { api } from '../lib/api.js';
import { state, writeUrl } from '../lib/state.js';
import { fill, empty } from '../lib/panel.js';

const quote = (s) => `'${String(s).replace(/'/g, "''")}'`;

export function show() {
  const text = $('#sql-text');
  if (!text.value) text.value = state.sql || `SELECT channel, count(DISTINCT visitor_id) AS visitors, sum(revenue) FILTER (WHERE name = 'purchase') AS revenue\nFROM events\nWHERE site = ${quote(state.site)}\nGROUP BY channel\nORDER BY visitors DESC`;
}

async function run() {
  const sql = $('#sql-text').value;
  state.sql = sql;
  writeUrl();
  const status = $('#sql-status');
  status.textContent = 'Running…';
  const t = performance.now();
  await fill($('#sql-result'), async () => {
    const r = await api('/api/sql', { sql, format: 'json' }, { raw: true });
    return { rows: await r.json(), cut: r.headers.get('x-footfall-truncated') === 'true' };
  }, ({ rows, cut }) => {
    status.textContent = `${fmtInt(rows.length)} rows in ${Math.round(performance.now() - t)} ms${cut ? ' (cut at the row limit)' : ''}`;
    if (!rows.length) return empty('No rows.');
    const cols = Object.keys(rows[0]);
    const shown = rows.slice(0, 1000);
    return [h('table', { class: 'sql-table' },
      h('thead', {}, h('tr', {}, cols.map((c) => h('th', {}, c)))),
      h('tbody', {}, shown.map((row) => h('tr', {}, cols.map((c) => {
        const v = row[c];
        return h('td', { class: typeof v === 'number' ? 'n' : '' }, v === null || v === undefined ? 'NULL' : typeof v === 'object' ? JSON.stringify(v) : String(v));
      }))))),
    rows.length > shown.length ? h('p', { class: 'muted' }, 'Showing the first 1,000 rows; download the CSV for all.') : null];
  });
  if ($('#sql-result').dataset.state === 'error') status.textContent = '';
}

async function csv() {
  try {
    const r = await api('/api/sql', { sql: $('#sql-text').value, format: 'csv' }, { raw: true });
    download('footfall-query.csv', await r.blob());
  } catch (e) {
    $('#sql-result').replaceChildren(h('p', { class: 'error' }, e.message || String(e)));
  }
}

export function init() {
  $('#sql-form').addEventListener('submit', (e) => { e.preventDefault(); run(); });
  $('#sql-text').addEventListener('keydown', (e) => { if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) { e.preventDefault(); run(); } });
  $('#sql-csv').addEventListener('click', csv);
}
