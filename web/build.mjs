// Builds the dashboard into dist/: index.html, assets/app.js and assets/app.css (flat names; the
// server maps /assets/<file>). index.html refers to the assets with ?v=<content hash>, so the server
// can let browsers cache assets while a rebuilt dashboard is picked up at once.
// Usage: node build.mjs [--watch]   (no network: everything comes from node_modules)
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';

const here = dirname(fileURLToPath(import.meta.url));
const dist = join(here, 'dist');
const assets = join(dist, 'assets');

const options = {
  entryPoints: { app: join(here, 'src/main.ts') },
  bundle: true,
  minify: true,
  sourcemap: false,
  format: 'iife',
  target: ['es2020'],
  outdir: assets,
  entryNames: '[name]',
  legalComments: 'none',
  logLevel: 'warning',
};

function writeIndex() {
  const hash = (file) =>
    createHash('sha256').update(readFileSync(join(assets, file))).digest('hex').slice(0, 12);
  const html = readFileSync(join(here, 'index.html'), 'utf8')
    .replace('/assets/app.css', `/assets/app.css?v=${hash('app.css')}`)
    .replace('/assets/app.js', `/assets/app.js?v=${hash('app.js')}`);
  writeFileSync(join(dist, 'index.html'), html);
}

rmSync(dist, { recursive: true, force: true });
mkdirSync(assets, { recursive: true });
if (process.argv.includes('--watch')) {
  const ctx = await esbuild.context({
    ...options,
    plugins: [{ name: 'index', setup: (b) => b.onEnd(() => writeIndex()) }],
  });
  await ctx.watch();
  console.log('web: watching src/ (Ctrl-C to stop)');
} else {
  await esbuild.build(options);
  writeIndex();
  const size = (f) => readFileSync(join(assets, f)).length;
  console.log(`web: built dist/ (app.js ${size('app.js')} B, app.css ${size('app.css')} B)`);
}
