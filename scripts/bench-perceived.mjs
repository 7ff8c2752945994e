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
 * Needs the test build's store hook (`npm run build:test`). startPreview and measurePerceived are exported for
 * scripts/bench/browser-graphs.ts (`npm run bench:browser-graphs`), which adds these numbers to its table.
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
    const m = s.chosenModelId.classifier ? s.models[s.chosenModelId.classifier] : undefined;
    return { classifier: s.chosenModelId.classifier, status: m?.status, dtype: m?.report?.dtype, backend: m?.report?.backend, sessionCreateMs: m?.report?.sessionCreateMs };
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
      // Every model the prewarm creates a session for (the classifier, then CLIP): a session still being created
      // when the X-ray is dropped shares the cores with the classification.
      return s.chosenModelId.classifier && s.models[s.chosenModelId.classifier]?.status === 'ready' && (!s.chosenModelId.clip || s.models[s.chosenModelId.clip]?.status === 'ready');
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

/**
 * `vite preview` of dist/ on 127.0.0.1:port (COOP/COEP from vite.config.ts), up and answering.
 * Returns its base URL and a stop() that ends the server's process group.
 */
export async function startPreview(port) {
  if (!fs.existsSync(path.join(REPO, 'dist', 'index.html'))) throw new Error('dist/ is missing: run `npm run build:test` first');
  const server = spawn('npx', ['vite', 'preview', '--host', '127.0.0.1', '--port', String(port), '--strictPort'], { cwd: REPO, detached: true, stdio: 'ignore' });
  const stop = () => {
    try {
      process.kill(-server.pid, 'SIGTERM');
    } catch {
      /* gone */
    }
  };
  const base = `http://127.0.0.1:${port}`;
  try {
    await waitForHttp(base, 60_000);
  } catch (e) {
    stop();
    throw e;
  }
  return { base, stop };
}

/**
 * The three visits on one fresh persistent profile (a temp folder, removed after): fresh profile, warm profile
 * dropped at once, warm profile after the idle prewarm. Times in ms; load averages at start and end.
 */
export async function measurePerceived(base, image) {
  if (!fs.existsSync(image)) throw new Error(`no such image ${image}`);
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'cxr-perceived-'));
  try {
    const context = await chromium.launchPersistentContext(profile, {
      executablePath: '/usr/bin/chromium',
      headless: true,
      viewport: { width: 1400, height: 900 },
      args: ['--enable-unsafe-webgpu', '--no-sandbox', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'],
    });
    try {
      const load0 = os.loadavg();
      const fresh = await visit(context, base, image, { waitPrewarm: false });
      log(`fresh profile: ${JSON.stringify(fresh)}`);
      const warmNoWait = await visit(context, base, image, { waitPrewarm: false });
      log(`warm, dropped at once: ${JSON.stringify(warmNoWait)}`);
      const warm = await visit(context, base, image, { waitPrewarm: true });
      log(`warm, after idle prewarm: ${JSON.stringify(warm)}`);
      return { image: path.basename(image), fresh_profile: fresh, warm_dropped_at_once: warmNoWait, warm_after_prewarm: warm, load_average: [load0, os.loadavg()].map((l) => l.map((x) => Math.round(x * 100) / 100)), cores: os.cpus().length };
    } finally {
      await context.close();
    }
  } finally {
    fs.rmSync(profile, { recursive: true, force: true });
  }
}

async function main() {
  const a = parseArgs(process.argv.slice(2));
  const { base, stop } = await startPreview(a.port);
  try {
    process.stdout.write(JSON.stringify(await measurePerceived(base, a.image)) + '\n');
  } finally {
    stop();
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((e) => {
    console.error(e);
    process.exit(1);
  });
}
