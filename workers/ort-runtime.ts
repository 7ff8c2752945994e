/**
 * Worker-side ONNX Runtime plumbing shared by the model workers: loading the one self-hosted ORT build, probing the
 * GPU, planning (app/lib/runtime) and creating sessions with a WebGPU → WASM fallback that is reported, not hidden.
 */
import type * as OrtModule from 'onnxruntime-web';
import {
  type BackendOverride,
  type ExecutionInputs,
  type ExecutionPlan,
  type GpuFacts,
  type RuntimeReport,
  fallbackToWasm,
  modelPlanFacts,
  planExecution,
  probeGpu,
} from '../app/lib/runtime';
import type { ModelEntry, ModelFile } from '../app/lib/models/manifest-types';
import { CacheStorageModelStore } from '../app/lib/models/model-cache';
import { LocalKeyModelStore } from '../app/store/cache-keys';
import { resolveFileUrl, type ModelSource } from '../app/lib/models/sources';

export type Ort = typeof OrtModule;
export type Session = OrtModule.InferenceSession;

let ortPromise: Promise<Ort> | null = null;

/** ORT is served by the app under /ort/ (see vite.config.ts for why it is not bundled into each worker). */
export function ortBaseUrl(): string {
  return new URL(`${import.meta.env.BASE_URL}ort/`, self.location.origin).href;
}

export function loadOrt(): Promise<Ort> {
  ortPromise ??= (async () => {
    const base = ortBaseUrl();
    const ort = (await import(/* @vite-ignore */ `${base}ort.min.mjs`)) as Ort;
    // Never a CDN: ORT's glue (.mjs) and .wasm come from the same folder of this app.
    ort.env.wasm.wasmPaths = base;
    ort.env.logLevel = 'error';
    return ort;
  })();
  ortPromise.catch(() => {
    ortPromise = null;
  });
  return ortPromise;
}

let gpuPromise: Promise<GpuFacts> | null = null;
export function gpuFacts(): Promise<GpuFacts> {
  gpuPromise ??= probeGpu();
  return gpuPromise;
}

/** How a worker gets a model file's bytes (from the model cache: modelCacheReader below). */
export type FileReader = (file: ModelFile) => Promise<Uint8Array>;

export interface LoadedGraphs {
  sessions: Record<string, Session>;
  report: RuntimeReport;
}

let threadsSet = false;

/**
 * Create one session per ONNX graph role of the planned variant. On WebGPU failure: release what was created, plan
 * again for WASM with the cause in the reasons, and retry there.
 */
export async function createSessions(
  entry: ModelEntry,
  roles: string[],
  override: BackendOverride,
  readFile: FileReader,
  onProgress?: (stage: string, fraction?: number) => void,
): Promise<LoadedGraphs> {
  const ort = await loadOrt();
  const gpu = await gpuFacts();
  const inputs: ExecutionInputs = {
    gpu,
    crossOriginIsolated: self.crossOriginIsolated === true,
    hardwareConcurrency: self.navigator.hardwareConcurrency || 1,
    override,
    ...modelPlanFacts(entry),
  };
  let plan: ExecutionPlan = planExecution(inputs);
  if (!threadsSet) {
    // Global to the ORT instance and only read when the WASM module first starts: set once per worker.
    ort.env.wasm.numThreads = plan.numThreads;
    threadsSet = true;
  }
  let fellBack = false;
  const t0 = performance.now();
  let sessions: Record<string, Session>;
  try {
    sessions = await createFor(ort, entry, roles, plan, readFile, onProgress);
  } catch (e) {
    if (plan.backend !== 'webgpu') throw e;
    plan = fallbackToWasm(plan, e, inputs);
    fellBack = true;
    onProgress?.('WebGPU failed; creating WASM session', undefined);
    sessions = await createFor(ort, entry, roles, plan, readFile, onProgress);
  }
  const report: RuntimeReport = {
    modelId: entry.id,
    backend: plan.backend,
    dtype: plan.dtype,
    numThreads: plan.numThreads,
    gpu,
    reasons: plan.reasons,
    fellBack,
    sessionCreateMs: Math.round(performance.now() - t0),
    crossOriginIsolated: self.crossOriginIsolated === true,
  };
  return { sessions, report };
}

async function createFor(
  ort: Ort,
  entry: ModelEntry,
  roles: string[],
  plan: ExecutionPlan,
  readFile: FileReader,
  onProgress?: (stage: string, fraction?: number) => void,
): Promise<Record<string, Session>> {
  const variant = entry.variants[plan.dtype];
  if (!variant) throw new Error(`${entry.name}: no ${plan.dtype} variant`);
  const out: Record<string, Session> = {};
  try {
    for (const role of roles) {
      const file = variant.files.find((f) => f.role === role);
      if (!file) throw new Error(`${entry.name} (${plan.dtype}): the manifest lists no '${role}' file`);
      onProgress?.(`reading ${file.path}`);
      const bytes = await readFile(file);
      const external = [];
      for (const ext of file.external_data ?? []) {
        external.push({ path: ext.path.split('/').pop()!, data: await readFile({ ...ext, role: `${role}-data` }) });
      }
      onProgress?.(`creating ${role} session on ${plan.backend}`);
      out[role] = await ort.InferenceSession.create(bytes, {
        executionProviders: [plan.backend],
        graphOptimizationLevel: 'all',
        ...(external.length ? { externalData: external } : {}),
      });
    }
    return out;
  } catch (e) {
    await Promise.all(Object.values(out).map((s) => s.release().catch(() => undefined)));
    throw e;
  }
}

/**
 * Model files come only from the model cache, which the main thread fills through ModelDownloader (sha256 and size
 * verified). Reading the cache here instead of receiving the bytes: Cache Storage is reachable from workers, so a
 * large graph is never copied through the UI thread, and a session can be re-created (backend switch) on its own.
 */
export function modelCacheReader(source: ModelSource): FileReader {
  const store = new LocalKeyModelStore(new CacheStorageModelStore());
  return async (file) => {
    const url = resolveFileUrl(source, file.path);
    const bytes = await store.get(url);
    if (!bytes) throw new Error(`${file.path} is not in the model cache (download the model first)`);
    if (bytes.byteLength !== file.bytes) throw new Error(`${file.path} in the model cache has ${bytes.byteLength} bytes, expected ${file.bytes}: delete and download it again`);
    return bytes;
  };
}

export function errorMessage(e: unknown): string {
  if (e instanceof Error) return e.message;
  if (typeof e === 'number') return `ONNX Runtime error code ${e}`;
  return String(e);
}
