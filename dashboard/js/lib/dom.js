// DOM helpers and number formats shared by every panel. No HTML strings: text is always text.
export const $ = (sel, el = document) => el.querySelector(sel);

// h('td', {class: 'n'}, 'text', child): an element; strings become text nodes (never HTML).
export function h(tag, attrs = {}, ...kids) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const kid of kids.flat(Infinity)) if (kid !== null && kid !== undefined && kid !== false) el.append(kid);
  return el;
}

export function svg(tag, attrs = {}, text) {
  const el = document.createElementNS('http://www.w3.org/2000/svg', tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== undefined) el.setAttribute(k, String(v));
  if (text !== undefined) el.textContent = text;
  return el;
}

export const fmtInt = (v) => Math.round(v ?? 0).toLocaleString('en-US');
export const fmtPct = (v) => `${(v ?? 0).toFixed(1)}%`;
export const fmtMoney = (v) => (v ?? 0).toLocaleString('en-US', { maximumFractionDigits: Math.abs(v ?? 0) >= 100 ? 0 : 2 });
export const fmtDec = (v) => (v ?? 0).toLocaleString('en-US', { maximumFractionDigits: 2 });
export function fmtDur(s) {
  s = Math.round(s ?? 0);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`;
  const two = (a, ua, b, ub) => (b ? `${a}${ua} ${b}${ub}` : `${a}${ua}`);
  if (s < 86400) return two(Math.floor(s / 3600), 'h', Math.floor((s % 3600) / 60), 'm');
  return two(Math.floor(s / 86400), 'd', Math.floor((s % 86400) / 3600), 'h');
}

// A bucket's label on a chart axis: hours, days or months.
export function bucketLabel(b, iv) {
  const d = new Date(b.replace(' ', 'T') + (b.length <= 10 ? 'T00:00:00Z' : 'Z'));
  if (Number.isNaN(d.getTime())) return b;
  if (iv === 'hour') return d.toLocaleTimeString('en-GB', { hour: '2-digit', minute: '2-digit', timeZone: 'UTC' });
  if (iv === 'month') return d.toLocaleDateString('en-GB', { month: 'short', year: 'numeric', timeZone: 'UTC' });
  return d.toLocaleDateString('en-GB', { day: 'numeric', month: 'short', timeZone: 'UTC' });
}

export function download(name, blob) {
  const a = h('a', { href: URL.createObjectURL(blob), download: name });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 10000);
}

// A table row that acts as a button (click, Enter or Space).
export function pickRow(label, act, attrs = {}, ...cells) {
  return h('tr', {
    class: 'pick', tabindex: 0, role: 'button', 'aria-label': label, ...attrs,
    onclick: act, onkeydown: (e) => { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); act(); } },
  }, ...cells);
}

// A table: head labels (a leading '#' right-aligns a column) and rows of cells.
export function table(head, rows, caption) {
  return h('table', {}, caption ? h('caption', { class: 'sr' }, caption) : null,
    h('thead', {}, h('tr', {}, head.map((t) => (t.startsWith('#') ? h('th', { class: 'n' }, t.slice(1)) : h('th', {}, t))))),
    h('tbody', {}, rows));
}
export const num = (v, fmt = fmtInt, extra = {}) => h('td', { class: 'n', dataset: { value: v ?? '' }, ...extra }, v === null || v === undefined ? '–' : fmt(v));
