// The click add-on end to end in Chromium: a fixture shop page embeds the snippet and h.js served
// by a footfall this test starts; the test clicks specific elements (a rage burst and dead clicks
// among them), scrolls, leaves and comes back, then reads the heatmap report over HTTP and checks
// its counts, grid cells and scroll bands exactly against what it did; then it opens the page with
// #footfall-heatmap=<share key> and screenshots the overlay (screenshots/heatmap-overlay.png).
// Needs FOOTFALL_BIN and /usr/bin/chromium. Run: node --test test/heatmap.test.mjs
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { BIN, UA, start } from './serve.mjs';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
let ff, shopUrl, browser, data, stop, readKey;

// A 3,000 px tall page with elements at fixed places (body margin 0).
const box = (l, t, w, h) => `position:absolute;box-sizing:border-box;left:${l}px;top:${t}px;width:${w}px;height:${h}px`;
const PAGE = (ff) => `<!doctype html><html><head><title>Mug</title>
<script defer src="${ff}/f.js" data-site="shop"></script><script defer src="${ff}/h.js"></script>
<style>body{margin:0;height:3000px;position:relative;font:16px sans-serif}</style></head><body>
<h1 style="${box(20, 0, 600, 60)};margin:0">The red mug</h1>
<button id="buy" style="${box(100, 100, 200, 50)}" onclick="document.getElementById('cart').textContent='1 in the cart'">Add to cart</button>
<div id="cart" style="${box(400, 100, 200, 50)}"></div>
<div data-heatmap="promo" style="${box(600, 300, 400, 100)};background:#fc6">Winter sale</div>
<button id="size" style="${box(100, 400, 100, 40)}">Size guide</button>
<details id="terms" style="${box(500, 2000, 400, 60)}"><summary>Delivery terms</summary>3 to 5 days</details>
</body></html>`;

before(async () => {
  ({ ff, shopUrl, browser, data, stop } = await start({
    prepare: (dir) => {
      const added = execFileSync(BIN, ['site', 'add', 'shop', '--domain', '127.0.0.1', '--data', dir], { encoding: 'utf8' });
      readKey = added.match(/read key: +(\S+)/)[1];
    },
    page: (req, ff) => PAGE(ff),
    args: ['--predict-interval', '0'],
  }));
});

after(() => stop?.());

const today = () => new Date().toISOString().slice(0, 10);
const report = async (body, key = readKey) => {
  const r = await fetch(`${ff}/api/reports/heatmap`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ site: 'shop', date_range: { from: today(), to: today() }, ...body }),
  });
  const j = await r.json();
  assert.equal(r.status, 200, JSON.stringify(j));
  return j;
};

/** The report once `clicks` clicks and `measured` engagement reports of /mug are stored (the flusher runs every 0.2 s). */
async function settled(clicks, measured) {
  let r;
  for (let i = 0; i < 50; i++) {
    r = await report({ page: '/mug' });
    if (r.totals.clicks >= clicks && r.scroll.measured >= measured && r.scroll.views >= 3) return r;
    await sleep(200);
  }
  const rows = execFileSync(BIN, ['query', '--data', data, '--format', 'json', "SELECT name, path, CAST(ts AS BIGINT) AS us, props FROM events ORDER BY ts"], { encoding: 'utf8' });
  throw new Error(`${rows}\nfewer than ${clicks} clicks or ${measured} engagement reports stored: ${JSON.stringify({ ...r, sql: undefined })}`);
}

test('clicks, a rage burst, dead clicks and scrolling in Chromium, then the report, exactly; then the overlay', async () => {
  const ctx = await browser.newContext({ userAgent: UA, viewport: { width: 1280, height: 800 } });
  const errors = [];
  // Each view is a page of its own, closed (pagehide sends the last batch) with the context kept
  // open until the events are stored. (Headless Chromium drops a cross-origin beacon sent from
  // pagehide while navigating to the next page; closing the page does not.)
  const view = async () => {
    const page = await ctx.newPage();
    page.on('pageerror', (e) => errors.push(e));
    await page.goto(`${shopUrl}/mug`);
    await page.waitForFunction(() => typeof window.footfall === 'function');
    return page;
  };
  const leave = async (page) => {
    const closed = new Promise((r) => page.once('close', r));
    await page.close({ runBeforeUnload: true });
    await closed;
  };
  // View 1: four kinds of click, a scroll to 1,600 px (the deepest point 2,400 of 3,000: 80%).
  const page = await view();
  const width = await page.evaluate(() => document.documentElement.scrollWidth);
  await page.mouse.click(150, 110); // #buy, a quarter across and a fifth down: changes the page
  await page.mouse.click(800, 350); // the promo: nothing happens (dead)
  await sleep(1300);
  for (const x of [120, 122, 124, 126]) await page.mouse.click(x, 410); // #size four times at once: one rage burst, all dead
  await sleep(1300); // nothing happens for a second: the #size clicks are dead
  await page.evaluate(() => window.scrollTo(0, 1600));
  await page.mouse.click(700, 408); // #terms' summary at 2,008 px: opens it
  await sleep(1300); // the last click's second passes
  await leave(page);
  // View 2: no scroll (800 of 3,000 px: 26%); view 3: left at once (no engagement report).
  const second = await view();
  await sleep(1300);
  await leave(second);
  await leave(await view());

  const r = await settled(7, 2);
  assert.deepEqual(errors, []);
  assert.equal(r.page, '/mug');
  assert.deepEqual(r.pages, [{ page: '/mug', clicks: 7, rage_clicks: 1, dead_clicks: 5 }]);
  assert.deepEqual(r.totals, { clicks: 7, rage_clicks: 1, dead_clicks: 5 });
  const els = Object.fromEntries(r.elements.map((e) => [e.selector, [e.clicks, e.rage_clicks, e.dead_clicks, e.share]]));
  assert.deepEqual(els, {
    '#size': [4, 1, 4, 57.14],
    '#buy': [1, 0, 0, 14.29],
    '[data-heatmap="promo"]': [1, 0, 1, 14.29],
    '#terms>summary:nth-of-type(1)': [1, 0, 0, 14.29],
  });
  const buy = r.elements.find((e) => e.selector === '#buy');
  assert.deepEqual([buy.avg_x, buy.avg_y], [0.25, 0.2]);
  // Grid: 20 columns of the document's width, 50 px rows from the top.
  const cell = (x, y) => `${Math.floor((x / width) * 20)},${Math.floor(y / 50)}`;
  const want = {};
  for (const [x, y] of [[150, 110], [800, 350], [120, 410], [122, 410], [124, 410], [126, 410], [700, 2008]]) want[cell(x, y)] = (want[cell(x, y)] || 0) + 1;
  assert.deepEqual(Object.fromEntries(r.grid.cells.map((c) => [`${c.column},${c.row}`, c.clicks])), want);
  assert.equal(r.grid.max, 4);
  // Scroll map: three views; the first reached 80%, the second 26%, the third sent nothing.
  assert.deepEqual([r.scroll.views, r.scroll.measured, r.scroll.avg_depth], [3, 2, 53]);
  assert.deepEqual(
    r.scroll.bands.map((b) => [b.depth, b.views, b.share]),
    [[10, 2, 66.67], [20, 2, 66.67], [30, 1, 33.33], [40, 1, 33.33], [50, 1, 33.33], [60, 1, 33.33], [70, 1, 33.33], [80, 1, 33.33], [90, 0, 0], [100, 0, 0]],
  );
  // A viewport class nobody used: no clicks. (The scroll map goes by the browser's device class.)
  const phone = await report({ page: '/mug', device: 'mobile' });
  assert.deepEqual([phone.totals.clicks, phone.elements.length, phone.scroll.views], [0, 0, 0]);

  // The overlay on the live page, with a share link's key.
  const share = await fetch(`${ff}/api/sites/shop/shares`, {
    method: 'POST',
    headers: { authorization: `Bearer ${readKey}`, 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'heatmap' }),
  }).then((x) => x.json());
  assert.match(share.key, /^ffv_/);
  const owner = await ctx.newPage();
  await owner.goto(`${shopUrl}/mug#footfall-heatmap=${share.key}`);
  await owner.waitForSelector('#footfall-heat');
  const badges = await owner.$$eval('.ff-badge', (b) => b.map((x) => [x.dataset.selector, x.textContent]));
  assert.deepEqual(new Map(badges), new Map([
    ['#size', '4 clicks · 1 rage · 4 dead'],
    ['#buy', '1 click'],
    ['[data-heatmap="promo"]', '1 click · 1 dead'],
    ['#terms>summary:nth-of-type(1)', '1 click'],
  ]));
  const folds = await owner.$$eval('.ff-fold', (f) => f.map((x) => [x.dataset.depth, x.textContent]));
  assert.equal(folds.length, 10);
  assert.deepEqual(folds[4], ['50', '33.33% of views reach 50%']);
  assert.match(await owner.textContent('#footfall-heatmap-panel'), /\/mug · desktop · 7 clicks, 1 rage, 5 dead · 3 views/);
  // The heat layer has colour where the clicks were and none far from them.
  const px = (x, y) => owner.evaluate(([x, y]) => document.getElementById('footfall-heat').getContext('2d').getImageData(x, y, 1, 1).data[3], [x, y]);
  assert.ok((await px(120, 410)) > 0, 'heat at the rage burst');
  assert.equal(await px(1200, 1500), 0, 'no heat where nobody clicked');
  mkdirSync(new URL('../../screenshots/', import.meta.url), { recursive: true });
  await owner.screenshot({ path: new URL('../../screenshots/heatmap-overlay.png', import.meta.url).pathname });
  // Opening the overlay tracked no clicks (its pageview is the owner's visit, counted as any).
  const after = await report({ page: '/mug' });
  assert.equal(after.totals.clicks, 7);
  await ctx.close();
});
