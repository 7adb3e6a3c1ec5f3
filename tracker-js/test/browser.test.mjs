// End to end in a real browser: Debian's Chromium (never downloaded) driven by playwright-core
// visits a test shop that embeds the snippet served by a real footfall, then the stored events
// are read back with `footfall query`. Needs FOOTFALL_BIN (the footfall binary) and
// /usr/bin/chromium (`apt-get install -y chromium`). Run: npm run test:browser.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { BIN, UA, start } from './serve.mjs';

let ff, shopUrl, browser, data, stop;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const pageHtml = (body, attrs = '') => `<!doctype html><html><head><title>Tea shop</title>
<script>window.footfall=window.footfall||function(){(footfall.q=footfall.q||[]).push(arguments)};footfall('event','early',{from:'stub'})</script>
<script defer src="${ff}/f.js" data-site="default" ${attrs}></script></head><body>${body}</body></html>`;

const SHOP = `<h1>Tea shop</h1>
<button id="to-product" onclick="history.pushState({}, '', '/products/mug-1')">Mug</button>
<a id="out" href="https://teablog.example/brewing" onclick="event.preventDefault()">blog</a>
<button id="view" onclick="footfall('product_view', {items: [{id: 'mug-1', name: 'Mug', price: 12.5, quantity: 1}]})">view</button>
<button id="add" onclick="footfall('add_to_cart', {items: [{id: 'mug-1', price: 12.5, quantity: 2}], revenue: 25, currency: 'EUR'})">add</button>
<button id="buy" onclick="footfall('purchase', {order_id: 'o-77', revenue: 25, currency: 'EUR', items: [{id: 'mug-1', price: 12.5, quantity: 2}]})">buy</button>
<button id="variant" onclick="document.title = footfall.variant('checkout-button', ['control', 'green'])">variant</button>`;

before(async () => {
  ({ ff, shopUrl, browser, data, stop } = await start({
    page: (req) => pageHtml(SHOP, req.url.startsWith('/cookieless') ? 'data-dnt="cookieless"' : ''),
  }));
});

after(() => stop?.());

/** Stored events matching `where`, once `n` of them are there (the flusher runs every 0.2 s; up to 30 s under load). */
async function stored(where, n) {
  const sql = `SELECT name, CAST(ts AS BIGINT) AS us, path, referrer, order_id, CAST(revenue AS DOUBLE) AS revenue, visitor_id, props['experiment'] AS experiment, props['variant'] AS variant, props['url'] AS link, props['from'] AS origin FROM events WHERE ${where} ORDER BY ts, name`;
  for (let i = 0; i < 150; i++) {
    const rows = JSON.parse(execFileSync(BIN, ['query', '--data', data, '--format', 'json', sql], { encoding: 'utf8' }) || '[]');
    if (rows.length >= n) {
      await sleep(500);
      return JSON.parse(execFileSync(BIN, ['query', '--data', data, '--format', 'json', sql], { encoding: 'utf8' }) || '[]');
    }
    await sleep(200);
  }
  throw new Error(`fewer than ${n} events stored for ${where}`);
}

test('the snippet is served with an ETag and revalidates', async () => {
  const r = await fetch(`${ff}/f.js`);
  assert.equal(r.status, 200);
  assert.match(r.headers.get('content-type'), /javascript/);
  const etag = r.headers.get('etag');
  assert.ok(etag);
  assert.equal((await fetch(`${ff}/f.js`, { headers: { 'if-none-match': etag } })).status, 304);
});

test('a visit in Chromium: pages, SPA navigation, outbound link, product, cart, one purchase', async () => {
  const ctx = await browser.newContext({ userAgent: UA });
  const page = await ctx.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(e));
  await page.goto(`${shopUrl}/`);
  await page.waitForFunction(() => typeof window.footfall.variant === 'function');
  await page.click('#to-product');
  await page.click('#out');
  await page.click('#view');
  await page.click('#add');
  await page.click('#buy');
  await page.click('#buy'); // the same order again: stored once
  await page.click('#variant');
  const variant = await page.title();
  // Closing the page fires pagehide, which sends the last batch. Wait until the page is gone,
  // and keep the browser context open until the events are stored: closing it at once can
  // cancel the beacon in flight.
  const closed = new Promise((r) => page.once('close', r));
  await page.close({ runBeforeUnload: true });
  await closed;
  assert.deepEqual(errors, []);
  const rows = (await stored("name <> '$engagement' AND path NOT LIKE '/timing%' AND path NOT LIKE '/cookieless%' AND path NOT LIKE '/gpc%'", 8)).map((r) => ({ ...r, visitor_id: undefined, us: undefined }));
  await ctx.close();
  // Stored in the order they happened: each event carries its own time, ties keep the batch's order.
  const clean = (r) => JSON.stringify(Object.fromEntries(Object.entries(r).filter(([, v]) => v !== null && v !== undefined).sort()));
  assert.deepEqual(rows.map(clean), [
    { name: 'early', path: '/', origin: 'stub' },
    { name: 'pageview', path: '/' },
    { name: 'pageview', path: '/products/mug-1', referrer: `${shopUrl}/` },
    { name: 'outbound_link', path: '/products/mug-1', link: 'https://teablog.example/brewing' },
    { name: 'product_view', path: '/products/mug-1' },
    { name: 'add_to_cart', path: '/products/mug-1', revenue: 25 },
    { name: 'purchase', path: '/products/mug-1', order_id: 'o-77', revenue: 25 },
    { name: '$exposure', path: '/products/mug-1', experiment: 'checkout-button', variant },
  ].map(clean));
});

test('events batched together are stored at the times they happened, in order, with their real gaps', async () => {
  const ctx = await browser.newContext({ userAgent: UA });
  const page = await ctx.newPage();
  await page.goto(`${shopUrl}/timing/products/mug-1`);
  await page.waitForFunction(() => typeof window.footfall.variant === 'function');
  // A product view, a client-side move to the cart, an add to cart and a purchase, with gaps
  // under the snippet's 1 s batching delay: all four travel in one request, sent about a
  // second after the last of them. Each action is bracketed by the page's clock, [before,
  // after]: the snippet stamps its event in between.
  const at = await page.evaluate(async () => {
    const wait = (ms) => new Promise((r) => setTimeout(r, ms));
    const items = [{ id: 'mug-1', price: 12.5, quantity: 1 }];
    const at = [];
    const act = (f) => {
      const before = Date.now();
      f();
      at.push([before, Date.now()]);
    };
    act(() => footfall('product_view', { items }));
    await wait(300);
    act(() => history.pushState({}, '', '/timing/cart'));
    await wait(450);
    act(() => footfall('add_to_cart', { items }));
    await wait(200);
    act(() => footfall('purchase', { order_id: 'o-timing', revenue: 12.5, currency: 'EUR', items }));
    return at;
  });
  // Wait for the idle flush (1 s after the purchase) instead of closing the page.
  const rows = (await stored("path LIKE '/timing/%' AND name <> '$engagement' AND NOT (name = 'pageview' AND path = '/timing/products/mug-1')", 4)).filter((r) => r.name !== 'early');
  await ctx.close();
  assert.deepEqual(rows.map((r) => `${r.name} ${r.path}`), ['product_view /timing/products/mug-1', 'pageview /timing/cart', 'add_to_cart /timing/cart', 'purchase /timing/cart']);
  const ms = rows.map((r) => r.us / 1000);
  // The gaps between stored times are the page's own gaps: each lies between the least and the
  // most the brackets allow (a tie would be moved by 1 µs). Before, a request's events all had
  // its receive time: gaps of 0.
  const real = at.slice(1).map(([before, after], i) => [before - at[i][1], after - at[i][0]]);
  const gaps = ms.slice(1).map((x, i) => x - ms[i]);
  for (const [i, g] of gaps.entries()) assert.ok(g >= real[i][0] - 0.01 && g <= real[i][1] + 0.01, `stored gaps ${gaps} vs the page's ${JSON.stringify(real)}`);
  assert.ok(gaps[0] >= 300 && gaps[1] >= 450 && gaps[2] >= 200, `stored gaps ${gaps}`);
  // Browser and server share this machine's clock: each event is stored at the time it happened
  // (give or take the request's transit), not when the batch arrived a second or more later.
  for (const [i, [before, after]] of at.entries()) assert.ok(ms[i] > before - 250 && ms[i] < after + 250, `event ${i} stored at ${ms[i]}, happened in [${before}, ${after}]`);
});

test('with Global Privacy Control: nothing by default, cookieless events when configured', async () => {
  const ctx = await browser.newContext({ userAgent: UA });
  await ctx.addInitScript(() => Object.defineProperty(navigator, 'globalPrivacyControl', { value: true }));
  for (const path of ['/gpc', '/cookieless']) {
    const page = await ctx.newPage();
    await page.goto(`${shopUrl}${path}`);
    await page.waitForFunction(() => typeof window.footfall.variant === 'function');
    await page.evaluate(() => footfall('consent', true));
    await page.click('#view');
    const stored = await page.evaluate(() => Object.keys(localStorage));
    assert.deepEqual(stored, [], 'nothing is kept in the browser');
    const closed = new Promise((r) => page.once('close', r));
    await page.close({ runBeforeUnload: true });
    await closed;
  }
  const rows = await stored("path LIKE '/cookieless%' OR path LIKE '/gpc%'", 3);
  await ctx.close();
  assert.deepEqual(rows.map((r) => `${r.name} ${r.path}`).sort(), ['early /cookieless', 'pageview /cookieless', 'product_view /cookieless']);
  assert.ok(rows.every((r) => r.visitor_id && !r.visitor_id.includes('.')), 'visitor ids are the server-derived ones');
});
