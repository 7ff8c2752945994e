/**
 * Pure choice of ONNX Runtime execution provider and model dtype from what the device offers.
 * No browser APIs here: the workers gather the facts (see gpu-probe.ts) and this decides, so every rule is unit-tested.
 */
import type { Dtype, ModelEntry } from '../models/manifest-types';
import { quantizedVerdict } from '../models/quantized';

export type Backend = 'webgpu' | 'wasm';
/** The user's setting: 'auto' lets the app decide; the others force a backend where it can work at all. */
export type BackendOverride = 'auto' | 'webgpu' | 'wasm';

/** What a WebGPU adapter offers; `available: false` when there is none (no navigator.gpu, or requestAdapter() gave null). */
export interface GpuFacts {
  available: boolean;
  vendor?: string;
  architecture?: string;
  description?: string;
  isFallbackAdapter?: boolean;
  shaderF16: boolean;
  maxBufferSize: number;
  maxStorageBufferBindingSize: number;
  /** Why there is no adapter, when known (e.g. 'navigator.gpu is undefined'). */
  unavailableReason?: string;
}

export interface ExecutionInputs {
  gpu: GpuFacts;
  crossOriginIsolated: boolean;
  hardwareConcurrency: number;
  override: BackendOverride;
  /** Size in bytes of the largest graph file of the model (weights live in GPU buffers when on WebGPU). */
  largestFileBytes: number;
  /** Dtypes for which the manifest has a variant of this model. */
  availableDtypes: Dtype[];
  /** The int8 variant's card metrics match fp32's (models/quantized.ts), with the sentence saying so or why not. */
  int8MatchesCard?: boolean;
  int8Reason?: string;
}

export interface ExecutionPlan {
  backend: Backend;
  dtype: Dtype;
  /** WASM threads; >1 only when cross-origin isolated (SharedArrayBuffer). */
  numThreads: number;
  /** Human-readable reasons for each decision, shown in the UI next to the model. */
  reasons: string[];
}

export class NoUsableVariantError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'NoUsableVariantError';
  }
}

export const MAX_WASM_THREADS = 4;

export function formatBytes(n: number): string {
  if (!Number.isFinite(n)) return String(n);
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${i === 0 ? v : v.toFixed(v >= 100 ? 0 : 1)} ${units[i]}`;
}

export function describeGpu(gpu: GpuFacts): string {
  if (!gpu.available) return 'no WebGPU adapter';
  const name = [gpu.vendor || 'unknown vendor', gpu.architecture].filter(Boolean).join(' / ');
  return gpu.isFallbackAdapter ? `${name} (software fallback)` : name;
}

/** WASM thread count: threads need SharedArrayBuffer, i.e. cross-origin isolation. */
export function chooseThreads(crossOriginIsolated: boolean, hardwareConcurrency: number, reasons: string[]): number {
  if (!crossOriginIsolated) {
    reasons.push('page is not cross-origin isolated (COOP/COEP): WASM runs on 1 thread');
    return 1;
  }
  const n = Math.max(1, Math.min(MAX_WASM_THREADS, Math.floor(hardwareConcurrency || 1)));
  return n;
}

function chooseBackend(inp: ExecutionInputs, reasons: string[]): Backend {
  const { gpu, override } = inp;
  if (override === 'wasm') {
    reasons.push('WASM chosen in settings');
    return 'wasm';
  }
  if (!gpu.available) {
    const why = gpu.unavailableReason ? ` (${gpu.unavailableReason})` : '';
    reasons.push(
      override === 'webgpu'
        ? `WebGPU was requested but this browser has no WebGPU adapter${why}: using WASM`
        : `no WebGPU adapter${why}: using WASM`,
    );
    return 'wasm';
  }
  // A model whose weights cannot fit one GPU buffer cannot be created on WebGPU at all, whatever the setting.
  const limit = Math.min(gpu.maxBufferSize, gpu.maxStorageBufferBindingSize);
  if (inp.largestFileBytes > limit) {
    reasons.push(
      `model file (${formatBytes(inp.largestFileBytes)}) exceeds the adapter's buffer limits ` +
        `(maxBufferSize ${formatBytes(gpu.maxBufferSize)}, maxStorageBufferBindingSize ${formatBytes(gpu.maxStorageBufferBindingSize)}): using WASM`,
    );
    return 'wasm';
  }
  if (override === 'webgpu') {
    reasons.push(`WebGPU chosen in settings (adapter: ${describeGpu(gpu)})`);
    return 'webgpu';
  }
  if (gpu.isFallbackAdapter) {
    // SwiftShader & co. emulate the GPU on the CPU, measured ~100x slower than ORT's WASM backend here.
    reasons.push(`the WebGPU adapter is a software fallback (${describeGpu(gpu)}), far slower than WASM: using WASM`);
    return 'wasm';
  }
  reasons.push(`WebGPU adapter: ${describeGpu(gpu)}`);
  return 'webgpu';
}

function chooseDtype(backend: Backend, inp: ExecutionInputs, reasons: string[]): Dtype {
  const have = new Set(inp.availableDtypes);
  if (have.size === 0) throw new NoUsableVariantError('the manifest lists no variant for this model');
  if (backend === 'webgpu') {
    // fp16 needs the shader-f16 feature: without it ORT's JSEP silently returns zeros.
    if (have.has('fp16') && inp.gpu.shaderF16) {
      reasons.push('fp16 variant: the adapter supports shader-f16');
      return 'fp16';
    }
    if (have.has('fp32')) {
      if (have.has('fp16')) reasons.push('fp32 variant: the adapter lacks shader-f16');
      return 'fp32';
    }
    if (have.has('int8')) {
      reasons.push('int8 variant (the only one requested: chosen in the Models view, or the model has no fp32)');
      return 'int8';
    }
    throw new NoUsableVariantError('only an fp16 variant exists and the WebGPU adapter lacks shader-f16');
  }
  if (have.has('int8') && have.has('fp32') && inp.int8MatchesCard) {
    // On WASM int8 MatMuls are faster and the file is ~2.5x smaller; allowed only when the card shows no loss.
    reasons.push(`int8 variant on WASM: ${inp.int8Reason ?? 'its card metrics match fp32'}`);
    return 'int8';
  }
  if (have.has('fp32')) {
    if (have.has('int8') && inp.int8Reason) reasons.push(`fp32 variant: ${inp.int8Reason}`);
    return 'fp32';
  }
  if (have.has('int8')) {
    reasons.push('int8 variant (the only one requested: chosen in the Models view, or the model has no fp32)');
    return 'int8';
  }
  throw new NoUsableVariantError('only an fp16 variant exists, which needs WebGPU with shader-f16');
}

/** Decide backend, dtype and threads; every choice comes with a reason. */
export function planExecution(inp: ExecutionInputs): ExecutionPlan {
  const reasons: string[] = [];
  let backend = chooseBackend(inp, reasons);
  let dtype: Dtype;
  try {
    dtype = chooseDtype(backend, inp, reasons);
  } catch (e) {
    // e.g. only fp32 is too large for WebGPU but fp16 is not allowed: fall back to WASM when it has a variant.
    if (backend === 'webgpu') {
      reasons.push(`${(e as Error).message}: using WASM`);
      backend = 'wasm';
      dtype = chooseDtype(backend, inp, reasons);
    } else {
      throw e;
    }
  }
  const numThreads = chooseThreads(inp.crossOriginIsolated, inp.hardwareConcurrency, reasons);
  return { backend, dtype, numThreads, reasons };
}

/** The plan after a WebGPU session failed to be created: WASM, with the cause kept for the UI. */
/**
 * The plan after a WebGPU session failed to create: WASM, with a dtype whose files are already there.
 *
 * The planned dtype is kept when WASM runs it (its files were just downloaded for WebGPU); fp16, which WASM does not
 * run here (chooseDtype), is replaced by fp32 or int8 ONLY among `downloaded` (the dtypes whose files are all in the
 * model cache / on disk). Without `downloaded` every dtype of the manifest counts. Throws NoUsableVariantError naming
 * what to download when no WASM-capable variant is there: never a plan whose files were never fetched.
 */
export function fallbackToWasm(plan: ExecutionPlan, cause: unknown, inp: ExecutionInputs, downloaded?: Dtype[]): ExecutionPlan {
  const msg = (cause instanceof Error ? cause.message : String(cause)).slice(0, 300);
  const reasons = [...plan.reasons];
  const have = new Set(inp.availableDtypes);
  const usable = (d: Dtype) => have.has(d) && (!downloaded || downloaded.includes(d));
  const wasmDtypes: Dtype[] = ['fp32', 'int8'];
  let dtype: Dtype | undefined = plan.dtype !== 'fp16' && usable(plan.dtype) ? plan.dtype : wasmDtypes.find(usable);
  if (!dtype) {
    const offer = wasmDtypes.filter((d) => have.has(d));
    throw new NoUsableVariantError(
      offer.length
        ? `WebGPU session creation failed (${msg}) and the ${offer.join(' or ')} variant that WASM needs is not downloaded: download it in the Models view, or choose WASM`
        : `WebGPU session creation failed (${msg}) and this model has no variant that runs on WASM`,
    );
  }
  if (dtype !== plan.dtype) reasons.push(`${dtype} variant for WASM (${downloaded ? 'already downloaded; ' : ''}${plan.dtype} runs on WebGPU only)`);
  reasons.push(`WebGPU session creation failed (${msg}): fell back to WASM`);
  return { backend: 'wasm', dtype, numThreads: plan.numThreads, reasons };
}

/**
 * The model-dependent inputs of a plan, from its manifest entry: the dtypes it has files for, and its largest ONNX
 * graph (every graph, since SAM and SD carry several). The page and the workers both use this, so they agree on the
 * variant to download and to run.
 */
export function modelPlanFacts(entry: ModelEntry): Pick<ExecutionInputs, 'largestFileBytes' | 'availableDtypes' | 'int8MatchesCard' | 'int8Reason'> {
  let largestFileBytes = 0;
  const availableDtypes: Dtype[] = [];
  for (const [dtype, v] of Object.entries(entry.variants)) {
    if (!v?.files.length) continue;
    availableDtypes.push(dtype as Dtype);
    for (const f of v.files) if (f.path.endsWith('.onnx')) largestFileBytes = Math.max(largestFileBytes, f.bytes);
  }
  if (!entry.variants.int8) return { largestFileBytes, availableDtypes };
  const v = quantizedVerdict(entry, 'int8');
  return { largestFileBytes, availableDtypes, int8MatchesCard: v.matches, int8Reason: v.reason };
}
