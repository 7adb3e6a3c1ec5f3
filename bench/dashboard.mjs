// Loads the dashboard URL (with its #key=) in Debian's Chromium and prints, per load, when the
// overview numbers, the chart and all nine tables were on screen, in ms from navigation start.
// Usage: node bench/dashboard.mjs URL LOADS (bench/dashboard.sh runs it).
import { chromium } from '../dashboard/node_modules/playwright-core/index.mjs';

const [url, loads = '5'] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
});
for (let i = 0; i < Number(loads); i++) {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await ctx.newPage();
  await page.goto(url);
  await page.waitForSelector('#chart[data-state=ready]', { state: 'attached', timeout: 120000 });
  const chart = await page.evaluate(() => performance.now());
  await page.waitForFunction(() => document.querySelectorAll('.top-table:not([data-state=ready])').length === 0, null, { timeout: 120000, polling: 20 });
  const tables = await page.evaluate(() => performance.now());
  const numbers = await page.evaluate(() => Number(document.body.dataset.firstReportMs));
  console.log(`load ${i + 1}: overview numbers ${numbers} ms, chart ≤ ${Math.round(chart)} ms, all tables ≤ ${Math.round(tables)} ms`);
  await ctx.close();
}
await browser.close();
