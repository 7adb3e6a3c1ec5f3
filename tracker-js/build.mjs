// Minify src/*.js to dist/ (esbuild, pinned in package.json) and print their gzip -9 sizes:
// f.js (the snippet), h.js (the click add-on for heatmaps), o.js (the heatmap overlay).
// `node build.mjs --check` fails when dist/ is stale against src/.
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { transform } from 'esbuild';

export const SCRIPTS = ['f.js', 'h.js', 'o.js'];

export async function build(name = 'f.js') {
  const src = readFileSync(new URL(`./src/${name}`, import.meta.url), 'utf8');
  const out = await transform(src, { minify: true, target: 'es2020', legalComments: 'none' });
  return out.code;
}

export const gzipSize = (code) => gzipSync(code, { level: 9 }).length;

/** tracker-js/BUDGET: `<script> <most gzip -9 bytes>` per line. */
export const budgets = () =>
  Object.fromEntries(
    readFileSync(new URL('./BUDGET', import.meta.url), 'utf8')
      .split('\n')
      .filter((l) => l.trim() && !l.startsWith('#'))
      .map((l) => l.trim().split(/\s+/))
      .map(([name, bytes]) => [name, Number(bytes)]),
  );

if (import.meta.url === `file://${process.argv[1]}`) {
  mkdirSync(new URL('./dist/', import.meta.url), { recursive: true });
  for (const name of SCRIPTS) {
    const code = await build(name);
    const dist = new URL(`./dist/${name}`, import.meta.url);
    if (process.argv.includes('--check')) {
      if (readFileSync(dist, 'utf8') !== code) {
        console.error(`dist/${name} is stale: run \`npm run build\` in tracker-js`);
        process.exit(1);
      }
    } else {
      writeFileSync(dist, code);
    }
    console.log(`dist/${name}: ${code.length} bytes, ${gzipSize(code)} bytes gzip -9`);
  }
}
