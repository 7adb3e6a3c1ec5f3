// Live: visitors of the last five minutes and the pages they are on, polled every 5 seconds
// while the tab is shown (the server answers from memory).
import { $, h, fmtInt, num, table } from '../lib/dom.js';
import { api, sitePath } from '../lib/api.js';
import { state } from '../lib/state.js';
import { fill } from '../lib/panel.js';

export const POLL_MS = 5000;
let timer = null;
// One polling loop at a time: a poll still in flight when the tab is left and opened again ends its loop.
let loop = 0;

function draw(v) {
  const list = (title, rows, id) => h('div', { class: 'card', id }, h('h2', {}, title),
    rows.length ? table(['', '#Visitors'], rows.map((r) => h('tr', { dataset: { value: r.value } }, h('td', { class: 'label' }, r.value), num(r.visitors)))) : h('p', { class: 'empty' }, '–'));
  const head = h('p', { class: 'live-count' }, h('span', { class: 'pulse', 'aria-hidden': 'true' }), h('strong', { id: 'live-visitors', dataset: { value: v.visitors } }, fmtInt(v.visitors)),
    ` ${v.visitors === 1 ? 'visitor' : 'visitors'} in the last ${Math.round(v.window_seconds / 60)} minutes`, h('span', { class: 'muted' }, ` · updated ${new Date().toLocaleTimeString('en-GB')}`));
  if (!v.visitors) return [head, h('p', { class: 'empty' }, 'Nobody right now. Visitors appear here within seconds of their first pageview.')];
  return [head, h('div', { class: 'grid' }, list('Pages', v.pages, 'live-pages'), list('Countries', v.countries, 'live-countries'), list('Devices', v.devices, 'live-devices'))];
}

async function poll(first, mine = loop) {
  const box = $('#live-result');
  if (first) await fill(box, () => api(sitePath(state.site, 'live')), draw);
  else {
    // Quiet refresh: the numbers change in place, no "Loading…" flash.
    try {
      const v = await api(sitePath(state.site, 'live'));
      box.replaceChildren(...draw(v));
      box.dataset.state = 'ready';
    } catch { /* the next poll tries again */ }
  }
  // Null when not polling, so coming back to a hidden tab starts again.
  if (mine !== loop) return;
  timer = state.tab === 'live' && !document.hidden ? setTimeout(() => poll(false, mine), POLL_MS) : null;
}

export function show() {
  stop();
  return poll(true);
}
export function stop() {
  loop += 1;
  clearTimeout(timer);
  timer = null;
}
document.addEventListener('visibilitychange', () => { if (!document.hidden && state.tab === 'live' && !timer) poll(false); });
