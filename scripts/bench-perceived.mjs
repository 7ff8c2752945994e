#!/usr/bin/env node
/**
 * Perceived speed in the browser (issue 12.4; prints numbers, not a test). Assumes `npx vite build` was done.
 *
 *   node scripts/bench-perceived.mjs [--image ../shared/data/kermany-cxr-224/test/PNEUMONIA/person99_bacteria_473.jpeg]
 *                                    [--port 4176]
 *
 * One persistent Chromium profile (a temp folder), three visits of the built app served by `vite preview`:
 *   1. fresh profile: page load, then drop the X-ray → first classification shown (includes the default classifier's
 *      download, its sha256 check, the WASM session and the inference);
 *   2. warm profile, dropped as soon as the page is up (models cached; session creation not yet done);
 *   3. warm profile after the idle prewarm finished (store.prewarm: sessions created while the page is idle) →
 *      drop → result: what a returning user sees.
 * Prints one JSON line with every time in ms, plus the machine's load average (shared machine).
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const log = (m) => process.stderr.write(`[perceived] ${m}\n`);

function parseArgs(argv) {
  const a = { image: path.resolve(REPO, '../shared/data/kermany-cxr-224/test/PNEUMONIA/person99_bacteria_473.jpeg'), port: 4176 };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i];
    const v = () => argv[++i];
    if (k === '--image') a.image = path.resolve(v());
    else if (k === '--port') a.port = Number(v());
    else throw new Error(`unknown argument ${k}`);
  }
  return a;
}

async function waitForHttp(url, ms) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    try {
      if ((await fetch(url)).ok) return;
    } catch {
      /* not up yet */
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`${url} did not answer`);
}

const state = (page) =>
  page.evaluate(() => {
    const s = window.cxrStudio.store.getState();
    const m = s.classifierId ? s.models[s.classifierId] : undefined;
    return { classifier: s.classifierId, status: m?.status, dtype: m?.report?.dtype, backend: m?.report?.backend, sessionCreateMs: m?.report?.sessionCreateMs };
  });

async function visit(context, base, image, { waitPrewarm }) {
  const page = await context.newPage();
  const t0 = performance.now();
  await page.goto(base + '/');
  await page.getByTestId('dropzone').waitFor({ state: 'visible' });
  await page.waitForFunction(() => !!window.cxrStudio?.store.getState().manifest, null, { timeout: 60_000 });
  const appLoad = performance.now() - t0;
  let prewarm = null;
  if (waitPrewarm) {
    const t = performance.now();
    await page.waitForFunction(() => {
      const s = window.cxrStudio.store.getState();
      return s.classifierId && s.models[s.classifierId]?.status === 'ready';
    }, null, { timeout: 120_000 });
    prewarm = performance.now() - t;
  }
  const t1 = performance.now();
  await page.getByTestId('file-input').setInputFiles(image);
  await page.getByTestId('classification-result').waitFor({ state: 'visible', timeout: 300_000 });
  const dropToResult = performance.now() - t1;
  const st = await state(page);
  await page.close();
  return { app_load_ms: Math.round(appLoad), prewarm_ms: prewarm == null ? null : Math.round(prewarm), drop_to_result_ms: Math.round(dropToResult), ...st };
}

async function main() {
  const a = parseArgs(process.argv.slice(2));
  if (!fs.existsSync(path.join(REPO, 'dist', 'index.html'))) throw new Error('dist/ is missing: run `npx vite build` first');
  if (!fs.existsSync(a.image)) throw new Error(`no such image ${a.image}`);
  const server = spawn('npx', ['vite', 'preview', '--host', '127.0.0.1', '--port', String(a.port), '--strictPort'], { cwd: REPO, detached: true, stdio: 'ignore' });
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'cxr-perceived-'));
  const base = `http://127.0.0.1:${a.port}`;
  try {
    await waitForHttp(base, 60_000);
    const context = await chromium.launchPersistentContext(profile, {
      executablePath: '/usr/bin/chromium',
      headless: true,
      viewport: { width: 1400, height: 900 },
      args: ['--enable-unsafe-webgpu', '--no-sandbox', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'],
    });
    const load0 = os.loadavg();
    const fresh = await visit(context, base, a.image, { waitPrewarm: false });
    log(`fresh profile: ${JSON.stringify(fresh)}`);
    const warmNoWait = await visit(context, base, a.image, { waitPrewarm: false });
    log(`warm, dropped at once: ${JSON.stringify(warmNoWait)}`);
    const warm = await visit(context, base, a.image, { waitPrewarm: true });
    log(`warm, after idle prewarm: ${JSON.stringify(warm)}`);
    await context.close();
    process.stdout.write(JSON.stringify({ image: path.basename(a.image), fresh_profile: fresh, warm_dropped_at_once: warmNoWait, warm_after_prewarm: warm, load_average: [load0, os.loadavg()].map((l) => l.map((x) => Math.round(x * 100) / 100)), cores: os.cpus().length }) + '\n');
  } finally {
    try {
      process.kill(-server.pid, 'SIGTERM');
    } catch {
      /* gone */
    }
    fs.rmSync(profile, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
