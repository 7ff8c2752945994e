/**
 * `npx tsx scripts/bench/webgpu-engines.ts`: onnxruntime-web's two WebGPU engines side by side in this machine's
 * Chromium, on the tiny fixtures (fp32) — JSEP (ort.min.mjs) and the native WebGPU EP (ort.webgpu.min.mjs), each in a
 * fresh page of the app's own origin with the build a worker would import from /ort/ (scripts/bench/webgpu-engines-page.js),
 * plus WASM (JSEP build) for scale. On the CPU machines WebGPU is SwiftShader, ~100x slower than WASM: the numbers
 * compare the engines' overheads (dispatch, shader compilation), not GPUs. Prints numbers; asserts nothing (parity is
 * tests/e2e/webgpu-engines.spec.ts). The real-GPU table comes from scripts/bench/gpu.sh.
 *
 *   npx vite build --mode test --outDir dist-webgpu
 *   npx tsx scripts/bench/webgpu-engines.ts [--dist dist-webgpu] [--port 4196] [--warm 10] [--rounds 2] [--threads 2]
 *       [--out bench-results/webgpu-engines.json]
 *
 * --rounds: each (engine, EP) runs this many times in fresh pages, interleaved (jsep, native, wasm, jsep, ...), so a
 * busy shared machine slows all alike; per graph the table shows the median over rounds of session creation, first run
 * (incl. WGSL compilation) and warm median.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { median } from './stats';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const arg = (name: string, dflt: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : dflt;
};
const DIST = arg('dist', 'dist-webgpu');
const PORT = Number(arg('port', '4196'));
const WARM = Number(arg('warm', '10'));
const ROUNDS = Number(arg('rounds', '2'));
const THREADS = Number(arg('threads', '2'));
const OUT = arg('out', '');

const RUNNER = fs.readFileSync(path.join(REPO, 'scripts/bench/webgpu-engines-page.js'), 'utf8');
const golden = (rel: string) => JSON.parse(fs.readFileSync(path.join(REPO, 'tests/goldens', rel), 'utf8')).inputs;
const GRAPHS = [
  { name: 'tiny-vit-classifier (1x3x32x32)', url: '/models/tiny-vit-classifier/model.onnx', feeds: golden('tiny-vit-classifier/model.json') },
  { name: 'tiny-sam encoder (1x3x64x64)', url: '/models/tiny-sam/image_encoder.onnx', feeds: golden('tiny-sam/image_encoder.json') },
  { name: 'tiny-sam decoder (box)', url: '/models/tiny-sam/prompt_decoder.onnx', feeds: golden('tiny-sam/prompt_decoder_box.json') },
];
const RUNS = [
  { label: 'WebGPU JSEP', module: 'ort.min.mjs', ep: 'webgpu' },
  { label: 'WebGPU native EP', module: 'ort.webgpu.min.mjs', ep: 'webgpu' },
  { label: `WASM (${THREADS} threads)`, module: 'ort.min.mjs', ep: 'wasm' },
];

interface PageResult { adapter: { vendor: string; architecture: string } | null; importMs: number; graphs: { name: string; createMs: number; firstMs: number; warmMs: number[] }[] }

async function waitFor(url: string, ms: number): Promise<void> {
  const end = Date.now() + ms;
  for (;;) {
    try {
      if ((await fetch(url)).ok) return;
    } catch {
      /* not up yet */
    }
    if (Date.now() > end) throw new Error(`${url} did not answer within ${ms / 1000} s`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

async function main(): Promise<void> {
  if (!fs.existsSync(path.join(REPO, DIST, 'ort', 'ort.webgpu.min.mjs'))) throw new Error(`${DIST}/ort has no ort.webgpu.min.mjs: build first (npx vite build --mode test --outDir ${DIST})`);
  const server = spawn(process.execPath, [path.join(REPO, 'node_modules/vite/bin/vite.js'), 'preview', '--host', '127.0.0.1', '--port', String(PORT), '--strictPort', '--outDir', DIST], { cwd: REPO, stdio: 'ignore' });
  const base = `http://127.0.0.1:${PORT}`;
  const browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--enable-unsafe-webgpu', '--no-sandbox', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'],
  });
  try {
    await waitFor(base, 60_000);
    const results: Record<string, PageResult[]> = {};
    let adapter = '';
    for (let round = 0; round < ROUNDS; round++) {
      for (const r of RUNS) {
        const ctx = await browser.newContext({ serviceWorkers: 'block' });
        const page = await ctx.newPage();
        await page.goto(base);
        const spec = { module: r.module, ep: r.ep, threads: THREADS, warm: WARM, graphs: GRAPHS };
        const res = (await page.evaluate(`${RUNNER}(${JSON.stringify(spec)})`)) as PageResult;
        if (res.adapter) adapter = `${res.adapter.vendor} / ${res.adapter.architecture}`;
        (results[r.label] ??= []).push(res);
        console.error(`round ${round + 1}/${ROUNDS} ${r.label}: ${res.graphs.map((g) => `${g.name} ${median(g.warmMs).toFixed(1)} ms`).join(', ')}`);
        await ctx.close();
      }
    }
    const version = JSON.parse(fs.readFileSync(path.join(REPO, 'node_modules/onnxruntime-web/package.json'), 'utf8')).version;
    const lines = [
      `onnxruntime-web ${version}, Chromium ${browser.version()}, WebGPU adapter: ${adapter || 'none'}; ${ROUNDS} rounds x ${WARM} warm runs, medians (ms)`,
      '',
      '| graph | engine | session create | first run | warm median | warm min |',
      '| --- | --- | --- | --- | --- | --- |',
    ];
    const rows: unknown[] = [];
    for (const [gi, g] of GRAPHS.entries()) {
      for (const r of RUNS) {
        const per = results[r.label].map((x) => x.graphs[gi]);
        const row = {
          graph: g.name,
          engine: r.label,
          createMs: median(per.map((x) => x.createMs)),
          firstMs: median(per.map((x) => x.firstMs)),
          warmMedianMs: median(per.map((x) => median(x.warmMs))),
          warmMinMs: Math.min(...per.flatMap((x) => x.warmMs)),
        };
        rows.push(row);
        lines.push(`| ${g.name} | ${r.label} | ${row.createMs.toFixed(0)} | ${row.firstMs.toFixed(0)} | ${row.warmMedianMs.toFixed(1)} | ${row.warmMinMs.toFixed(1)} |`);
      }
    }
    console.log(lines.join('\n'));
    if (OUT) {
      fs.mkdirSync(path.dirname(path.resolve(REPO, OUT)), { recursive: true });
      fs.writeFileSync(path.resolve(REPO, OUT), JSON.stringify({ version, chromium: browser.version(), adapter, warm: WARM, rounds: ROUNDS, rows }, null, 2));
    }
  } finally {
    await browser.close();
    server.kill();
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
