/**
 * @huggingface/transformers (transformers.js v4) on the app's one ONNX Runtime instance.
 *
 * transformers.js picks its ORT at import time: `globalThis[Symbol.for('onnxruntime')]` when set, else its own
 * onnxruntime-web/onnxruntime-node (src/backends/onnx.js). So the module is imported only here, lazily, after that
 * symbol holds the ORT the engines already use (browser: /ort/ort.min.mjs; Node: onnxruntime-web's Node build). In the
 * browser build its own `onnxruntime-web/webgpu` and `onnxruntime-common` imports are aliased to
 * app/platform/browser/ort-global.ts (vite.config.ts), so no second ORT is bundled.
 *
 * On import transformers.js also writes ORT's env: a jsDelivr `wasm.wasmPaths` when none is set (restored here, so
 * ORT's wasm never comes from a CDN), `wasm.proxy = false` and its log level. Its own Hub access is switched off
 * (allowRemoteModels / allowLocalModels / browser cache): the app downloads and verifies every file itself
 * (app/lib/models, app/lib/hub) and hands transformers.js parsed JSON only.
 *
 * APIs the app uses (and why): PreTrainedTokenizer (tokenizer.json + tokenizer_config.json, replacing a direct
 * @huggingface/tokenizers dependency: transformers.js wraps that same library). Its image processors and
 * SamImageProcessor.post_process_masks are the reference the app's own preprocessing and mask upscale are tested equal
 * to (tests/unit/hub/library-parity.test.ts; README "Models from the Hub" says why the app keeps its own).
 */
import type { Ort } from './sessions';

export type Transformers = typeof import('@huggingface/transformers');

const ORT_SYMBOL = Symbol.for('onnxruntime');
let loading: Promise<Transformers> | null = null;
let sharedOrt: Ort | null = null;

/**
 * transformers.js bound to `ort`. Throws when another ORT instance was already handed to it (one per page, worker or
 * process) and when the import fails (the cause in the message).
 */
export function loadTransformers(ort: Ort): Promise<Transformers> {
  if (sharedOrt && sharedOrt !== ort) throw new Error('transformers.js is already bound to another ONNX Runtime instance');
  const g = globalThis as unknown as Record<symbol, unknown>;
  if (g[ORT_SYMBOL] !== undefined && g[ORT_SYMBOL] !== ort) throw new Error('globalThis[Symbol.for("onnxruntime")] holds another ONNX Runtime instance');
  sharedOrt = ort;
  g[ORT_SYMBOL] = ort;
  loading ??= (async () => {
    const wasmPaths = ort.env.wasm.wasmPaths;
    const proxy = ort.env.wasm.proxy;
    const logLevel = ort.env.logLevel;
    try {
      const t = (await import('@huggingface/transformers')) as Transformers;
      t.env.allowRemoteModels = false;
      t.env.allowLocalModels = false;
      t.env.useBrowserCache = false;
      t.env.useFSCache = false;
      return t;
    } finally {
      // What the import changed on the shared ORT is put back (a CDN wasmPaths above all).
      ort.env.wasm.wasmPaths = wasmPaths;
      ort.env.wasm.proxy = proxy;
      ort.env.logLevel = logLevel;
    }
  })();
  loading.catch(() => {
    loading = null;
  });
  return loading;
}
