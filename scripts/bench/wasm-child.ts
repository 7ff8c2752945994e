/**
 * One graph on onnxruntime-web's WASM backend in this (fresh) Node process; prints one `BENCH {json}` line.
 * Spawned by scripts/bench/run.ts, one process per graph and configuration, so cold numbers are cold (the WASM
 * module is compiled by the first session) and peak memory is this graph's.
 *
 *   tsx scripts/bench/wasm-child.ts '<json: {path, feeds: {batch: {input: {file, dims, dtype}}}, threads, warm,
 *                                     batchIters, graphOptimizationLevel?, freeDimensionOverrides?, preallocate?}>'
 */
import fs from 'node:fs';
import * as ort from 'onnxruntime-web';
import { median, percentile } from './stats';

interface FeedFile { file: string; dims: number[]; dtype: string }
interface ChildSpec {
  path: string;
  feeds: Record<string, Record<string, FeedFile>>;
  threads: number;
  warm: number;
  batchIters: number;
  graphOptimizationLevel?: 'disabled' | 'basic' | 'extended' | 'all';
  /** Fix symbolic dims (e.g. {batch: 8}): lets ORT plan static shapes; only the matching batch is then timed. */
  freeDimensionOverrides?: Record<string, number>;
  /** Pass pre-allocated output tensors to run() (ORT fills them instead of allocating). */
  preallocate?: boolean;
}

function vmKiB(field: string): number {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+)`, 'm').exec(fs.readFileSync('/proc/self/status', 'utf8'));
    return m ? Number(m[1]) : -1;
  } catch {
    return -1;
  }
}

function tensorOf(f: FeedFile): ort.Tensor {
  const b = fs.readFileSync(f.file);
  const buf = b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength);
  switch (f.dtype) {
    case 'float32': return new ort.Tensor('float32', new Float32Array(buf), f.dims);
    case 'int64': return new ort.Tensor('int64', new BigInt64Array(buf), f.dims);
    case 'int32': return new ort.Tensor('int32', new Int32Array(buf), f.dims);
    case 'bool': return new ort.Tensor('bool', new Uint8Array(buf), f.dims);
    default: throw new Error(`unsupported feed dtype ${f.dtype}`);
  }
}

async function main(): Promise<void> {
  const spec = JSON.parse(process.argv[2]) as ChildSpec;
  ort.env.wasm.numThreads = spec.threads;
  ort.env.logLevel = 'error';
  const batches = Object.keys(spec.feeds).filter((b) => !spec.freeDimensionOverrides || Object.values(spec.freeDimensionOverrides).includes(Number(b)));
  const feeds: Record<string, Record<string, ort.Tensor>> = {};
  for (const b of batches) feeds[b] = Object.fromEntries(Object.entries(spec.feeds[b]).map(([k, v]) => [k, tensorOf(v)]));
  const bytes = fs.readFileSync(spec.path);
  const base = vmKiB('VmRSS');
  const t0 = performance.now();
  const session = await ort.InferenceSession.create(bytes, {
    executionProviders: ['wasm'],
    graphOptimizationLevel: spec.graphOptimizationLevel ?? 'all',
    ...(spec.freeDimensionOverrides ? { freeDimensionOverrides: spec.freeDimensionOverrides } : {}),
  });
  const create = performance.now() - t0;

  const outputsFor = async (b: string): Promise<Record<string, ort.Tensor> | undefined> => {
    if (!spec.preallocate) return undefined;
    const probe = await session.run(feeds[b]);
    return Object.fromEntries(Object.entries(probe).map(([k, t]) => [k, new ort.Tensor(t.type as 'float32', new Float32Array(t.size), t.dims)]));
  };
  const runner = async (b: string) => {
    const pre = await outputsFor(b);
    return async () => {
      const out = pre ? await session.run(feeds[b], pre) : await session.run(feeds[b]);
      if (!pre) for (const t of Object.values(out)) t.dispose?.();
    };
  };

  const first1 = batches.includes('1') ? '1' : batches[0];
  const t1 = performance.now();
  await session.run(feeds[first1]);
  const first = performance.now() - t1;
  const run1 = await runner(first1);
  const times: number[] = [];
  for (let i = 0; i < spec.warm; i++) {
    const s = performance.now();
    await run1();
    times.push(performance.now() - s);
  }
  const res: Record<string, unknown> = {
    backend: 'onnxruntime-web wasm (Node)',
    version: ort.env.versions?.web ?? '1.30',
    threads: spec.threads,
    cold_create_ms: create,
    first_run_ms: first,
    first_run_batch: Number(first1),
    warm_p50_ms: median(times),
    warm_p95_ms: percentile(times, 0.95),
    // On a shared, oversubscribed machine the minimum is the closest to an uncontended run.
    warm_min_ms: Math.min(...times),
    warm_runs: spec.warm,
    throughput: { [first1]: (Number(first1) * 1000) / median(times) } as Record<string, number>,
  };
  for (const b of batches) {
    if (b === first1) continue;
    const r = await runner(b);
    await r();
    const ts: number[] = [];
    for (let i = 0; i < spec.batchIters; i++) {
      const s = performance.now();
      await r();
      ts.push(performance.now() - s);
    }
    (res.throughput as Record<string, number>)[b] = (Number(b) * 1000) / median(ts);
    res[`batch${b}_p50_ms`] = median(ts);
    res[`batch${b}_min_ms`] = Math.min(...ts);
  }
  res.peak_rss_mib = vmKiB('VmHWM') / 1024;
  res.baseline_rss_mib = base / 1024;
  await session.release();
  process.stdout.write(`BENCH ${JSON.stringify(res)}\n`);
}

main().then(
  () => process.exit(0),
  (e) => {
    process.stdout.write(`BENCH ${JSON.stringify({ backend: 'onnxruntime-web wasm (Node)', unavailable: String(e instanceof Error ? e.message : e) })}\n`);
    process.exit(0);
  },
);
