// What the Chromium tests share: a footfall started on a free port (its data in a temporary
// directory), a shop server on another, Debian's Chromium (never downloaded), and their teardown.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';
export const BIN = process.env.FOOTFALL_BIN;
// Headless Chromium says "HeadlessChrome", which footfall (rightly) drops as a bot.
export const UA = 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/148.0.0.0 Safari/537.36';

/**
 * Start everything: `prepare(data)` runs before footfall starts (to add a site, say); `page(req)`
 * answers the shop's requests with HTML. Returns {data, ff, shopUrl, browser, stop}.
 */
export async function start({ prepare, page, args = [] }) {
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: apt-get install -y chromium (browsers are never downloaded)`);
  assert.ok(BIN && existsSync(BIN), 'set FOOTFALL_BIN to the footfall binary (cargo build)');
  const data = mkdtempSync(join(tmpdir(), 'footfall-browser-'));
  prepare?.(data);
  const footfall = spawn(BIN, ['serve', '--data', data, '--listen', '127.0.0.1:0', '--flush-interval', '0.2', '--rate-limit-ip', '0', ...args], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, RUST_LOG: 'warn' },
  });
  const ff = await new Promise((resolve, reject) => {
    let out = '';
    footfall.stdout.on('data', (b) => {
      out += b;
      const m = out.match(/listening on (http:\/\/[\d.:]+)/);
      if (m) resolve(m[1]);
    });
    footfall.on('exit', (c) => reject(new Error(`footfall exited with ${c}`)));
  });
  const shop = createServer((req, res) => res.writeHead(200, { 'content-type': 'text/html' }).end(page(req, ff)));
  await new Promise((r) => shop.listen(0, '127.0.0.1', r));
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  });
  const stop = async () => {
    await browser.close();
    shop.close();
    footfall.kill('SIGTERM');
    await new Promise((r) => footfall.on('exit', r));
    rmSync(data, { recursive: true, force: true });
  };
  return { data, ff, shopUrl: `http://127.0.0.1:${shop.address().port}`, browser, stop };
}
