// Every request the dashboard makes, with the key it signed in with (this tab's sessionStorage).
import { KEY } from './state.js';
import { h } from './dom.js';

export class Unauthorized extends Error {}
export const hooks = { signOut: () => {} };
export const key = () => sessionStorage.getItem(KEY) || '';
// A share link's key (`ffv_…`) reads reports only: no SQL, no people, no changes.
export const viewOnly = () => key().startsWith('ffv_');

export async function api(path, body, { raw = false, method } = {}) {
  const r = await fetch(path, {
    method: method || (body === undefined ? 'GET' : 'POST'),
    headers: { authorization: `Bearer ${key()}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (r.status === 401) {
    hooks.signOut('The key was refused. Sign in again.');
    throw new Unauthorized();
  }
  if (!r.ok) {
    let msg = `${r.status} ${r.statusText}`;
    try {
      const e = (await r.json()).error;
      if (e) msg = e.field ? `${e.message} (field: ${e.field})` : e.message;
    } catch { /* not JSON */ }
    throw new Error(msg);
  }
  if (raw) return r;
  return r.status === 204 ? null : r.json();
}
export const report = (kind, body) => api(`/api/reports/${kind}`, body);
export const sqlRows = (sql) => api('/api/sql', { sql, format: 'json' });
export const sitePath = (site, rest) => `/api/sites/${encodeURIComponent(site)}/${rest}`;

export function showError(err) {
  if (err instanceof Unauthorized) return;
  const el = document.querySelector('#error');
  el.replaceChildren(h('span', {}, err.message || String(err)));
  el.hidden = false;
}
export const clearError = () => { document.querySelector('#error').hidden = true; };
