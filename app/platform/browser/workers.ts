/**
 * The worker registry: the app's comlink workers, one lazily created singleton per model family (named by the manifest's `family`: classifier, clip, sam, sd) plus one for
 * decoding images. Callers get the family's engine interface (app/lib/<family>/engine.ts); progress callbacks are
 * proxied here so the rest of the app never sees comlink.
 *
 * Fault injection (browser tests only): when the page defines `globalThis.__CXR_FAULTS__ = { workerCallsFailOnce:
 * true }` before the app starts, the first call of every worker method rejects, as a crashed worker's would. The
 * tests use it to prove each call's failure is caught and reported. Without that global this is a no-op.
 */
import * as Comlink from 'comlink';
import type { ClassifierEngine } from '../../lib/classifier/engine';
import type { ClipEngine } from '../../lib/clip/engine';
import type { ImagingApi } from '../../lib/imaging/decode-outcome';
import type { SamEngine } from '../../lib/sam/engine';
import type { SdEngine } from '../../lib/sd/engine';
import type { ModelFamily } from '../../lib/models/manifest-types';
import type { Progress } from '../../lib/runtime/outcome';
import type { GpuFacts } from '../../lib/runtime/execution-plan';
import { probeGpu } from '../../lib/runtime/gpu-probe';
import { buildChanges, ortWorkerName, type OrtWorkerConfig } from '../../lib/runtime/webgpu-engine';

export interface WorkerRegistry {
  imaging(): ImagingApi;
  /**
   * Batch decoding spread over a pool of imaging workers (batchImagingPoolSize), each call to the least busy one, so
   * that a chunk's images decode in parallel, and beside the model workers' inference of the previous chunk.
   */
  batchImaging(): Pick<ImagingApi, 'decodeForBatch'>;
  classifier(): ClassifierEngine;
  clip(): ClipEngine;
  sam(): SamEngine;
  sd(): SdEngine;
  /** Release every model session (backend setting changed, model deleted); workers stay alive. */
  resetModels(): Promise<void>;
  /**
   * The ORT config model workers start with (WebGPU engine and backend settings: lib/runtime/webgpu-engine.ts). A
   * worker loads one onnxruntime-web build for its lifetime, so when the build the new config picks on this page's
   * adapter differs from the old one's, the model workers are terminated and the next call starts them with the new
   * config (their calls in flight are rejected: release the sessions first). Otherwise they keep running.
   */
  configureOrt(cfg: OrtWorkerConfig): Promise<void>;
  /**
   * Cancel what the imaging worker is doing (a large file decoding): the worker is terminated, its pending calls
   * reject with "cancelled", and the next call starts a fresh one.
   */
  cancelImaging(): void;
}

type Faults = { workerCallsFailOnce?: boolean };

/**
 * A family's engine backed by a comlink worker started on first use: function arguments (progress callbacks) are
 * proxied, `release`/`reset` on a worker never started do nothing, faults are injected when asked (once per method
 * name over the workers sharing `failed`: a pool of workers fails like one).
 */
function lazyRemote<T extends object>(name: string, start: () => Worker, methods: (keyof T & string)[], failed = new Set<string>()): { api: T; terminate(reason: string): void } {
  const faults = (globalThis as { __CXR_FAULTS__?: Faults }).__CXR_FAULTS__;
  let remote: Comlink.Remote<T> | null = null;
  let worker: Worker | null = null;
  /** Rejecters of the calls in flight: a terminated worker never answers them. */
  const pending = new Set<(e: Error) => void>();
  const out: Record<string, unknown> = {};
  for (const m of methods) {
    out[m] = async (...args: unknown[]) => {
      if (!remote && (m === 'release' || m === 'reset')) return undefined;
      if (faults?.workerCallsFailOnce && !failed.has(m)) {
        failed.add(m);
        throw new Error(`the ${name} worker failed (injected fault in ${name}.${m})`);
      }
      if (!remote) {
        worker = start();
        remote = Comlink.wrap<T>(worker);
      }
      const a = args.map((x) => (typeof x === 'function' ? Comlink.proxy(x as Progress) : x));
      const call = (remote[m as keyof Comlink.Remote<T>] as unknown as (...x: unknown[]) => Promise<unknown>)(...a);
      return new Promise((resolve, reject) => {
        pending.add(reject);
        call.then(resolve, reject).finally(() => pending.delete(reject));
      });
    };
  }
  return {
    api: out as T,
    terminate(reason) {
      worker?.terminate();
      worker = null;
      remote = null;
      for (const reject of [...pending]) reject(Object.assign(new Error(reason), { name: 'AbortError' }));
      pending.clear();
    },
  };
}

/**
 * A worker of `file`; a model worker's name carries its ORT config (ortWorkerName), read by its ORT host
 * (app/platform/browser/ort.ts) before the first message.
 */
function spawn(file: 'imaging' | ModelFamily, ort: OrtWorkerConfig): Worker {
  // Literal URLs and a literal `type`: Vite bundles each worker from its `new URL(..., import.meta.url)`.
  if (file === 'imaging') return new Worker(new URL('../../../workers/imaging.worker.ts', import.meta.url), { type: 'module', name: 'imaging' });
  const name = ortWorkerName(file, ort);
  if (file === 'classifier') return new Worker(new URL('../../../workers/classifier.worker.ts', import.meta.url), { type: 'module', name });
  if (file === 'sam') return new Worker(new URL('../../../workers/sam.worker.ts', import.meta.url), { type: 'module', name });
  if (file === 'sd') return new Worker(new URL('../../../workers/sd.worker.ts', import.meta.url), { type: 'module', name });
  return new Worker(new URL('../../../workers/clip.worker.ts', import.meta.url), { type: 'module', name });
}

/**
 * Imaging workers for batch decoding: half the logical cores (the model workers' WASM threads take the rest), at
 * least 2 so that one decode overlaps another's file read, at most 4 (a 224 px PNG decodes in a few ms).
 */
export function batchImagingPoolSize(hardwareConcurrency: number | undefined): number {
  return Math.max(2, Math.min(4, Math.floor((hardwareConcurrency || 2) / 2)));
}

/** The app's registry; each worker starts on its first call, model workers with the ORT config `ort`. */
export function browserWorkers(ort: OrtWorkerConfig = { engine: 'auto', backend: 'auto' }): WorkerRegistry {
  let ortConfig = ort;
  /** The page's adapter facts (the workers probe their own; the same browser gives the same adapter). */
  let gpuFacts: Promise<GpuFacts> | null = null;
  const imaging = lazyRemote<ImagingApi>('imaging', () => spawn('imaging', ortConfig), ['decode', 'decodeForBatch', 'listZip']);
  const classifierW = lazyRemote<ClassifierEngine>('classifier', () => spawn('classifier', ortConfig), ['load', 'classify', 'occlusion', 'release', 'reset']);
  const clipW = lazyRemote<ClipEngine>('clip', () => spawn('clip', ortConfig), ['load', 'zeroShot', 'release', 'reset']);
  const samW = lazyRemote<SamEngine>('sam', () => spawn('sam', ortConfig), ['load', 'info', 'encode', 'decode', 'previewDecode', 'prewarm', 'stats', 'release', 'reset']);
  const sdW = lazyRemote<SdEngine>('sd', () => spawn('sd', ortConfig), ['load', 'generate', 'cancel', 'release', 'reset']);
  const [classifier, clip, sam, sd] = [classifierW.api, clipW.api, samW.api, sdW.api];
  const poolFaults = new Set<string>();
  const pool = Array.from({ length: batchImagingPoolSize(globalThis.navigator?.hardwareConcurrency) }, () => ({
    remote: lazyRemote<ImagingApi>('imaging', () => spawn('imaging', ortConfig), ['decodeForBatch'], poolFaults),
    busy: 0,
  }));
  const batchImaging: Pick<ImagingApi, 'decodeForBatch'> = {
    async decodeForBatch(...args) {
      const w = pool.reduce((a, b) => (b.busy < a.busy ? b : a));
      w.busy++;
      try {
        return await w.remote.api.decodeForBatch(...args);
      } finally {
        w.busy--;
      }
    },
  };
  return {
    async configureOrt(cfg) {
      const before = ortConfig;
      ortConfig = cfg;
      gpuFacts ??= probeGpu();
      const gpu = await gpuFacts;
      if (!buildChanges(before, cfg, gpu)) return;
      for (const w of [classifierW, clipW, samW, sdW]) w.terminate('the WebGPU engine setting changed');
    },
    imaging: () => imaging.api,
    batchImaging: () => batchImaging,
    classifier: () => classifier,
    clip: () => clip,
    sam: () => sam,
    sd: () => sd,
    async resetModels() {
      await Promise.all([classifier.reset(), clip.reset(), sam.reset(), sd.reset()]);
    },
    cancelImaging() {
      imaging.terminate('cancelled by the user');
    },
  };
}

/** Transfer an ArrayBuffer to a worker instead of copying it. */
export function transfer<T>(value: T, buffers: Transferable[]): T {
  return Comlink.transfer(value, buffers);
}
