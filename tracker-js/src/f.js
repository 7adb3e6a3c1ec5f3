// footfall's tracking snippet. Embed with
//   <script defer src="https://stats.example/f.js" data-site="shop"></script>
// Options (data-*): api (endpoint, default <script origin>/api/event), hash (count #routes as
// pages), links="off" (no outbound/download events), dnt="cookieless" (with Do-Not-Track or
// Global Privacy Control, send cookieless events instead of nothing).
// Everything the server can derive (visitor id, session, device, country, source) it derives.
((w, d, n, loc) => {
  let s = d.currentScript, D = s.dataset, site = D.site,
    api = D.api || new URL(s.src).origin + '/api/event',
    // Do-Not-Track / Global Privacy Control: nothing at all, or cookieless only.
    priv = n.doNotTrack == 1 || n.globalPrivacyControl,
    off = priv && D.dnt != 'cookieless',
    now = Date.now,
    rid = () => Math.random().toString(36).slice(2) + now(),
    // localStorage (a plain object where it is blocked), used only after consent.
    L = {},
    consent,
    user,
    mem = rid(),
    q = [], retry = [], tries = 0, timer,
    last, scroll = 0, active = 0, since = 0,
    hash = 'hash' in D,
    url = () => (hash ? loc.href : loc.href.split('#')[0]),
    on = (t, f, o) => (o || w).addEventListener(t, f, 1),
    send = (b) => {
      let body = JSON.stringify(b);
      (n.sendBeacon && n.sendBeacon(api, body)) ||
        fetch(api, { method: 'POST', body, keepalive: true }).then(
          (r) => ((r.status > 499) | (r.status == 429) ? fail(b) : (tries = 0)),
          () => fail(b),
        );
    },
    // Failed sends wait in a bounded queue (kept across pages only after consent) and are
    // retried with exponential backoff; event ids make retries idempotent.
    fail = (b) => {
      retry = retry.concat(b).slice(-50);
      consent && (L.ff_q = JSON.stringify(retry));
      setTimeout(() => {
        let r = retry;
        retry = [];
        delete L.ff_q;
        r.length && send(r);
      }, Math.min(6e4, 1e3 << tries++));
    },
    flush = () => q.length && send(q.splice(0)),
    // Order fields (revenue, currency, order_id, items) may stay in props: the server lifts
    // them. Sessions (30 minutes of inactivity) are the server's, for the first-party id too.
    ev = (name, props, extra) => {
      if (off) return;
      q.push({ site, name, url: url(), event_id: rid(), props, user_id: user, visitor_id: consent || void 0, ...extra });
      clearTimeout(timer);
      q.length > 9 ? flush() : (timer = setTimeout(flush, 1e3));
    },
    // Engaged time counts while the tab is visible and focused.
    tick = () => {
      since && (active += now() - since);
      since = d.visibilityState == 'visible' && d.hasFocus() ? now() : 0;
    },
    // Deepest point seen, as a share of the page (the server caps it at 100%).
    measure = (x) => {
      x = (w.scrollY + w.innerHeight) / d.documentElement.scrollHeight;
      x > scroll && (scroll = x);
    },
    // Scroll depth and engaged time of the page being left (or hidden) since the last report.
    leave = () => {
      tick();
      measure();
      last && active > 999 && ev('$engagement', { scroll: (scroll * 100) | 0, seconds: (active / 1e3) | 0 }, { url: last });
      active = 0;
    },
    pv = () => {
      if (url() != last) {
        leave();
        scroll = 0;
        ev('pageview', void 0, { referrer: last || d.referrer });
        last = url();
      }
    },
    hist = (m, o) => {
      o = history[m];
      history[m] = function () {
        o.apply(this, arguments);
        pv();
      };
    },
    f = (c, a, b) =>
      c == 'event' ? ev(a, b)
      : c == 'pageview' ? pv()
      : c == 'consent' ? (a && !priv ? (L.ff_id = consent = L.ff_id || rid()) : (delete L.ff_id, delete L.ff_q, (consent = 0)))
      : c == 'identify' ? ev('identify', (user = a) && void 0)
      : c == 'reset' ? ((user = void 0), consent && (L.ff_id = consent = rid()))
      : ev(c, a),
    old = w.footfall;

  // Sticky A/B variants: a hash of the visitor (the first-party id after consent, else this
  // page's) and the experiment, split by the weights; the server keeps one $exposure per
  // session and experiment.
  f.variant = (x, vs, ws) => {
    let h = 0, i = 0, c;
    ws = ws || vs.map(() => 1);
    for (c of (consent || mem) + x) h = (Math.imul(31, h) + c.charCodeAt()) | 0;
    h = (h >>> 0) % ws.reduce((a, b) => a + b);
    while (h >= ws[i]) h -= ws[i++];
    ev('$exposure', { experiment: x, variant: vs[i] });
    return vs[i];
  };
  w.footfall = f;
  try {
    L = localStorage;
    consent = !priv && L.ff_id;
  } catch (e) {}
  consent && fail(JSON.parse(L.ff_q || '[]'));
  hist('pushState');
  hist('replaceState');
  on('popstate', pv);
  hash && on('hashchange', pv);
  on('scroll', measure);
  on('focus', tick);
  on('blur', tick);
  on('visibilitychange', () => (d.hidden ? (leave(), flush()) : tick()), d);
  on('pagehide', () => (leave(), flush()));
  on('pageshow', (e) => e.persisted && ((last = 0), pv()));
  // Outbound links and file downloads.
  D.links != 'off' &&
    on('click', (e) => {
      let a = e.target.closest?.('a[href]'), u = a && new URL(a.href, loc);
      u &&
        (/\.(pdf|zip|dmg|exe|docx?|xlsx?|pptx?|csv|mp[34])$/i.test(u.pathname) ? ev('file_download', { url: u.href })
        : u.host != loc.host && /^http/.test(u.protocol) && ev('outbound_link', { url: u.href }));
    }, d);
  // Calls queued by the stub before this script loaded.
  ((old && old.q) || []).map((a) => f(...a));
  // Prerendered pages count once they are shown.
  d.prerendering ? on('prerenderingchange', pv, d) : pv();
})(window, document, navigator, location);
