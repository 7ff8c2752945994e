/**
 * Which onnxruntime-web build a model worker loads: the JSEP build (WebGPU kernels written in TypeScript/WGSL,
 * `ort.min.mjs`), the native WebGPU EP (ORT's C++ WebGPU EP compiled with Dawn's emdawnwebgpu bindings,
 * `ort.webgpu.min.mjs`, the `onnxruntime-web/webgpu` export), or, where no WebGPU can run in the worker, the plain
 * WASM build (`ort.wasm.min.mjs`: the same WASM EP, half the wasm to compile). All carry the WASM EP. Pure: the worker
 * gathers the facts (gpu-probe.ts, its spawn options) and this decides, with the reason shown in the Runtime panel.
 *
 * Files of onnxruntime-web 1.30 (node_modules/onnxruntime-web/dist, package.json "exports"):
 * - './wasm'   → ort.wasm.min.mjs   → ort-wasm-simd-threaded.{mjs,wasm}           (14.2 MB wasm) WASM EP only
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
/** The ORT build a worker runs: a WebGPU engine's, or 'wasm' (no WebGPU in this worker: the plain WASM build). */
export type OrtBuildKind = WebGpuEngine | 'wasm';

export const WEBGPU_ENGINE_SETTINGS: readonly WebGpuEngineSetting[] = ['auto', 'jsep', 'native'];

/** An onnxruntime-web build as served under the app's /ort/: its JS module, and the glue + wasm it loads. */
export interface OrtBuild {
  engine: OrtBuildKind;
  /** The ES module the worker imports. */
  module: string;
  /** Emscripten glue (also the script of ORT's WASM threads) and the wasm binary, resolved via env.wasm.wasmPaths. */
  glue: string;
  wasm: string;
  /** Shown in the Runtime panel. */
  label: string;
}

export const ORT_BUILDS: Record<OrtBuildKind, OrtBuild> = {
  wasm: {
    engine: 'wasm',
    module: 'ort.wasm.min.mjs',
    glue: 'ort-wasm-simd-threaded.mjs',
    wasm: 'ort-wasm-simd-threaded.wasm',
    label: 'WASM only (ort.wasm.min.mjs)',
  },
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
  engine: OrtBuildKind;
  build: OrtBuild;
  reasons: string[];
}

/**
 * The auto rule (README, "WebGPU engines"):
 * 1. backend setting WASM, no WebGPU adapter, or a software fallback adapter (SwiftShader, isFallbackAdapter) with
 *    the backend on auto (the planner runs WASM there: execution-plan.ts) → no WebGPU can run in this worker: the
 *    plain WASM build, whatever the engine setting. Its wasm (14.2 MB) compiles in about half the JSEP wasm's time
 *    (28.3 MB: 0.9-1.6 s vs 2.1-2.9 s in one page, alternated, 2 loaded cores), which a fresh visit's first
 *    classification and every worker's first session wait for; its WASM EP is the same code. It is cached on demand
 *    by the service worker (vite.config.ts); where it cannot be loaded (offline before it was ever fetched) the
 *    worker falls back to the precached JSEP build (engineLoadFailed).
 * 2. a fallback adapter with WebGPU forced → JSEP: measured on SwiftShader (scripts/bench/webgpu-engines.ts, README):
 *    warm runs alike, the native EP's first run (WGSL compilation) about 2x faster; forcing WebGPU there is for
 *    testing, and JSEP is the build every forced-WebGPU test of the app covers (SD's GPU-resident loop included).
 * 3. a hardware adapter → native EP: on an H100 it ran ViT-B/16 in 14.8 ms vs JSEP's 25.1 ms and the SAM ViT-B
 *    encoder in 187–200 ms vs 278 ms (../shared/notes/webgpu-here.md), with identical fp32 outputs; it needs no
 *    optional adapter feature (shader-f16 is used when present, and fp16 is gated on it by the planner either way).
 * A forced 'jsep' / 'native' is honoured whenever WebGPU may run; 'native' without an adapter says why it is moot.
 * If the native build cannot be loaded (e.g. offline before its wasm was ever fetched) the worker falls back to JSEP
 * (engineLoadFailed); a native WebGPU session that fails to create falls back to WASM like JSEP's (sessions.ts).
 */
export function chooseWebGpuEngine(cfg: OrtWorkerConfig, gpu: GpuFacts): EngineChoice {
  const pick = (engine: OrtBuildKind, reason: string): EngineChoice => ({ engine, build: ORT_BUILDS[engine], reasons: [reason] });
  if (cfg.backend === 'wasm') return pick('wasm', 'ORT build: WASM only (backend WASM chosen: no WebGPU engine needed)');
  if (!gpu.available) {
    const moot = cfg.engine !== 'auto' ? ` (the ${cfg.engine === 'native' ? 'native WebGPU EP' : 'JSEP engine'} was chosen, but there is no adapter)` : '';
    return pick('wasm', `ORT build: WASM only (no WebGPU adapter${moot})`);
  }
  if (gpu.isFallbackAdapter && cfg.backend === 'auto') {
    return pick('wasm', 'ORT build: WASM only (software fallback adapter: the models run on WASM unless WebGPU is forced)');
  }
  if (cfg.engine === 'jsep') return pick('jsep', 'WebGPU engine: JSEP, chosen in settings');
  if (cfg.engine === 'native') return pick('native', 'WebGPU engine: native WebGPU EP, chosen in settings');
  if (gpu.isFallbackAdapter) {
    return pick('jsep', 'WebGPU engine auto: JSEP (software fallback adapter, WebGPU forced: JSEP is precached; choose native to try it)');
  }
  return pick('native', 'WebGPU engine auto: native WebGPU EP (hardware adapter; measured 1.4-1.7x faster than JSEP on an H100)');
}

/**
 * The choice after a build cached on demand (native WebGPU EP, plain WASM) failed to load: the precached JSEP build
 * (it carries both the WASM EP and a WebGPU engine), with the cause kept for the Runtime panel.
 */
export function engineLoadFailed(choice: EngineChoice, cause: unknown): EngineChoice {
  const msg = (cause instanceof Error ? cause.message : String(cause)).slice(0, 200);
  const what = choice.engine === 'wasm' ? 'the WASM-only build' : 'the native WebGPU EP build';
  return {
    engine: 'jsep',
    build: ORT_BUILDS.jsep,
    reasons: [...choice.reasons, `${what} failed to load (${msg}): using JSEP`],
  };
}

/**
 * Whether model workers started with `before` must be restarted for `after`: only when the two configs pick
 * different builds on this adapter (a worker keeps one build for its lifetime). E.g. switching the backend between
 * WASM and auto on SwiftShader keeps the WASM-only workers; WASM -> WebGPU (JSEP) and JSEP -> native restart them.
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
