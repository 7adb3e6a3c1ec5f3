// footfall's click add-on for heatmaps, opt-in and outside the core snippet's budget. Embed it
// after the snippet:
//   <script defer src="https://stats.example/f.js" data-site="shop"></script>
//   <script defer src="https://stats.example/h.js"></script>
// Each click is a `$click` event sent through the snippet (so consent, Do-Not-Track, Global
// Privacy Control and data-dnt apply exactly as to every other event), with:
//   selector  a stable selector of the clicked element: #id, [data-heatmap="…"], else a short
//             tag:nth-of-type path (from the nearest ancestor with an id, at most 4 steps)
//   ex, ey    where in that element (0–1 on both axes)
//   x, y      where on the page: x a fraction of the document width, y CSS pixels from the top
//   vw        the viewport's class: mobile (< 768 px), tablet (< 1024 px) or desktop
//   rage      true on the third click within 1 s and 30 px (once per burst)
//   dead      true when within 1 s nothing followed: no navigation, no DOM change, no change of
//             the focused element
// Never sent: text, input values, attributes other than id and data-heatmap.
// A page opened with #footfall-heatmap=<key> loads the overlay (o.js) instead and tracks nothing.
((w, d, l) => {
  let s = d.currentScript,
    m = /footfall-heatmap=([^&]+)/.exec(l.hash),
    // Clicks of the last second: [time, x, y].
    recent = [],
    // Counts what could follow a click: DOM changes and navigations.
    moved = 0,
    // Clicks waiting for their second: each sends itself with dead = false when called early.
    pending = new Set(),
    r2 = (v, k = 100) => Math.round(Math.min(1, Math.max(0, v || 0)) * k) / k,
    ok = (v) => v && /^[a-z][\w-]*$/i.test(v),
    step = (e, i = 1, p = e) => {
      while ((p = p.previousElementSibling)) p.tagName == e.tagName && i++;
      return e.localName + ':nth-of-type(' + i + ')';
    },
    // An element that names itself: an id or data-heatmap, both plain words.
    key = (e) => ok(e.id) || ok(e.dataset.heatmap),
    sel = (e, path = [], n = 0) => {
      for (; !key(e) && e.parentElement && e != d.body && n++ < 4; e = e.parentElement) path.unshift(step(e));
      key(e) && path.unshift(ok(e.id) ? '#' + e.id : '[data-heatmap="' + e.dataset.heatmap + '"]');
      return path.join('>');
    },
    leave = () => {
      moved++;
      pending.forEach((f) => f());
    };
  if (m) {
    let o = d.createElement('script');
    o.src = s.src.replace(/[^/]*$/, 'o.js');
    o.dataset.key = decodeURIComponent(m[1]);
    return d.head.appendChild(o);
  }
  new MutationObserver(() => moved++).observe(d, { subtree: 1, childList: 1, attributes: 1, characterData: 1 });
  w.addEventListener('beforeunload', leave);
  w.addEventListener('popstate', leave);
  w.addEventListener('hashchange', leave);
  d.addEventListener(
    'click',
    (e) => {
      let t = Date.now(),
        el = e.target.closest('a,button,input,select,textarea,label,summary,[role=button],[data-heatmap]') || e.target,
        b = el.getBoundingClientRect(),
        X = e.pageX,
        Y = e.pageY,
        at = moved,
        focus = d.activeElement,
        p = {
          selector: sel(el),
          ex: r2((e.clientX - b.left) / b.width),
          ey: r2((e.clientY - b.top) / b.height),
          x: r2(X / d.documentElement.scrollWidth, 1e3),
          y: Math.round(Y),
          vw: innerWidth < 768 ? 'mobile' : innerWidth < 1024 ? 'tablet' : 'desktop',
        },
        go = (dead) => {
          clearTimeout(timer);
          pending.delete(go);
          dead && (p.dead = true);
          w.footfall?.('$click', p, { timestamp: t });
        },
        timer = setTimeout(() => go(moved == at && d.activeElement == focus), 1e3);
      recent = recent.filter((c) => t - c[0] < 1e3);
      recent.filter((c) => Math.hypot(c[1] - X, c[2] - Y) < 30).length == 2 && (p.rage = true);
      recent.push([t, X, Y]);
      pending.add(go);
    },
    1,
  );
})(window, document, location);
