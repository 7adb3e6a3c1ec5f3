// Loads the dashboard URL (with its #key=) in Debian's Chromium and prints, per load, when the
// overview numbers, the chart and all nine tables were on screen, in ms from navigation start;
// then opens every other tab cold (a new page at ?tab=…) and prints when its first panel and
// all of its panels were on screen.
// Usage: node bench/dashboard.mjs URL LOADS (bench/dashboard.sh runs it).
import { chromium } from '../dashboard/node_modules/playwright-core/index.mjs';

const [url, loads = '5'] = process.argv.slice(2);
const TABS = ['ecommerce', 'acquisition', 'funnel', 'retention', 'paths', 'lifecycle', 'engagement', 'live', 'experiments', 'segments'];
const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
});
const withTab = (tab) => {
  const [base, hash] = url.split('#');
  return `${base}${base.includes('?') ? '&' : '?'}tab=${tab}#${hash}`;
};
const times = {};
for (let i = 0; i < Number(loads); i++) {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await ctx.newPage();
  await page.goto(url);
  await page.waitForSelector('#chart[data-state=ready]', { state: 'attached', timeout: 120000 });
  const chart = await page.evaluate(() => performance.now());
  await page.waitForFunction(() => document.querySelectorAll('#tables .top-table:not([data-state=ready])').length === 0, null, { timeout: 120000, polling: 20 });
  const tables = await page.evaluate(() => performance.now());
  const numbers = await page.evaluate(() => Number(document.body.dataset.firstReportMs));
  console.log(`load ${i + 1}: overview numbers ${numbers} ms, chart ≤ ${Math.round(chart)} ms, all tables ≤ ${Math.round(tables)} ms`);
  await ctx.close();
  for (const tab of TABS) {
    const c = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const p = await c.newPage();
    await p.goto(withTab(tab));
    await p.waitForFunction(([t]) => [...document.querySelectorAll(`#panel-${t} [data-state]`)].some((b) => ['ready', 'empty', 'error'].includes(b.dataset.state)), [tab], { timeout: 300000, polling: 20 });
    const first = await p.evaluate(() => performance.now());
    await p.waitForFunction(([t]) => {
      const b = [...document.querySelectorAll(`#panel-${t} [data-state]`)];
      return b.length && b.every((x) => ['ready', 'empty', 'error'].includes(x.dataset.state));
    }, [tab], { timeout: 300000, polling: 20 });
    const all = await p.evaluate(() => performance.now());
    const errors = await p.$$eval(`#panel-${tab} [data-state=error]`, (b) => b.map((x) => x.textContent));
    (times[tab] ||= []).push([Math.round(first), Math.round(all)]);
    console.log(`  ${tab}: first panel ≤ ${Math.round(first)} ms, all ≤ ${Math.round(all)} ms${errors.length ? ` ERRORS: ${errors.join(' | ')}` : ''}`);
    await c.close();
  }
}
const median = (xs) => xs.slice().sort((a, b) => a - b)[Math.floor(xs.length / 2)];
console.log('median per tab (first panel / all panels, ms from navigation):');
for (const [tab, t] of Object.entries(times)) console.log(`  ${tab}: ${median(t.map((x) => x[0]))} / ${median(t.map((x) => x[1]))}`);
await browser.close();
