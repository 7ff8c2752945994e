/**
 * In-page half of scripts/bench/browser-graphs.ts: runs one ONNX graph on one execution provider inside a page of
 * the app's own origin, with the app's own ORT (the /ort/ort.min.mjs that the model workers load; see
 * vite.config.ts), and returns raw timings in ms; the Node side computes the statistics (scripts/bench/stats.ts).
 * Served by that script under /__bench/ through Playwright's request routing (with COOP/COEP, so the page is
 * cross-origin isolated and WASM is threaded like the app's workers). Plain JS on purpose: it is sent to the browser
 * as written, no bundler and no tsx transform in between.
 *
 * window.cxrBench.run(spec), spec = {
 *   ep: 'wasm' | 'webgpu', threads, model: URL of the .onnx, warm: runs at batch 1, batchIters: runs at each other
 *   batch, capMs: stop starting new runs after this long (per graph and EP),
 *   feeds: { [batch]: { [input]: { url, dims, dtype: float32|int64|int32|bool } } }   (files of `cxr_export bench feeds`)
 * }
 */
const ORT_BASE = new URL('/ort/', location.origin).href;

let ortPromise = null;
let ortImportMs = null;
/** The app's ORT, configured as app/platform/browser/ort.ts does (own-origin wasmPaths, errors only). */
function loadOrt(threads) {
  ortPromise ??= (async () => {
    const t = performance.now();
    const ort = await import(`${ORT_BASE}ort.min.mjs`);
    ortImportMs = performance.now() - t;
    ort.env.wasm.wasmPaths = ORT_BASE;
    ort.env.logLevel = 'error';
    // Read once, when the WASM module starts (the first session): the app sets it once per worker the same way.
    ort.env.wasm.numThreads = threads;
    return ort;
  })();
  return ortPromise;
}

async function bytesOf(url) {
  const r = await fetch(url);
  if (!r.ok) throw new Error(`${url}: HTTP ${r.status}`);
  return new Uint8Array(await r.arrayBuffer());
}

async function tensorOf(ort, f) {
  const buf = (await bytesOf(f.url)).buffer;
  switch (f.dtype) {
    case 'float32': return new ort.Tensor('float32', new Float32Array(buf), f.dims);
    case 'int64': return new ort.Tensor('int64', new BigInt64Array(buf), f.dims);
    case 'int32': return new ort.Tensor('int32', new Int32Array(buf), f.dims);
    case 'bool': return new ort.Tensor('bool', new Uint8Array(buf), f.dims);
    default: throw new Error(`unsupported feed dtype ${f.dtype}`);
  }
}

async function info() {
  const adapter = navigator.gpu ? await navigator.gpu.requestAdapter() : null;
  const i = adapter?.info;
  return {
    crossOriginIsolated: self.crossOriginIsolated === true,
    hardwareConcurrency: navigator.hardwareConcurrency,
    userAgent: navigator.userAgent,
    webgpu: adapter ? { vendor: i?.vendor, architecture: i?.architecture, isFallbackAdapter: i?.isFallbackAdapter ?? adapter.isFallbackAdapter, shaderF16: adapter.features.has('shader-f16') } : null,
  };
}

async function run(spec) {
  const start = performance.now();
  const over = () => performance.now() - start > spec.capMs;
  const ort = await loadOrt(spec.threads);
  const feeds = {};
  for (const [b, items] of Object.entries(spec.feeds)) {
    feeds[b] = {};
    for (const [name, f] of Object.entries(items)) feeds[b][name] = await tensorOf(ort, f);
  }
  // The app reads the model's bytes from its cache, then creates the session: only the creation is timed.
  const model = await bytesOf(spec.model);
  const res = { ep: spec.ep, ort_version: ort.env.versions?.web ?? null, ort_import_ms: ortImportMs, threads: ort.env.wasm.numThreads, batches: {} };
  const t0 = performance.now();
  // The app's session options (app/lib/runtime/sessions.ts createFor): one EP, full graph optimisation, outputs on
  // the CPU (so a WebGPU run includes the read-back, as in the app).
  const session = await ort.InferenceSession.create(model, { executionProviders: [spec.ep], graphOptimizationLevel: 'all' });
  res.cold_create_ms = performance.now() - t0;
  // A second session of the same bytes, at once released: creation without ORT's one-off start (WASM module
  // compile and threads, WebGPU device), which the first session of a page (or of an app worker) pays.
  const t2 = performance.now();
  await (await ort.InferenceSession.create(model, { executionProviders: [spec.ep], graphOptimizationLevel: 'all' })).release();
  res.second_create_ms = performance.now() - t2;
  const tRuns = performance.now();
  const once = async (b) => {
    const out = await session.run(feeds[b]);
    for (const t of Object.values(out)) t.dispose?.();
  };
  try {
    const first = '1' in feeds ? '1' : Object.keys(feeds)[0];
    res.first_run_batch = Number(first);
    const t1 = performance.now();
    await once(first);
    res.first_run_ms = performance.now() - t1;
    for (const b of [first, ...Object.keys(feeds).filter((x) => x !== first)]) {
      const n = b === first ? spec.warm : spec.batchIters;
      if (b !== first) {
        if (over()) break;
        await once(b); // first call at a new shape: not timed
      }
      const times = [];
      for (let i = 0; i < n && !over(); i++) {
        const s = performance.now();
        await once(b);
        times.push(performance.now() - s);
      }
      res.batches[b] = times;
    }
    res.over_cap = over();
    res.runs_ms = performance.now() - tRuns;
  } finally {
    await session.release();
  }
  res.total_ms = performance.now() - start;
  return res;
}

window.cxrBench = { info, run };
