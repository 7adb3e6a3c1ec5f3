// The built snippet (dist/f.js) in happy-dom: every feature, the stub, batching, retries,
// consent and Do-Not-Track / Global Privacy Control. Run: npm test (in tracker-js).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { Window } from 'happy-dom';
import { build, budgets, gzipSize, SCRIPTS } from '../build.mjs';

const DIST = readFileSync(new URL('../dist/f.js', import.meta.url), 'utf8');
const BUDGET = budgets()['f.js'];
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const windows = [];
after(() => Promise.all(windows.map((w) => w.happyDOM.close())));

/** A page with the snippet. `sent` collects every event posted (beacon or fetch). */
function page({ data = {}, nav = {}, url = 'https://shop.example/', referrer = '', before, beacon = true, fetchOk = true, storage, body, after: scripts = [] } = {}) {
  const w = new Window({ url, settings: { navigator: { userAgent: 'Mozilla/5.0 test' } } });
  windows.push(w);
  const d = w.document;
  const sent = [], posts = [];
  const record = (kind, body) => {
    const events = JSON.parse(body);
    posts.push({ kind, events });
    sent.push(...events);
  };
  Object.defineProperty(w.navigator, 'sendBeacon', {
    configurable: true,
    value: beacon ? (u, body) => (typeof beacon === 'function' ? beacon(u, body, record) : (record('beacon', body), true)) : undefined,
  });
  for (const [k, v] of Object.entries(nav)) Object.defineProperty(w.navigator, k, { configurable: true, value: v });
  w.fetch = async (u, o) => {
    if (typeof fetchOk === 'function') return fetchOk(u, o, record);
    if (!fetchOk) throw new Error('offline');
    record('fetch', o.body);
    return { status: 202 };
  };
  if (storage) for (const [k, v] of Object.entries(storage)) w.localStorage.setItem(k, v);
  Object.defineProperty(d, 'referrer', { configurable: true, value: referrer });
  d.body.innerHTML = body ?? '<a id="out" href="https://elsewhere.example/x">out</a><a id="pdf" href="https://shop.example/files/menu.pdf">menu</a><a id="in" href="/about">in</a>';
  if (before) w.eval(before);
  const s = d.createElement('script');
  s.src = 'https://stats.example/f.js';
  for (const [k, v] of Object.entries({ site: 'shop', ...data })) s.dataset[k] = v;
  d.head.appendChild(s);
  Object.defineProperty(d, 'currentScript', { configurable: true, get: () => s });
  w.eval(DIST);
  // Scripts embedded after the snippet (the click add-on): [src, code].
  for (const [src, code] of scripts) {
    const a = d.createElement('script');
    a.src = src;
    d.head.appendChild(a);
    Object.defineProperty(d, 'currentScript', { configurable: true, get: () => a });
    w.eval(code);
  }
  Object.defineProperty(d, 'currentScript', { configurable: true, get: () => null });
  const hide = () => w.dispatchEvent(new w.Event('pagehide'));
  return { w, d, sent, posts, hide, names: () => sent.map((e) => e.name) };
}

test('dist/ is built from src/, and the snippet is within its size budget', async () => {
  for (const name of SCRIPTS) {
    assert.equal(readFileSync(new URL(`../dist/${name}`, import.meta.url), 'utf8'), await build(name), `dist/${name} is stale: run \`npm run build\``);
  }
  const size = gzipSize(DIST);
  console.log(`dist/f.js: ${DIST.length} bytes, ${size} bytes gzip -9 (budget ${BUDGET})`);
  assert.ok(size <= BUDGET, `${size} bytes gzip > budget ${BUDGET}`);
});

test('a pageview on load, cookieless: no ids, no storage, no cookies', () => {
  const p = page({ url: 'https://shop.example/mugs?x=1#top', referrer: 'https://www.google.com/' });
  p.hide();
  const [e] = p.sent;
  assert.equal(e.name, 'pageview');
  assert.equal(e.site, 'shop');
  assert.equal(e.url, 'https://shop.example/mugs?x=1');
  assert.equal(e.referrer, 'https://www.google.com/');
  assert.match(e.event_id, /^[A-Za-z0-9_-]{8,64}$/);
  assert.equal(e.visitor_id, undefined);
  assert.equal(e.session_id, undefined);
  assert.equal(p.w.localStorage.length, 0);
  assert.equal(p.d.cookie, '');
  assert.equal(p.posts[0].kind, 'beacon');
});

test('single-page apps: pushState, replaceState, popstate; hash routes only when asked', () => {
  const p = page();
  p.w.history.pushState({}, '', '/products/mug-1');
  p.w.history.replaceState({}, '', '/products/mug-1'); // same URL: no new pageview
  p.w.history.pushState({}, '', '/cart');
  p.w.history.pushState({}, '', '/cart#step2'); // hash only: same page by default
  p.w.history.back();
  p.w.location.href = 'https://shop.example/products/mug-1';
  p.w.dispatchEvent(new p.w.PopStateEvent('popstate'));
  p.hide();
  const pvs = p.sent.filter((e) => e.name === 'pageview');
  assert.deepEqual(pvs.map((e) => new URL(e.url).pathname), ['/', '/products/mug-1', '/cart', '/products/mug-1']);
  assert.equal(pvs[1].referrer, 'https://shop.example/', 'an SPA pageview refers to the previous page');

  const h = page({ data: { hash: '' } });
  h.w.location.hash = '#/settings';
  h.w.dispatchEvent(new h.w.HashChangeEvent('hashchange'));
  h.hide();
  assert.deepEqual(h.sent.filter((e) => e.name === 'pageview').map((e) => e.url), ['https://shop.example/', 'https://shop.example/#/settings']);
});

test('custom events, and calls made before the script loaded (the queue stub)', () => {
  const stub = "window.footfall=window.footfall||function(){(footfall.q=footfall.q||[]).push(arguments)};footfall('event','signup',{plan:'pro',seats:3})";
  const p = page({ before: stub });
  p.w.footfall('event', 'newsletter', { list: 'weekly', double_opt_in: true });
  p.hide();
  assert.deepEqual(p.names(), ['signup', 'pageview', 'newsletter']);
  assert.deepEqual(p.sent[0].props, { plan: 'pro', seats: 3 });
  assert.deepEqual(p.sent[2].props, { list: 'weekly', double_opt_in: true });
  assert.equal(p.sent[1].props, undefined);
});

test('e-commerce calls carry their order fields', () => {
  const p = page();
  const items = [{ id: 'mug-1', name: 'Mug', category: 'mugs', price: 12.5, quantity: 2 }];
  for (const n of ['product_view', 'add_to_cart', 'remove_from_cart', 'checkout_start']) p.w.footfall(n, { items, list: 'home' });
  p.w.footfall('purchase', { order_id: 'o-1', revenue: 25, currency: 'EUR', items, coupon: 'TEA10' });
  p.w.footfall('refund', { order_id: 'o-1', revenue: 25, currency: 'EUR' });
  p.hide();
  assert.deepEqual(p.names(), ['pageview', 'product_view', 'add_to_cart', 'remove_from_cart', 'checkout_start', 'purchase', 'refund']);
  // Order fields travel in props; the server lifts them to the top level (tested in Rust).
  const buy = p.sent[5];
  assert.deepEqual(buy.props, { order_id: 'o-1', revenue: 25, currency: 'EUR', items, coupon: 'TEA10' });
  assert.deepEqual(p.sent[1].props, { items, list: 'home' });
});

test('identify adds the user id to later events; reset removes it', () => {
  const p = page();
  p.w.footfall('identify', 'u-42');
  p.w.footfall('event', 'a');
  p.w.footfall('reset');
  p.w.footfall('event', 'b');
  p.hide();
  const by = Object.fromEntries(p.sent.map((e) => [e.name, e]));
  assert.equal(by.identify.user_id, 'u-42');
  assert.equal(by.a.user_id, 'u-42');
  assert.equal(by.b.user_id, undefined);
  assert.equal(by.pageview.user_id, undefined);
});

test('outbound links and downloads are recorded, unless links="off"', () => {
  const p = page();
  for (const id of ['out', 'pdf', 'in']) p.d.getElementById(id).dispatchEvent(new p.w.MouseEvent('click', { bubbles: true }));
  p.hide();
  assert.deepEqual(p.sent.filter((e) => e.name !== 'pageview').map((e) => [e.name, e.props.url]), [
    ['outbound_link', 'https://elsewhere.example/x'],
    ['file_download', 'https://shop.example/files/menu.pdf'],
  ]);
  const off = page({ data: { links: 'off' } });
  off.d.getElementById('out').dispatchEvent(new off.w.MouseEvent('click', { bubbles: true }));
  off.hide();
  assert.deepEqual(off.names(), ['pageview']);
});

test('scroll depth and engaged time are sent when the page is hidden', async () => {
  const p = page();
  p.d.hasFocus = () => true;
  Object.defineProperty(p.d.documentElement, 'scrollHeight', { configurable: true, value: 4000 });
  p.w.dispatchEvent(new p.w.Event('focus'));
  const set = (k, v) => Object.defineProperty(p.w, k, { configurable: true, value: v });
  set('innerHeight', 1000);
  set('scrollY', 2000);
  p.w.dispatchEvent(new p.w.Event('scroll'));
  set('scrollY', 500);
  p.w.dispatchEvent(new p.w.Event('scroll'));
  await sleep(1200);
  p.hide();
  const e = p.sent.find((x) => x.name === '$engagement');
  assert.ok(e, JSON.stringify(p.sent));
  assert.equal(e.props.scroll, 75, 'the deepest point: (2000 + 1000) / 4000');
  assert.ok(e.props.seconds >= 1 && e.props.seconds <= 3, `${e.props.seconds}`);
  assert.equal(e.url, 'https://shop.example/');
});

test('variants are sticky per visitor, follow the weights and record an exposure', () => {
  const storage = { ff_id: 'visitor-1' };
  const a = page({ storage }), b = page({ storage });
  const va = a.w.footfall.variant('checkout-button', ['control', 'green']);
  assert.equal(b.w.footfall.variant('checkout-button', ['control', 'green']), va, 'same visitor, same variant');
  assert.equal(a.w.footfall.variant('x', ['a', 'b', 'c'], [0, 0, 1]), 'c');
  assert.equal(a.w.footfall.variant('x', ['a', 'b', 'c'], [1, 0, 0]), 'a');
  a.hide();
  const exp = a.sent.find((e) => e.name === '$exposure');
  assert.deepEqual(exp.props, { experiment: 'checkout-button', variant: va });
  // Over many visitors, a 50/50 split is about even.
  const counts = { control: 0, green: 0 };
  for (let i = 0; i < 400; i++) counts[page({ storage: { ff_id: `v${i}` } }).w.footfall.variant('t', ['control', 'green'])]++;
  assert.ok(counts.control > 150 && counts.green > 150, JSON.stringify(counts));
});

test('consent turns on a first-party id and sessions; withdrawing it removes them', () => {
  const p = page();
  p.w.footfall('consent', true);
  p.w.footfall('event', 'a');
  const id = p.w.localStorage.getItem('ff_id');
  assert.ok(id);
  p.w.footfall('consent', false);
  p.w.footfall('event', 'b');
  p.hide();
  const by = Object.fromEntries(p.sent.map((e) => [e.name, e]));
  assert.equal(by.a.visitor_id, id);
  assert.equal(by.b.visitor_id, undefined);
  assert.equal(p.w.localStorage.length, 0);
});

test('after consent, the same first-party id on every page (the server makes the 30-minute sessions)', () => {
  const a = page({ storage: { ff_id: 'v-1' } });
  const b = page({ storage: { ff_id: 'v-1' } });
  a.hide();
  b.hide();
  assert.deepEqual([a.sent[0].visitor_id, b.sent[0].visitor_id], ['v-1', 'v-1']);
  assert.equal(a.sent[0].session_id, undefined);
});

test('Do-Not-Track and Global Privacy Control: nothing, or cookieless only', () => {
  for (const nav of [{ doNotTrack: '1' }, { globalPrivacyControl: true }]) {
    const p = page({ nav });
    p.w.footfall('event', 'x');
    p.hide();
    assert.deepEqual(p.sent, [], JSON.stringify(nav));
    assert.ok(['control', 'green'].includes(p.w.footfall.variant('t', ['control', 'green'])));
    const c = page({ nav, data: { dnt: 'cookieless' } });
    c.w.footfall('consent', true);
    c.w.footfall('event', 'x');
    c.hide();
    assert.deepEqual(c.names(), ['pageview', 'x']);
    assert.equal(c.sent[1].visitor_id, undefined);
    assert.equal(c.w.localStorage.length, 0);
  }
});

test('batching: ten events go at once, fewer after a short idle, the rest on pagehide', async () => {
  const p = page();
  for (let i = 0; i < 9; i++) p.w.footfall('event', `e${i}`);
  assert.equal(p.posts.length, 1, 'pageview + 9 events = 10: sent at once');
  assert.equal(p.posts[0].events.length, 10);
  p.w.footfall('event', 'late');
  assert.equal(p.posts.length, 1);
  await sleep(1300);
  assert.equal(p.posts.length, 2, 'sent after the idle delay');
  p.w.footfall('event', 'last');
  p.d.dispatchEvent(new p.w.Event('visibilitychange'));
  Object.defineProperty(p.d, 'hidden', { configurable: true, value: true });
  p.d.dispatchEvent(new p.w.Event('visibilitychange'));
  assert.deepEqual(p.posts.at(-1).events.map((e) => e.name).filter((n) => n !== '$engagement'), ['last']);
});

test('without sendBeacon, fetch keepalive; failed sends are retried with the same ids', async () => {
  let fails = 1;
  const p = page({
    beacon: false,
    fetchOk: async (u, o, record) => {
      assert.equal(o.keepalive, true);
      assert.equal(o.method, 'POST');
      if (fails-- > 0) return { status: 503 };
      record('fetch', o.body);
      return { status: 202 };
    },
  });
  let first;
  p.w.fetch = ((f) => async (u, o) => ((first ??= JSON.parse(o.body)), f(u, o)))(p.w.fetch);
  p.hide();
  await sleep(1500);
  assert.deepEqual(p.names(), ['pageview']);
  assert.equal(p.sent[0].event_id, first[0].event_id, 'the retry reuses the event id');
  // A full beacon queue (sendBeacon returns false) falls back to fetch.
  const q = page({ beacon: () => false });
  q.hide();
  assert.equal(q.posts[0].kind, 'fetch');
});

test('each event carries its client time and each send its send time, renewed on a retry', async () => {
  let fails = 1;
  const bodies = [];
  const p = page({
    beacon: false,
    fetchOk: async (u, o, record) => {
      bodies.push(JSON.parse(o.body));
      if (fails-- > 0) return { status: 503 };
      record('fetch', o.body);
      return { status: 202 };
    },
  });
  await sleep(200);
  p.w.footfall('event', 'later');
  p.hide();
  await sleep(1500);
  const [first, retry] = bodies;
  assert.deepEqual(retry.map((e) => e.name), ['pageview', 'later']);
  const [pv, later] = first;
  assert.ok(Number.isInteger(pv.timestamp) && Number.isInteger(later.timestamp), 'milliseconds since the epoch');
  assert.ok(later.timestamp - pv.timestamp >= 200, 'each event keeps the time it happened');
  // The server takes a request's latest sent_at: the first event carries it.
  assert.ok(pv.sent_at >= later.timestamp, 'sent after both happened');
  assert.equal(later.sent_at, undefined);
  assert.deepEqual(retry.map((e) => e.timestamp), [pv.timestamp, later.timestamp], 'a retry keeps the event times');
  // Node's timers run on a monotonic clock rounded to the millisecond and Date.now() is the wall
  // clock: a 1,000 ms timer can end 999 ms later by Date.now() (seen once in CI, under load). A
  // re-stamp is all this checks: the first send's stamp again would be 0 ms later.
  assert.ok(retry[0].sent_at >= pv.sent_at + 990, `and says when it was sent again (after the 1 s backoff): ${retry[0].sent_at - pv.sent_at} ms`);
});

test('after consent, unsent events wait in localStorage for the next page', async () => {
  const p = page({ storage: { ff_id: 'v' }, beacon: false, fetchOk: false });
  p.hide();
  await sleep(50);
  const kept = JSON.parse(p.w.localStorage.getItem('ff_q'));
  assert.deepEqual(kept.map((e) => e.name), ['pageview']);
  const next = page({ storage: { ff_id: 'v', ff_q: JSON.stringify(kept) } });
  await sleep(1200);
  assert.ok(next.sent.some((e) => e.event_id === kept[0].event_id), 'resent on the next page');
});

test('prerendered pages count when shown; back/forward-cache restores count again', () => {
  const before = "Object.defineProperty(document,'prerendering',{configurable:true,value:true})";
  const p = page({ before });
  assert.deepEqual(p.names(), []);
  Object.defineProperty(p.d, 'prerendering', { configurable: true, value: false });
  p.d.dispatchEvent(new p.w.Event('prerenderingchange'));
  p.hide();
  assert.deepEqual(p.names(), ['pageview']);
  const e = new p.w.Event('pageshow');
  e.persisted = true;
  p.w.dispatchEvent(e);
  p.hide();
  assert.deepEqual(p.names(), ['pageview', 'pageview']);
});

// The click add-on (h.js): embedded after the snippet, it sends `$click` through it.
const HEAT = readFileSync(new URL('../dist/h.js', import.meta.url), 'utf8');
const SHOP = `<header id="top"><nav><a href="/mugs">Mugs</a><a href="/teapots">Teapots</a></nav></header>
<main><section><div><div><p>Our <b>finest</b> mug <span class="note">secret-text</span></p></div></div></section>
<button data-heatmap="add-to-cart"><span>Add</span> to cart</button>
<img id="photo" src="mug.png" alt="A mug">
<form><input id="email" name="email" value="alice@example.com"><input type="password" value="hunter2"></form>
<div data-user="bob@example.com" aria-label="Bob's basket" title="private"><i>basket</i></div></main>`;

/** A shop page with the snippet and the add-on; element boxes are laid out by `boxes` (selector → [left, top, width, height]). */
function heatPage(opts = {}, boxes = {}) {
  const p = page({ body: SHOP, after: [['https://stats.example/h.js', HEAT]], ...opts });
  const d = p.d;
  for (const [sel, [left, top, width, height]] of Object.entries(boxes)) {
    d.querySelector(sel).getBoundingClientRect = () => ({ left, top, width, height, right: left + width, bottom: top + height, x: left, y: top });
  }
  Object.defineProperty(d.documentElement, 'scrollWidth', { configurable: true, value: 1000 });
  p.click = (sel, x = 0, y = 0) => {
    const e = new p.w.MouseEvent('click', { bubbles: true, cancelable: true, clientX: x, clientY: y });
    Object.defineProperty(e, 'pageX', { value: x });
    Object.defineProperty(e, 'pageY', { value: y + 200 });
    d.querySelector(sel).dispatchEvent(e);
  };
  p.clicks = () => p.sent.filter((e) => e.name === '$click');
  return p;
}

test('h.js is within its budget (the core snippet is unchanged)', () => {
  const size = gzipSize(HEAT);
  console.log(`dist/h.js: ${HEAT.length} bytes, ${size} bytes gzip -9 (budget ${budgets()['h.js']})`);
  assert.ok(budgets()['h.js'] <= 1000, 'the add-on may have at most 1,000 bytes gzip');
  assert.ok(size <= budgets()['h.js'], `${size} bytes gzip > budget ${budgets()['h.js']}`);
});

test('clicks: a stable selector, the position in the element and on the page, the viewport class', async () => {
  const p = heatPage({}, { '#photo': [100, 50, 200, 100], '[data-heatmap]': [400, 0, 100, 40], 'b': [10, 10, 40, 20], 'nav a:nth-of-type(2)': [60, 0, 50, 20] });
  p.w.innerWidth = 1280;
  const at = Date.now();
  p.click('#photo', 150, 75); // a quarter across, a quarter down
  p.click('[data-heatmap] span', 450, 30); // inside the button: the button is what was clicked
  p.click('b', 20, 15);
  p.click('nav a:nth-of-type(2)', 70, 5);
  await sleep(1200);
  p.hide();
  const [photo, button, bold, link] = p.clicks();
  assert.deepEqual(photo.props, { selector: '#photo', ex: 0.25, ey: 0.25, x: 0.15, y: 275, vw: 'desktop', dead: true });
  // Sent a second later (once it is known to be dead or not), stamped when it happened.
  assert.ok(photo.timestamp >= at && photo.timestamp < at + 100, `${photo.timestamp - at} ms after the click`);
  assert.equal(button.props.selector, '[data-heatmap="add-to-cart"]');
  assert.deepEqual([button.props.ex, button.props.ey], [0.5, 0.75]);
  // No id nor data-heatmap on the way up: at most four tag:nth-of-type steps.
  assert.equal(bold.props.selector, 'section:nth-of-type(1)>div:nth-of-type(1)>div:nth-of-type(1)>p:nth-of-type(1)>b:nth-of-type(1)'.split('>').slice(-4).join('>'));
  // From the nearest ancestor with an id.
  assert.equal(link.props.selector, '#top>nav:nth-of-type(1)>a:nth-of-type(2)');
  // Each selector finds the element that was clicked, and the same click gives the same selector.
  for (const [e, sel] of [[photo, '#photo'], [button, '[data-heatmap]'], [link, 'nav a:nth-of-type(2)']]) {
    assert.equal(p.d.querySelector(e.props.selector), p.d.querySelector(sel));
  }
  p.click('nav a:nth-of-type(2)', 70, 5);
  await sleep(1200);
  p.hide();
  assert.equal(p.clicks()[4].props.selector, link.props.selector);
  // The viewport class.
  for (const [width, vw] of [[390, 'mobile'], [800, 'tablet'], [1024, 'desktop']]) {
    const q = heatPage({}, { '#photo': [0, 0, 10, 10] });
    q.w.innerWidth = width;
    q.click('#photo', 1, 1);
    await sleep(1100);
    q.hide();
    assert.equal(q.clicks()[0].props.vw, vw);
  }
});

test('rage clicks: the third click within 1 s and 30 px, once per burst', async () => {
  const p = heatPage({}, { '#photo': [0, 0, 300, 300] });
  for (let i = 0; i < 5; i++) p.click('#photo', 100 + i * 3, 100);
  await sleep(1200);
  // Far apart: no rage.
  p.click('#photo', 10, 10);
  p.click('#photo', 100, 100);
  p.click('#photo', 200, 200);
  await sleep(1200);
  // Slow: no rage.
  for (let i = 0; i < 3; i++) {
    p.click('#photo', 50, 50);
    await sleep(550);
  }
  await sleep(1100);
  p.hide();
  const rage = p.clicks().map((e) => e.props.rage === true);
  assert.deepEqual(rage, [false, false, true, false, false, false, false, false, false, false, false]);
});

test('dead clicks: nothing followed within 1 s; a DOM change, a focus change or leaving the page is not dead', async () => {
  const boxes = { '#photo': [0, 0, 10, 10], '[data-heatmap]': [0, 0, 10, 10], '#email': [0, 0, 10, 10], 'nav a': [0, 0, 10, 10] };
  const p = heatPage({}, boxes);
  const button = p.d.querySelector('[data-heatmap]');
  button.addEventListener('click', () => (button.dataset.added = '1'));
  p.d.querySelector('#photo').addEventListener('click', () => setTimeout(() => p.d.querySelector('#email').focus(), 100));
  p.click('[data-heatmap]'); // changes the DOM
  p.click('#photo'); // moves the focus
  await sleep(1200);
  p.click('#email'); // nothing happens
  await sleep(1200);
  p.click('nav a'); // the page is left before the second is over: sent at once, not dead
  p.w.dispatchEvent(new p.w.Event('beforeunload'));
  p.hide();
  assert.deepEqual(p.clicks().map((e) => [e.props.selector, e.props.dead === true]), [
    ['[data-heatmap="add-to-cart"]', false],
    ['#photo', false],
    ['#email', true],
    ['#top>nav:nth-of-type(1)>a:nth-of-type(1)', false],
  ]);
});

test('privacy: no text, no input values, no other attributes ever leave the page', async () => {
  const boxes = Object.fromEntries(['.note', '#email', 'input[type=password]', '[data-user] i', 'b'].map((s) => [s, [0, 0, 10, 10]]));
  const p = heatPage({}, boxes);
  for (const s of Object.keys(boxes)) p.click(s, 5, 5);
  await sleep(1200);
  p.hide();
  assert.equal(p.clicks().length, 5);
  const all = JSON.stringify(p.sent);
  for (const secret of ['secret-text', 'finest', 'alice@example.com', 'hunter2', 'bob@example.com', "Bob's basket", 'private', 'basket', 'note', 'password', 'mug.png']) {
    assert.ok(!all.includes(secret), `${secret} was sent`);
  }
  for (const e of p.clicks()) {
    assert.deepEqual(Object.keys(e.props).filter((k) => !['selector', 'ex', 'ey', 'x', 'y', 'vw', 'rage', 'dead'].includes(k)), []);
    assert.match(e.props.selector, /^(#[a-z][\w-]*|\[data-heatmap="[\w-]+"\]|[a-z0-9]+:nth-of-type\(\d+\))(>[a-z0-9]+:nth-of-type\(\d+\))*$/i);
  }
});

test('clicks honour consent, Do-Not-Track, Global Privacy Control and data-dnt like every event', async () => {
  const box = { '#photo': [0, 0, 10, 10] };
  for (const nav of [{ doNotTrack: '1' }, { globalPrivacyControl: true }]) {
    const off = heatPage({ nav }, box);
    off.click('#photo');
    await sleep(1100);
    off.hide();
    assert.deepEqual(off.sent, [], 'nothing at all');
    const cookieless = heatPage({ nav, data: { dnt: 'cookieless' } }, box);
    cookieless.w.footfall('consent', true);
    cookieless.click('#photo');
    await sleep(1100);
    cookieless.hide();
    assert.equal(cookieless.clicks().length, 1);
    assert.equal(cookieless.clicks()[0].visitor_id, undefined);
  }
  const p = heatPage({}, box);
  p.click('#photo');
  await sleep(1100);
  p.w.footfall('consent', true);
  p.click('#photo');
  await sleep(1100);
  p.hide();
  assert.deepEqual(p.clicks().map((e) => typeof e.visitor_id), ['undefined', 'string']);
});

test('a page opened with #footfall-heatmap=<key> loads the overlay with the key and tracks no clicks', async () => {
  const p = heatPage({ url: 'https://shop.example/mugs#footfall-heatmap=ffv_abc123' }, { '#photo': [0, 0, 10, 10] });
  const o = [...p.d.querySelectorAll('script')].find((s) => s.src.endsWith('/o.js'));
  assert.equal(o?.src, 'https://stats.example/o.js');
  assert.equal(o.dataset.key, 'ffv_abc123');
  p.click('#photo');
  await sleep(1100);
  p.hide();
  assert.deepEqual(p.clicks(), []);
  // The key is in the fragment, which pageviews leave out.
  assert.ok(!JSON.stringify(p.sent).includes('ffv_abc123'));
});
