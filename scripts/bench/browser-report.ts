/**
 * Pure pieces of `npm run bench:browser-graphs` (scripts/bench/browser-graphs.ts): which graphs WebGPU on SwiftShader
 * is given, the Node WASM numbers of bench-results/bench.json to compare with, and the Markdown tables. No I/O.
 */
import { f1, ratio, type TimingSummary } from './stats';

/** One (graph, EP) of the browser bench; times in ms. */
export interface BrowserRow {
  key: string;
  model: string;
  weights: string;
  dtype: string;
  role: string;
  bytes: number;
  app_batch: number;
  ep: 'wasm' | 'webgpu';
  status: 'ok' | 'skipped' | 'error';
  /** Why skipped or failed; for 'ok' rows that hit the cap part way, what was cut. */
  reason?: string;
  ort_import_ms?: number | null;
  /** The page's first session: includes ORT's one-off start (WASM module and threads; WebGPU device). */
  cold_create_ms?: number;
  /** The same graph's session again in the same page: creation alone. */
  second_create_ms?: number;
  first_run_ms?: number;
  first_run_batch?: number;
  /** Warm runs per batch ('1' and the app batch when the graph's batch is dynamic). */
  batches?: Record<string, TimingSummary>;
  /** Seconds from the first run to the last (what the WebGPU gate scales). */
  runs_s?: number;
  /** Seconds the whole (graph, EP) took in the page: feeds, model bytes, sessions, every run. */
  total_s?: number;
}

/** Node WASM figures of one graph from `npm run bench`'s bench.json (rows[].wasm). */
export interface NodeWasm { warm_p50_ms?: number; warm_min_ms?: number; batch_min_ms: Record<string, number | undefined> }

/** key -> Node WASM figures, from the parsed bench.json of `npm run bench` (rows whose wasm was measured). */
export function nodeWasmIndex(benchJson: unknown): Record<string, NodeWasm> {
  const out: Record<string, NodeWasm> = {};
  const rows = (benchJson as { rows?: { graph?: { key?: string }; wasm?: Record<string, unknown> }[] })?.rows ?? [];
  for (const r of rows) {
    const w = r.wasm;
    if (!r.graph?.key || !w || w.unavailable) continue;
    const batch_min_ms: Record<string, number | undefined> = {};
    for (const [k, v] of Object.entries(w)) {
      const m = /^batch(\d+)_min_ms$/.exec(k);
      if (m && typeof v === 'number') batch_min_ms[m[1]] = v;
    }
    if (typeof w.warm_min_ms === 'number') batch_min_ms[String(w.first_run_batch ?? 1)] = w.warm_min_ms;
    out[r.graph.key] = { warm_p50_ms: w.warm_p50_ms as number | undefined, warm_min_ms: w.warm_min_ms as number | undefined, batch_min_ms };
  }
  return out;
}

export interface WebgpuGateInput {
  model: string;
  dtype: string;
  /** The adapter offers shader-f16 (SwiftShader does not). */
  shaderF16: boolean;
  /** Seconds of runs (first to last, sessions excluded) of the same graph on browser WASM in this run, if it ran. */
  wasmRunsS?: number;
  /** How many times slower WebGPU on this adapter is assumed to be than WASM (SwiftShader: ~100). */
  slowdown: number;
  maxGraphS: number;
}

/**
 * Whether to give a graph to WebGPU: tiny-* fixtures always (the in-page cap still stops them); others only when
 * their WASM run time × slowdown fits the cap (or when WASM did not run: the in-page cap then decides). fp16 graphs need shader-f16: without it ORT's JSEP build returns zeros quietly
 * (../shared/notes/webgpu-here.md), and the app never plans fp16 on such an adapter.
 */
export function webgpuGate(g: WebgpuGateInput): { run: true } | { run: false; reason: string } {
  if (g.dtype === 'fp16' && !g.shaderF16) return { run: false, reason: 'skipped: adapter has no shader-f16 (fp16 would return zeros)' };
  if (g.model.startsWith('tiny-')) return { run: true };
  if (g.wasmRunsS === undefined) return { run: true };
  const est = g.wasmRunsS * g.slowdown;
  if (est > g.maxGraphS) return { run: false, reason: `skipped: over cap (estimated ${est.toFixed(0)} s = WASM runs ${g.wasmRunsS.toFixed(2)} s x ${g.slowdown} > --max-graph-s ${g.maxGraphS})` };
  return { run: true };
}

const cell = (s: string) => s.replace(/\|/g, '/');

/** The graph table: one line per (graph, EP); ratios against Node WASM (bench.json) and against browser WASM. */
export function graphTable(rows: BrowserRow[], node: Record<string, NodeWasm>): string {
  const L: string[] = [];
  L.push('| graph | weights | EP | cold create ms (second create) | first run ms | batch 1 ms p50 / p95 / min (runs) | app batch: ms per call p50 / min | browser WASM ÷ Node WASM, batch-1 p50 (app batch min) | WebGPU ÷ browser WASM, batch-1 p50 |');
  L.push('| --- | --- | --- | --- | --- | --- | --- | --- | --- |');
  const wasmOf = (key: string) => rows.find((r) => r.key === key && r.ep === 'wasm' && r.status === 'ok');
  for (const r of rows) {
    if (r.status !== 'ok') {
      L.push(`| ${r.key} | ${r.weights} | ${r.ep} | ${cell(r.reason ?? r.status)} | | | | | |`);
      continue;
    }
    const one = r.batches?.[String(r.first_run_batch ?? 1)];
    const ab = String(r.app_batch);
    const app = r.app_batch > 1 ? r.batches?.[ab] : undefined;
    const n = node[r.key];
    const nodeCol = r.ep === 'wasm' && n ? `${ratio(one?.p50_ms, n.warm_p50_ms)} (${app ? ratio(app.min_ms, n.batch_min_ms[ab]) : '—'})` : '—';
    const w = wasmOf(r.key)?.batches?.['1'];
    const gpuCol = r.ep === 'webgpu' ? ratio(one?.p50_ms, w?.p50_ms) : '—';
    const appCol = app ? `${ab}: ${f1(app.p50_ms, 2)} / ${f1(app.min_ms, 2)}` : r.app_batch > 1 ? `${ab}: — (static batch)` : '1';
    const note = r.reason ? ` (${cell(r.reason)})` : '';
    L.push(`| ${r.key} | ${r.weights} | ${r.ep}${note} | ${f1(r.cold_create_ms, 0)} (${f1(r.second_create_ms, 0)}) | ${f1(r.first_run_ms)} | ${f1(one?.p50_ms, 2)} / ${f1(one?.p95_ms, 2)} / ${f1(one?.min_ms, 2)} (${one?.n ?? 0}) | ${appCol} | ${nodeCol} | ${gpuCol} |`);
  }
  return L.join('\n');
}

/** One visit of scripts/bench-perceived.mjs (times in ms). */
export interface PerceivedVisit { app_load_ms: number; prewarm_ms: number | null; drop_to_result_ms: number; classifier?: string; dtype?: string; backend?: string; sessionCreateMs?: number }

export function perceivedTable(p: { fresh_profile: PerceivedVisit; warm_dropped_at_once: PerceivedVisit; warm_after_prewarm: PerceivedVisit }): string {
  const L = ['| visit | app load ms | idle prewarm ms | drop → first result ms | classifier (dtype, backend) | its session create ms |', '| --- | --- | --- | --- | --- | --- |'];
  const line = (name: string, v: PerceivedVisit) =>
    L.push(`| ${name} | ${f1(v.app_load_ms, 0)} | ${f1(v.prewarm_ms ?? undefined, 0)} | ${f1(v.drop_to_result_ms, 0)} | ${v.classifier ?? '—'} (${v.dtype ?? '—'}, ${v.backend ?? '—'}) | ${f1(v.sessionCreateMs, 0)} |`);
  line('fresh profile', p.fresh_profile);
  line('warm profile, dropped at once', p.warm_dropped_at_once);
  line('warm profile, after idle prewarm', p.warm_after_prewarm);
  return L.join('\n');
}
