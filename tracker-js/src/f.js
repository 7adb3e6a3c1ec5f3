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
    rid = () => now().toString(36) + Math.random().toString(36).slice(2),
    // localStorage, used only after consent: read (one argument), write, or delete (falsy v).
    st = (k, v, l) => {
      try {
        l = localStorage;
        k = 'ff_' + k;
        return v === void 0 ? l[k] : v ? (l[k] = v) : delete l[k];
      } catch (e) {}
    },
    consent = !priv && st('id'),
    user = consent && st('u'),
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
          (r) => (r.status > 499 || r.status == 429 ? fail(b) : (tries = 0)),
          () => fail(b),
        );
    },
    // Failed sends wait in a bounded queue (kept across pages only after consent) and are
    // retried with exponential backoff; event ids make retries idempotent.
    fail = (b) => {
      retry = retry.concat(b).slice(-50);
      consent && st('q', JSON.stringify(retry));
      setTimeout(() => {
        let r = retry;
        retry = [];
        st('q', 0);
        r.length && send(r);
      }, Math.min(6e4, 1e3 << tries++));
    },
    flush = () => {
      clearTimeout(timer);
      q.length && send(q.splice(0));
    },
    ev = (name, data, extra) => {
      if (off) return;
      let e = { site, name, url: url(), event_id: rid(), ...extra }, p = {}, k, sid;
      for (k in data) /^(revenue|currency|order_id|items)$/.test(k) ? (e[k] = data[k]) : (p[k] = data[k]);
      for (k in p) {
        e.props = p;
        break;
      }
      if (user) e.user_id = user;
      if (consent) {
        // A first-party visitor id and a session that ends after 30 minutes of inactivity.
        sid = (st('s') || '').split('.');
        e.session_id = sid = now() - sid[1] < 18e5 ? sid[0] : rid();
        st('s', sid + '.' + now());
        e.visitor_id = consent;
      }
      q.push(e);
      clearTimeout(timer);
      q.length > 9 ? flush() : (timer = setTimeout(flush, 1e3));
    },
    // Engaged time counts while the tab is visible and focused.
    tick = () => {
      since && (active += now() - since);
      since = d.visibilityState == 'visible' && d.hasFocus() ? now() : 0;
    },
    measure = () => {
      let e = d.documentElement;
      scroll = Math.max(scroll, Math.min(1, (w.scrollY + w.innerHeight) / e.scrollHeight) || 0);
    },
    // Scroll depth and engaged time of the page being left (or hidden) since the last report.
    leave = () => {
      tick();
      measure();
      last && active > 999 && ev('$engagement', { scroll: Math.round(scroll * 100), seconds: Math.round(active / 1e3) }, { url: last });
      active = 0;
    },
    pv = () => {
      if (url() != last) {
        leave();
        scroll = 0;
        ev('pageview', 0, { referrer: last || d.referrer });
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
      : c == 'consent' ? (a && !priv ? (consent = st('id') || rid(), st('id', consent)) : ['id', 's', 'u', 'q'].map((k) => st(k, 0), (consent = 0)))
      : c == 'identify' ? ((user = a), consent && st('u', a), ev('identify'))
      : c == 'reset' ? ((user = 0), st('u', 0), consent && st('id', (consent = rid())), st('s', 0))
      : ev(c, a),
    old = w.footfall;

  // Sticky A/B variants: a hash of the visitor (the first-party id after consent, else this
  // page's) and the experiment, split by the weights; the server keeps one $exposure per
  // session and experiment.
  f.variant = (x, vs, ws) => {
    let h = 2166136261, i = 0, c;
    ws = ws || vs.map(() => 1);
    for (c of (consent || mem) + x) h = Math.imul(h ^ c.charCodeAt(), 16777619);
    h = (h >>> 0) % ws.reduce((a, b) => a + b);
    while (h >= ws[i]) h -= ws[i++];
    ev('$exposure', { experiment: x, variant: vs[i] });
    return vs[i];
  };
  w.footfall = f;
  consent && fail(JSON.parse(st('q') || '[]'));
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
      let a = e.target.closest && e.target.closest('a[href]'), u = a && new URL(a.href, loc);
      u &&
        (/\.(pdf|zip|gz|dmg|exe|msi|docx?|xlsx?|pptx?|csv|txt|mp[34]|epub)$/i.test(u.pathname) ? ev('file_download', { url: u.href })
        : u.host != loc.host && /^http/.test(u.protocol) && ev('outbound_link', { url: u.href }));
    }, d);
  // Calls queued by the stub before this script loaded.
  ((old && old.q) || []).map((a) => f(...a));
  // Prerendered pages count once they are shown.
  d.prerendering ? on('prerenderingchange', pv, d) : pv();
})(window, document, navigator, location);
