/**
 * `npm run bench:browser-graphs`: the whole browser picture in one run (issue 12.2; prints numbers, not a test).
 *
 *  1. Every ONNX graph of public/models/manifest.json (discoverGraphs of scripts/bench/run.ts) on the WASM and WebGPU
 *     EPs inside Debian's Chromium (WebGPU is SwiftShader on the CPU machines), on the same seeded inputs as
 *     `npm run bench` (writeFeeds: `cxr_export bench feeds`). Each (graph, EP) runs in a fresh page of the app's own
 *     origin (served by `vite preview` of dist/, cross-origin isolated) with the app's own ORT from /ort/ — nothing is
 *     added to the bundle, so it still holds exactly one ORT. Reported: cold session creation, first run, warm
 *     p50/p95/min over --warm runs at batch 1 and over --batch-iters runs at the app's batch (appBatch).
 *  2. Perceived speed (scripts/bench-perceived.mjs): app load, fresh profile drop → first result, warm profile
 *     (dropped at once, and after the idle prewarm) drop → first result.
 *
 * Output: <out>/browser-graphs.json and browser-graphs.md (printed too). With <out>/bench.json from `npm run bench`,
 * a column gives browser WASM ÷ Node WASM per graph.
 *
 *   npm run build:test && npm run bench:browser-graphs -- [--eps wasm,webgpu] [--family sam] [--model ID]
 *       [--threads 2] [--warm 20] [--batch-iters 5] [--max-graph-s 60] [--webgpu-slowdown 100] [--port 4177]
 *       [--image X.jpeg] [--no-perceived] [--node-json bench-results/bench.json] [--out bench-results]
 *
 * The test build (`npm run build:test`) is needed for the perceived part only (it reads the store's test hook).
 * --max-graph-s: per (graph, EP) time cap. WebGPU on SwiftShader is ~100x slower than WASM, so WebGPU gets the tiny-*
 *   fixtures, plus any other graph whose browser WASM time × --webgpu-slowdown fits the cap; inside the page no new
 *   run starts once the cap is spent, and a call still running at cap + 30 s closes the page. Every skip and cut is
 *   printed ('skipped: over cap ...') and is a row of the table.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Route } from 'playwright-core';
// @ts-expect-error plain ESM script without type declarations
import { measurePerceived, startPreview } from '../bench-perceived.mjs';
import { graphTable, nodeWasmIndex, perceivedTable, webgpuGate, type BrowserRow } from './browser-report';
import { discoverGraphs, machine, writeFeeds, type BenchGraph, type FeedsIndex } from './run';
import { summarize } from './stats';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const MODELS_DIR = path.join(ROOT, 'public', 'models');
const PAGE_JS = path.join(ROOT, 'scripts', 'bench', 'browser-page.js');
const log = (m: string) => process.stderr.write(`[browser-graphs] ${m}\n`);

/** The launch flags of playwright.config.ts (WebGPU on SwiftShader; never --use-vulkan here). */
const CHROMIUM_ARGS = ['--enable-unsafe-webgpu', '--no-sandbox', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'];

interface Args {
  eps: ('wasm' | 'webgpu')[];
  families?: string[];
  model?: string;
  threads: number;
  warm: number;
  batchIters: number;
  maxGraphS: number;
  slowdown: number;
  port: number;
  image: string;
  perceived: boolean;
  nodeJson: string;
  out: string;
}

function parseArgs(argv: string[]): Args {
  const out = path.join(ROOT, 'bench-results');
  const a: Args = {
    eps: ['wasm', 'webgpu'],
    threads: 2,
    warm: 20,
    batchIters: 5,
    maxGraphS: 60,
    slowdown: 100,
    port: 4177,
    image: path.resolve(ROOT, '../shared/data/kermany-cxr-224/test/PNEUMONIA/person99_bacteria_473.jpeg'),
    perceived: true,
    nodeJson: path.join(out, 'bench.json'),
    out,
  };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i];
    const v = () => {
      const x = argv[++i];
      if (x === undefined) throw new Error(`${k} needs a value`);
      return x;
    };
    if (k === '--eps') a.eps = v().split(',') as Args['eps'];
    else if (k === '--family') a.families = v().split(',');
    else if (k === '--model') a.model = v();
    else if (k === '--threads') a.threads = Number(v());
    else if (k === '--warm') a.warm = Number(v());
    else if (k === '--batch-iters') a.batchIters = Number(v());
    else if (k === '--max-graph-s') a.maxGraphS = Number(v());
    else if (k === '--webgpu-slowdown') a.slowdown = Number(v());
    else if (k === '--port') a.port = Number(v());
    else if (k === '--image') a.image = path.resolve(v());
    else if (k === '--no-perceived') a.perceived = false;
    else if (k === '--node-json') a.nodeJson = path.resolve(v());
    else if (k === '--out') a.out = path.resolve(v());
    else if (k === '--help' || k === '-h') {
      console.log(fs.readFileSync(fileURLToPath(import.meta.url), 'utf8').split('*/')[0]);
      process.exit(0);
    } else throw new Error(`unknown option ${k}`);
  }
  for (const e of a.eps) if (e !== 'wasm' && e !== 'webgpu') throw new Error(`--eps takes wasm and/or webgpu, got ${e}`);
  return a;
}

/** What page.evaluate gets back from browser-page.js run(): raw times per batch. */
interface PageResult {
  ort_version: string | null;
  ort_import_ms: number | null;
  threads: number;
  cold_create_ms: number;
  second_create_ms: number;
  first_run_ms: number;
  first_run_batch: number;
  batches: Record<string, number[]>;
  over_cap: boolean;
  /** From the first run to the last (every run timed or not). */
  runs_ms: number;
  total_ms: number;
}

/**
 * Serves /__bench/ on the app's origin: the bench page (COOP/COEP, like vite.config.ts's headers, so the page is
 * cross-origin isolated and its subresources may load), its script, and the feed files of this run.
 */
function benchRoute(feedsDir: string) {
  const html = '<!doctype html><meta charset="utf-8"><title>cxr-studio graph bench</title><script type="module" src="/__bench/page.js"></script>';
  const headers = { 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp', 'Cross-Origin-Resource-Policy': 'same-origin', 'Cache-Control': 'no-store' };
  return async (route: Route) => {
    const p = new URL(route.request().url()).pathname;
    if (p === '/__bench/' || p === '/__bench/index.html') return route.fulfill({ status: 200, headers: { ...headers, 'Content-Type': 'text/html' }, body: html });
    if (p === '/__bench/page.js') return route.fulfill({ status: 200, headers: { ...headers, 'Content-Type': 'text/javascript' }, body: fs.readFileSync(PAGE_JS, 'utf8') });
    const m = /^\/__bench\/feeds\/([\w.-]+)$/.exec(p);
    const f = m && path.join(feedsDir, m[1]);
    if (f && fs.existsSync(f)) return route.fulfill({ status: 200, headers: { ...headers, 'Content-Type': 'application/octet-stream' }, body: fs.readFileSync(f) });
    return route.fulfill({ status: 404, headers, body: 'not found' });
  };
}

function rowBase(g: BenchGraph, ep: 'wasm' | 'webgpu'): Omit<BrowserRow, 'status'> {
  return { key: g.key, model: g.model, weights: g.weights, dtype: g.dtype, role: g.role, bytes: g.bytes, app_batch: g.app_batch, ep };
}

/** One (graph, EP) in a fresh page; the page is closed after, or when the call overruns the cap by 30 s. */
async function benchOne(browser: Browser, base: string, feedsDir: string, g: BenchGraph, feeds: FeedsIndex[string], ep: 'wasm' | 'webgpu', a: Args): Promise<BrowserRow> {
  const context = await browser.newContext({ serviceWorkers: 'block' });
  await context.route(`${base}/__bench/**`, benchRoute(feedsDir));
  const page = await context.newPage();
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  let timer: NodeJS.Timeout | undefined;
  try {
    await page.goto(`${base}/__bench/index.html`);
    await page.waitForFunction('!!window.cxrBench', null, { timeout: 30_000 });
    const spec = {
      ep,
      threads: a.threads,
      model: `/models/${path.relative(MODELS_DIR, g.path).split(path.sep).join('/')}`,
      warm: a.warm,
      batchIters: a.batchIters,
      capMs: a.maxGraphS * 1000,
      feeds: Object.fromEntries(Object.entries(feeds).map(([b, items]) => [b, Object.fromEntries(Object.entries(items).map(([k, f]) => [k, { url: `/__bench/feeds/${path.basename(f.file)}`, dims: f.dims, dtype: f.dtype }]))])),
    };
    // A string, not a function: tsx's transform would otherwise wrap helpers into the serialised function.
    const call = page.evaluate(`window.cxrBench.run(${JSON.stringify(spec)})`) as Promise<PageResult>;
    const overrun = new Promise<'overrun'>((resolve) => {
      timer = setTimeout(() => resolve('overrun'), (a.maxGraphS + 30) * 1000);
    });
    const r = await Promise.race([call, overrun]);
    if (r === 'overrun') {
      call.catch(() => undefined);
      return { ...rowBase(g, ep), status: 'skipped', reason: `skipped: over cap (one call still running after ${a.maxGraphS + 30} s; page closed)` };
    }
    const batches = Object.fromEntries(Object.entries(r.batches).map(([b, ts]) => [b, summarize(ts)]));
    const cut = r.over_cap ? `over cap: stopped after ${(r.total_ms / 1000).toFixed(0)} s, ${Object.entries(r.batches).map(([b, ts]) => `${ts.length} runs at batch ${b}`).join(', ') || 'no warm run'}` : undefined;
    return {
      ...rowBase(g, ep),
      status: 'ok',
      ...(cut ? { reason: cut } : {}),
      ort_import_ms: r.ort_import_ms,
      cold_create_ms: r.cold_create_ms,
      second_create_ms: r.second_create_ms,
      first_run_ms: r.first_run_ms,
      first_run_batch: r.first_run_batch,
      batches,
      runs_s: r.runs_ms / 1000,
      total_s: r.total_ms / 1000,
    };
  } catch (e) {
    const msg = (e instanceof Error ? e.message : String(e)).split('\n')[0];
    return { ...rowBase(g, ep), status: 'error', reason: `error: ${[msg, ...errors].join('; ').slice(0, 300)}` };
  } finally {
    clearTimeout(timer);
    await context.close().catch(() => undefined);
  }
}

/** Facts of the page itself: isolation, cores, the WebGPU adapter (SwiftShader here). */
async function pageInfo(browser: Browser, base: string, feedsDir: string): Promise<Record<string, unknown>> {
  const context = await browser.newContext({ serviceWorkers: 'block' });
  try {
    await context.route(`${base}/__bench/**`, benchRoute(feedsDir));
    const page = await context.newPage();
    await page.goto(`${base}/__bench/index.html`);
    await page.waitForFunction('!!window.cxrBench', null, { timeout: 30_000 });
    return (await page.evaluate('window.cxrBench.info()')) as Record<string, unknown>;
  } finally {
    await context.close();
  }
}

function printRow(r: BrowserRow): void {
  if (r.status !== 'ok') {
    log(`${r.reason}: ${r.key} ${r.ep}`);
    return;
  }
  const one = r.batches?.[String(r.first_run_batch ?? 1)];
  log(`${r.key} ${r.ep}: create ${r.cold_create_ms?.toFixed(0)} ms, first ${r.first_run_ms?.toFixed(1)} ms, p50 ${one?.p50_ms.toFixed(2)} ms, total ${r.total_s?.toFixed(1)} s${r.reason ? ` (${r.reason})` : ''}`);
}

async function main(): Promise<void> {
  const a = parseArgs(process.argv.slice(2));
  const m = machine();
  const graphs = discoverGraphs(MODELS_DIR, { families: a.families, model: a.model });
  if (!graphs.length) throw new Error(`no graphs found in ${MODELS_DIR}/manifest.json`);
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'cxr-browser-bench-'));
  const node = fs.existsSync(a.nodeJson) ? nodeWasmIndex(JSON.parse(fs.readFileSync(a.nodeJson, 'utf8'))) : {};
  if (!Object.keys(node).length) log(`no Node WASM numbers (${a.nodeJson} missing or without wasm rows): the ratio column stays empty; \`npm run bench\` writes it`);
  const { base, stop } = (await startPreview(a.port)) as { base: string; stop: () => void };
  const rows: BrowserRow[] = [];
  let info: Record<string, unknown> = {};
  let perceived: Record<string, unknown> | undefined;
  try {
    log(`feeds for ${graphs.length} graphs`);
    const { feedsPath, feeds } = writeFeeds(graphs, work);
    const feedsDir = path.dirname(feedsPath);
    const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args: CHROMIUM_ARGS });
    try {
      info = { chromium: browser.version(), ...(await pageInfo(browser, base, feedsDir)) };
      log(`page: ${JSON.stringify(info)}`);
      if (!info.crossOriginIsolated) log('WARNING: the bench page is not cross-origin isolated: WASM runs on 1 thread');
      const shaderF16 = (info.webgpu as { shaderF16?: boolean } | null)?.shaderF16 === true;
      for (const g of graphs) {
        let wasmRow: BrowserRow | undefined;
        for (const ep of a.eps) {
          if (ep === 'webgpu') {
            if (!info.webgpu) {
              rows.push({ ...rowBase(g, ep), status: 'skipped', reason: 'skipped: no WebGPU adapter in this Chromium' });
              printRow(rows.at(-1)!);
              continue;
            }
            const gate = webgpuGate({ model: g.model, dtype: g.dtype, shaderF16, wasmRunsS: wasmRow?.status === 'ok' ? wasmRow.runs_s : undefined, slowdown: a.slowdown, maxGraphS: a.maxGraphS });
            if (!gate.run) {
              rows.push({ ...rowBase(g, ep), status: 'skipped', reason: gate.reason });
              printRow(rows.at(-1)!);
              continue;
            }
          }
          const r = await benchOne(browser, base, feedsDir, g, feeds[g.key], ep, a);
          if (ep === 'wasm') wasmRow = r;
          rows.push(r);
          printRow(r);
        }
      }
    } finally {
      await browser.close();
    }
    if (a.perceived) {
      log('perceived speed (scripts/bench-perceived.mjs): fresh profile, warm profile');
      try {
        perceived = (await measurePerceived(base, a.image)) as Record<string, unknown>;
      } catch (e) {
        perceived = { error: (e instanceof Error ? e.message : String(e)).split('\n')[0] };
        log(`perceived: ${perceived.error} (a test build is needed: npm run build:test)`);
      }
    }
  } finally {
    stop();
    fs.rmSync(work, { recursive: true, force: true });
  }
  m.load_average_end = os.loadavg().map((x) => Math.round(x * 100) / 100);
  const gpu = info.webgpu as { vendor?: string; architecture?: string } | null;
  const L: string[] = [];
  L.push(`Machine: ${m.cpu}, ${m.cores} cores, ${m.memory_gib} GiB; ${m.platform}; Chromium ${info.chromium} headless, WebGPU adapter ${gpu ? `${gpu.vendor} ${gpu.architecture}` : 'none'}; page cross-origin isolated: ${info.crossOriginIsolated}; WASM threads ${a.threads}. Load average at start ${(m.load_average_start as number[]).join(' / ')}, at end ${(m.load_average_end as number[]).join(' / ')}; ${m.date}.`);
  L.push('');
  L.push(`Per graph: a fresh page of the app's origin per graph and EP, the app's /ort/ort.min.mjs; warm runs: ${a.warm} at batch 1, ${a.batchIters} at the app batch; cap ${a.maxGraphS} s per graph and EP. Cold create is the page's first session: it includes starting ORT (WASM module, threads; on WebGPU the device); the second create is the same graph again in that page.`);
  L.push('');
  L.push(graphTable(rows, node));
  if (perceived) {
    L.push('');
    L.push(`Perceived (scripts/bench-perceived.mjs, image ${perceived.image ?? '?'}; load average ${JSON.stringify(perceived.load_average ?? '?')}):`);
    L.push('');
    L.push(perceived.error ? `n/a: ${perceived.error}` : perceivedTable(perceived as unknown as Parameters<typeof perceivedTable>[0]));
  }
  const md = L.join('\n') + '\n';
  fs.mkdirSync(a.out, { recursive: true });
  fs.writeFileSync(path.join(a.out, 'browser-graphs.json'), JSON.stringify({ machine: m, page: info, args: { ...a, image: path.basename(a.image) }, rows, perceived, node_wasm_from: Object.keys(node).length ? a.nodeJson : null }, null, 1));
  fs.writeFileSync(path.join(a.out, 'browser-graphs.md'), md);
  process.stdout.write(md);
  log(`wrote ${path.join(a.out, 'browser-graphs.json')} and browser-graphs.md`);
}

main().catch((e) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
