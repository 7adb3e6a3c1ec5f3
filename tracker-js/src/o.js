// footfall's heatmap overlay, loaded by h.js (never by the snippet) on a page opened with
// #footfall-heatmap=<key>: it asks footfall for this page's heatmap report over the last 30 days
// and the current viewport's class (a share link's key is enough) and draws, over the page:
// the click density (one blob per grid cell, hotter with more clicks), a badge on every listed
// element with its clicks, rage and dead clicks, and the scroll map's fold lines (the share of
// views that reached each tenth of the page). Nothing here is sent anywhere but that request.
((w, d) => {
  let s = d.currentScript,
    base = s.src.replace(/[^/]*$/, ''),
    site = d.querySelector('script[data-site]')?.dataset.site,
    doc = d.documentElement,
    day = (n) => new Date(Date.now() - n * 864e5).toISOString().slice(0, 10),
    vw = innerWidth < 768 ? 'mobile' : innerWidth < 1024 ? 'tablet' : 'desktop',
    root = d.createElement('div'),
    el = (tag, css, text, parent = root) => {
      let e = d.createElement(tag);
      e.style.cssText = css;
      text != null && (e.textContent = text);
      parent.appendChild(e);
      return e;
    },
    panel,
    draw = (r) => {
      let W = doc.scrollWidth,
        H = doc.scrollHeight,
        c = el('canvas', 'position:absolute;left:0;top:0;pointer-events:none'),
        g = c.getContext('2d'),
        cw = W / r.grid.columns,
        rh = r.grid.row_height;
      c.width = W;
      c.height = H;
      c.id = 'footfall-heat';
      for (let cell of r.grid.cells) {
        let i = cell.clicks / r.grid.max,
          x = (cell.column + 0.5) * cw,
          y = (cell.row + 0.5) * rh,
          rad = Math.max(cw, rh),
          grad = g.createRadialGradient(x, y, 0, x, y, rad);
        grad.addColorStop(0, `hsla(${(1 - i) * 240},100%,50%,${0.35 + 0.45 * i})`);
        grad.addColorStop(1, 'hsla(0,0%,0%,0)');
        g.fillStyle = grad;
        g.fillRect(x - rad, y - rad, 2 * rad, 2 * rad);
      }
      for (let e of r.elements) {
        let t;
        try {
          t = d.querySelector(e.selector);
        } catch (x) {}
        if (!t) continue;
        let b = t.getBoundingClientRect(),
          n = e.rage_clicks ? ` · ${e.rage_clicks} rage` : '';
        n += e.dead_clicks ? ` · ${e.dead_clicks} dead` : '';
        el(
          'div',
          `position:absolute;left:${b.left + scrollX}px;top:${Math.max(0, b.top + scrollY - 20)}px;background:#111;color:#fff;font:12px/18px system-ui,sans-serif;padding:0 6px;border-radius:9px;white-space:nowrap`,
          `${e.clicks} click${e.clicks == 1 ? '' : 's'}${n}`,
        ).className = 'ff-badge';
        root.lastChild.dataset.selector = e.selector;
        el('div', `position:absolute;left:${b.left + scrollX}px;top:${b.top + scrollY}px;width:${b.width}px;height:${b.height}px;outline:2px solid ${e.rage_clicks ? '#d00' : '#111'}`);
      }
      for (let b of r.scroll.bands) {
        let line = el('div', `position:absolute;left:0;width:${W}px;top:${(H * b.depth) / 100 - 1}px;border-top:2px dashed #d00`);
        line.className = 'ff-fold';
        line.dataset.depth = b.depth;
        el('span', 'position:absolute;right:8px;top:0;background:#d00;color:#fff;font:12px/18px system-ui,sans-serif;padding:0 6px', `${b.share}% of views reach ${b.depth}%`, line);
      }
      panel.textContent = `footfall heatmap · ${r.page} · ${vw} · ${r.totals.clicks} clicks, ${r.totals.rage_clicks} rage, ${r.totals.dead_clicks} dead · ${r.scroll.views} views (last 30 days)`;
    };
  root.id = 'footfall-heatmap';
  root.style.cssText = 'position:absolute;left:0;top:0;width:0;height:0;z-index:2147483646';
  d.body.appendChild(root);
  panel = el('div', 'position:fixed;right:12px;bottom:12px;max-width:480px;background:#fff;color:#111;font:13px/18px system-ui,sans-serif;padding:8px 12px;border:1px solid #888;border-radius:6px;z-index:2147483647', 'footfall heatmap: loading…', d.body);
  panel.id = 'footfall-heatmap-panel';
  fetch(base + 'api/reports/heatmap', {
    method: 'POST',
    headers: { authorization: 'Bearer ' + s.dataset.key, 'content-type': 'application/json' },
    body: JSON.stringify({ site, date_range: { from: day(29), to: day(0) }, page: location.pathname, device: vw }),
  })
    .then((r) => r.json().then((j) => (r.ok ? draw(j) : (panel.textContent = 'footfall heatmap: ' + (j.error?.message || r.status)))))
    .catch((e) => (panel.textContent = 'footfall heatmap: ' + e));
})(window, document);
