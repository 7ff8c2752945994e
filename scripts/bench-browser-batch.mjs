#!/usr/bin/env node
/**
 * Browser batch benchmark (prints numbers; not a test). Assumes `npx vite build` was done.
 *
 *   node scripts/bench-browser-batch.mjs [--dir ../shared/data/kermany-cxr-224/test] [--backend wasm|webgpu|auto]
 *                                        [--model pneumonia-vit] [--port 4174] [--no-warmup] [--timeout-min 30]
 *                                        [--dist dist] [--no-cli] [--clip cxr-clip] [--cli-batch 16] [--threads 2]
 *                                        [--cli-dtype fp32|int8] [--compare DIST2[,DIST3]]
 *
 * Unless --no-cli, `npm run label` (app/cli/label.ts: onnxruntime-web's Node build, the same engines and models:
 * the classifier and --clip, as the dtype the app ran unless --cli-dtype) labels the same folder after the browser in
 * the same run, and the line printed last holds both numbers: {browser: {...}, cli: {...}, browser_over_cli}. --compare runs each further build (port+1, port+2...) after
 * the first, in the same run, as `compare: [...]`. Each browser result carries `profile` (pageProfile below).
 *
 * Starts `vite preview` on 127.0.0.1:PORT (and stops it at the end), launches Debian's /usr/bin/chromium through
 * playwright-core (never downloads a browser), opens the app, picks the backend and classifier like
 * tests/e2e/helpers.ts openApp, switches to Batch and gives the whole folder to the batch folder input. Unless
 * --no-warmup, one image is run and cleared first so that model download/session creation is not timed (as in
 * `npm run label`, whose images_per_second excludes model loading). Waits for `N / N processed` and `finished`, then
 * prints one JSON line: {images, seconds, images_per_second, backend, model, accuracy, auc, precision_at_5, ...},
 * read from the metrics view's data-testids. Progress goes to stderr.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const log = (m) => process.stderr.write(`[bench] ${m}\n`);

function parseArgs(argv) {
  const a = {
    dir: path.resolve(REPO, '../shared/data/kermany-cxr-224/test'),
    backend: 'wasm',
    model: 'pneumonia-vit',
    port: 4174,
    warmup: true,
    timeoutMin: 30,
    dist: 'dist',
    cli: true,
    clip: 'cxr-clip',
    cliBatch: 16,
    threads: 2,
    cliDtype: null,
    compare: [],
  };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i];
    const v = () => {
      const x = argv[++i];
      if (x === undefined) throw new Error(`${k} needs a value`);
      return x;
    };
    if (k === '--dir') a.dir = path.resolve(v());
    else if (k === '--backend') a.backend = v();
    else if (k === '--model') a.model = v();
    else if (k === '--port') a.port = Number(v());
    else if (k === '--no-warmup') a.warmup = false;
    else if (k === '--timeout-min') a.timeoutMin = Number(v());
    else if (k === '--dist') a.dist = v();
    else if (k === '--no-cli') a.cli = false;
    else if (k === '--clip') a.clip = v();
    else if (k === '--cli-batch') a.cliBatch = Number(v());
    else if (k === '--threads') a.threads = Number(v());
    else if (k === '--cli-dtype') a.cliDtype = v();
    else if (k === '--compare') a.compare = v().split(',').filter(Boolean);
    else if (k === '-h' || k === '--help') {
      process.stdout.write('usage: node scripts/bench-browser-batch.mjs [--dir DIR] [--backend wasm|webgpu|auto] [--model ID] [--port 4174] [--no-warmup] [--timeout-min 30] [--dist dist] [--no-cli] [--clip ID] [--cli-batch 16] [--threads 2] [--cli-dtype fp32|int8] [--compare DIST2[,DIST3]]\n');
      process.exit(0);
    } else throw new Error(`unknown argument ${k}`);
  }
  if (!['wasm', 'webgpu', 'auto'].includes(a.backend)) throw new Error(`--backend must be wasm, webgpu or auto, got ${a.backend}`);
  return a;
}

/** Files under dir, recursively (hidden entries skipped), sorted. */
function walk(dir) {
  const out = [];
  for (const name of fs.readdirSync(dir).sort()) {
    if (name.startsWith('.')) continue;
    const p = path.join(dir, name);
    const st = fs.statSync(p);
    if (st.isDirectory()) out.push(...walk(p));
    else if (st.isFile()) out.push(p);
  }
  return out;
}

async function waitForHttp(url, ms, server) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (server.exitCode !== null) throw new Error(`vite preview exited with ${server.exitCode} (port in use? dist missing?)`);
    try {
      const r = await fetch(url);
      if (r.ok) return;
    } catch {
      // not up yet
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`${url} did not answer within ${ms / 1000} s`);
}

function startPreview(port, dist) {
  if (!fs.existsSync(path.join(REPO, dist, 'index.html'))) throw new Error(`${dist}/ is missing: run \`npx vite build --outDir ${dist}\` first`);
  // Own process group, so the whole npx → vite tree can be stopped by its id at the end.
  const server = spawn('npx', ['vite', 'preview', '--host', '127.0.0.1', '--port', String(port), '--strictPort', '--outDir', dist], {
    cwd: REPO,
    detached: true,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  server.stderr.on('data', (d) => process.stderr.write(`[vite] ${d}`));
  return server;
}

function stopPreview(server) {
  if (!server || server.exitCode !== null) return;
  try {
    process.kill(-server.pid, 'SIGTERM');
  } catch {
    // already gone
  }
}

const text = async (page, testId) => {
  const loc = page.getByTestId(testId);
  return (await loc.count()) ? (await loc.first().innerText()).trim() : null;
};
/** Text of testId inside the element with testid `outer` (e.g. the runtime panel of one model), if rendered. */
const scoped = async (page, outer, testId) => {
  const loc = page.getByTestId(outer).getByTestId(testId);
  return (await loc.count()) ? (await loc.first().textContent())?.trim() ?? null : null;
};
const num = (s) => {
  const m = s?.match(/-?\d+(\.\d+)?/);
  return m ? Number(m[0]) : null;
};

async function waitFinished(page, total, timeoutMs) {
  await page.waitForFunction(
    (n) => {
      const t = document.querySelector('[data-testid="batch-progress-text"]')?.textContent ?? '';
      return t.includes(`${n} / ${n} processed`) && t.includes('finished');
    },
    total,
    { timeout: timeoutMs, polling: 100 },
  );
}

/**
 * Where the batch's time went in the page: per phase of app/lib/batch/timing.ts (decode of a chunk in the imaging
 * pool, each model's call and its ORT run time, the journal write, the rows' state update) the number of chunks, the
 * summed and largest ms, the summed details; and the main thread's long tasks (> 50 ms: React renders, derivations).
 */
async function pageProfile(page) {
  return page.evaluate(() => {
    const phases = {};
    for (const e of performance.getEntriesByType('measure')) {
      if (!e.name.startsWith('batch:')) continue;
      const s = (phases[e.name.slice(6)] ??= { count: 0, total_ms: 0, max_ms: 0 });
      s.count++;
      s.total_ms += e.duration;
      s.max_ms = Math.max(s.max_ms, e.duration);
      for (const [k, v] of Object.entries(e.detail ?? {})) if (typeof v === 'number') s[`${k}_total`] = (s[`${k}_total`] ?? 0) + v;
    }
    for (const s of Object.values(phases)) for (const k of Object.keys(s)) s[k] = Math.round(s[k]);
    const lt = globalThis.__longTasks ?? { count: 0, totalMs: 0, maxMs: 0 };
    return { phases, long_tasks: { count: lt.count, total_ms: Math.round(lt.totalMs), max_ms: Math.round(lt.maxMs) } };
  });
}

/** The CLI's per-phase profile (its stderr line `profile {...}`), or null. */
function cliProfile(stderr) {
  const line = stderr.split('\n').find((l) => l.startsWith('profile {'));
  try {
    return line ? JSON.parse(line.slice('profile '.length)) : null;
  } catch {
    return null;
  }
}

/** `npm run label` on the same folder and models; its metrics JSON (last stdout line) with images_per_second. */
function runCli(args) {
  const out = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'bench-cli-')), 'labeled_dataset.csv');
  const argv = ['tsx', 'app/cli/label.ts', args.dir, '--model', args.model, '--clip', args.clip, '--batch', String(args.cliBatch), '--threads', String(args.threads), ...(args.cliDtype ? ['--dtype', args.cliDtype] : []), '--out', out];
  log(`cli: npx ${argv.join(' ')}`);
  return new Promise((resolve, reject) => {
    const p = spawn('npx', argv, { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => {
      stderr += d;
      process.stderr.write(`[cli] ${d}`);
    });
    p.on('close', (code) => {
      if (code !== 0) return reject(new Error(`npm run label exited with ${code}`));
      const last = stdout.trim().split('\n').pop();
      try {
        const m = JSON.parse(last);
        resolve({ images_per_second: m.images_per_second, accuracy: m.accuracy, auc: m.auc, zero_shot_auc: m.zero_shot_auc, threads: args.threads, batch: args.cliBatch, clip: args.clip, dtype: m.dtype, profile: cliProfile(stderr) });
      } catch (e) {
        reject(new Error(`npm run label's last line is not JSON: ${last}`));
      }
    });
  });
}

/** One browser run of the whole folder on the build `dist` served on `port`: the result object (see the header). */
async function runBrowser(args, files, dist, port) {
  const base = `http://127.0.0.1:${port}`;
  let server;
  let browser;
  const stop = () => stopPreview(server);
  const onInt = () => {
    stop();
    process.exit(130);
  };
  process.on('SIGINT', onInt);
  try {
    // Another job's server on this port would answer for ours (and the run would time someone else's build).
    if (await fetch(base).then(() => true, () => false)) throw new Error(`port ${port} is already served by another process: pass another --port`);
    server = startPreview(port, dist);
    await waitForHttp(base, 60_000, server);
    log(`vite preview of ${dist} on ${base}`);
    browser = await chromium.launch({
      executablePath: '/usr/bin/chromium',
      headless: true,
      args: ['--enable-unsafe-webgpu', '--no-sandbox', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'],
    });
    const context = await browser.newContext({ viewport: { width: 1400, height: 900 }, serviceWorkers: 'block' });
    // Main-thread long tasks (> 50 ms) over the whole run: time the page could not spend on the batch's messages.
    await context.addInitScript(() => {
      const lt = (globalThis.__longTasks = { count: 0, totalMs: 0, maxMs: 0 });
      try {
        new PerformanceObserver((list) => {
          for (const e of list.getEntries()) {
            lt.count++;
            lt.totalMs += e.duration;
            lt.maxMs = Math.max(lt.maxMs, e.duration);
          }
        }).observe({ type: 'longtask' });
      } catch {
        // no Long Tasks API: the profile says 0
      }
    });
    const page = await context.newPage();
    const errors = [];
    page.on('pageerror', (e) => errors.push(e.message));
    page.setDefaultTimeout(60_000);

    // openApp (tests/e2e/helpers.ts)
    await page.goto(base + '/');
    await page.getByTestId('dropzone').waitFor({ state: 'visible' });
    await page.getByTestId('backend-select').selectOption(args.backend);
    const opt = page.getByTestId('classifier-select').locator(`option[value="${args.model}"]`);
    await opt.waitFor({ state: 'attached' });
    await page.getByTestId('classifier-select').selectOption(args.model);
    await page.getByRole('button', { name: 'Batch' }).click();
    await page.getByTestId('batch-folder-input').waitFor({ state: 'attached' });

    const timeoutMs = args.timeoutMin * 60_000;
    if (args.warmup) {
      const t = performance.now();
      await page.getByTestId('batch-file-input').setInputFiles(files[0]);
      await waitFinished(page, 1, timeoutMs);
      await page.getByRole('button', { name: 'Clear' }).click();
      await page.waitForFunction(() => !document.querySelector('[data-testid="batch-progress-text"]'));
      log(`warm-up (model load + 1 image) ${((performance.now() - t) / 1000).toFixed(1)} s`);
    }

    log(`${files.length} files from ${args.dir} → batch folder input (${args.backend}, ${args.model})`);
    await page.evaluate(() => Object.assign(globalThis.__longTasks, { count: 0, totalMs: 0, maxMs: 0 }));
    const t0 = performance.now();
    await page.getByTestId('batch-folder-input').setInputFiles(args.dir);
    // The total is what the app counted (every file of the folder becomes a row).
    await page.getByTestId('batch-progress-text').waitFor({ state: 'visible' });
    const total = Number((await text(page, 'batch-progress-text')).match(/\/\s*(\d+)\s+processed/)[1]);
    let last = '';
    const ticker = setInterval(async () => {
      const s = await text(page, 'batch-progress-text').catch(() => null);
      if (s && s !== last) log((last = s));
    }, 10_000);
    try {
      await waitFinished(page, total, timeoutMs);
    } finally {
      clearInterval(ticker);
    }
    const seconds = (performance.now() - t0) / 1000;
    const profile = await pageProfile(page);
    const failed = await page.locator('[data-testid="batch-table"] tbody tr[data-status="error"]').count();
    await page.getByTestId('batch-metrics').waitFor({ state: 'visible' }).catch(() => {});
    const progress = await text(page, 'batch-progress-text');
    const throughputText = await text(page, 'batch-throughput');
    const result = {
      images: total,
      failed,
      seconds: Number(seconds.toFixed(2)),
      images_per_second: Number((total / seconds).toFixed(2)),
      app_images_per_second: num(throughputText),
      backend: args.backend,
      model: args.model,
      warmup: args.warmup,
      threshold: num(await text(page, 'threshold-value')),
      accuracy: num(await text(page, 'metric-accuracy')),
      auc: num(await text(page, 'metric-auc')),
      precision_at_5: num(await text(page, 'metric-precision-at-5')),
      progress,
      backend_used: await scoped(page, `runtime-${args.model}`, 'runtime-backend'),
      dtype: await scoped(page, `runtime-${args.model}`, 'runtime-dtype'),
      page_errors: errors.length,
      dir: args.dir,
      dist,
      profile,
    };
    // The runtime panel (backend actually used, dtype) lives in the Viewer tab.
    await page.getByRole('button', { name: 'Viewer' }).click();
    await page.getByTestId(`runtime-${args.model}`).getByTestId('runtime-backend').waitFor({ timeout: 10_000 }).catch(() => {});
    result.backend_used = await scoped(page, `runtime-${args.model}`, 'runtime-backend');
    result.dtype = await scoped(page, `runtime-${args.model}`, 'runtime-dtype');
    result.clip_dtype = await scoped(page, `runtime-${args.clip}`, 'runtime-dtype');
    if (errors.length) log(`page errors:\n  ${errors.join('\n  ')}`);
    return result;
  } finally {
    if (browser) await browser.close().catch(() => {});
    stop();
    process.off('SIGINT', onInt);
  }
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  if (!fs.existsSync(args.dir)) throw new Error(`no such folder: ${args.dir}`);
  const files = walk(args.dir);
  if (!files.length) throw new Error(`no files under ${args.dir}`);
  fs.mkdirSync(path.join(REPO, 'test-results'), { recursive: true });
  // --compare: the builds in turn (same load for each), each on its own port; the first is --dist.
  const dists = [args.dist, ...args.compare];
  const results = [];
  for (const [k, dist] of dists.entries()) {
    const r = await runBrowser(args, files, dist, args.port + k);
    log(`${dist}: ${r.images_per_second} images/s`);
    results.push(r);
  }
  const [result, ...others] = results;
  // The CLI runs the variant the app ran (its auto choice is the app's, e.g. static int8 on WASM), unless --cli-dtype.
  const cliDtype = args.cliDtype ?? (/^(fp32|int8|fp16)$/.test(result.dtype ?? '') ? result.dtype : null);
  if (!args.cliDtype && result.clip_dtype && result.clip_dtype !== result.dtype) log(`the app ran ${args.model} ${result.dtype} and ${args.clip} ${result.clip_dtype}; the CLI runs both as ${cliDtype}`);
  const cli = args.cli ? await runCli({ ...args, cliDtype }) : null;
  if (cli) log(`cli: ${cli.images_per_second} images/s`);
  const over = (r) => (cli ? Number((r.images_per_second / cli.images_per_second).toFixed(2)) : undefined);
  const out = cli ? { browser: result, cli, browser_over_cli: over(result) } : { ...result };
  if (others.length) out.compare = others.map((r) => ({ ...r, ...(cli ? { browser_over_cli: over(r) } : {}) }));
  process.stdout.write(JSON.stringify(out) + '\n');
}

main().catch((e) => {
  process.stderr.write(`[bench] error: ${e instanceof Error ? e.stack ?? e.message : String(e)}\n`);
  process.exitCode = 1;
});
