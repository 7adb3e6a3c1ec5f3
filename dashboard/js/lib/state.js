// The view (tab, site, range, filters, each panel's settings) lives in the URL so it can be
// shared or saved; the key never does. `changed()` redraws; main.js sets what it calls.
export const KEY = 'footfall.key';
export const TZ = Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
export const TABS = ['overview', 'ecommerce', 'acquisition', 'funnel', 'retention', 'paths', 'lifecycle', 'engagement', 'heatmaps', 'live', 'experiments', 'segments', 'predictions', 'sql'];
// Panels with settings of their own, kept as JSON under their name.
const PANEL_KEYS = ['funnel', 'retention', 'experiment', 'acquisition', 'paths', 'lifecycle'];

export const state = { tab: 'overview', site: '', range: '30d', from: '', to: '', filters: [], segment: '', metric: 'visitors', sql: '' };
for (const k of PANEL_KEYS) state[k] = null;

export const hooks = { changed: () => {} };
export const changed = () => hooks.changed();

export const today = () => new Date().toLocaleDateString('en-CA', { timeZone: TZ });
export const addDays = (d, n) => new Date(Date.parse(`${d}T00:00:00Z`) + n * 86400000).toISOString().slice(0, 10);
export const daysBetween = (a, b) => Math.round((Date.parse(`${b}T00:00:00Z`) - Date.parse(`${a}T00:00:00Z`)) / 86400000);

export function rangeDates() {
  const t = today();
  const month = `${t.slice(0, 8)}01`;
  switch (state.range) {
    case 'today': return [t, t];
    case 'yesterday': return [addDays(t, -1), addDays(t, -1)];
    case '7d': return [addDays(t, -6), t];
    case 'month': return [month, t];
    case 'last_month': { const end = addDays(month, -1); return [`${end.slice(0, 8)}01`, end]; }
    case '90d': return [addDays(t, -89), t];
    case 'custom': if (state.from && state.to && state.from <= state.to) return [state.from, state.to]; // fall through
    default: return [addDays(t, -29), t];
  }
}
// The period of the same length just before the range (what KPIs compare with).
export function previousRange() {
  const [from, to] = rangeDates();
  const n = daysBetween(from, to) + 1;
  return [addDays(from, -n), addDays(from, -1)];
}
export function interval(from, to) {
  const days = daysBetween(from, to) + 1;
  return days <= 2 ? 'hour' : days <= 92 ? 'day' : days <= 400 ? 'week' : 'month';
}

export function readUrl(search = location.search) {
  const p = new URLSearchParams(search);
  const json = (k, d) => { try { return p.has(k) ? JSON.parse(p.get(k)) : d; } catch { return d; } };
  state.tab = TABS.includes(p.get('tab')) ? p.get('tab') : 'overview';
  state.segment = p.get('segment') || '';
  state.site = p.get('site') || state.site || '';
  state.range = p.get('range') || (p.get('from') ? 'custom' : '30d');
  state.from = p.get('from') || '';
  state.to = p.get('to') || '';
  state.filters = (json('filters', []) || []).filter((f) => f && typeof f.dimension === 'string' && Array.isArray(f.values));
  state.metric = p.get('metric') || 'visitors';
  for (const k of PANEL_KEYS) state[k] = json(k, null);
  state.sql = p.get('sql') || '';
}
export function query() {
  const p = new URLSearchParams();
  if (state.tab !== 'overview') p.set('tab', state.tab);
  if (state.site) p.set('site', state.site);
  if (state.range !== '30d') p.set('range', state.range);
  if (state.range === 'custom') { p.set('from', state.from); p.set('to', state.to); }
  if (state.filters.length) p.set('filters', JSON.stringify(state.filters));
  if (state.segment) p.set('segment', state.segment);
  if (state.metric !== 'visitors') p.set('metric', state.metric);
  for (const k of PANEL_KEYS) if (state[k]) p.set(k, JSON.stringify(state[k]));
  if (state.sql) p.set('sql', state.sql);
  return p.toString();
}
export function writeUrl() {
  const q = query();
  history.replaceState(null, '', q ? `?${q}` : location.pathname);
}

// The fields every report request has.
export function common(range = rangeDates()) {
  const [from, to] = range;
  return { site: state.site, date_range: { from, to }, timezone: TZ, filters: state.filters, ...(state.segment ? { segment: state.segment } : {}) };
}

export function addFilter(dimension, value) {
  state.filters = state.filters.filter((f) => f.dimension !== dimension);
  state.filters.push({ dimension, op: 'is', values: [value] });
  changed();
}
