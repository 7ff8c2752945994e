/**
 * One graph on onnxruntime-web's WebGPU EP in plain Node through Dawn (the `webgpu` npm package, dawn.node), for a
 * machine with a real GPU (scripts/bench/gpu.sh). Same spec and output as wasm-child.ts, plus the adapter.
 *
 * What ../shared/notes/webgpu-here.md found on an H100 and this follows: the Vulkan loader packages must be present and
 * VK_DRIVER_FILES point at the NVIDIA ICD; dawn.node rejects (or crashes on) views of a SharedArrayBuffer, so
 * GPUQueue.writeBuffer/writeTexture get a copying wrapper; `navigator.gpu` is deleted at the end or Node never exits.
 * Outputs stay on the GPU between runs (preferredOutputLocation 'gpu-buffer'); a run is timed until its first output
 * is read back (getData), so the number is the whole call. fp16 graphs only when the adapter has shader-f16.
 *
 * The engine (issue 21.4, app/lib/runtime/webgpu-engine.ts): CXR_WEBGPU_ENGINE=native (default; `onnxruntime-web/webgpu`,
 * ORT's C++ WebGPU EP on Dawn's bindings) or jsep (the default build's JSEP kernels, dist/ort.bundle.min.mjs: the
 * package exports no Node entry for it, so it is imported by path). scripts/bench/gpu.sh runs the bench once per engine.
 *
 * NOT RUN in this project's session: no GPU machine was lent (see README, "GPU bench").
 */
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { median, percentile } from './stats';

const ENGINE = process.env.CXR_WEBGPU_ENGINE === 'jsep' ? 'jsep' : 'native';
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** The ORT build of ENGINE (both carry the WebGPU EP under the name 'webgpu'). */
async function loadOrt(): Promise<typeof import('onnxruntime-web')> {
  if (ENGINE === 'native') return (await import('onnxruntime-web/webgpu')) as typeof import('onnxruntime-web');
  const file = path.join(ROOT, 'node_modules/onnxruntime-web/dist/ort.bundle.min.mjs');
  return (await import(pathToFileURL(file).href)) as typeof import('onnxruntime-web');
}

interface FeedFile { file: string; dims: number[]; dtype: string }
interface ChildSpec { path: string; feeds: Record<string, Record<string, FeedFile>>; warm: number; batchIters: number; dtype?: string }

/** navigator.gpu from dawn.node, with the SharedArrayBuffer quirk worked around. */
async function installDawn(): Promise<GPUAdapter> {
  const require = createRequire(import.meta.url);
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const webgpu = require('webgpu') as { create(flags: string[]): GPU; globals: Record<string, unknown> };
  Object.assign(globalThis, webgpu.globals);
  const gpu = webgpu.create([]);
  if (!('navigator' in globalThis)) Object.defineProperty(globalThis, 'navigator', { value: {}, configurable: true, writable: true });
  Object.defineProperty(globalThis.navigator, 'gpu', { value: gpu, configurable: true, writable: true });
  const proto = (webgpu.globals.GPUQueue as { prototype: GPUQueue }).prototype;
  const plain = (d: unknown) => (ArrayBuffer.isView(d) && d.buffer instanceof SharedArrayBuffer ? new Uint8Array(new Uint8Array(d.buffer, d.byteOffset, d.byteLength)) : d);
  const wb = proto.writeBuffer;
  proto.writeBuffer = function (this: GPUQueue, buffer: GPUBuffer, offset: number, data: BufferSource, ...rest: number[]) {
    const p = plain(data) as BufferSource;
    return p === data ? wb.call(this, buffer, offset, data, ...rest) : wb.call(this, buffer, offset, p, ...(rest.length ? [0, rest[1] ?? (p as Uint8Array).byteLength] : []));
  } as GPUQueue['writeBuffer'];
  const wt = proto.writeTexture;
  proto.writeTexture = function (this: GPUQueue, dst: GPUTexelCopyTextureInfo, data: BufferSource, layout: GPUTexelCopyBufferLayout, size: GPUExtent3DStrict) {
    return wt.call(this, dst, plain(data) as BufferSource, layout, size);
  } as GPUQueue['writeTexture'];
  const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  if (!adapter) throw new Error('dawn.node: requestAdapter() returned null (Vulkan loader / VK_DRIVER_FILES?)');
  return adapter;
}

async function main(): Promise<void> {
  const spec = JSON.parse(process.argv[2]) as ChildSpec;
  const adapter = await installDawn();
  const info = adapter.info;
  if (spec.dtype === 'fp16' && !adapter.features.has('shader-f16')) throw new Error('fp16 graph but the adapter lacks shader-f16');
  const ort = await loadOrt();
  ort.env.logLevel = 'error';
  const tensor = (f: FeedFile) => {
    const b = fs.readFileSync(f.file);
    const buf = b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength);
    if (f.dtype === 'float32') return new ort.Tensor('float32', new Float32Array(buf), f.dims);
    if (f.dtype === 'int64') return new ort.Tensor('int64', new BigInt64Array(buf), f.dims);
    if (f.dtype === 'int32') return new ort.Tensor('int32', new Int32Array(buf), f.dims);
    return new ort.Tensor('bool', new Uint8Array(buf), f.dims);
  };
  const feeds = Object.fromEntries(Object.entries(spec.feeds).map(([b, items]) => [b, Object.fromEntries(Object.entries(items).map(([k, v]) => [k, tensor(v)]))]));
  const t0 = performance.now();
  const session = await ort.InferenceSession.create(fs.readFileSync(spec.path), {
    executionProviders: ['webgpu'],
    graphOptimizationLevel: 'all',
    preferredOutputLocation: 'gpu-buffer',
  });
  const create = performance.now() - t0;
  const once = async (b: string) => {
    const out = await session.run(feeds[b]);
    const first = Object.values(out)[0];
    await first.getData(); // read back: the call is complete
    for (const t of Object.values(out)) t.dispose();
  };
  const t1 = performance.now();
  await once('1');
  const first = performance.now() - t1;
  const times: number[] = [];
  for (let i = 0; i < spec.warm; i++) {
    const s = performance.now();
    await once('1');
    times.push(performance.now() - s);
  }
  const res: Record<string, unknown> = {
    backend: `onnxruntime-web webgpu ${ENGINE === 'jsep' ? 'JSEP' : 'native EP'} (Node, dawn.node; ${info.vendor} ${info.architecture} ${info.description ?? ''})`.trim(),
    webgpu_engine: ENGINE,
    shader_f16: adapter.features.has('shader-f16'),
    cold_create_ms: create,
    first_run_ms: first,
    warm_p50_ms: median(times),
    warm_p95_ms: percentile(times, 0.95),
    warm_min_ms: Math.min(...times),
    warm_runs: spec.warm,
    throughput: { 1: 1000 / median(times) } as Record<string, number>,
  };
  for (const b of Object.keys(feeds)) {
    if (b === '1') continue;
    await once(b);
    const ts: number[] = [];
    for (let i = 0; i < spec.batchIters; i++) {
      const s = performance.now();
      await once(b);
      ts.push(performance.now() - s);
    }
    (res.throughput as Record<string, number>)[b] = (Number(b) * 1000) / median(ts);
    res[`batch${b}_p50_ms`] = median(ts);
    res[`batch${b}_min_ms`] = Math.min(...ts);
  }
  await session.release();
  process.stdout.write(`BENCH ${JSON.stringify(res)}\n`);
}

main()
  .catch((e) => process.stdout.write(`BENCH ${JSON.stringify({ backend: `onnxruntime-web webgpu ${ENGINE} (Node)`, webgpu_engine: ENGINE, unavailable: String(e instanceof Error ? e.message : e) })}\n`))
  .finally(() => {
    delete (globalThis.navigator as { gpu?: unknown }).gpu; // or dawn.node keeps Node alive
    process.exit(0);
  });
