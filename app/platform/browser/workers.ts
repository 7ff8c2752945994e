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

export interface WorkerRegistry {
  imaging(): ImagingApi;
  classifier(): ClassifierEngine;
  clip(): ClipEngine;
  sam(): SamEngine;
  sd(): SdEngine;
  /** Release every model session (backend setting changed, model deleted); workers stay alive. */
  resetModels(): Promise<void>;
  /**
   * Cancel what the imaging worker is doing (a large file decoding): the worker is terminated, its pending calls
   * reject with "cancelled", and the next call starts a fresh one.
   */
  cancelImaging(): void;
}

type Faults = { workerCallsFailOnce?: boolean };

/**
 * A family's engine backed by a comlink worker started on first use: function arguments (progress callbacks) are
 * proxied, `release`/`reset` on a worker never started do nothing, faults are injected when asked.
 */
function lazyRemote<T extends object>(name: string, start: () => Worker, methods: (keyof T & string)[]): { api: T; terminate(reason: string): void } {
  const faults = (globalThis as { __CXR_FAULTS__?: Faults }).__CXR_FAULTS__;
  const failed = new Set<string>();
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

function spawn(file: 'imaging' | ModelFamily): Worker {
  // Literal URLs: Vite bundles each worker from its `new URL(..., import.meta.url)`.
  if (file === 'imaging') return new Worker(new URL('../../../workers/imaging.worker.ts', import.meta.url), { type: 'module', name: 'imaging' });
  if (file === 'classifier') return new Worker(new URL('../../../workers/classifier.worker.ts', import.meta.url), { type: 'module', name: 'classifier' });
  if (file === 'sam') return new Worker(new URL('../../../workers/sam.worker.ts', import.meta.url), { type: 'module', name: 'sam' });
  if (file === 'sd') return new Worker(new URL('../../../workers/sd.worker.ts', import.meta.url), { type: 'module', name: 'sd' });
  return new Worker(new URL('../../../workers/clip.worker.ts', import.meta.url), { type: 'module', name: 'clip' });
}

/** The app's registry; each worker starts on its first call. */
export function browserWorkers(): WorkerRegistry {
  const imaging = lazyRemote<ImagingApi>('imaging', () => spawn('imaging'), ['decode', 'decodeForBatch', 'listZip']);
  const classifier = lazyRemote<ClassifierEngine>('classifier', () => spawn('classifier'), ['load', 'classify', 'occlusion', 'release', 'reset']).api;
  const clip = lazyRemote<ClipEngine>('clip', () => spawn('clip'), ['load', 'zeroShot', 'release', 'reset']).api;
  const sam = lazyRemote<SamEngine>('sam', () => spawn('sam'), ['load', 'info', 'encode', 'decode', 'previewDecode', 'prewarm', 'stats', 'release', 'reset']).api;
  const sd = lazyRemote<SdEngine>('sd', () => spawn('sd'), ['load', 'generate', 'cancel', 'release', 'reset']).api;
  return {
    imaging: () => imaging.api,
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
