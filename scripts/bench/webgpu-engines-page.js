/**
 * In-page runner shared by tests/e2e/webgpu-engines.spec.ts (parity) and scripts/bench/webgpu-engines.ts (timings):
 * ONE onnxruntime-web build, imported from the app's own /ort/ exactly as a model worker does
 * (app/platform/browser/ort.ts: same-origin wasmPaths, errors only), runs a few small graphs on one execution
 * provider and returns their outputs and raw timings (ms). Use a fresh page per build: two builds in one page would
 * be two ORT instances.
 *
 * This file is ONE expression, read as text and passed to page.evaluate (CDP evaluation is not subject to the page's
 * CSP, and no bundler or tsx helper gets into it). Plain JS on purpose.
 *
 * spec = { module: 'ort.min.mjs' | 'ort.webgpu.min.mjs', ep: 'webgpu' | 'wasm', threads, warm,
 *          graphs: [{ name, url, feeds: { [input]: { dims, dtype: 'float32'|'int64', data: number[] } } }] }
 * returns { adapter: {vendor, architecture, isFallbackAdapter} | null, importMs,
 *           graphs: [{ name, createMs, firstMs, warmMs: number[], outputs: { [name]: number[] } }] }
 */
(async (spec) => {
  const base = new URL('/ort/', location.origin).href;
  const t0 = performance.now();
  const ort = await import(`${base}${spec.module}`);
  const importMs = performance.now() - t0;
  ort.env.wasm.wasmPaths = base;
  ort.env.logLevel = 'error';
  ort.env.wasm.numThreads = spec.threads ?? 1;
  let adapter = null;
  if (spec.ep === 'webgpu') {
    const a = await navigator.gpu?.requestAdapter();
    if (!a) throw new Error('no WebGPU adapter in this browser');
    adapter = { vendor: a.info?.vendor, architecture: a.info?.architecture, isFallbackAdapter: !!(a.info?.isFallbackAdapter ?? a.isFallbackAdapter) };
  }
  const tensor = (f) => (f.dtype === 'int64' ? new ort.Tensor('int64', BigInt64Array.from(f.data.map((x) => BigInt(x))), f.dims) : new ort.Tensor('float32', Float32Array.from(f.data), f.dims));
  const graphs = [];
  for (const g of spec.graphs) {
    const r = await fetch(g.url);
    if (!r.ok) throw new Error(`${g.url}: HTTP ${r.status}`);
    const bytes = new Uint8Array(await r.arrayBuffer());
    const feeds = Object.fromEntries(Object.entries(g.feeds).map(([k, v]) => [k, tensor(v)]));
    const c0 = performance.now();
    const session = await ort.InferenceSession.create(bytes, { executionProviders: [spec.ep], graphOptimizationLevel: 'all' });
    const createMs = performance.now() - c0;
    const once = async () => {
      const out = await session.run(feeds);
      const values = {};
      for (const [k, t] of Object.entries(out)) values[k] = Array.from(await t.getData(), Number);
      return values;
    };
    const f0 = performance.now();
    const outputs = await once();
    const firstMs = performance.now() - f0;
    const warmMs = [];
    for (let i = 0; i < (spec.warm ?? 0); i++) {
      const w0 = performance.now();
      await once();
      warmMs.push(performance.now() - w0);
    }
    await session.release();
    graphs.push({ name: g.name, createMs, firstMs, warmMs, outputs });
  }
  return { adapter, importMs, webgpuDevice: spec.ep === 'webgpu' ? !!(await ort.env.webgpu.device) : false, graphs };
})
