// footfall's tracking snippet. Embed with
//   <script defer src="https://stats.example/f.js" data-site="shop"></script>
// Options (data-*): api (endpoint, default api/event beside the script), hash (count #routes as
// pages), links="off" (no outbound/download events), dnt="cookieless" (with Do-Not-Track or
// Global Privacy Control, send cookieless events instead of nothing).
// The server derives what it can (visitor id and sessions, device, country, source, channel)
// and lifts order fields (revenue, currency, order_id, items) out of props; the snippet sends
// only what the page knows. Written for size: every byte here is in every shop page.
((w, d, n, l, D = d.currentScript.dataset) => {
  let api = D.api || d.currentScript.src.replace(/[^/]*$/, 'api/event'),
    // Do-Not-Track / Global Privacy Control: nothing at all, or cookieless only.
    priv = n.doNotTrack == 1 || n.globalPrivacyControl,
    off = priv && D.dnt != 'cookieless',
    now = Date.now,
    rid = () => Math.random().toString(36).slice(2) + now(),
    // localStorage (replaced by the real one when allowed), used only after consent.
    L = {},
    consent, user, mem = rid(),
    q = [], retry = [], tries = 0, timer,
    last, scroll = 0, active = 0, since,
    hash = 'hash' in D,
    url = () => (hash ? l.href : l.href.split('#')[0]),
    on = (e, f, o = w) => o.addEventListener(e, f, 1),
    send = (b, s = JSON.stringify((b[0].sent_at = now(), b))) =>
      n.sendBeacon?.(api, s) ||
      fetch(api, { method: 'POST', body: s, keepalive: true }).then(
        (r) => ((r.status > 499) | (r.status == 429) ? fail(b) : (tries = 0)),
        () => fail(b),
      ),
    // Failed sends wait in a bounded queue (kept across pages only after consent) and are
    // retried with exponential backoff; event ids make retries idempotent.
    fail = (b) => {
      retry = retry.concat(b).slice(-50);
      consent && (L.ff_q = JSON.stringify(retry));
      setTimeout(() => {
        delete L.ff_q;
        retry[0] && send(retry.splice(0));
      }, Math.min(6e4, 1e3 << tries++));
    },
    flush = () => q[0] && send(q.splice(0)),
    // Batches: sent after a second without events, at ten events, or when the page is hidden.
    // Each event keeps the time it happened and each send says when it left (by this clock),
    // so the server stores a batch, or a retry a minute later, at the times the visitor acted.
    ev = (name, props, x) =>
      off ||
      (q.push({ site: D.site, name, url: url(), event_id: rid(), timestamp: now(), props, user_id: user, visitor_id: consent, ...x }),
      clearTimeout(timer),
      q[9] ? flush() : (timer = setTimeout(flush, 1e3))),
    // Engaged time counts while the tab is visible and focused.
    tick = () => {
      since && (active += now() - since);
      since = !d.hidden && d.hasFocus() && now();
    },
    // Deepest point seen, as a share of the page (the server caps it at 100%).
    measure = () => (scroll = Math.max(scroll, (scrollY + innerHeight) / d.documentElement.scrollHeight)),
    // Scroll depth and engaged time of the page being left (or hidden) since the last report.
    leave = () => {
      tick();
      measure();
      last && active > 999 && ev('$engagement', { scroll: (scroll * 100) | 0, seconds: (active / 1e3) | 0 }, { url: last });
      active = 0;
    },
    pv = () =>
      url() != last && (leave(), (scroll = 0), ev('pageview', void 0, { referrer: last || d.referrer }), (last = url())),
    // footfall(name, props, fields): fields over the event's own (the click add-on sets a
    // click's time, as it sends it a second later).
    f = (c, a, b) =>
      c == 'event' ? ev(a, b)
      : c == 'pageview' ? pv()
      : c == 'consent' ? (a && !priv ? (L.ff_id = consent = L.ff_id || rid()) : (delete L.ff_id, delete L.ff_q, (consent = void 0)))
      : c == 'identify' ? ((user = a), ev(c))
      : c == 'reset' ? ((user = void 0), consent && (L.ff_id = consent = rid()))
      : ev(c, a, b);

  // Sticky A/B variants: a hash of the visitor (the first-party id after consent, else this
  // page's) and the experiment, split by the weights; the server keeps one $exposure per
  // session and experiment.
  f.variant = (x, vs, ws, h = 0, i = 0) => {
    for (let c of (consent || mem) + x) h = (Math.imul(31, h) + c.charCodeAt()) | 0;
    ws ||= vs.map(() => 1);
    for (h = (h >>> 0) % ws.reduce((a, b) => a + b); h >= ws[i]; ) h -= ws[i++];
    ev('$exposure', { experiment: x, variant: vs[i] });
    return vs[i];
  };
  try {
    L = localStorage;
    priv || (consent = L.ff_id);
  } catch (e) {}
  consent && fail(JSON.parse(L.ff_q || '[]'));
  // Single-page apps.
  for (let m of ['pushState', 'replaceState']) {
    let o = history[m];
    history[m] = (...a) => (o.apply(history, a), pv());
  }
  on('popstate', pv);
  hash && on('hashchange', pv);
  on('scroll', measure);
  on('focus', tick);
  on('blur', tick);
  on('visibilitychange', () => (d.hidden ? (leave(), flush()) : tick()), d);
  on('pagehide', () => (leave(), flush()));
  // Back/forward-cache restores are new views.
  on('pageshow', (e) => e.persisted && ((last = 0), pv()));
  // Outbound links and file downloads.
  D.links != 'off' &&
    on('click', (e, a = e.target.closest?.('a[href]')) =>
      a &&
      (/\.(pdf|zip|dmg|exe|docx?|xlsx?|pptx?|csv|mp[34])$/i.test(a.pathname) ? ev('file_download', { url: a.href })
      : a.host != l.host && /^http/.test(a.protocol) && ev('outbound_link', { url: a.href })), d);
  // Calls queued by the stub before this script loaded.
  w.footfall?.q?.map((a) => f(...a));
  w.footfall = f;
  // Prerendered pages count once they are shown.
  d.prerendering ? on('prerenderingchange', pv, d) : pv();
})(window, document, navigator, location);
