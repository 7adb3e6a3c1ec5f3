// Charts drawn as SVG by hand (no chart library, nothing from a CDN). Each takes plain numbers
// and labels and returns an <svg> sized to `width` (depthBands: bars of plain HTML).
import { h, svg, bucketLabel, fmtPct } from './dom.js';

function scale(max) {
  const m = Math.max(1, max);
  const mag = 10 ** Math.floor(Math.log10(m));
  return Math.ceil(m / mag) * mag;
}
// `box`: the element the chart fills, or its width in pixels.
const widthOf = (box) => Math.max(280, typeof box === 'number' ? box : box.clientWidth || 900);
// The width of one of two charts side by side in `box` (one above the other when narrow).
export const halfOf = (box) => { const w = box.clientWidth || 900; return w >= 760 ? (w - 64) / 2 : w - 34; };
const title = (el, text) => { el.append(svg('title', {}, text)); return el; };

// Lines over time: lines = [{values, cls}], the first one filled and dotted.
export function lineChart(box, { lines, labels, fmt, interval, label }) {
  const W = widthOf(box), H = W < 600 ? 200 : 240, L = 56, R = 12, T = 12, B = 26;
  const n = lines[0]?.values.length || 0;
  const top = scale(Math.max(0, ...lines.flatMap((l) => l.values)));
  const x = (i) => L + (n <= 1 ? 0 : (i * (W - L - R)) / (n - 1));
  const y = (v) => T + (H - T - B) * (1 - v / top);
  const s = svg('svg', { viewBox: `0 0 ${W} ${H}`, height: H, role: 'img', 'aria-label': label });
  for (let k = 0; k <= 4; k++) {
    const v = (top * k) / 4;
    s.append(svg('line', { class: 'grid-line', x1: L, x2: W - R, y1: y(v), y2: y(v) }), svg('text', { x: L - 6, y: y(v) + 4, 'text-anchor': 'end' }, fmt(v)));
  }
  const step = Math.max(1, Math.ceil(labels.length / Math.max(2, Math.floor(W / 110))));
  labels.forEach((b, i) => { if (!(i % step)) s.append(svg('text', { x: x(i), y: H - 8, 'text-anchor': 'middle' }, bucketLabel(b, interval))); });
  const path = (vals) => vals.map((v, i) => `${i ? 'L' : 'M'}${x(i).toFixed(1)},${y(v).toFixed(1)}`).join('');
  lines.slice(1).forEach((l) => { if (l.values.length) s.append(svg('path', { class: l.cls, d: path(l.values.slice(0, n)) })); });
  const cur = lines[0]?.values || [];
  if (cur.length) {
    s.append(svg('path', { class: 'area', d: `${path(cur)}L${x(cur.length - 1)},${y(0)}L${x(0)},${y(0)}Z` }), svg('path', { class: lines[0].cls, d: path(cur) }));
    cur.forEach((v, i) => {
      const prev = lines[1]?.values[i];
      s.append(title(svg('circle', { class: 'dot', cx: x(i), cy: y(v), r: 4 }), `${labels[i]}: ${fmt(v)}${prev !== undefined ? ` (previous: ${fmt(prev)})` : ''}`));
    });
  }
  return s;
}

// Vertical bars, one per label (LTV by month or channel).
export function barChart(box, { values, labels, fmt, label }) {
  const W = widthOf(box), H = 200, L = 56, R = 8, T = 18, B = 40;
  const top = scale(Math.max(0, ...values));
  const bw = (W - L - R) / Math.max(1, values.length);
  const y = (v) => T + (H - T - B) * (1 - v / top);
  const s = svg('svg', { viewBox: `0 0 ${W} ${H}`, height: H, role: 'img', 'aria-label': label });
  for (let k = 0; k <= 4; k++) {
    const v = (top * k) / 4;
    s.append(svg('line', { class: 'grid-line', x1: L, x2: W - R, y1: y(v), y2: y(v) }), svg('text', { x: L - 6, y: y(v) + 4, 'text-anchor': 'end' }, fmt(v)));
  }
  values.forEach((v, i) => {
    const x = L + i * bw + bw * 0.15;
    s.append(title(svg('rect', { class: 'bar-fill', x, y: y(v), width: bw * 0.7, height: Math.max(0, y(0) - y(v)), dataset: undefined }), `${labels[i]}: ${fmt(v)}`));
    const short = labels[i].length > Math.floor(bw / 7) ? `${labels[i].slice(0, Math.max(3, Math.floor(bw / 7) - 1))}…` : labels[i];
    s.append(svg('text', { x: x + bw * 0.35, y: H - 24, 'text-anchor': 'middle' }, short));
    s.append(svg('text', { x: x + bw * 0.35, y: y(v) - 4, 'text-anchor': 'middle', class: 'bar-value' }, fmt(v)));
  });
  return s;
}

// Stacked bars per period: `up` parts above zero, `down` below (lifecycle's dormant).
// parts = [{key, label, cls, sign}] ; rows = [{label, values: {key: n}, partial}]
export function stackedChart(box, { rows, parts, label, interval }) {
  const W = widthOf(box), H = 260, L = 56, R = 8, T = 10, B = 26;
  const upMax = Math.max(1, ...rows.map((r) => parts.filter((p) => p.sign > 0).reduce((a, p) => a + (r.values[p.key] || 0), 0)));
  const downMax = Math.max(0, ...rows.map((r) => parts.filter((p) => p.sign < 0).reduce((a, p) => a + (r.values[p.key] || 0), 0)));
  const top = scale(upMax);
  const bottom = downMax ? scale(downMax) : 0;
  const y = (v) => T + (H - T - B) * ((top - v) / (top + bottom));
  const bw = (W - L - R) / Math.max(1, rows.length);
  const s = svg('svg', { viewBox: `0 0 ${W} ${H}`, height: H, role: 'img', 'aria-label': label });
  for (const v of [top, top / 2, 0, ...(bottom ? [-bottom / 2, -bottom] : [])]) {
    s.append(svg('line', { class: v === 0 ? 'axis-line' : 'grid-line', x1: L, x2: W - R, y1: y(v), y2: y(v) }), svg('text', { x: L - 6, y: y(v) + 4, 'text-anchor': 'end' }, Math.round(Math.abs(v)).toLocaleString('en-US')));
  }
  const step = Math.max(1, Math.ceil(rows.length / Math.max(2, Math.floor(W / 90))));
  rows.forEach((r, i) => {
    const x = L + i * bw + bw * 0.12;
    let up = 0;
    let down = 0;
    for (const p of parts) {
      const v = r.values[p.key] || 0;
      if (!v) continue;
      const [a, b] = p.sign > 0 ? [up, (up += v)] : [-down, -(down += v)];
      s.append(title(svg('rect', { class: `seg ${p.cls}${r.partial ? ' partial' : ''}`, x, y: y(Math.max(a, b)), width: bw * 0.76, height: Math.max(0, y(Math.min(a, b)) - y(Math.max(a, b))) }),
        `${r.label}: ${v.toLocaleString('en-US')} ${p.label}${r.partial ? ' (period not over)' : ''}`));
    }
    if (!(i % step)) s.append(svg('text', { x: x + bw * 0.38, y: H - 8, 'text-anchor': 'middle' }, bucketLabel(r.label, interval)));
  });
  return s;
}

// A path tree as a Sankey-style icicle: one column per step, each node's height its sessions,
// children stacked inside the span of their parent, joined by bands. onPick(node) on click/Enter.
export function pathTree(box, root, { onPick, label }) {
  const depth = (n) => 1 + Math.max(0, ...n.children.map(depth));
  const cols = depth(root);
  const W = Math.max(cols * 150, widthOf(box)), H = 420, NW = 12, pad = 3;
  const colX = (d) => 8 + (d * (W - 16 - NW - 130)) / Math.max(1, cols - 1);
  const s = svg('svg', { viewBox: `0 0 ${W} ${H}`, width: W, height: H, role: 'group', 'aria-label': label, class: 'paths' });
  const k = (H - 20) / Math.max(1, root.sessions);
  const place = (n, d, y0) => {
    const h = Math.max(2, n.sessions * k - pad);
    const x = colX(d);
    const g = svg('g', { class: `node${n.label === '(end)' || n.label === '(other)' ? ' sink' : ''}`, tabindex: n.label.startsWith('(') ? undefined : 0, role: n.label.startsWith('(') ? undefined : 'button', 'aria-label': `${n.label}: ${n.sessions.toLocaleString('en-US')} sessions` });
    g.dataset.label = n.label;
    g.dataset.sessions = n.sessions;
    g.dataset.depth = d;
    g.append(title(svg('rect', { x, y: y0, width: NW, height: h }), `${n.label}: ${n.sessions.toLocaleString('en-US')} sessions`));
    if (h >= 11 || d === 0) g.append(svg('text', { x: x + NW + 4, y: y0 + Math.min(h / 2, 12) + 4 }, `${n.label.length > 22 ? `${n.label.slice(0, 21)}…` : n.label} · ${n.sessions.toLocaleString('en-US')}`));
    if (!n.label.startsWith('(') && d > 0) {
      const act = () => onPick(n);
      g.addEventListener('click', act);
      g.addEventListener('keydown', (e) => { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); act(); } });
    }
    let cy = y0;
    for (const c of n.children) {
      const ch = Math.max(2, c.sessions * k - pad);
      const x1 = x + NW, x2 = colX(d + 1), mid = (x1 + x2) / 2;
      s.append(svg('path', { class: 'band', d: `M${x1},${cy}C${mid},${cy} ${mid},${cy} ${x2},${cy}L${x2},${cy + ch}C${mid},${cy + ch} ${mid},${cy + ch} ${x1},${cy + ch}Z` }));
      place(c, d + 1, cy);
      cy += c.sessions * k;
    }
    s.append(g);
  };
  place(root, 0, 10);
  return s;
}

// Scroll depth as horizontal bars: rows = [{label, share (percent), dataset}]; each row carries
// data-value = share (besides its own dataset).
export function depthBands(rows) {
  return h('div', { class: 'bands', role: 'list', 'aria-label': 'Share of views reaching each depth' }, rows.map(({ label, share, dataset }) => {
    const bar = h('span', { class: 'band-fill' });
    bar.style.width = `${share}%`;
    return h('div', { class: 'band-row', role: 'listitem', dataset: { ...dataset, value: share } }, h('span', { class: 'band-label' }, label), h('span', { class: 'band-track' }, bar), h('strong', {}, fmtPct(share)));
  }));
}
