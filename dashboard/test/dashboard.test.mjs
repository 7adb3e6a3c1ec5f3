// The dashboard in a real browser: Debian's Chromium (never downloaded) driven by
// playwright-core, against `footfall demo`. What is on screen is compared with what the report
// API answers for the same request. Needs FOOTFALL_BIN (the footfall binary) and
// /usr/bin/chromium (`apt-get install -y chromium`). Screenshots go to SCREENSHOTS_DIR
// (default: ../screenshots, which CI keeps). Run: npm test.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { chromium } from 'playwright-core';

const CHROMIUM = '/usr/bin/chromium';
const BIN = process.env.FOOTFALL_BIN;
const SHOTS = resolve(process.env.SCREENSHOTS_DIR || new URL('../../screenshots', import.meta.url).pathname);
let demo, url, key, admin, browser, data, readyLine;
const errors = [];

before(async () => {
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: apt-get install -y chromium (browsers are never downloaded)`);
  assert.ok(BIN && existsSync(BIN), 'set FOOTFALL_BIN to the footfall binary (cargo build)');
  mkdirSync(SHOTS, { recursive: true });
  data = mkdtempSync(join(tmpdir(), 'footfall-dashboard-'));
  rmSync(data, { recursive: true });
  // A smaller shop than the default demo: the tests run on a debug build (85,000 events, about
  // as many orders as 60,000 gave before the demo clicked: a third of its events are clicks).
  // --no-live: the demo's simulated live visitors would move the figures compared below.
  demo = spawn(BIN, ['demo', '--data', data, '--listen', '127.0.0.1:0', '--events', '85000', '--visitors', '9000', '--no-live'], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, RUST_LOG: 'warn' },
  });
  [url, key, admin] = await new Promise((resolve, reject) => {
    let out = '';
    demo.stdout.on('data', (b) => {
      out += b;
      const u = out.match(/dashboard: (http:\/\/[\d.:]+)\/#key=(\S+)/);
      const k = out.match(/read key: +(\S+)/);
      const a = out.match(/admin key: +(\S+)/);
      const l = out.match(/footfall listening on/);
      if (u && k && a && l) {
        readyLine = out.split('\n')[0];
        assert.equal(u[2], k[1], 'the dashboard URL carries the printed read key');
        resolve([u[1], k[1], a[1]]);
      }
    });
    demo.on('exit', (c) => reject(new Error(`footfall demo exited with ${c}`)));
  });
  console.log(readyLine);
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  });
});

after(async () => {
  await browser?.close();
  demo?.kill('SIGTERM');
  await new Promise((r) => (demo && demo.exitCode === null ? demo.on('exit', r) : r()));
  if (data) rmSync(data, { recursive: true, force: true });
});

// `refusals`: the page is expected to be refused (403, 401) by the server; Chromium logs each
// refused request as a console error, which is then not one of ours.
async function newPage(width = 1280, height = 900, { refusals = false } = {}) {
  const ctx = await browser.newContext({ viewport: { width, height }, timezoneId: 'UTC', acceptDownloads: true });
  const page = await ctx.newPage();
  page.on('console', (m) => {
    if (m.type() !== 'error') return;
    if (refusals && /^Failed to load resource: the server responded with a status of 40[13]/.test(m.text())) return;
    errors.push(`${width}px console: ${m.text()}`);
  });
  // Which request a refusal was: Chromium's console line does not say.
  page.on('response', (r) => {
    if (r.status() >= 400 && !(refusals && [401, 403].includes(r.status()))) {
      errors.push(`${width}px ${r.status()} ${r.request().method()} ${r.url().replace(url, '')} ${r.request().postData() || ''}`);
    }
  });
  page.on('pageerror', (e) => errors.push(`${width}px page error: ${e.message}`));
  return page;
}
const api = async (path, body, as = key) => {
  const r = await fetch(`${url}${path}`, { method: 'POST', headers: { authorization: `Bearer ${as}` }, body: JSON.stringify(body) });
  assert.equal(r.status, 200, `${path}: ${await r.clone().text()}`);
  return r.json();
};
const day = (n) => new Date(Date.now() + n * 86400000).toISOString().slice(0, 10);
const last30 = () => ({ site: 'shop', date_range: { from: day(-29), to: day(0) }, timezone: 'UTC' });
const ready = (page, sel) => page.waitForSelector(`${sel}[data-state=ready]`, { state: 'attached', timeout: 120000 });
const num = (page, sel) => page.$$eval(sel, (els) => els.map((e) => Number(e.dataset.value)));
async function overviewDone(page) {
  await ready(page, '#panel-overview');
  await ready(page, '#chart');
  await page.waitForFunction(() => document.querySelectorAll('#tables .top-table:not([data-state=ready])').length === 0, null, { timeout: 120000 });
}
const kpis = (page) => page.$$eval('.kpi', (els) => Object.fromEntries(els.map((e) => [e.dataset.metric, Number(e.querySelector('.value').dataset.value)])));

test('nothing is readable without a key; a wrong key is refused on the sign-in form', async () => {
  for (const path of ['/api/sites', '/api/reports/trends', '/api/sql']) {
    const r = await fetch(`${url}${path}`, { method: path === '/api/sites' ? 'GET' : 'POST', body: path === '/api/sites' ? undefined : '{}' });
    assert.equal(r.status, 401, path);
  }
  const ctx = await browser.newContext({ timezoneId: 'UTC' });
  const page = await ctx.newPage();
  await page.goto(`${url}/`);
  await page.waitForSelector('#login-key');
  assert.equal(await page.isVisible('#app'), false);
  await page.fill('#login-key', 'ffr_not_a_key');
  await page.press('#login-key', 'Enter');
  await page.waitForFunction(() => document.querySelector('#login-error').textContent.includes('refused'));
  assert.equal(await page.isVisible('#app'), false);
  // The right key signs in and is kept for the session (a reload stays signed in).
  await page.fill('#login-key', key);
  await page.press('#login-key', 'Enter');
  await page.waitForSelector('#app', { state: 'visible' });
  await page.reload();
  await page.waitForSelector('#app', { state: 'visible' });
  assert.equal(await page.evaluate(() => location.hash), '');
  await ctx.close();
});

test('overview numbers equal the report API, and a clicked row filters everything', async () => {
  const page = await newPage();
  await page.goto(`${url}/#key=${key}`);
  await overviewDone(page);
  const firstMs = Number(await page.evaluate(() => document.body.dataset.firstReportMs));
  console.log(`first report (the overview numbers) on screen ${firstMs} ms after navigation (debug build)`);
  assert.equal(await page.evaluate(() => location.hash), '', 'the key leaves the URL');

  const metrics = ['visitors', 'sessions', 'pageviews', 'bounce_rate', 'visit_duration', 'revenue', 'conversion_rate'];
  const want = await api('/api/reports/trends', { ...last30(), metrics, compare: true });
  const shown = await kpis(page);
  for (const m of metrics) assert.equal(shown[m], want.results[0].totals[m], m);
  assert.ok(shown.visitors > 1000 && shown.revenue > 0, JSON.stringify(shown));
  const text = await page.textContent('.kpi[data-metric=visitors] .value');
  assert.equal(text, want.results[0].totals.visitors.toLocaleString('en-US'));
  // Against the previous 30 days: a percent change for counts, points for rates.
  const [cur, prev] = [want.results[0].totals, want.previous.results[0].totals];
  const change = ((cur.visitors - prev.visitors) / prev.visitors) * 100;
  assert.match(await page.textContent('.kpi[data-metric=visitors] .delta'), new RegExp(`^${change >= 0 ? '↑' : '↓'} ${Math.abs(change).toFixed(0)}%`));
  const pts = cur.conversion_rate - prev.conversion_rate;
  assert.match(await page.textContent('.kpi[data-metric=conversion_rate] .delta'), new RegExp(`^${pts >= 0 ? '↑' : '↓'} ${Math.abs(pts).toFixed(1)} pts`));
  // The chart has a point per day, and the previous period is drawn too.
  assert.equal(await page.locator('#chart circle').count(), 30);
  assert.equal(await page.locator('#chart path.prev').count(), 1);

  // Top channels as the API ranks them.
  const channels = await api('/api/reports/trends', { ...last30(), metrics: ['visitors', 'revenue', 'conversion_rate'], breakdown: 'channel', series: false });
  const rows = await page.$$eval('#table-channel tbody tr', (trs) => trs.map((tr) => [tr.dataset.value, Number(tr.querySelector('[data-metric=visitors]').dataset.value)]));
  assert.deepEqual(rows, channels.results.map((r) => [r.value, r.totals.visitors]));
  for (const dim of ['page', 'entry_page', 'source', 'campaign', 'country', 'region', 'device', 'browser']) {
    assert.ok(await page.locator(`#table-${dim} tbody tr`).count() > 0, `${dim} table has rows`);
  }

  // Click "Email" in channels (with the keyboard): every number is now for e-mail visitors.
  await page.focus('#table-channel tr[data-value="Email"]');
  await page.keyboard.press('Enter');
  await page.waitForSelector('.chip');
  await overviewDone(page);
  assert.match(decodeURIComponent(page.url()), /filters=\[\{"dimension":"channel","op":"is","values":\["Email"\]\}\]/);
  const email = await api('/api/reports/trends', { ...last30(), metrics, filters: [{ dimension: 'channel', values: ['Email'] }] });
  const shownEmail = await kpis(page);
  for (const m of metrics) assert.equal(shownEmail[m], email.results[0].totals[m], `Email ${m}`);
  assert.ok(shownEmail.visitors < shown.visitors);
  // The URL is the view: opened elsewhere (a new tab signed in), it shows the same numbers.
  const shared = page.url();
  const other = await newPage();
  await other.goto(`${url}/#key=${key}`);
  await overviewDone(other);
  await other.goto(shared);
  await overviewDone(other);
  assert.deepEqual(await kpis(other), shownEmail);
  await other.context().close();
  await page.screenshot({ path: join(SHOTS, 'overview-filtered-1280.png'), fullPage: true });
  await page.context().close();
});

test('a 3-step funnel built on screen shows the API counts; retention, the experiment verdict and the SQL console work', async () => {
  const page = await newPage();
  await page.goto(`${url}/#key=${key}`);
  await overviewDone(page);
  await page.screenshot({ path: join(SHOTS, 'overview-1280.png'), fullPage: true });

  await page.click('#tab-funnel');
  await ready(page, '#funnel-result');
  // The default shop funnel has 4 steps: remove "checkout_start" to get 3, window 2 days.
  assert.equal(await page.locator('#steps li').count(), 4);
  await page.click('button[aria-label="Remove step 3"]');
  assert.deepEqual(await page.$$eval('.step-event', (s) => s.map((x) => x.value)), ['product_view', 'add_to_cart', 'purchase']);
  await page.fill('#window-value', '2');
  await page.click('#funnel-form button[type=submit]');
  await page.waitForFunction(() => document.querySelectorAll('.fstep').length === 3);
  await ready(page, '#funnel-result');
  const counts = await page.$$eval('.fstep', (els) => els.map((e) => Number(e.dataset.count)));
  const f = await api('/api/reports/funnel', {
    ...last30(), steps: [{ event: 'product_view' }, { event: 'add_to_cart' }, { event: 'purchase' }], window: { value: 2, unit: 'day' },
  });
  assert.deepEqual(counts, f.steps.map((s) => s.count));
  assert.ok(counts[0] > counts[1] && counts[1] > counts[2] && counts[2] > 0, String(counts));
  // Export the people who dropped at step 2.
  const [dl] = await Promise.all([page.waitForEvent('download'), page.click('.fstep[data-step="2"] .meta button')]);
  const csv = readFileSync(await dl.path(), 'utf8').trim().split('\n');
  assert.equal(csv[0], 'person_id');
  assert.equal(csv.length - 1, Math.min(10000, f.steps[1].dropped));
  await page.screenshot({ path: join(SHOTS, 'funnel-1280.png'), fullPage: true });

  await page.click('#tab-retention');
  await ready(page, '#retention-result');
  const cohorts = await page.locator('.heat tbody tr').count();
  assert.ok(cohorts >= 4, `${cohorts} weekly cohorts`);
  assert.equal(await page.textContent('.heat tbody tr:first-child td.cell'), '100.0%');
  await page.screenshot({ path: join(SHOTS, 'retention-1280.png'), fullPage: true });

  // The experiment the demo runs: the verdict and the figures on screen are the API's.
  await page.click('#tab-experiments');
  await ready(page, '#experiment-result');
  const exp = await api('/api/reports/experiment', { ...last30(), experiment: 'checkout-button', goal: { event: 'purchase' }, window: { value: 14, unit: 'day' } });
  assert.equal(await page.textContent('#verdict'), exp.verdict);
  assert.match(exp.verdict, /^(green wins|No clear winner yet)/, exp.verdict);
  const people = await page.$$eval('#experiment-result tbody tr', (trs) => trs.map((tr) => [tr.dataset.variant, tr.children[1].textContent]));
  assert.deepEqual(people, exp.variants.map((v) => [v.variant, v.people.toLocaleString('en-US')]));
  await page.screenshot({ path: join(SHOTS, 'experiments-1280.png'), fullPage: true });
  // The planner's inputs: a 20% change at 90% power needs the people per variant the report says.
  await page.fill('#exp-mde', '20');
  await page.fill('#exp-power', '90');
  await page.click('#experiment-form button[type=submit]');
  await page.waitForFunction(() => /20% change/.test(document.querySelector('#planner')?.textContent || ''), null, { timeout: 120000 });
  const plan = await api('/api/reports/experiment', { ...last30(), experiment: 'checkout-button', goal: { event: 'purchase' }, window: { value: 14, unit: 'day' }, mde: 0.2, power: 0.9 });
  assert.equal(Number(await page.getAttribute('#planner', 'data-people')), plan.planner.people_per_variant);
  assert.ok(plan.planner.people_per_variant < exp.planner.people_per_variant, 'a bigger change needs fewer people');

  // Segments: sizes as the API counts them; "Filter reports" narrows the overview to one.
  await page.click('#tab-segments');
  await ready(page, '#segments-result');
  const vip = await api('/api/reports/segment', { site: 'shop', definition: 'repeat_buyers', limit: 1 });
  await page.waitForSelector('tr[data-segment="repeat_buyers"] td.size[data-value]', { state: 'attached' });
  assert.equal(Number(await page.getAttribute('tr[data-segment="repeat_buyers"] td.size', 'data-value')), vip.size);
  assert.ok(vip.size > 0, 'the demo has repeat buyers');
  await page.screenshot({ path: join(SHOTS, 'segments-1280.png'), fullPage: true });
  await page.click('tr[data-segment="repeat_buyers"] button:has-text("Filter reports")');
  await overviewDone(page);
  const narrowed = await api('/api/reports/trends', { ...last30(), metrics: ['visitors'], segment: 'repeat_buyers' });
  assert.equal((await kpis(page)).visitors, narrowed.results[0].totals.visitors);
  await page.click('button[aria-label="Remove the segment"]');
  await overviewDone(page);

  await page.click('#tab-sql');
  await page.fill('#sql-text', "SELECT count(*) AS orders FROM events WHERE name = 'purchase'");
  await page.press('#sql-text', 'Control+Enter');
  await ready(page, '#sql-result');
  const [{ orders }] = await api('/api/sql', { sql: "SELECT count(*) AS orders FROM events WHERE name = 'purchase'" });
  assert.equal(await page.textContent('.sql-table tbody td'), String(orders));
  const [csvDl] = await Promise.all([page.waitForEvent('download'), page.click('#sql-csv')]);
  assert.equal(readFileSync(await csvDl.path(), 'utf8').trim(), `orders\n${orders}`);
  // A pattern aggregate in the console: each visitor's list of event times, as the API gives it.
  const pattern = "SELECT visitor_id, sequence_match_events('(?1)(?t<=1800)(?2)', ts, name = 'product_view', name = 'add_to_cart') AS viewed_and_added\nFROM events GROUP BY visitor_id\nHAVING sequence_match('(?1)(?t<=1800)(?2)', ts, name = 'product_view', name = 'add_to_cart')\nORDER BY visitor_id LIMIT 3";
  const want = await api('/api/sql', { sql: pattern });
  assert.equal(want.length, 3);
  assert.ok(want.every((r) => r.viewed_and_added.length === 2), JSON.stringify(want));
  await page.fill('#sql-text', pattern);
  await page.press('#sql-text', 'Control+Enter');
  await page.waitForFunction((v) => document.querySelector('#sql-result[data-state=ready] .sql-table tbody td')?.textContent === v, want[0].visitor_id, { timeout: 120000 });
  const cells = await page.$$eval('.sql-table tbody tr', (trs) => trs.map((tr) => [...tr.children].map((td) => td.textContent)));
  assert.deepEqual(cells, want.map((r) => [r.visitor_id, JSON.stringify(r.viewed_and_added)]));
  await page.fill('#sql-text', "SELECT count(*) AS orders FROM events WHERE name = 'purchase'");
  await page.press('#sql-text', 'Control+Enter');
  await page.waitForFunction((v) => document.querySelector('#sql-result[data-state=ready] .sql-table tbody td')?.textContent === v, String(orders), { timeout: 120000 });
  await page.screenshot({ path: join(SHOTS, 'sql-1280.png'), fullPage: true });
  await page.context().close();
});

test('works at 390 px: nothing wider than the screen, every panel renders', async () => {
  const page = await newPage(390, 844);
  await page.goto(`${url}/#key=${key}`);
  await overviewDone(page);
  const fits = () => page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth);
  assert.ok(await fits(), 'overview fits 390 px');
  await page.screenshot({ path: join(SHOTS, 'overview-390.png'), fullPage: true });
  for (const [tab, result] of [['ecommerce', 'shop-ltv'], ['acquisition', 'acquisition-result'], ['funnel', 'funnel-result'], ['retention', 'retention-result'],
    ['paths', 'paths-result'], ['lifecycle', 'lifecycle-result'], ['engagement', 'engagement-result'], ['heatmaps', 'heatmap-result'], ['live', 'live-result'], ['experiments', 'experiment-result'], ['segments', 'segments-result'], ['predictions', 'predict-pairs']]) {
    await page.click(`#tab-${tab}`);
    await page.waitForSelector(`#${result}:is([data-state=ready], [data-state=empty])`, { state: 'attached', timeout: 120000 });
    await page.waitForFunction((t) => !document.querySelector(`#panel-${t} [data-state=loading]`), tab, { timeout: 120000 });
    assert.ok(await fits(), `${tab} fits 390 px (wide tables scroll inside their card)`);
    await page.screenshot({ path: join(SHOTS, `${tab}-390.png`), fullPage: true });
  }
  // Tabs move with the arrow keys.
  await page.focus('#tab-experiments');
  await page.keyboard.press('ArrowRight');
  assert.equal(await page.getAttribute('#tab-segments', 'aria-selected'), 'true');
  await page.context().close();
});

// Settles a tab: its result boxes are neither loading nor absent.
async function settled(page, tab) {
  await page.waitForFunction((t) => {
    const boxes = [...document.querySelectorAll(`#panel-${t} [data-state]`)];
    return boxes.length && boxes.every((b) => b.dataset.state !== 'loading');
  }, tab, { timeout: 120000 });
  const errors = await page.$$eval(`#panel-${tab} [data-state=error]`, (els) => els.map((e) => `${e.id}: ${e.textContent}`));
  assert.deepEqual(errors, [], `${tab} panels in error`);
}
const prevRange = () => ({ ...last30(), date_range: { from: day(-59), to: day(-30) } });

test('e-commerce, acquisition, paths, lifecycle and engagement show what their reports answer', async () => {
  const page = await newPage();
  await page.goto(`${url}/?tab=ecommerce#key=${key}`);
  await settled(page, 'ecommerce');
  // KPIs: this period's figures, each change against the previous 30 days.
  const shop = await api('/api/reports/ecommerce', { ...last30(), limit: 20 });
  const before = await api('/api/reports/ecommerce', { ...prevRange(), limit: 1 });
  const kp = await page.$$eval('#shop-kpis .kpi', (els) => els.map((e) => [e.dataset.metric, Number(e.querySelector('.value').dataset.value), e.querySelector('.delta').textContent]));
  assert.equal(kp.length, 8);
  for (const [m, v, delta] of kp) {
    assert.equal(v, shop.totals[m], m);
    const [c, p] = [shop.totals[m], before.totals[m]];
    const rate = m.endsWith('_rate') || m.includes('rate_');
    const want = rate ? `${Math.abs(c - p).toFixed(1)} pts` : `${Math.abs(((c - p) / p) * 100).toFixed(0)}%`;
    assert.ok(delta.includes(want), `${m}: ${delta} vs ${want}`);
  }
  assert.ok(shop.totals.orders > 10 && shop.totals.revenue > 0);
  // Revenue and orders per day: the trends report's series, a point per day in each chart.
  const series = await api('/api/reports/trends', { ...last30(), metrics: ['events', 'revenue'], event: 'purchase', interval: 'day' });
  assert.equal(await page.locator('#shop-chart svg').count(), 2);
  assert.equal(await page.locator('#shop-chart .twin > div:first-child circle').count(), series.results[0].series.length);
  // Products and categories as ranked by the report; a category click lists its products only.
  assert.deepEqual(await page.$$eval('#shop-products tbody tr', (t) => t.map((r) => r.dataset.key)), shop.products.map((p) => p.key));
  assert.deepEqual(await page.$$eval('#shop-categories tbody tr', (t) => t.map((r) => r.dataset.key)), shop.categories.map((c) => c.key));
  // Lifetime value by month and by first channel.
  const ltv = await page.$$eval('#ltv-channel tbody tr', (t) => t.map((r) => [r.dataset.key, Number(r.children[4].dataset.value)]));
  assert.deepEqual(ltv, shop.ltv_by_channel.map((x) => [x.key, x.revenue_per_person]));
  const cohorts = await page.$$eval('#ltv-cohort tbody tr', (t) => t.map((r) => [r.dataset.key, Number(r.children[1].dataset.value), Number(r.children[3].dataset.value)]));
  assert.deepEqual(cohorts, shop.ltv_by_cohort.map((x) => [x.key, x.people, x.revenue]));
  await page.screenshot({ path: join(SHOTS, 'ecommerce-1280.png'), fullPage: true });
  // A category click (keyboard) filters every report by it: the KPIs are the report's with that
  // filter, and the products table lists that category's products.
  const cat = shop.categories[1].key;
  await page.focus(`#shop-categories tr[data-key="${cat}"]`);
  await page.keyboard.press('Enter');
  await page.waitForSelector('.chip');
  await settled(page, 'ecommerce');
  const inCat = await api('/api/reports/ecommerce', { ...last30(), filters: [{ dimension: 'category', op: 'is', values: [cat] }], limit: 20 });
  assert.equal(Number(await page.getAttribute('#shop-kpis .kpi[data-metric=orders] .value', 'data-value')), inCat.totals.orders);
  assert.ok(inCat.totals.orders < shop.totals.orders && inCat.totals.orders > 0);
  assert.deepEqual(await page.$$eval('#shop-products tbody tr', (t) => t.map((r) => r.dataset.key)),
    inCat.products.filter((p) => p.category === cat).map((p) => p.key));
  // Then a product: both filters hold, every order counted holds the product.
  const product = inCat.products.find((p) => p.category === cat).key;
  await page.click(`#shop-products tr[data-key="${product}"]`);
  await page.waitForFunction(() => document.querySelectorAll('.chip').length === 2);
  await settled(page, 'ecommerce');
  const both = await api('/api/reports/ecommerce', { ...last30(), filters: [{ dimension: 'category', op: 'is', values: [cat] }, { dimension: 'product', op: 'is', values: [product] }], limit: 20 });
  assert.equal(Number(await page.getAttribute('#shop-kpis .kpi[data-metric=orders] .value', 'data-value')), both.totals.orders);
  assert.ok(both.totals.orders <= inCat.totals.orders && both.products.some((p) => p.key === product), JSON.stringify(both.totals));
  assert.match(decodeURIComponent(page.url()), /"dimension":"product"/);
  await page.click('button[aria-label="Remove filter Product"]');
  await page.click('button[aria-label="Remove filter Category"]');
  await settled(page, 'ecommerce');

  // Acquisition: five models side by side, each cell the credit the report gives.
  await page.click('#tab-acquisition');
  await settled(page, 'acquisition');
  const attr = await api('/api/reports/attribution', { ...last30(), dimension: 'channel', lookback_days: 30, goal: { event: 'purchase' } });
  const cells = await page.$$eval('#attribution-table td[data-model]', (t) => t.map((td) => [td.closest('tr').dataset.value, td.dataset.model, Number(td.dataset.value)]));
  assert.equal(cells.length, 5 * new Set(cells.map((c) => c[0])).size);
  for (const [value, model, credit] of cells) {
    const want = attr.models[model].find((c) => (c.value ?? '') === value)?.conversions ?? 0;
    assert.equal(credit, want, `${model} ${value}`);
  }
  // By revenue with a 7-day lookback: the report's revenue credits.
  await page.selectOption('#attr-lookback', '7');
  await page.selectOption('#attr-measure', 'revenue');
  await page.click('#acquisition-form button[type=submit]');
  await settled(page, 'acquisition');
  const attr7 = await api('/api/reports/attribution', { ...last30(), dimension: 'channel', lookback_days: 7, goal: { event: 'purchase' } });
  const lin = await page.$$eval('#attribution-table td[data-model=linear]', (t) => t.map((td) => [td.closest('tr').dataset.value, Number(td.dataset.value)]));
  for (const [value, credit] of lin) assert.equal(credit, attr7.models.linear.find((c) => (c.value ?? '') === value)?.revenue ?? 0, value);
  await page.screenshot({ path: join(SHOTS, 'acquisition-1280.png'), fullPage: true });

  // Paths from every pageview, 3 steps: the tree's first level is the report's; clicking a
  // page (keyboard) starts the paths from it.
  await page.click('#tab-paths');
  await settled(page, 'paths');
  const tree = await api('/api/reports/paths', { ...last30(), start: { event: 'pageview', filters: [] }, direction: 'next', steps: 3, branches: 5 });
  const level1 = await page.$$eval('svg.paths g.node[data-depth="1"]', (g) => g.map((n) => [n.dataset.label, Number(n.dataset.sessions)]));
  assert.deepEqual(level1.sort(), tree.root.children.map((c) => [c.label, c.sessions]).sort());
  assert.equal(Number(await page.getAttribute('svg.paths g.node[data-depth="0"]', 'data-sessions')), tree.root.sessions);
  await page.screenshot({ path: join(SHOTS, 'paths-1280.png'), fullPage: true });
  const target = tree.root.children.find((c) => c.label.startsWith('/'));
  await page.focus(`svg.paths g.node[data-depth="1"][data-label="${target.label}"]`);
  await page.keyboard.press('Enter');
  await page.waitForFunction((l) => document.querySelector('#path-page').value === l, target.label);
  await settled(page, 'paths');
  const from = await api('/api/reports/paths', { ...last30(), start: { event: 'pageview', filters: [{ dimension: 'page', values: [target.label] }] }, direction: 'next', steps: 3, branches: 5 });
  assert.equal(Number(await page.getAttribute('svg.paths g.node[data-depth="0"]', 'data-sessions')), from.root.sessions);

  // Lifecycle per week: the table is the report's periods.
  await page.click('#tab-lifecycle');
  await settled(page, 'lifecycle');
  const life = await api('/api/reports/lifecycle', { ...last30(), period: 'week' });
  const rows = await page.$$eval('#lifecycle-result tbody tr', (t) => t.map((r) => [r.dataset.period, ...[...r.querySelectorAll('td.n')].slice(0, 4).map((td) => Number(td.dataset.value))]));
  assert.deepEqual(rows, life.periods.map((p) => [p.period, p.new, p.returning, p.resurrecting, p.dormant]));
  assert.equal(await page.locator('#lifecycle-result rect.seg.dormant').count(), life.periods.filter((p) => p.dormant).length);
  await page.screenshot({ path: join(SHOTS, 'lifecycle-1280.png'), fullPage: true });

  // Engagement: the scroll bands and the per-page rows; a page click filters by it.
  await page.click('#tab-engagement');
  await settled(page, 'engagement');
  const eng = await api('/api/reports/engagement', { ...last30(), limit: 20 });
  assert.ok(eng.totals.views > 100, 'the demo sends engagement');
  assert.deepEqual(await num(page, '.band-row'), [eng.totals.reached_25, eng.totals.reached_50, eng.totals.reached_75, eng.totals.reached_100]);
  const pages = await page.$$eval('#engagement-result tbody tr', (t) => t.map((r) => [r.dataset.page, Number(r.children[1].dataset.value), Number(r.children[7].dataset.value)]));
  assert.deepEqual(pages, eng.pages.map((p) => [p.page, p.views, p.median_engaged_seconds]));
  await page.screenshot({ path: join(SHOTS, 'engagement-1280.png'), fullPage: true });
  await page.click(`#engagement-result tr[data-page="${eng.pages[1].page}"]`);
  await settled(page, 'engagement');
  const one = await api('/api/reports/engagement', { ...last30(), filters: [{ dimension: 'page', values: [eng.pages[1].page] }] });
  assert.deepEqual(await num(page, '.band-row'), [one.totals.reached_25, one.totals.reached_50, one.totals.reached_75, one.totals.reached_100]);
  await page.context().close();
});

test('heatmaps show the pages, elements, click grid and scroll map their report answers; a page and a viewport can be picked', async () => {
  const page = await newPage();
  await page.goto(`${url}/?tab=heatmaps#key=${key}`);
  await settled(page, 'heatmaps');
  const r = await api('/api/reports/heatmap', { ...last30(), limit: 20 });
  // The demo shop clicks: a newcomer sees pages, rage clicks and dead clicks.
  assert.ok(r.totals.clicks > 100 && r.totals.dead_clicks > 0 && r.pages.some((p) => p.rage_clicks > 0), JSON.stringify(r.pages.slice(0, 3)));
  const shown = async () => ({
    kpis: await page.$$eval('#heatmap-result .kpi', (els) => els.map((e) => [e.dataset.metric, Number(e.querySelector('.value').dataset.value)])),
    pages: await page.$$eval('#heatmap-result tr[data-page]', (t) => t.map((x) => [x.dataset.page, ...[...x.querySelectorAll('td.n')].map((td) => Number(td.dataset.value))])),
    elements: await page.$$eval('#heatmap-result tr[data-selector]', (t) => t.map((x) => [x.dataset.selector, ...[...x.querySelectorAll('td.n')].map((td) => Number(td.dataset.value))])),
    cells: await page.$$eval('#heatmap-result rect[data-clicks]', (c) => c.map((x) => [Number(x.dataset.column), Number(x.dataset.row), Number(x.dataset.clicks)])),
    bands: await num(page, '#heatmap-result .band-row'),
  });
  const want = (x) => ({
    kpis: [['clicks', x.totals.clicks], ['rage_clicks', x.totals.rage_clicks], ['dead_clicks', x.totals.dead_clicks], ['views', x.scroll.views], ['avg_depth', x.scroll.avg_depth]],
    pages: x.pages.map((p) => [p.page, p.clicks, p.rage_clicks, p.dead_clicks]),
    elements: x.elements.map((e) => [e.selector, e.clicks, e.share, e.rage_clicks, e.dead_clicks]),
    cells: x.grid.cells.map((c) => [c.column, c.row, c.clicks]),
    bands: x.scroll.bands.map((b) => b.share),
  });
  assert.deepEqual(await shown(), want(r));
  await page.screenshot({ path: join(SHOTS, 'heatmaps-1280.png'), fullPage: true });
  // Pick a product page with a rage click, then phones only.
  const product = r.pages.find((p) => p.page.startsWith('/products/') && p.rage_clicks > 0);
  await page.click(`#heatmap-result tr[data-page="${product.page}"]`);
  await settled(page, 'heatmaps');
  const one = await api('/api/reports/heatmap', { ...last30(), limit: 20, page: product.page });
  assert.equal(one.elements.find((e) => e.selector === '[data-heatmap="add-to-cart"]')?.rage_clicks > 0, true);
  assert.deepEqual(await shown(), want(one));
  await page.selectOption('#heatmap-device', 'mobile');
  await settled(page, 'heatmaps');
  const phone = await api('/api/reports/heatmap', { ...last30(), limit: 20, page: product.page, device: 'mobile' });
  assert.ok(phone.totals.clicks < one.totals.clicks);
  assert.deepEqual(await shown(), want(phone));
  await page.context().close();
});

test('predictions show the fit, the churn-risk list, the value bands and the product pairs their reports answer', async () => {
  const page = await newPage();
  await page.goto(`${url}/?tab=predictions#key=${key}`);
  await settled(page, 'predictions');
  const r = await api('/api/reports/predictions', { site: 'shop', limit: 10 });
  const a = await api('/api/reports/affinities', { site: 'shop', limit: 10 });
  // The demo shop shows a newcomer a fitted model, people at risk and products bought together.
  assert.ok(r.model.customers.bgnbd && r.model.customers.gamma_gamma && r.model.propensity, JSON.stringify(r.model.customers));
  assert.ok(r.at_risk.length > 0 && a.bought_together.length > 0, 'the demo has people at risk and product pairs');
  const k = await kpis(page);
  assert.equal(k.buyers, r.counts.buyers);
  assert.equal(k.at_risk, r.counts.at_risk);
  assert.equal(k.predicted_value, r.counts.predicted_value);
  assert.equal(k.auc, r.model.propensity.auc);
  const risk = await page.$$eval('#predict-risk tbody tr', (rows) => rows.map((t) => [t.dataset.person, Number(t.querySelectorAll('td.n')[2].dataset.value)]));
  assert.deepEqual(risk, r.at_risk.map((p) => [p.person_id, p.p_alive]));
  assert.equal(await page.locator('#predict-value rect.bar-fill').count(), r.model.predicted_value_bands.length);
  const pairs = await page.$$eval('#predict-pairs tbody tr', (rows) => rows.map((t) => t.dataset.pair));
  assert.deepEqual(pairs, a.bought_together.map((p) => `${p.product}|${p.other}`));
  // Predictions are as of the last fit, not the date range: no filter bar.
  assert.equal(await page.isHidden('#filters'), true);
  await page.screenshot({ path: join(SHOTS, 'predictions-1280.png'), fullPage: true });
  await page.context().close();
});

test('the live view counts the visitors who just arrived, and updates by itself', async () => {
  const page = await newPage();
  await page.goto(`${url}/?tab=live#key=${key}`);
  await settled(page, 'live');
  const before = Number(await page.getAttribute('#live-visitors', 'data-value'));
  // Three browsers (three visitor ids) open pages; the server's own events are not visits.
  const send = (ua, path) => fetch(`${url}/api/event`, { method: 'POST', headers: { 'content-type': 'text/plain', 'user-agent': ua, origin: 'https://shop.example' },
    body: JSON.stringify({ site: 'shop', name: 'pageview', url: `https://shop.example${path}` }) });
  const uas = ['Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36',
    'Mozilla/5.0 (X11; Linux x86_64; rv:131.0) Gecko/20100101 Firefox/131.0',
    'Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1'];
  for (const [i, ua] of uas.entries()) assert.equal((await send(ua, i ? '/cart' : '/sale')).status, 202);
  await page.waitForFunction((n) => Number(document.querySelector('#live-visitors')?.dataset.value) === n, before + 3, { timeout: 20000 });
  const live = await (await fetch(`${url}/api/sites/shop/live`, { headers: { authorization: `Bearer ${key}` } })).json();
  const shown = await page.$$eval('#live-pages tbody tr', (t) => t.map((r) => [r.dataset.value, Number(r.children[1].dataset.value)]));
  assert.deepEqual(shown, live.pages.map((p) => [p.value, p.visitors]));
  assert.ok(shown.some(([p, n]) => p === '/cart' && n >= 2), JSON.stringify(shown));
  await page.screenshot({ path: join(SHOTS, 'live-1280.png'), fullPage: true });
  await page.context().close();
});

test('funnel builder: any-of and optional steps, an exclusion, segments side by side; retention by a breakdown', async () => {
  const page = await newPage();
  await page.goto(`${url}/?tab=funnel#key=${key}`);
  await settled(page, 'funnel');
  // Steps: product_view, add_to_cart (optional), checkout_start or purchase, purchase? Keep it
  // readable: 1 product_view, 2 add_to_cart optional, 3 checkout_start OR purchase.
  await page.click('button[aria-label="Remove step 4"]');
  await page.check('#steps li[data-step="1"] .step-optional');
  await page.click('button[aria-label="Step 3: also any other event"]');
  await page.selectOption('#step-2-or-0', 'purchase');
  await page.click('#add-exclusion');
  await page.selectOption('#excl-0', 'refund');
  await page.check('#funnel-compare input[value="repeat_buyers"]');
  await page.check('#funnel-compare input[value="new_visitors"]');
  await page.click('#funnel-form button[type=submit]');
  await page.waitForSelector('#funnel-by-segment');
  await settled(page, 'funnel');
  const want = await api('/api/reports/funnel', {
    ...last30(), window: { value: 1, unit: 'day' }, order: 'ordered',
    steps: [{ event: 'product_view' }, { event: 'add_to_cart', optional: true }, { any_of: [{ event: 'checkout_start' }, { event: 'purchase' }] }],
    exclusions: [{ event: 'refund', from_step: 1, to_step: 3 }], compare_segments: ['repeat_buyers', 'new_visitors'], people_limit: 1,
  });
  assert.deepEqual(await page.$$eval('.fstep', (els) => els.map((e) => Number(e.dataset.count))), want.steps.map((s) => s.count));
  assert.equal(await page.textContent('.fstep[data-step="3"] strong'), '3. checkout_start or purchase');
  const bySeg = await page.$$eval('#funnel-by-segment tbody tr', (t) => t.map((r) => [r.dataset.segment, ...[...r.querySelectorAll('td[data-value]')].map((td) => Number(td.dataset.value))]));
  assert.deepEqual(bySeg, want.by_segment.map((b) => [b.segment, ...b.report.steps.map((s) => s.count)]));
  assert.match(decodeURIComponent(page.url()), /"optional":true/);
  await page.screenshot({ path: join(SHOTS, 'funnel-builder-1280.png'), fullPage: true });

  await page.click('#tab-retention');
  await settled(page, 'retention');
  await page.selectOption('#retention-breakdown', 'device');
  await page.click('#retention-form button[type=submit]');
  await page.waitForFunction(() => document.querySelectorAll('#retention-result tbody tr[data-value="Mobile"]').length > 0, null, { timeout: 120000 });
  const ret = await api('/api/reports/retention', { ...last30(), period: 'week', periods: 6, retention_type: 'first_time', breakdown: 'device' });
  const got = await page.$$eval('#retention-result tbody tr', (t) => t.map((r) => [r.dataset.cohort, r.dataset.value, r.children[2].textContent]));
  assert.deepEqual(got, ret.cohorts.map((c) => [c.cohort, c.breakdown_value ?? '', c.size.toLocaleString('en-US')]));
  await page.context().close();
});

test('a segment built on screen without JSON is saved, counted, renamed and deleted (admin key)', async () => {
  const page = await newPage();
  page.on('dialog', (d) => d.accept());
  await page.goto(`${url}/?tab=segments#key=${admin}`);
  await settled(page, 'segments');
  // People who bought at least twice and first came from Organic Search.
  await page.selectOption('#cond-0-type', 'orders');
  await page.fill('#cond-0-at_least', '2');
  await page.click('#segment-add');
  await page.selectOption('#cond-1-type', 'first_touch');
  await page.selectOption('#cond-1-dimension', 'channel');
  await page.fill('#cond-1-values', 'Organic Search, Email');
  await page.click('#segment-preview');
  await page.waitForFunction(() => document.querySelector('#segment-status').dataset.size !== undefined);
  const def = { type: 'all', conditions: [{ type: 'orders', at_least: 2 }, { type: 'first_touch', dimension: 'channel', op: 'is', values: ['Organic Search', 'Email'] }] };
  const size = (await api('/api/reports/segment', { site: 'shop', definition: def, limit: 0 })).size;
  assert.equal(Number(await page.getAttribute('#segment-status', 'data-size')), size);
  assert.ok(size > 0, 'the demo has repeat buyers from search or e-mail');
  await page.fill('#segment-name', 'Loyal searchers');
  await page.click('#segment-save');
  await page.waitForSelector('tr[data-segment="loyal-searchers"] td.size[data-value]');
  assert.equal(Number(await page.getAttribute('tr[data-segment="loyal-searchers"] td.size', 'data-value')), size);
  const saved = await (await fetch(`${url}/api/sites/shop/segments`, { headers: { authorization: `Bearer ${key}` } })).json();
  assert.deepEqual(saved.saved.find((s) => s.id === 'loyal-searchers').definition, def);
  // Edit: rename and drop the channel condition.
  await page.click('tr[data-segment="loyal-searchers"] button:has-text("Edit")');
  assert.equal(await page.inputValue('#segment-name'), 'Loyal searchers');
  await page.click('button[aria-label="Remove condition 2"]');
  await page.fill('#segment-name', 'Repeat buyers, any channel');
  await page.click('#segment-save');
  await page.waitForFunction(() => document.querySelector('tr[data-segment="loyal-searchers"] td')?.textContent.startsWith('Repeat buyers, any channel'));
  const edited = (await (await fetch(`${url}/api/sites/shop/segments`, { headers: { authorization: `Bearer ${key}` } })).json()).saved.find((s) => s.id === 'loyal-searchers');
  assert.deepEqual(edited.definition, { type: 'orders', at_least: 2 });
  await page.waitForSelector('tr[data-segment="loyal-searchers"] td.size[data-value]', { state: 'attached' });
  await page.screenshot({ path: join(SHOTS, 'segments-builder-1280.png'), fullPage: true });
  await page.click('tr[data-segment="loyal-searchers"] button:has-text("Delete")');
  await page.waitForFunction(() => !document.querySelector('tr[data-segment="loyal-searchers"]'));
  // A read key may count but not save: the server's refusal is shown.
  const reader = await newPage(1280, 900, { refusals: true });
  await reader.goto(`${url}/?tab=segments#key=${key}`);
  await settled(reader, 'segments');
  await reader.fill('#segment-name', 'Nope');
  await reader.click('#segment-save');
  await reader.waitForFunction(() => /admin key/.test(document.querySelector('#segment-status').textContent));
  await reader.context().close();
  await page.context().close();
});

test('a view is saved and reopened; a share link opens a view-only dashboard until it is revoked', async () => {
  const page = await newPage();
  page.on('dialog', (d) => d.accept(d.type() === 'prompt' ? 'Email on e-commerce' : undefined));
  await page.goto(`${url}/#key=${key}`);
  await overviewDone(page);
  await page.click('#table-channel tr[data-value="Email"]');
  await overviewDone(page);
  await page.click('#tab-ecommerce');
  await settled(page, 'ecommerce');
  await page.click('#save-view');
  await page.waitForFunction(() => /Saved/.test(document.querySelector('#view-status').textContent));
  // Elsewhere, with no filters: opening the view brings the tab and the filter back.
  const other = await newPage();
  await other.goto(`${url}/#key=${key}`);
  await overviewDone(other);
  const id = await other.$eval('#views option:nth-child(2)', (o) => o.value);
  await other.selectOption('#views', id);
  await settled(other, 'ecommerce');
  assert.equal(await other.getAttribute('#tab-ecommerce', 'aria-selected'), 'true');
  assert.match(decodeURIComponent(other.url()), /"values":\["Email"\]/);
  const email = await api('/api/reports/ecommerce', { ...last30(), filters: [{ dimension: 'channel', op: 'is', values: ['Email'] }], limit: 20 });
  assert.equal(Number(await other.getAttribute('#shop-kpis .kpi[data-metric=revenue] .value', 'data-value')), email.totals.revenue);
  await other.context().close();

  // Share: create a link in the dialog and open it signed out.
  await page.click('#share');
  await page.fill('#share-name', 'Agency');
  await page.click('#share-form button[type=submit]');
  const link = await (await page.waitForSelector('#share-list .share-url')).inputValue();
  assert.match(link, /#key=ffv_/);
  const viewer = await newPage(1280, 900, { refusals: true });
  await viewer.goto(link);
  await settled(viewer, 'ecommerce');
  assert.equal(await viewer.getAttribute('body', 'data-view-only'), 'true');
  assert.equal(await viewer.isVisible('#tab-sql'), false);
  assert.equal(await viewer.isVisible('#share'), false);
  assert.equal(Number(await viewer.getAttribute('#shop-kpis .kpi[data-metric=revenue] .value', 'data-value')), email.totals.revenue);
  // Its key runs reports, never SQL.
  const shareKey = link.split('#key=')[1];
  const sql = await fetch(`${url}/api/sql`, { method: 'POST', headers: { authorization: `Bearer ${shareKey}` }, body: JSON.stringify({ sql: 'SELECT 1' }) });
  assert.equal(sql.status, 403);
  await viewer.click('#tab-segments');
  await settled(viewer, 'segments');
  assert.equal(await viewer.locator('#segments-result button:has-text("Export CSV")').count(), 0);
  assert.equal(await viewer.isVisible('#segment-form'), false);
  // Predictions: the figures, and no one's id.
  await viewer.click('#tab-predictions');
  await settled(viewer, 'predictions');
  assert.equal(await viewer.getAttribute('#predict-risk', 'data-state'), 'empty');
  assert.match(await viewer.textContent('#predict-risk'), /share link shows no one/);
  assert.ok(Number(await viewer.getAttribute('#predict-summary .kpi[data-metric=buyers] .value', 'data-value')) > 0);
  await viewer.screenshot({ path: join(SHOTS, 'share-view-only-1280.png'), fullPage: true });
  // Revoked: the next request signs the viewer out.
  await page.click('#share-list button:has-text("Revoke")');
  await page.waitForFunction(() => /Revoked/.test(document.querySelector('#share-status').textContent));
  await viewer.click('#tab-lifecycle');
  await viewer.waitForSelector('#login', { state: 'visible' });
  await viewer.context().close();
  await page.context().close();
});

// WCAG 2.1 contrast: relative luminance of sRGB colours.
function contrastCheck() {
  const parse = (c) => (c.match(/[\d.]+/g) || []).map(Number);
  const lum = ([r, g, b]) => [r, g, b].map((v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; }).reduce((a, v, i) => a + v * [0.2126, 0.7152, 0.0722][i], 0);
  const bg = (el) => {
    for (let e = el; e; e = e.parentElement) {
      const c = parse(getComputedStyle(e).backgroundColor);
      if (c.length >= 3 && (c[3] === undefined || c[3] > 0.9)) return c;
    }
    return [255, 255, 255];
  };
  const bad = [];
  for (const el of document.querySelectorAll('main section:not([hidden]) *, header *, nav *')) {
    if (!el.offsetParent || ![...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim())) continue;
    if (el.closest('svg, .heat, [disabled], .partial, option')) continue; // chart text and heat cells checked apart; disabled controls are exempt
    const st = getComputedStyle(el);
    if (Number(st.opacity) < 1) continue;
    const [a, b] = [lum(parse(st.color)), lum(bg(el))];
    const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    const large = parseFloat(st.fontSize) >= 24 || (parseFloat(st.fontSize) >= 18.66 && Number(st.fontWeight) >= 700);
    if (ratio < (large ? 3 : 4.5)) bad.push(`${el.tagName}.${el.className} "${el.textContent.trim().slice(0, 30)}" ${ratio.toFixed(2)}`);
  }
  return bad;
}

test('every tab at 390 px: nothing wider than the screen, text contrast at least WCAG AA', async () => {
  const page = await newPage(390, 844);
  await page.goto(`${url}/#key=${key}`);
  await overviewDone(page);
  for (const tab of ['overview', 'ecommerce', 'acquisition', 'funnel', 'retention', 'paths', 'lifecycle', 'engagement', 'heatmaps', 'live', 'experiments', 'segments', 'predictions', 'sql']) {
    await page.click(`#tab-${tab}`);
    if (tab !== 'sql') await settled(page, tab);
    assert.ok(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth), `${tab} fits 390 px`);
    assert.deepEqual(await page.evaluate(contrastCheck), [], `${tab}: text below WCAG AA contrast`);
    await page.screenshot({ path: join(SHOTS, `${tab}-390.png`), fullPage: true });
  }
  await page.context().close();
});

test('no console errors or page errors in any of it', () => {
  assert.deepEqual(errors, []);
});
