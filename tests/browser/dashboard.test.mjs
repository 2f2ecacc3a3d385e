#!/usr/bin/env node
// Browser test of the dashboard served by `persona serve` at /: Debian's Chromium (headless,
// driven by playwright-core from web/node_modules) against a real server on a small demo.
//
//   node tests/browser/dashboard.test.mjs <path of the built persona binary>
//
// Steps: generate + import ~20k demo events and train the (fast) segment model in a temp dir;
// start `persona serve --port 0` (PERSONA_WEB_ROOT = web/dist); wait for /readyz; then open each
// page, look a real user up, build an audience condition, wait for its count, save it, see it in
// the saved list, export it (CSV download + NDJSON fetch), delete it; last, the server must exit 0
// on SIGTERM (no crash, no sanitizer report). Each page is screenshotted (PNG > 10 KB) and checked
// through its elements (canvases with a non-zero size, key texts).
//
// Exit 0 = every step passed; 1 = a step failed (its name, the error, and the server's output
// tail are printed); 77 = skipped (no /usr/bin/chromium or no web/node_modules: run
// scripts/setup.sh). The server is killed at the end, also on failure. Env: CHROMIUM (browser
// path), PERSONA_BROWSER_KEEP=1 (keep the temp dir with screenshots), PERSONA_BROWSER_HEADED=1.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const SKIP = 77;
const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const web = join(repo, 'web');
const chromiumPath = process.env.CHROMIUM || '/usr/bin/chromium';
const persona = process.argv[2] ? resolve(process.argv[2]) : '';
const started = Date.now();
const WAIT = 20000;  // per UI wait: ASan servers and a loaded 2-core machine are slow

function skip(why) {
  console.log(`SKIP: ${why}`);
  process.exit(SKIP);
}

if (!persona || !existsSync(persona)) {
  console.error('usage: dashboard.test.mjs <path of the persona binary>');
  process.exit(2);
}
if (!existsSync(chromiumPath)) skip(`no Chromium at ${chromiumPath} (apt-get install chromium, or run scripts/setup.sh)`);
const playwrightEntry = join(web, 'node_modules', 'playwright-core', 'index.mjs');
if (!existsSync(playwrightEntry)) skip('web/node_modules is missing (run scripts/setup.sh, or: cd web && npm ci)');
if (!existsSync(join(web, 'dist', 'index.html'))) {
  // The build needs only node_modules (no network): do it rather than skip.
  const b = spawnSync(process.execPath, [join(web, 'build.mjs')], { cwd: web, encoding: 'utf8' });
  if (b.status !== 0) {
    console.error(`web build failed:\n${b.stdout}${b.stderr}`);
    process.exit(1);
  }
}
const { chromium } = await import(pathToFileURL(playwrightEntry).href);

const tmp = mkdtempSync(join(tmpdir(), 'persona_browser_'));
const shots = join(tmp, 'screenshots');
let server = null;
let serverOutput = '';
let browser = null;
let passed = 0;
let failed = 0;

function elapsed(t0) {
  return `${((Date.now() - t0) / 1000).toFixed(1)} s`;
}

async function cleanup() {
  if (browser) await browser.close().catch(() => {});
  browser = null;
  if (server && server.exitCode === null && server.signalCode === null) {
    server.kill('SIGTERM');
    const exited = await Promise.race([
      new Promise((r) => server.once('exit', () => r(true))),
      new Promise((r) => setTimeout(() => r(false), 15000)),
    ]);
    if (!exited) server.kill('SIGKILL');
  }
  server = null;
}

async function finish(code) {
  await cleanup();
  if (code === 0 && !process.env.PERSONA_BROWSER_KEEP) rmSync(tmp, { recursive: true, force: true });
  else console.log(`# temp dir kept: ${tmp} (screenshots in ${shots})`);
  console.log(`# total ${elapsed(started)}`);
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(code);
}

for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => void finish(1));
// Last resort: never leave a server behind, whatever ends this process.
process.on('exit', () => {
  if (server && server.exitCode === null && server.signalCode === null) server.kill('SIGKILL');
});
process.on('unhandledRejection', (e) => {
  console.log(`# unhandled rejection: ${e?.stack ?? e}`);
  failed++;
  void finish(1);
});

async function step(name, fn) {
  const t0 = Date.now();
  try {
    const note = await fn();
    passed++;
    console.log(`ok ${passed + failed} - ${name} (${elapsed(t0)})${note ? ` # ${note}` : ''}`);
  } catch (e) {
    failed++;
    console.log(`not ok ${passed + failed} - ${name} (${elapsed(t0)})`);
    console.log(`# FAILED STEP: ${name}\n# ${String(e?.stack ?? e).split('\n').join('\n# ')}`);
    if (serverOutput) console.log(`# --- server output (tail) ---\n${serverOutput.slice(-3000).replace(/^/gm, '# ')}`);
    await finish(1);
  }
}

function expect(cond, message) {
  if (!cond) throw new Error(message);
}

function run(args) {
  const r = spawnSync(persona, args, { encoding: 'utf8', cwd: tmp, timeout: 120000 });
  if (r.status !== 0) {
    throw new Error(`persona ${args.join(' ')} -> ${r.status ?? r.signal}\n${r.stdout}\n${r.stderr}`);
  }
  return r.stdout;
}

// ---- data and server ----------------------------------------------------------------------------

const db = join(tmp, 'db');
const events = join(tmp, 'events.jsonl');
const rules = join(repo, 'config', 'tags.rules');
let base = '';
let userId = '';

await step('generate and import a demo (20k events)', async () => {
  run(['gen', '--events', '20000', '--users', '1000', '--seed', '7', '--out', events, '--truth', join(tmp, 'truth.jsonl'), '-q']);
  run(['import', '--data', db, '--format', 'jsonl', '--tag-rules', rules, '-q', events]);
  run(['train', 'segments', '--data', db, '-q']);
  // A real user with enough data for every panel: the buyer with the most events.
  const counts = new Map();
  const buyers = new Set();
  for (const line of readFileSync(events, 'utf8').split('\n')) {
    const m = /"user_id":"([^"]+)"/.exec(line);
    if (!m) continue;
    counts.set(m[1], (counts.get(m[1]) ?? 0) + 1);
    if (line.includes('"type":"purchase"')) buyers.add(m[1]);
  }
  userId = [...counts.entries()].filter(([u]) => buyers.has(u)).sort((a, b) => b[1] - a[1])[0][0];
  return `user ${userId} (${counts.get(userId)} events), ${counts.size} users`;
});

await step('start persona serve and wait for /readyz', async () => {
  server = spawn(persona, ['serve', '--data', db, '--tag-rules', rules, '--port', '0'], {
    cwd: tmp,
    env: { ...process.env, PERSONA_WEB_ROOT: join(web, 'dist') },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const collect = (chunk) => {
    serverOutput += chunk.toString();
    if (serverOutput.length > 200000) serverOutput = serverOutput.slice(-100000);
  };
  server.stdout.on('data', collect);
  server.stderr.on('data', collect);
  const deadline = Date.now() + 60000;
  while (!base) {
    const m = /listening on (https?:\/\/[^\s]+)/.exec(serverOutput);
    if (m) base = m[1].replace(/\/$/, '');
    else if (server.exitCode !== null) throw new Error(`persona serve exited with ${server.exitCode}`);
    else if (Date.now() > deadline) throw new Error('no "listening on" line within 60 s');
    else await new Promise((r) => setTimeout(r, 100));
  }
  while (true) {
    const r = await fetch(`${base}/readyz`).catch(() => null);
    if (r && r.status === 200) break;
    if (Date.now() > deadline) throw new Error('/readyz did not answer 200 within 60 s');
    await new Promise((r) => setTimeout(r, 200));
  }
  return base;
});

await step('GET / and /assets/* serve the built dashboard', async () => {
  const index = await fetch(`${base}/`);
  expect(index.status === 200, `GET / -> ${index.status} (is the static route wired and web/dist built?)`);
  expect((index.headers.get('content-type') ?? '').startsWith('text/html'), `GET / content-type ${index.headers.get('content-type')}`);
  const html = await index.text();
  const js = /src="(\/assets\/app\.js[^"]*)"/.exec(html);
  const css = /href="(\/assets\/app\.css[^"]*)"/.exec(html);
  expect(js && css, 'index.html does not reference /assets/app.js and /assets/app.css');
  const asset = await fetch(`${base}${js[1]}`);
  expect(asset.status === 200, `GET ${js[1]} -> ${asset.status}`);
  expect((asset.headers.get('content-type') ?? '').includes('javascript'), `app.js content-type ${asset.headers.get('content-type')}`);
  const etag = asset.headers.get('etag');
  expect(etag, 'app.js has no ETag');
  const again = await fetch(`${base}${js[1]}`, { headers: { 'If-None-Match': etag } });
  expect(again.status === 304, `If-None-Match -> ${again.status}, expected 304`);
  const traversal = await fetch(`${base}/assets/..%2f..%2fCMakeLists.txt`);
  expect(traversal.status === 404 || traversal.status === 400, `traversal -> ${traversal.status}`);
  return `app.js ${(await asset.arrayBuffer()).byteLength} B`;
});

// ---- browser --------------------------------------------------------------------------------------

let page = null;
const pageErrors = [];

await step('launch Chromium', async () => {
  browser = await chromium.launch({
    executablePath: chromiumPath,
    headless: !process.env.PERSONA_BROWSER_HEADED,
    args: ['--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu'],
  });
  const context = await browser.newContext({ viewport: { width: 1366, height: 900 }, acceptDownloads: true });
  page = await context.newPage();
  page.setDefaultTimeout(WAIT);
  page.on('pageerror', (e) => pageErrors.push(e.message));
  page.on('dialog', (d) => void d.accept());
  return (await browser.version?.()) ?? '';
});

// A canvas rendered by Chart.js with a real size.
async function expectCanvas(selector) {
  await page.waitForSelector(selector, { state: 'visible' });
  const box = await page.locator(selector).first().boundingBox();
  expect(box && box.width > 50 && box.height > 50, `${selector} has size ${JSON.stringify(box)}`);
}

async function screenshot(name) {
  const path = join(shots, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  const size = statSync(path).size;
  expect(size > 10 * 1024, `${name}.png is only ${size} bytes (blank page?)`);
  return size;
}

function expectNoPageErrors() {
  expect(pageErrors.length === 0, `JavaScript errors in the page: ${pageErrors.join(' | ')}`);
}

async function postEvents(n, offset) {
  const lines = [];
  for (let i = 0; i < n; i++) {
    lines.push(JSON.stringify({
      event_id: `browser-${offset + i}`,
      user_id: `browser_user_${(offset + i) % 7}`,
      type: i % 5 === 0 ? 'cart' : 'view',
      item_id: `item-${i % 13}`,
      category_path: 'c1.c1_1',
      price: 10 + (i % 9),
      ts: '2017-12-04T03:00:00Z',
    }));
  }
  const r = await fetch(`${base}/v1/events`, { method: 'POST', headers: { 'Content-Type': 'application/x-ndjson' }, body: lines.join('\n') });
  expect(r.status === 200, `POST /v1/events -> ${r.status} ${await r.text()}`);
}

await step('overview: live rates, counts, partitions, latency', async () => {
  await page.goto(`${base}/#/overview`);
  await expectCanvas('#rate-chart');
  await expectCanvas('#latency-chart');
  await page.waitForFunction(() => /\d/.test(document.querySelector('#kpi-profiles .kpi-value')?.textContent ?? ''));
  // Ingest while the page polls, so the rate chart has something to draw; the rate is per poll
  // interval, so watch for it while the events arrive.
  const sawRate = page.waitForFunction(
    () => Number((document.querySelector('#kpi-rate .kpi-value')?.textContent ?? '').replace(/,/g, '')) > 0,
    null, { timeout: WAIT, polling: 200 });
  for (let i = 0; i < 5; i++) {
    await postEvents(50, i * 50);
    await page.waitForTimeout(1200);
  }
  await sawRate;
  await page.waitForFunction(
    () => Number((document.querySelector('#kpi-accepted .kpi-value')?.textContent ?? '').replace(/,/g, '')) >= 20250);
  const partitions = await page.locator('#partitions tbody tr').count();
  expect(partitions >= 1, 'no partition rows');
  await page.waitForSelector('#routes tbody tr');
  const text = (await page.locator('main').innerText()).toLowerCase();
  for (const s of ['Profiles held', 'Accepted', 'Rejected', 'Duplicates', 'Partitions', 'Latency by route']) expect(text.includes(s.toLowerCase()), `overview lacks "${s}"`);
  expectNoPageErrors();
  return `${partitions} partitions, screenshot ${await screenshot('overview')} B`;
});

await step('user: look up a real user and see every panel', async () => {
  await page.goto(`${base}/#/user`);
  await page.fill('#user-search', userId);
  await page.click('#user-search-go');
  await page.waitForSelector('#profile-summary');
  const shown = await page.locator('#profile-user-id').innerText();
  expect(shown === userId, `profile shows user "${shown}", expected "${userId}"`);
  expect(page.url().endsWith(`#/user/${encodeURIComponent(userId)}`), `url ${page.url()}`);
  for (const c of ['#interest-categories-chart', '#interest-brands-chart', '#interest-items-chart', '#funnel-chart']) await expectCanvas(c);
  await page.waitForSelector('#activity-heatmap .heat-cell');
  expect((await page.locator('#activity-heatmap .heat-hours .heat-cell').count()) === 24, 'hour heatmap is not 24 cells');
  await page.waitForSelector('#timeline tbody tr');
  await page.waitForSelector('#gauge-propensity');
  await page.waitForSelector('#gauge-churn');
  await page.waitForSelector('[data-testid=lifecycle-stage]');
  await page.waitForSelector('#rfm [data-testid=rfm-monetary]');
  await page.waitForSelector('#signals [data-testid=anomaly-flags]');
  const hasRecs = await page.locator('#recommendations li').count();
  const text = (await page.locator('main').innerText()).toLowerCase();
  for (const s of ['RFM', 'Signals', 'Funnel', 'Categories', 'Brands', 'Recent events', 'Predictions', 'Recommendations']) expect(text.includes(s.toLowerCase()), `user page lacks "${s}"`);
  const size = await screenshot('user');
  // An unknown user is a note, not a broken page.
  await page.goto(`${base}/#/user/no-such-user-${Date.now()}`);
  await page.waitForSelector('[data-testid=user-not-found]');
  expectNoPageErrors();
  return `${hasRecs} recommendations, screenshot ${size} B`;
});

await step('segments & models: sizes chart and model metrics', async () => {
  await page.goto(`${base}/#/segments`);
  await expectCanvas('#segments-chart');
  await page.waitForSelector('#segments-table tbody tr');
  await page.waitForSelector('[data-testid=model][data-name=segments]');
  expectNoPageErrors();
  return `${await page.locator('#segments-table tbody tr').count()} segments, screenshot ${await screenshot('segments')} B`;
});

// ---- audiences (the /v1/audiences routes) ---------------------------------------------------------

const audienceName = `browser_buyers_${process.pid}`;
let audienceId = '';

await step('audiences: field picker from /v1/audiences:fields', async () => {
  await page.goto(`${base}/#/audiences`);
  await page.waitForSelector('#field-picker [data-field="orders"], #field-picker .error');
  const error = page.locator('#field-picker .error');
  if (await error.count()) throw new Error(await error.innerText());
  const n = await page.locator('#field-picker [data-field]').count();
  expect(n > 10, `only ${n} fields in the picker`);
  return `${n} fields`;
});

await step('audiences: a bad condition shows its error column', async () => {
  await page.fill('#audience-condition', 'orders >= and views > 1');
  await page.waitForSelector('#condition-error-mark', { state: 'visible' });
  const msg = await page.locator('#condition-error-text').innerText();
  expect(/column \d+/.test(msg), `error without a column: ${msg}`);
  return msg;
});

let count = 0;
await step('audiences: build a condition with the picker and get a live count', async () => {
  await page.fill('#audience-condition', '');
  await page.click('#field-picker [data-field="orders"]');
  await page.locator('#audience-condition').press('End');
  await page.keyboard.type(' >= 1');
  await page.waitForFunction(() => {
    const el = document.querySelector('#audience-count');
    return el?.dataset.count !== undefined && document.querySelector('#audience-condition').value.trim() === 'orders >= 1';
  });
  await page.waitForFunction(() => document.querySelector('#condition-error')?.hidden === true);
  count = Number(await page.locator('#audience-count').getAttribute('data-count'));
  expect(count > 0 && count < 5000, `count ${count} for orders >= 1`);
  await page.waitForSelector('#sample-table tbody tr');
  return `${count} buyers`;
});

await step('audiences: report, exact and with DP noise', async () => {
  await page.click('#report-run');
  await page.waitForSelector('#audience-report [data-testid=report-dp], #audience-report .error');
  const errors = page.locator('#audience-report .error');
  if (await errors.count()) throw new Error(`report error: ${await errors.innerText()}`);
  const size = Number((await page.locator('[data-testid=report-size] .kpi-value').innerText()).replace(/,/g, ''));
  expect(size === count, `exact report size ${size}, the count was ${count}`);
  await page.fill('#report-epsilon', '1');
  await page.click('#report-run');
  await page.waitForFunction(() => /ε = 1\b/.test(document.querySelector('#audience-report [data-testid=report-dp]')?.textContent ?? ''));
  await expectCanvas('#audience-report canvas');
  await page.fill('#report-epsilon', '');
  return `size ${size}`;
});

await step('audiences: save and see it in the saved list', async () => {
  await page.fill('#audience-name', audienceName);
  await page.click('#audience-save');
  const row = page.locator(`[data-testid=audience-row][data-name="${audienceName}"]`);
  await row.waitFor();
  audienceId = (await row.getAttribute('data-id')) ?? '';
  expect(audienceId, 'saved row has no id');
  const size = Number((await row.locator('[data-testid=audience-size]').innerText()).replace(/,/g, ''));
  expect(size > 0, `saved audience size ${size}`);
  return `${audienceId}: ${size} members`;
});

await step('audiences: export CSV (download) and NDJSON (fetch) have a header and rows', async () => {
  const [download] = await Promise.all([page.waitForEvent('download'), page.click('#export-csv')]);
  const csv = readFileSync(await download.path(), 'utf8').trim().split(/\r?\n/);
  expect(csv.length >= 2, `CSV has ${csv.length} lines`);
  expect(csv[0].split(',')[0].replace(/"/g, '') === 'user_id', `CSV header: ${csv[0]}`);
  expect(csv.length - 1 === count, `CSV has ${csv.length - 1} rows, the count was ${count}`);
  const r = await fetch(`${base}/v1/audiences/${encodeURIComponent(audienceId)}/export?format=ndjson`);
  expect(r.status === 200, `saved export -> ${r.status}`);
  const lines = (await r.text()).trim().split('\n').filter(Boolean);
  expect(lines.length >= 1, 'NDJSON export has no rows');
  const first = JSON.parse(lines[0]);
  expect(typeof first.user_id === 'string', `NDJSON row without user_id: ${lines[0]}`);
  const size = await screenshot('audiences');
  return `CSV ${csv.length - 1} rows, NDJSON ${lines.length} rows, screenshot ${size} B`;
});

await step('audiences: delete from the saved list', async () => {
  const row = page.locator(`[data-testid=audience-row][data-name="${audienceName}"]`);
  await row.locator('[data-testid=audience-delete]').click();
  await row.waitFor({ state: 'detached' });
  expectNoPageErrors();
});

await step('persona serve stops cleanly on SIGTERM after the session', async () => {
  await browser.close();
  browser = null;
  const exited = new Promise((r) => server.once('exit', (code, signal) => r({ code, signal })));
  server.kill('SIGTERM');
  const result = await Promise.race([exited, new Promise((r) => setTimeout(() => r(null), 30000))]);
  expect(result, 'still running 30 s after SIGTERM');
  expect(result.code === 0, `exit ${result.code ?? result.signal} (ASan report or crash? see the output)`);
});

await finish(0);
