// Minify src/f.js to dist/f.js (esbuild, pinned in package.json) and print its gzip -9 size.
// `node build.mjs --check` fails when dist/ is stale against src/.
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { transform } from 'esbuild';

export async function build() {
  const src = readFileSync(new URL('./src/f.js', import.meta.url), 'utf8');
  const out = await transform(src, { minify: true, target: 'es2020', legalComments: 'none' });
  return out.code;
}

export const gzipSize = (code) => gzipSync(code, { level: 9 }).length;

if (import.meta.url === `file://${process.argv[1]}`) {
  const code = await build();
  const dist = new URL('./dist/f.js', import.meta.url);
  if (process.argv.includes('--check')) {
    if (readFileSync(dist, 'utf8') !== code) {
      console.error('dist/f.js is stale: run `npm run build` in tracker-js');
      process.exit(1);
    }
  } else {
    mkdirSync(new URL('./dist/', import.meta.url), { recursive: true });
    writeFileSync(dist, code);
  }
  console.log(`dist/f.js: ${code.length} bytes, ${gzipSize(code)} bytes gzip -9`);
}
