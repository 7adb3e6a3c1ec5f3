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
let demo, url, key, browser, data, readyLine;
const errors = [];

before(async () => {
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: apt-get install -y chromium (browsers are never downloaded)`);
  assert.ok(BIN && existsSync(BIN), 'set FOOTFALL_BIN to the footfall binary (cargo build)');
  mkdirSync(SHOTS, { recursive: true });
  data = mkdtempSync(join(tmpdir(), 'footfall-dashboard-'));
  rmSync(data, { recursive: true });
  // A smaller shop than the default demo: the tests run on a debug build.
  demo = spawn(BIN, ['demo', '--data', data, '--listen', '127.0.0.1:0', '--events', '60000', '--visitors', '9000'], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, RUST_LOG: 'warn' },
  });
  [url, key] = await new Promise((resolve, reject) => {
    let out = '';
    demo.stdout.on('data', (b) => {
      out += b;
      const u = out.match(/dashboard: (http:\/\/[\d.:]+)\/#key=(\S+)/);
      const k = out.match(/read key: +(\S+)/);
      const l = out.match(/footfall listening on/);
      if (u && k && l) {
        readyLine = out.split('\n')[0];
        assert.equal(u[2], k[1], 'the dashboard URL carries the printed read key');
        resolve([u[1], k[1]]);
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

async function newPage(width = 1280, height = 900) {
  const ctx = await browser.newContext({ viewport: { width, height }, timezoneId: 'UTC', acceptDownloads: true });
  const page = await ctx.newPage();
  page.on('console', (m) => { if (m.type() === 'error') errors.push(`${width}px console: ${m.text()}`); });
  page.on('pageerror', (e) => errors.push(`${width}px page error: ${e.message}`));
  return page;
}
const api = async (path, body) => {
  const r = await fetch(`${url}${path}`, { method: 'POST', headers: { authorization: `Bearer ${key}` }, body: JSON.stringify(body) });
  assert.equal(r.status, 200, `${path}: ${await r.clone().text()}`);
  return r.json();
};
const day = (n) => new Date(Date.now() + n * 86400000).toISOString().slice(0, 10);
const last30 = () => ({ site: 'shop', date_range: { from: day(-29), to: day(0) }, timezone: 'UTC' });
const ready = (page, sel) => page.waitForSelector(`${sel}[data-state=ready]`, { state: 'attached', timeout: 120000 });
async function overviewDone(page) {
  await ready(page, '#panel-overview');
  await ready(page, '#chart');
  await page.waitForFunction(() => document.querySelectorAll('.top-table:not([data-state=ready])').length === 0, null, { timeout: 120000 });
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

  // Segments: sizes as the API counts them; "Filter reports" narrows the overview to one.
  await page.click('#tab-segments');
  await ready(page, '#segments-result');
  const vip = await api('/api/reports/segment', { site: 'shop', definition: 'repeat_buyers', limit: 1 });
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
  for (const [tab, result] of [['funnel', 'funnel'], ['retention', 'retention'], ['experiments', 'experiment'], ['segments', 'segments']]) {
    await page.click(`#tab-${tab}`);
    await ready(page, `#${result}-result`);
    assert.ok(await fits(), `${tab} fits 390 px (wide tables scroll inside their card)`);
    await page.screenshot({ path: join(SHOTS, `${tab}-390.png`), fullPage: true });
  }
  // Tabs move with the arrow keys.
  await page.focus('#tab-experiments');
  await page.keyboard.press('ArrowRight');
  assert.equal(await page.getAttribute('#tab-segments', 'aria-selected'), 'true');
  await page.context().close();
});

test('no console errors or page errors in any of it', () => {
  assert.deepEqual(errors, []);
});
