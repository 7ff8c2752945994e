/**
 * The browser's OrtHost (page or worker): the one self-hosted ORT build under /ort/, the WebGPU adapter's facts, and
 * model files read from the model cache.
 */
import type { Dtype, ModelEntry } from '../../lib/models/manifest-types';
import { resolveFileUrl, type ModelSource } from '../../lib/models/sources';
import { readVerified } from '../../lib/models/verified-read';
import { modelPlanFacts, probeGpu, type BackendOverride, type ExecutionInputs, type GpuFacts } from '../../lib/runtime';
import type { FileReader, Ort, OrtHost } from '../../lib/runtime/sessions';
import { chooseWebGpuEngine, engineLoadFailed, ortConfigFromWorkerName, type EngineChoice, type OrtWorkerConfig } from '../../lib/runtime/webgpu-engine';
import { appBasePath } from './env';
import { browserModelStore } from './model-cache';

/** ORT is served by the app under /ort/ (see vite.config.ts for why it is not bundled into each worker). */
export function ortBaseUrl(): string {
  return new URL(`${appBasePath()}ort/`, self.location.origin).href;
}

/** The WebGPU adapter's facts, probed once per page or worker. */
export interface BrowserDevice {
  gpu(): Promise<GpuFacts>;
  planInputs(entry: ModelEntry, override: BackendOverride): Promise<ExecutionInputs>;
}

export function browserDevice(): BrowserDevice {
  let gpu: Promise<GpuFacts> | null = null;
  const facts = () => (gpu ??= probeGpu());
  return {
    gpu: facts,
    async planInputs(entry, override) {
      return {
        gpu: await facts(),
        crossOriginIsolated: self.crossOriginIsolated === true,
        hardwareConcurrency: self.navigator.hardwareConcurrency || 1,
        override,
        ...modelPlanFacts(entry),
      };
    },
  };
}

/**
 * Model files come only from the model cache, which the main thread fills through ModelDownloader (sha256 and size
 * verified), and are verified again on every read. Reading the cache in the worker instead of receiving the bytes: Cache Storage is reachable from workers,
 * so a large graph is never copied through the UI thread, and a session can be re-created (backend switch) on its own.
 */
export function modelCacheReader(source: ModelSource): FileReader {
  const store = browserModelStore();
  // Every read is re-hashed against the manifest (verified-read.ts): a damaged or substituted entry never reaches ORT.
  return (file) => readVerified(store, resolveFileUrl(source, file.path), file);
}

/** Dtypes of a model whose files are all in the model cache with their manifest sha256. */
export async function cachedDtypes(entry: ModelEntry, source: ModelSource): Promise<Dtype[]> {
  const store = browserModelStore();
  const out: Dtype[] = [];
  for (const [dtype, v] of Object.entries(entry.variants)) {
    if (!v?.files.length) continue;
    const files = v.files.flatMap((f) => [f, ...(f.external_data ?? [])]);
    const all = await Promise.all(files.map((f) => store.has(resolveFileUrl(source, f.path), f.sha256)));
    if (all.every(Boolean)) out.push(dtype as Dtype);
  }
  return out;
}

/**
 * Throws unless `url` can be fetched: in Cache Storage (the service worker's on-demand ORT cache) or answered by the
 * server. ORT fetches its wasm only when the first session is created, too late to choose another build; a HEAD
 * request costs nothing where a GET would download the 27 MB twice.
 */
async function reachable(url: string): Promise<void> {
  if (await globalThis.caches?.match(url).catch(() => undefined)) return;
  const r = await fetch(url, { method: 'HEAD' });
  if (!r.ok) throw new Error(`${url.split('/').pop()}: HTTP ${r.status}`);
}

/**
 * The OrtHost of a model worker. Its ORT build is chosen once, on the first ort() call, from the worker's config
 * (its name: ortWorkerName in lib/runtime/webgpu-engine.ts, set by app/platform/browser/workers.ts from the settings)
 * and the adapter's facts: JSEP -> /ort/ort.min.mjs, native WebGPU EP -> /ort/ort.webgpu.min.mjs. One build per
 * worker; ort() always returns that same module (transformers.js shares it through globalThis, lib/runtime/transformers.ts).
 */
export function browserOrtHost(config: OrtWorkerConfig = ortConfigFromWorkerName(self.name)): OrtHost {
  let loaded: Promise<{ ort: Ort; choice: EngineChoice }> | null = null;
  const device = browserDevice();
  const load = () => {
    loaded ??= (async () => {
      const base = ortBaseUrl();
      let choice = chooseWebGpuEngine(config, await device.gpu());
      let ort: Ort;
      try {
        if (choice.engine === 'native') await reachable(`${base}${choice.build.wasm}`);
        ort = (await import(/* @vite-ignore */ `${base}${choice.build.module}`)) as Ort;
      } catch (e) {
        // Only the native build can be missing (offline before its wasm was ever fetched: it is cached on demand,
        // vite.config.ts); JSEP is precached. Nothing of the failed build ran yet, so this is still one ORT per worker.
        if (choice.engine !== 'native') throw e;
        choice = engineLoadFailed(choice, e);
        ort = (await import(/* @vite-ignore */ `${base}${choice.build.module}`)) as Ort;
      }
      // Never a CDN: ORT's glue (.mjs) and .wasm come from the same folder of this app.
      ort.env.wasm.wasmPaths = base;
      ort.env.logLevel = 'error';
      return { ort, choice };
    })();
    loaded.catch(() => {
      loaded = null;
    });
    return loaded;
  };
  return {
    ort: async () => (await load()).ort,
    async engine(override) {
      const { choice } = await load();
      if (!override || override === config.backend) return choice;
      // The backend setting changed since the worker started (it is restarted only when the build would change):
      // the reasons for the current setting, unless that setting would pick another build than the one running.
      const now = chooseWebGpuEngine({ ...config, backend: override }, await device.gpu());
      return now.engine === choice.engine ? { ...choice, reasons: now.reasons } : choice;
    },
    planInputs: device.planInputs,
    reader: modelCacheReader,
    downloadedDtypes: cachedDtypes,
  };
}
