/**
 * Models: the model source and its manifest, and each model's load state (downloads and the model cache are in
 * downloads.ts). Owns the app's InferenceService (app/services/inference.ts), wired to the
 * browser: engines in comlink workers, files downloaded into Cache Storage, plans from the page's GPU facts.
 */
import type { Manifest, ModelEntry, ModelFamily } from '../lib/models/manifest-types';
import { downloadedVariants } from '../lib/models/model-cache';
import { withDtypeChoice } from '../lib/models/dtype-choice';
import { fetchManifest, localSourceFromFiles, sourceFromSetting, workerSource, type ModelSource, type ModelSourceSetting } from '../lib/models/sources';
import type { ModelRequest } from '../lib/runtime/outcome';
import type { RuntimeReport } from '../lib/runtime/report';
import { errorMessage } from '../lib/runtime/outcome';
import { appModelsBaseUrl } from '../platform/browser/env';
import { browserDevice } from '../platform/browser/ort';
import { loadLastManifest, loadLocalManifest, saveLastManifest, saveLocalManifest } from '../platform/browser/saved-manifests';
import { browserWorkers, transfer, type WorkerRegistry } from '../platform/browser/workers';
import { warmUpJpeg } from '../platform/browser/warm-image';
import { distinctInputSizes } from '../lib/imaging/model-inputs';
import { warmUpClassifier } from '../services/classifier';
import { InferenceService } from '../services/inference';
import { entrySource } from '../lib/hub/source';
import { mergeHubModels } from './hub';
import { guarded } from './alerts';
import { chosenModel } from './selectors';
import { defaultModelId } from '../lib/models/default-model';
import { loadSettings, ortWorkerConfig, saveSettings } from './settings';
import type { SliceCreator } from './state';

export type { DownloadState } from './downloads';

/** The manifest's model families, in the order the app's tabs use them. */
const MODEL_FAMILIES: readonly ModelFamily[] = ['classifier', 'clip', 'sam', 'sd'];
export { withDtypeChoice };

/**
 * A model's files could not be downloaded, and the download already said why (one alert, issue 18.9: the same
 * message was shown three times). Whoever catches it records a short state instead of repeating the text.
 */
export class DownloadReportedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DownloadReportedError';
  }
}

/** The load state of a model whose download failed: short, the alert carries the reason. */
export const DOWNLOAD_FAILED_STATE = 'model download failed (the reason is in the message above)';

export interface ModelLoadState {
  status: 'idle' | 'loading' | 'ready' | 'error';
  message?: string;
  report?: RuntimeReport;
}

export interface ModelsSlice {
  source: ModelSource;
  manifest: Manifest | null;
  manifestError?: string;
  /**
   * This family's chosen model, per family (the manifest's `family` word); read it through
   * selectors.chosenModel(s, family), which falls back to defaultModelId. Set for every family when a manifest loads.
   */
  chosenModelId: Partial<Record<ModelFamily, string>>;
  /** Load state per model id; a model whose sessions were released has none. */
  models: Record<string, ModelLoadState>;
  /** The app's comlink workers (image decoding and one per model family). */
  workers: WorkerRegistry;
  /** Runs every model: ensure downloaded -> ensure session -> run. */
  inference: InferenceService;

  init(): Promise<void>;
  /**
   * Choose this family's model (chosenModelId[family] = id; the one setter for every tab) and run what the change
   * calls for: classifier/clip label the current image again, sam drops the embeddings of the old model and prepares
   * the current image, sd clears the last run's report.
   */
  chooseModel(family: ModelFamily, id: string): Promise<void>;
  /**
   * Perceived speed (issue 12.4): while the page is idle, create the sessions of the chosen classifier and CLIP model
   * when their planned variant is already in the model cache (never downloads), so the first drop only runs inference.
   */
  prewarm(): Promise<void>;
  /** prewarm() is running (its sessions, the classifier's warm-up run, the imaging worker's first decode). */
  prewarming: boolean;
  loadManifest(): Promise<void>;
  setModelSource(s: ModelSourceSetting): Promise<void>;
  chooseLocalFolder(files: File[]): Promise<void>;
  /** The request the engines need for a model of the manifest, with the current backend setting and source. */
  modelRequest(entry: ModelEntry): ModelRequest;
  /** Download if needed and create the model's session; null (state 'error', with an alert) on failure. */
  ensureModelLoaded(id: string): Promise<RuntimeReport | null>;
  /** Record the report of a model that just ran. */
  modelRan(id: string, report: RuntimeReport): void;
  /** Release every session (backend or source changed, model deleted). */
  releaseSessions(): Promise<void>;
}

export const createModelsSlice: SliceCreator<ModelsSlice> = (set, get) => {
  const device = browserDevice();
  const workers = browserWorkers(ortWorkerConfig(loadSettings()));

  const setLoad = (id: string, m: ModelLoadState) => set((st) => ({ models: { ...st.models, [id]: m } }));

  const inference = new InferenceService({
    planInputs: (entry, override) => device.planInputs(entry, override),
    engines: { classifier: workers.classifier(), clip: workers.clip(), sam: workers.sam(), sd: workers.sd() },
    files: {
      async ensure(entry, dtype) {
        if (downloadedVariants(entry, entrySource(entry, get().source), get().stored).includes(dtype)) return;
        setLoad(entry.id, { status: 'loading', message: 'downloading model files' });
        if (!(await get().downloadModel(entry.id))) throw new DownloadReportedError(get().download?.error ?? `Download of ${entry.name} failed`);
      },
    },
    onReleased: (id) =>
      set((st) => {
        const models = { ...st.models };
        delete models[id];
        return { models };
      }),
  });

  /** The imaging worker's first decode (a 16 px JPEG, with the chosen models' resizes); its outcome is dropped. */
  async function warmUpImaging(): Promise<void> {
    const st = get();
    const jpeg = warmUpJpeg();
    await st.workers.imaging().decode(transfer(jpeg, [jpeg]), { sizes: distinctInputSizes([chosenModel(st, 'classifier'), chosenModel(st, 'clip')]) }).catch(() => undefined);
  }

  /** Switch to another source: sessions of the old one are released, its manifest replaced. */
  async function useSource(modelSource: ModelSourceSetting, source: ModelSource) {
    const settings = { ...get().settings, modelSource };
    saveSettings(settings);
    set({ settings, source });
    await get().releaseSessions();
    await get().loadManifest();
    await get().refreshStored();
  }

  return {
    source: sourceFromSetting(loadSettings().modelSource, appModelsBaseUrl()),
    manifest: null,
    chosenModelId: {},
    models: {},
    prewarming: false,
    workers,
    inference,

    init: guarded(get, 'Starting failed', async () => {
      // Half-written cache entries (a tab closed mid-download) are removed before the listing is read.
      await get().sweepModelCache('start-up');
      await Promise.all([get().loadManifest(), get().refreshStored(), get().refreshEmbeddingCache()]);
      const idle = (globalThis as { requestIdleCallback?: (cb: () => void, o?: { timeout: number }) => number }).requestIdleCallback;
      if (idle) idle(() => void get().prewarm(), { timeout: 2000 });
      else setTimeout(() => void get().prewarm(), 200);
    }),

    async chooseModel(family, id) {
      set((s) => ({ chosenModelId: { ...s.chosenModelId, [family]: id } }));
      if (family === 'classifier' && get().currentId) void get().classifyCurrent();
      else if (family === 'clip' && get().currentId) void get().zeroShotCurrent();
      else if (family === 'sam') await get().samModelChanged();
      else if (family === 'sd') set((s) => ({ sd: { ...s.sd, report: null, error: undefined } }));
    },

    async prewarm() {
      const s = get();
      set({ prewarming: true });
      try {
        for (const family of ['classifier', 'clip'] as const) {
          const listed = chosenModel(s, family);
          if (!listed || get().models[listed.id]) continue; // loading, ready or failed already: nothing to warm
          try {
            const req = get().modelRequest(listed);
            const plan = await inference.plan(req);
            if (!downloadedVariants(listed, entrySource(listed, get().source), get().stored).includes(plan.dtype)) continue;
            // A returning user's drop will only decode and classify: the imaging worker is started and its JPEG path
            // run once (a 16 px image, with the models' resizes) while the session is created, and, before any image
            // of the user's, the classifier runs once (ORT's first run and the first runs of the worker's code).
            const decoded = family === 'classifier' ? warmUpImaging() : undefined;
            if ((await get().ensureModelLoaded(listed.id)) && family === 'classifier' && !get().currentId) await warmUpClassifier(inference, req);
            await decoded;
          } catch {
            /* prewarming is best effort: the first real use reports any problem */
          }
        }
      } finally {
        set({ prewarming: false });
      }
    },

    async loadManifest() {
      const { source } = get();
      try {
        let manifest: Manifest | undefined;
        if (source.kind === 'local' && source.files.size === 0) {
          // After a reload the folder's blobs are gone; its manifest was kept so cached models still run.
          manifest = await loadLocalManifest(source.name ?? 'folder');
          if (!manifest) throw new Error(`the folder “${source.name}” must be chosen again`);
        } else {
          try {
            manifest = await fetchManifest(source);
            void saveLastManifest(source, manifest);
          } catch (e) {
            // Offline (or the source is down): the last manifest seen keeps cached models usable.
            manifest = await loadLastManifest(source);
            if (!manifest) throw e;
            get().alert(`Using the last saved model list: ${errorMessage(e)}`, 'info');
          }
        }
        // Models added from the Hub (store/hub.ts) are listed after the source's own.
        manifest = mergeHubModels(manifest, get().hubModels)!;
        // A chosen model the new manifest still lists under its family is kept; otherwise the family's default.
        const chosenModelId: ModelsSlice['chosenModelId'] = {};
        for (const family of MODEL_FAMILIES) {
          const keep = get().chosenModelId[family];
          chosenModelId[family] = manifest.models.some((m) => m.id === keep && m.family === family) ? keep : defaultModelId(manifest.models, family);
        }
        set({ manifest, manifestError: undefined, chosenModelId });
      } catch (e) {
        set({ manifest: mergeHubModels(null, get().hubModels), manifestError: `Model manifest unavailable: ${errorMessage(e)}` });
      }
    },

    setModelSource: guarded(get, 'Changing the model source failed', async (modelSource: ModelSourceSetting) => {
      await useSource(modelSource, sourceFromSetting(modelSource, appModelsBaseUrl()));
    }),

    chooseLocalFolder: async (files) => {
      try {
        const source = localSourceFromFiles(files);
        const name = (source.kind === 'local' && source.name) || 'folder';
        const manifest = await fetchManifest(source);
        await saveLocalManifest(name, manifest);
        await useSource({ kind: 'local', name }, source);
      } catch (e) {
        get().alert(`That folder cannot be used as a model source: ${errorMessage(e)}`);
      }
    },

    modelRequest(entry) {
      const s = get();
      return { entry: withDtypeChoice(entry, s.settings.dtypes[entry.id]), override: s.settings.backend, source: workerSource(entrySource(entry, s.source)) };
    },

    async ensureModelLoaded(id) {
      const entry = get().manifest?.models.find((m) => m.id === id);
      if (!entry) return null;
      try {
        const report = await inference.ensureSession(get().modelRequest(entry), (message) => setLoad(entry.id, { status: 'loading', message }));
        setLoad(entry.id, { status: 'ready', report });
        return report;
      } catch (e) {
        if (e instanceof DownloadReportedError) {
          setLoad(entry.id, { status: 'error', message: DOWNLOAD_FAILED_STATE });
          return null;
        }
        const message = errorMessage(e);
        setLoad(entry.id, { status: 'error', message });
        get().alert(message);
        // A cached file that failed its sha256 on read was evicted by the worker: list the cache again so the next
        // use downloads it instead of reading a file that is gone.
        void get().refreshStored();
        return null;
      }
    },

    modelRan(id, report) {
      setLoad(id, { status: 'ready', report });
    },

    async releaseSessions() {
      set({ models: {} });
      await inference.release();
    },
  };
};
