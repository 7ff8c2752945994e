/**
 * `npm run bench`: every ONNX graph of the manifest (discovered by family and file role, so new families appear when
 * their manifest entries land), on every backend reachable here, side by side in one run and on the same inputs:
 *
 *   - onnxruntime-web's WASM backend in Node (the app's CPU path; scripts/bench/wasm-child.ts),
 *   - native onnxruntime (Python, CPU EP) and the PyTorch module the graph was exported from
 *     (export-scripts/cxr_export/bench.py), with the same thread count.
 *
 * Each (graph, backend) runs in a fresh process: cold session creation, first run, warm p50/p95 over a fixed count at
 * batch 1, throughput (images or calls per second) at batch 1 and at the batch the app uses, peak resident memory.
 * Output: <out>/bench.json and <out>/bench.md (printed too). Not a test: it prints numbers, it asserts nothing.
 *
 *   npm run bench -- [--models-dir public/models] [--family classifier,clip] [--model ID] [--threads 2] [--warm 20]
 *                    [--batch-iters 5] [--out bench-results] [--no-torch] [--levers] [--full]
 *                    [--backends wasm,ort,torch[,webgpu,torch-cuda]]
 *
 * --backends webgpu,torch-cuda: on a machine with a GPU (scripts/bench/gpu.sh): onnxruntime-web's WebGPU EP in Node
 *           through Dawn (scripts/bench/webgpu-child.ts) and PyTorch on CUDA, in the same run as the CPU backends.
 *
 * --levers: the WASM levers on the classifier (graph optimisation level, an offline-optimised saved model, threads,
 *           batch, static shapes, pre-allocated outputs, int8 dynamic vs int8 QDQ), each next to native onnxruntime.
 * --full:   also export full-size random architectures (ViT-B/16 classifier, BiomedCLIP, SAM ViT-B, SD 1.5 parts)
 *           into export-scripts/runs/bench-full/ (ignored by git; minutes and GBs) and bench those.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseManifest } from '../../app/lib/models/manifest';
import type { ModelEntry } from '../../app/lib/models/manifest-types';
import { f1, ratio } from './stats';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const PYTHON = process.env.CXR_PYTHON ?? path.join(ROOT, '.venv', 'bin', 'python');
const TSX = path.join(ROOT, 'node_modules', '.bin', 'tsx');

/** The batch the app runs each graph at (app/store/batch.ts CHUNK for images; one call for prompts, SAM, SD). */
export function appBatch(family: string, role: string): number {
  if (family === 'classifier' && role === 'model') return 8;
  if (family === 'clip' && role === 'image_encoder') return 8;
  return 1;
}

export interface BenchGraph {
  key: string;
  model: string;
  family: string;
  weights: string;
  dtype: string;
  role: string;
  path: string;
  bytes: number;
  app_batch: number;
  entry: ModelEntry;
}

/** Every .onnx file of every variant of every model in a manifest, keyed model/dtype/role. */
export function discoverGraphs(modelsDir: string, filter: { families?: string[]; model?: string } = {}): BenchGraph[] {
  const manifest = parseManifest(JSON.parse(fs.readFileSync(path.join(modelsDir, 'manifest.json'), 'utf8')));
  const out: BenchGraph[] = [];
  for (const entry of manifest.models) {
    if (filter.families && !filter.families.includes(entry.family)) continue;
    if (filter.model && entry.id !== filter.model) continue;
    for (const [dtype, variant] of Object.entries(entry.variants)) {
      for (const f of variant!.files) {
        if (!f.path.endsWith('.onnx')) continue;
        const p = path.join(modelsDir, f.path);
        if (!fs.existsSync(p)) continue;
        out.push({
          key: `${entry.id}/${dtype}/${f.role}`,
          model: entry.id,
          family: entry.family,
          weights: entry.weights,
          dtype,
          role: f.role,
          path: p,
          bytes: f.bytes,
          app_batch: appBatch(entry.family, f.role),
          entry,
        });
      }
    }
  }
  return out;
}

/** One input of a graph at one batch: a raw little-endian file written by `cxr_export bench feeds`. */
export interface FeedFile { file: string; dims: number[]; dtype: string }
/** Feeds of every graph: key -> batch ('1', app batch) -> input name -> file. */
export type FeedsIndex = Record<string, Record<string, Record<string, FeedFile>>>;

/**
 * Seeded inputs (seed 0; quantize.sample_feeds) for every graph at batch 1 and at its app batch, written once by
 * export-scripts (`cxr_export bench feeds`) into <work>/feeds, so every backend and both benches see the same bytes.
 * Also writes <work>/graphs.json, the spec the Python children read.
 */
export function writeFeeds(graphs: BenchGraph[], work: string): { specPath: string; feedsPath: string; feeds: FeedsIndex } {
  const spec = { graphs: graphs.map(({ entry, ...g }) => ({ ...g, entry: { weights: entry.weights, source: entry.source, labels: entry.labels, config: entry.config, card: { training: entry.card.training }, preprocessing: entry.preprocessing } })) };
  const specPath = path.join(work, 'graphs.json');
  fs.writeFileSync(specPath, JSON.stringify(spec));
  const fr = python(['bench', 'feeds', '--spec', specPath, '--out', path.join(work, 'feeds')]);
  if (fr.status !== 0) throw new Error(`feeds: ${fr.stderr.slice(-800)}`);
  const feedsPath = path.join(work, 'feeds', 'feeds.json');
  return { specPath, feedsPath, feeds: JSON.parse(fs.readFileSync(feedsPath, 'utf8')) as FeedsIndex };
}

interface Args {
  modelsDir: string;
  families?: string[];
  model?: string;
  threads: number;
  warm: number;
  batchIters: number;
  out: string;
  torch: boolean;
  levers: boolean;
  full: boolean;
  backends: string[];
}

function parseArgs(argv: string[]): Args {
  const a: Args = { modelsDir: path.join(ROOT, 'public/models'), threads: 2, warm: 20, batchIters: 5, out: path.join(ROOT, 'bench-results'), torch: true, levers: false, full: false, backends: ['wasm', 'ort', 'torch'] };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i];
    const v = () => {
      const x = argv[++i];
      if (x === undefined) throw new Error(`${k} needs a value`);
      return x;
    };
    if (k === '--models-dir') a.modelsDir = path.resolve(v());
    else if (k === '--family') a.families = v().split(',');
    else if (k === '--model') a.model = v();
    else if (k === '--threads') a.threads = Number(v());
    else if (k === '--warm') a.warm = Number(v());
    else if (k === '--batch-iters') a.batchIters = Number(v());
    else if (k === '--out') a.out = path.resolve(v());
    else if (k === '--no-torch') a.torch = false;
    else if (k === '--levers') a.levers = true;
    else if (k === '--full') a.full = true;
    else if (k === '--backends') a.backends = v().split(',');
    else if (k === '--help' || k === '-h') {
      console.log(fs.readFileSync(fileURLToPath(import.meta.url), 'utf8').split('*/')[0]);
      process.exit(0);
    } else throw new Error(`unknown option ${k}`);
  }
  return a;
}

type Result = Record<string, unknown> & { backend: string; unavailable?: string };

function parseBench(stdout: string, stderr: string, what: string): Result {
  const line = stdout.split('\n').reverse().find((l) => l.startsWith('BENCH '));
  if (!line) return { backend: what, unavailable: `no result (${stderr.trim().split('\n').slice(-2).join(' ').slice(0, 300)})` };
  return JSON.parse(line.slice(6)) as Result;
}

function python(args: string[]): { stdout: string; stderr: string; status: number | null } {
  const r = spawnSync(PYTHON, ['-m', 'cxr_export', ...args], {
    cwd: ROOT,
    encoding: 'utf8',
    env: { ...process.env, PYTHONPATH: path.join(ROOT, 'export-scripts'), OMP_NUM_THREADS: String(args.includes('--threads') ? args[args.indexOf('--threads') + 1] : 2) },
    maxBuffer: 64 << 20,
  });
  return { stdout: r.stdout ?? '', stderr: r.stderr ?? '', status: r.status };
}

function wasmChild(spec: Record<string, unknown>): Result {
  const r = spawnSync(TSX, [path.join(ROOT, 'scripts/bench/wasm-child.ts'), JSON.stringify(spec)], { cwd: ROOT, encoding: 'utf8', maxBuffer: 64 << 20 });
  return parseBench(r.stdout ?? '', r.stderr ?? '', 'onnxruntime-web wasm (Node)');
}

function webgpuChild(spec: Record<string, unknown>): Result {
  const r = spawnSync(TSX, [path.join(ROOT, 'scripts/bench/webgpu-child.ts'), JSON.stringify(spec)], { cwd: ROOT, encoding: 'utf8', maxBuffer: 64 << 20, timeout: 600_000 });
  return parseBench(r.stdout ?? '', r.stderr ?? '', 'onnxruntime-web webgpu (Node)');
}

/** The machine's facts printed above every table (shared machine: the load average is part of the result). */
export function machine(): Record<string, unknown> {
  const cpus = os.cpus();
  return {
    cpu: cpus[0]?.model ?? 'unknown',
    cores: cpus.length,
    memory_gib: Math.round(os.totalmem() / 2 ** 30),
    platform: `${os.type()} ${os.release()}`,
    node: process.version,
    load_average_start: os.loadavg().map((x) => Math.round(x * 100) / 100),
    date: new Date().toISOString(),
  };
}

interface Row { graph: Omit<BenchGraph, 'entry'>; wasm: Result; ort: Result; torch?: Result; webgpu?: Result; torchCuda?: Result }

export function markdown(rows: Row[], m: Record<string, unknown>, threads: number, levers?: LeverRow[]): string {
  const L: string[] = [];
  L.push(`Machine: ${m.cpu}, ${m.cores} cores, ${m.memory_gib} GiB; ${m.platform}; Node ${m.node}. Load average at start ${(m.load_average_start as number[]).join(' / ')}, at end ${(m.load_average_end as number[] | undefined)?.join(' / ') ?? '?'} (shared machine: absolute times are noisy, the side-by-side ratios less so). ${threads} threads everywhere; ${m.date}.`);
  L.push('');
  L.push('Summary: warm time per call at batch 1, p50 and (min) of the warm runs; ratios of the minima (closest to an uncontended run on a shared machine), then of the medians.');
  L.push('');
  L.push('| graph | weights | batch-1 ms p50 (min): WASM / ORT / PyTorch | WASM ÷ ORT, min (p50) | PyTorch ÷ ORT, min (p50) | app batch | ms per call at app batch, min: WASM / ORT / PyTorch | WASM ÷ ORT at app batch (min) |');
  L.push('| --- | --- | --- | --- | --- | --- | --- | --- |');
  for (const r of rows) {
    const b = String(r.graph.app_batch);
    const bm = (x?: Result) => (b === '1' ? (x?.warm_min_ms as number | undefined) : (x?.[`batch${b}_min_ms`] as number | undefined));
    const hasB = bm(r.wasm) !== undefined || bm(r.ort) !== undefined;
    const pm = (x?: Result) => `${f1(x?.warm_p50_ms, 2)} (${f1(x?.warm_min_ms, 2)})`;
    L.push(`| ${r.graph.key} | ${r.graph.weights} | ${pm(r.wasm)} / ${pm(r.ort)} / ${pm(r.torch)} | ${ratio(r.wasm.warm_min_ms, r.ort.warm_min_ms)} (${ratio(r.wasm.warm_p50_ms, r.ort.warm_p50_ms)}) | ${ratio(r.torch?.warm_min_ms, r.ort.warm_min_ms)} (${ratio(r.torch?.warm_p50_ms, r.ort.warm_p50_ms)}) | ${hasB ? b : '1 (static)'} | ${f1(bm(r.wasm), 2)} / ${f1(bm(r.ort), 2)} / ${f1(bm(r.torch), 2)} | ${ratio(bm(r.wasm), bm(r.ort))} |`);
  }
  L.push('');
  L.push('| graph | backend | cold create ms | first run ms | warm p50 ms | warm p95 ms | per s, batch 1 | per s, app batch | peak RSS MiB (process baseline) |');
  L.push('| --- | --- | --- | --- | --- | --- | --- | --- | --- |');
  for (const r of rows) {
    for (const x of [r.wasm, r.ort, r.torch, r.webgpu, r.torchCuda]) {
      if (!x) continue;
      if (x.unavailable) {
        L.push(`| ${r.graph.key} | ${x.backend} | n/a: ${String(x.unavailable).replace(/\|/g, '/').slice(0, 140)} | | | | | | |`);
        continue;
      }
      const t = x.throughput as Record<string, number>;
      L.push(`| ${r.graph.key} | ${x.backend} | ${f1(x.cold_create_ms)} | ${f1(x.first_run_ms)} | ${f1(x.warm_p50_ms, 2)} | ${f1(x.warm_p95_ms, 2)} | ${f1(t?.['1'])} | ${f1(t?.[String(r.graph.app_batch)])} | ${f1(x.peak_rss_mib, 0)} (${f1(x.baseline_rss_mib, 0)}) |`);
    }
  }
  if (rows.some((r) => r.webgpu || r.torchCuda)) {
    L.push('');
    L.push('| graph | batch-1 p50 ms: WebGPU (Dawn) / PyTorch CUDA | WebGPU ÷ PyTorch CUDA | per s at app batch: WebGPU / PyTorch CUDA |');
    L.push('| --- | --- | --- | --- |');
    for (const r of rows) {
      const b = String(r.graph.app_batch);
      const tp = (x?: Result) => (x?.throughput as Record<string, number> | undefined)?.[b];
      L.push(`| ${r.graph.key} | ${f1(r.webgpu?.warm_p50_ms, 2)} / ${f1(r.torchCuda?.warm_p50_ms, 2)} | ${ratio(r.webgpu?.warm_p50_ms, r.torchCuda?.warm_p50_ms)} | ${f1(tp(r.webgpu))} / ${f1(tp(r.torchCuda))} |`);
    }
  }
  if (levers?.length) {
    L.push('');
    L.push('WASM levers on the classifier (each in a fresh process; native onnxruntime on the same graph and threads beside it):');
    L.push('');
    L.push('| lever | graph | WASM create ms | WASM ms per call, min (p50), batch | native ORT ms, min (p50) | WASM ÷ ORT (min) |');
    L.push('| --- | --- | --- | --- | --- | --- |');
    const at = (x: Result | undefined, b: number, stat: 'min' | 'p50') => {
      if (!x || x.unavailable) return undefined;
      const first = (x.first_run_batch as number | undefined) ?? 1;
      return (b === first ? x[`warm_${stat}_ms`] : x[`batch${b}_${stat}_ms`]) as number | undefined;
    };
    for (const l of levers) {
      const [wm, wp, om, op] = [at(l.wasm, l.batch, 'min'), at(l.wasm, l.batch, 'p50'), at(l.ort, l.batch, 'min'), at(l.ort, l.batch, 'p50')];
      L.push(`| ${l.name} | ${l.graph} | ${f1(l.wasm.cold_create_ms)} | ${f1(wm, 2)} (${f1(wp, 2)}), ${l.batch} | ${f1(om, 2)} (${f1(op, 2)}) | ${ratio(wm, om)} |${l.wasm.unavailable ? ' n/a: ' + String(l.wasm.unavailable).slice(0, 120) : ''}`);
    }
  }
  return L.join('\n') + '\n';
}

interface LeverRow { name: string; graph: string; batch: number; wasm: Result; ort?: Result }

function runLevers(a: Args, work: string): LeverRow[] {
  const cls = discoverGraphs(a.modelsDir, { families: ['classifier'] }).filter((g) => g.weights === 'trained' && g.role === 'model');
  const fp32 = cls.find((g) => g.dtype === 'fp32');
  if (!fp32) return [];
  const leverDir = path.join(work, 'levers');
  const prep = python(['bench', 'levers', '--spec', path.join(work, 'graphs.json'), '--key', fp32.key, '--out', leverDir, '--threads', String(a.threads)]);
  if (prep.status !== 0) {
    console.error(`lever preparation failed: ${prep.stderr.slice(-500)}`);
    return [];
  }
  const made = JSON.parse(prep.stdout.trim().split('\n').pop()!) as { graphs: { name: string; path: string }[]; spec: string; feeds: string };
  const feedsIdx = JSON.parse(fs.readFileSync(made.feeds, 'utf8')) as Record<string, Record<string, unknown>>;
  const rows: LeverRow[] = [];
  const ortOf = (key: string) => parseBench(python(['bench', 'child', '--spec', made.spec, '--feeds', made.feeds, '--key', key, '--backend', 'ort', '--threads', String(a.threads), '--warm', String(a.warm), '--batch-iters', String(a.batchIters)]).stdout, '', 'onnxruntime');
  const base = { warm: a.warm, batchIters: a.batchIters };
  const lever = (name: string, key: string, batch: number, extra: Record<string, unknown>, ort?: Result) => {
    const g = made.graphs.find((x) => x.name === key)!;
    const feeds = Object.fromEntries(Object.entries(feedsIdx[key]).filter(([b]) => b === '1' || b === String(batch)));
    const wasm = wasmChild({ path: g.path, feeds, threads: a.threads, ...base, ...extra });
    rows.push({ name, graph: path.basename(g.path), batch, wasm, ort });
    console.error(`lever ${name}: ${JSON.stringify(wasm).slice(0, 160)}`);
  };
  const ortFp32 = ortOf('fp32');
  for (const level of ['disabled', 'basic', 'extended', 'all'] as const) lever(`graphOptimizationLevel ${level}`, 'fp32', 8, { graphOptimizationLevel: level }, ortFp32);
  const ortOpt = ortOf('fp32-optimized');
  lever('saved optimised model (offline ORT_ENABLE_EXTENDED), loaded with level disabled', 'fp32-optimized', 8, { graphOptimizationLevel: 'disabled' }, ortOpt);
  for (const t of [1, 2, 4]) {
    const o = t === a.threads ? ortFp32 : parseBench(python(['bench', 'child', '--spec', made.spec, '--feeds', made.feeds, '--key', 'fp32', '--backend', 'ort', '--threads', String(t), '--warm', String(a.warm), '--batch-iters', String(a.batchIters)]).stdout, '', 'onnxruntime');
    rows.push({ name: `threads ${t}`, graph: path.basename(fp32.path), batch: 8, wasm: wasmChild({ path: made.graphs.find((x) => x.name === 'fp32')!.path, feeds: Object.fromEntries(Object.entries(feedsIdx.fp32).filter(([b]) => b === '1' || b === '8')), threads: t, ...base }), ort: o });
  }
  for (const b of [1, 8, 16, 32]) lever(`batch ${b}`, 'fp32', b, {}, ortFp32);
  lever('static batch (freeDimensionOverrides batch=8)', 'fp32', 8, { freeDimensionOverrides: { batch: 8 } }, ortFp32);
  lever('pre-allocated outputs', 'fp32', 8, { preallocate: true }, ortFp32);
  lever('int8 dynamic (quantize_dynamic)', 'int8-dynamic', 8, {}, ortOf('int8-dynamic'));
  lever('int8 QDQ static (the shipped model.int8.onnx: cxr-export quantize --int8-method qdq)', 'int8-qdq', 8, {}, ortOf('int8-qdq'));
  return rows;
}

async function main(): Promise<void> {
  const a = parseArgs(process.argv.slice(2));
  const m = machine();
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'cxr-bench-'));
  let graphs = discoverGraphs(a.modelsDir, { families: a.families, model: a.model });
  if (a.full) {
    const fullDir = path.join(ROOT, 'export-scripts', 'runs', 'bench-full');
    const r = python(['bench', 'full', '--spec', '/dev/null', '--out', fullDir]);
    if (r.status !== 0) console.error(`--full export failed: ${r.stderr.slice(-800)}`);
    else graphs = graphs.concat(discoverGraphs(fullDir, { families: a.families }));
  }
  if (!graphs.length) throw new Error(`no graphs found in ${a.modelsDir}/manifest.json`);
  const { feedsPath, feeds } = writeFeeds(graphs, work);
  const rows: Row[] = [];
  for (const g of graphs) {
    console.error(`bench ${g.key} (${(g.bytes / 2 ** 20).toFixed(1)} MiB)`);
    const child = (backend: 'ort' | 'torch' | 'torch-cuda') =>
      parseBench(
        python(['bench', 'child', '--spec', path.join(work, 'graphs.json'), '--feeds', feedsPath, '--key', g.key, '--backend', backend, '--threads', String(a.threads), '--warm', String(a.warm), '--batch-iters', String(a.batchIters)]).stdout,
        '',
        backend === 'ort' ? 'onnxruntime' : backend === 'torch' ? 'pytorch' : 'pytorch cuda',
      );
    const skipped = (what: string): Result => ({ backend: what, unavailable: 'not in --backends' });
    // interleaved per graph: WASM, native ORT, PyTorch one after the other under the same machine load
    const has = (b: string) => a.backends.includes(b);
    const wasm = has('wasm') ? wasmChild({ path: g.path, feeds: feeds[g.key], threads: a.threads, warm: a.warm, batchIters: a.batchIters }) : skipped('onnxruntime-web wasm (Node)');
    const ort = has('ort') ? child('ort') : skipped('onnxruntime');
    const torch = a.torch && has('torch') ? child('torch') : undefined;
    const webgpu = has('webgpu') ? webgpuChild({ path: g.path, feeds: feeds[g.key], warm: a.warm, batchIters: a.batchIters, dtype: g.dtype }) : undefined;
    const torchCuda = has('torch-cuda') ? child('torch-cuda') : undefined;
    const { entry: _e, ...graph } = g;
    rows.push({ graph, wasm, ort, torch, webgpu, torchCuda });
  }
  const levers = a.levers ? runLevers(a, work) : undefined;
  m.load_average_end = os.loadavg().map((x) => Math.round(x * 100) / 100);
  fs.mkdirSync(a.out, { recursive: true });
  const md = markdown(rows, m, a.threads, levers);
  fs.writeFileSync(path.join(a.out, 'bench.json'), JSON.stringify({ machine: m, threads: a.threads, warm: a.warm, rows, levers }, null, 1));
  fs.writeFileSync(path.join(a.out, 'bench.md'), md);
  fs.rmSync(work, { recursive: true, force: true });
  process.stdout.write(md);
  console.error(`wrote ${path.join(a.out, 'bench.json')} and bench.md`);
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((e) => {
    console.error(e instanceof Error ? e.message : e);
    process.exit(1);
  });
}
