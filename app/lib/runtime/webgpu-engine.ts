/**
 * Which onnxruntime-web build a model worker loads: the JSEP build (WebGPU kernels written in TypeScript/WGSL,
 * `ort.min.mjs`) or the native WebGPU EP (ORT's C++ WebGPU EP compiled with Dawn's emdawnwebgpu bindings,
 * `ort.webgpu.min.mjs`, the `onnxruntime-web/webgpu` export). Both also carry the WASM EP. Pure: the worker gathers
 * the facts (gpu-probe.ts, its spawn options) and this decides, with the reason shown in the Runtime panel.
 *
 * Files of onnxruntime-web 1.30 (node_modules/onnxruntime-web/dist, package.json "exports"):
 * - '.'        → ort.min.mjs        → ort-wasm-simd-threaded.jsep.{mjs,wasm}      (28.3 MB wasm) JSEP
 * - './webgpu' → ort.webgpu.min.mjs → ort-wasm-simd-threaded.asyncify.{mjs,wasm}  (26.8 MB wasm) native EP, Asyncify
 * - './jspi'   → ort.jspi.min.mjs   → ort-wasm-simd-threaded.jspi.{mjs,wasm}      (16.8 MB wasm) native EP, JSPI
 *   (JS Promise Integration: Chrome 137+, not Firefox/Safari yet; not used here, see README)
 * One build per worker: each carries its own onnxruntime-common (Tensor, InferenceSession) and its own wasm heap, so
 * tensors and sessions of two builds must never meet; the engine is fixed when the worker starts.
 */
import type { BackendOverride, GpuFacts } from './execution-plan';

/** The user's setting (Runtime panel): 'auto' lets the app decide. */
export type WebGpuEngineSetting = 'auto' | 'jsep' | 'native';
export type WebGpuEngine = 'jsep' | 'native';

export const WEBGPU_ENGINE_SETTINGS: readonly WebGpuEngineSetting[] = ['auto', 'jsep', 'native'];

/** An onnxruntime-web build as served under the app's /ort/: its JS module, and the glue + wasm it loads. */
export interface OrtBuild {
  engine: WebGpuEngine;
  /** The ES module the worker imports. */
  module: string;
  /** Emscripten glue (also the script of ORT's WASM threads) and the wasm binary, resolved via env.wasm.wasmPaths. */
  glue: string;
  wasm: string;
  /** Shown in the Runtime panel. */
  label: string;
}

export const ORT_BUILDS: Record<WebGpuEngine, OrtBuild> = {
  jsep: {
    engine: 'jsep',
    module: 'ort.min.mjs',
    glue: 'ort-wasm-simd-threaded.jsep.mjs',
    wasm: 'ort-wasm-simd-threaded.jsep.wasm',
    label: 'JSEP (ort.min.mjs)',
  },
  native: {
    engine: 'native',
    module: 'ort.webgpu.min.mjs',
    glue: 'ort-wasm-simd-threaded.asyncify.mjs',
    wasm: 'ort-wasm-simd-threaded.asyncify.wasm',
    label: 'native WebGPU EP (ort.webgpu.min.mjs)',
  },
};

/**
 * What a model worker is started with (the page's settings): the engine setting, and whether the backend setting is
 * 'wasm' (then no WebGPU runs and the engine does not matter).
 */
export interface OrtWorkerConfig {
  engine: WebGpuEngineSetting;
  backend: BackendOverride;
}

export interface EngineChoice {
  engine: WebGpuEngine;
  build: OrtBuild;
  reasons: string[];
}

/**
 * The auto rule (README, "WebGPU engines"):
 * 1. backend setting WASM, or no WebGPU adapter → JSEP build: its WASM EP is what the app has always run and its
 *    wasm is precached for offline use; the native build's wasm is fetched only when the native engine is used.
 * 2. a software fallback adapter (SwiftShader, isFallbackAdapter) → JSEP: the planner runs WASM there unless WebGPU
 *    is forced, so the precached build wins. Measured on SwiftShader (scripts/bench/webgpu-engines.ts, README): warm
 *    runs alike, the native EP's first run (WGSL compilation) about 2x faster; forcing WebGPU there is for testing,
 *    and JSEP is the build every forced-WebGPU test of the app covers (SD's GPU-resident loop included).
 * 3. a hardware adapter → native EP: on an H100 it ran ViT-B/16 in 14.8 ms vs JSEP's 25.1 ms and the SAM ViT-B
 *    encoder in 187–200 ms vs 278 ms (../shared/notes/webgpu-here.md), with identical fp32 outputs; it needs no
 *    optional adapter feature (shader-f16 is used when present, and fp16 is gated on it by the planner either way).
 * A forced 'jsep' / 'native' is honoured whenever WebGPU may run; 'native' without an adapter says why it is moot.
 * If the native build cannot be loaded (e.g. offline before its wasm was ever fetched) the worker falls back to JSEP
 * (engineLoadFailed); a native WebGPU session that fails to create falls back to WASM like JSEP's (sessions.ts).
 */
export function chooseWebGpuEngine(cfg: OrtWorkerConfig, gpu: GpuFacts): EngineChoice {
  const pick = (engine: WebGpuEngine, reason: string): EngineChoice => ({ engine, build: ORT_BUILDS[engine], reasons: [reason] });
  if (cfg.backend === 'wasm') return pick('jsep', 'ORT build: JSEP (backend WASM chosen: no WebGPU engine needed)');
  if (!gpu.available) {
    const moot = cfg.engine === 'native' ? ' (the native WebGPU EP was chosen, but there is no adapter)' : '';
    return pick('jsep', `ORT build: JSEP (no WebGPU adapter${moot})`);
  }
  if (cfg.engine === 'jsep') return pick('jsep', 'WebGPU engine: JSEP, chosen in settings');
  if (cfg.engine === 'native') return pick('native', 'WebGPU engine: native WebGPU EP, chosen in settings');
  if (gpu.isFallbackAdapter) {
    return pick('jsep', 'WebGPU engine auto: JSEP (software fallback adapter: WebGPU only when forced, and JSEP is precached; choose native to try it)');
  }
  return pick('native', 'WebGPU engine auto: native WebGPU EP (hardware adapter; measured 1.4-1.7x faster than JSEP on an H100)');
}

/** The choice after the native build failed to load: JSEP, with the cause kept for the Runtime panel. */
export function engineLoadFailed(choice: EngineChoice, cause: unknown): EngineChoice {
  const msg = (cause instanceof Error ? cause.message : String(cause)).slice(0, 200);
  return {
    engine: 'jsep',
    build: ORT_BUILDS.jsep,
    reasons: [...choice.reasons, `the native WebGPU EP build failed to load (${msg}): using JSEP`],
  };
}

/**
 * Whether model workers started with `before` must be restarted for `after`: only when the two configs pick
 * different builds on this adapter (a worker keeps one build for its lifetime). E.g. switching the backend between
 * WASM and WebGPU on SwiftShader with engine 'auto' keeps the JSEP workers; JSEP -> native restarts them.
 */
export function buildChanges(before: OrtWorkerConfig, after: OrtWorkerConfig, gpu: GpuFacts): boolean {
  return chooseWebGpuEngine(before, gpu).engine !== chooseWebGpuEngine(after, gpu).engine;
}

const NAME_RE = /\[ort engine=(auto|jsep|native) backend=(auto|webgpu|wasm)\]$/;

/**
 * A model worker's name carrying its ORT config (`new Worker(url, { name })`; read back as `self.name`), so the
 * engine is known before the worker's first message. E.g. 'classifier [ort engine=auto backend=auto]'.
 */
export function ortWorkerName(family: string, cfg: OrtWorkerConfig): string {
  return `${family} [ort engine=${cfg.engine} backend=${cfg.backend}]`;
}

/** The config in a worker name from ortWorkerName; defaults ('auto', 'auto') for any other name. */
export function ortConfigFromWorkerName(name: string | undefined): OrtWorkerConfig {
  const m = NAME_RE.exec(name ?? '');
  return m ? { engine: m[1] as WebGpuEngineSetting, backend: m[2] as BackendOverride } : { engine: 'auto', backend: 'auto' };
}

/** A stored or typed setting, anything unknown read as 'auto'. */
export function parseWebGpuEngine(v: unknown): WebGpuEngineSetting {
  return WEBGPU_ENGINE_SETTINGS.includes(v as WebGpuEngineSetting) ? (v as WebGpuEngineSetting) : 'auto';
}
