/**
 * The one zustand store: state the components render, and the actions that talk to the workers and the model cache.
 * Components stay thin: they read slices and call actions; no worker or cache calls from components.
 */
import { create } from 'zustand';
import type { Manifest, ModelEntry } from '../lib/models/manifest-types';
import type { DownloadProgress } from '../lib/models/downloader';
import type { QuotaEstimate, StoredModelFile } from '../lib/models/model-cache';
import { fetchManifest, localSourceFromFiles, type ModelSource } from '../lib/models/sources';
import { variantFiles } from '../lib/models/manifest';
import { labelFromPath } from '../lib/batch';
import type { DicomImage, DicomWindow } from '../lib/imaging/dicom';
import type { Raster } from '../lib/imaging/raster';
import { NoUsableVariantError, type BackendOverride, type RuntimeReport } from '../lib/runtime';
import type { ClassifierResult } from '../../workers/classifier.worker';
import type { PromptSet, ZeroShotOutput } from '../../workers/clip.worker';
import { classifierWorker, clipWorker, Comlink, imagingWorker, resetModelWorkers } from './workers';
import { createBatchSlice, type BatchSlice } from './batch';
import { loadSettings, saveSettings, type ModelSourceSetting, type Settings } from './settings';
import {
  downloadedVariants,
  loadLastManifest,
  loadLocalManifest,
  modelDownloader,
  modelStore,
  planFor,
  saveLastManifest,
  saveLocalManifest,
  sourceFromSetting,
  workerSource,
} from './model-service';

export interface AlertMessage {
  id: number;
  kind: 'error' | 'info';
  message: string;
}

export interface ImageItem {
  id: string;
  name: string;
  /** Relative path (folder picks), used for ground truth from NORMAL/ PNEUMONIA/ folder names. */
  path: string;
  bytes: number;
  format: 'png' | 'jpeg' | 'dicom';
  raster: Raster;
  thumbnail: Raster;
  dicom?: DicomImage;
  groundTruth?: string;
  classification?: ClassifierResult & { weights: ModelEntry['weights'] };
  classifying?: boolean;
  classifyError?: string;
  zeroShot?: ZeroShotOutput & { weights: ModelEntry['weights']; modelId: string };
  zeroShotRunning?: boolean;
  zeroShotError?: string;
}

export interface ModelLoadState {
  status: 'idle' | 'loading' | 'ready' | 'error';
  message?: string;
  report?: RuntimeReport;
}

export interface DownloadState {
  modelId: string;
  progress?: DownloadProgress;
  error?: string;
  done?: boolean;
}

export interface ViewerState {
  zoom: number;
  panX: number;
  panY: number;
  /** Display window for DICOM (modality units) or for 8-bit images (0..255). */
  window?: DicomWindow;
  showHeatmap: boolean;
  heatmapOpacity: number;
  showIdentifying: boolean;
}

export interface AppState extends BatchSlice {
  settings: Settings;
  source: ModelSource;
  manifest: Manifest | null;
  manifestError?: string;
  /** Model chosen for classification (a 'classifier' family entry). */
  classifierId?: string;
  /** CLIP model for zero-shot labels; undefined when the manifest has none. */
  clipId?: string;
  /** Editable prompt sets per CLIP model (defaults: the manifest's config.default_prompts). */
  prompts: Record<string, PromptSet[]>;
  models: Record<string, ModelLoadState>;
  stored: StoredModelFile[];
  quota: QuotaEstimate | null;
  download: DownloadState | null;
  images: ImageItem[];
  currentId?: string;
  viewer: ViewerState;
  alerts: AlertMessage[];
  busy: number;

  init(): Promise<void>;
  loadManifest(): Promise<void>;
  setBackend(b: BackendOverride): Promise<void>;
  setModelSource(s: ModelSourceSetting): Promise<void>;
  chooseLocalFolder(files: File[]): Promise<void>;
  refreshStored(): Promise<void>;
  downloadModel(id: string): Promise<boolean>;
  cancelDownload(): void;
  deleteModel(id: string): Promise<void>;
  setClassifier(id: string): void;
  setClip(id: string): void;
  setPrompts(sets: PromptSet[]): void;
  resetPrompts(): void;
  zeroShotCurrent(): Promise<void>;
  addFiles(files: { name: string; bytes: ArrayBuffer; path?: string }[]): Promise<void>;
  select(id: string): void;
  /** Classify and zero-shot label the current image where it has no result from the chosen models yet. */
  analyzeCurrent(): Promise<void>;
  classifyCurrent(): Promise<void>;
  ensureClassifierLoaded(): Promise<RuntimeReport | null>;
  ensureModelLoaded(id: string): Promise<RuntimeReport | null>;
  setViewer(p: Partial<ViewerState>): void;
  alert(message: string, kind?: AlertMessage['kind']): void;
  dismissAlert(id: number): void;
}

let alertSeq = 0;
let imageSeq = 0;
let downloadAbort: AbortController | null = null;
let downloadQueue: Promise<unknown> = Promise.resolve();

export function classifierEntry(s: Pick<AppState, 'manifest' | 'classifierId'>): ModelEntry | undefined {
  return s.manifest?.models.find((m) => m.id === s.classifierId);
}

export function defaultClassifier(manifest: Manifest): string | undefined {
  const cls = manifest.models.filter((m) => m.family === 'classifier');
  return (cls.find((m) => m.weights === 'trained') ?? cls[0])?.id;
}

export function clipEntry(s: Pick<AppState, 'manifest' | 'clipId'>): ModelEntry | undefined {
  return s.manifest?.models.find((m) => m.id === s.clipId);
}

/** config.default_prompts ({label: [prompts]}) as prompt sets. */
export function defaultPromptSets(entry: ModelEntry | undefined): PromptSet[] {
  const d = entry?.config?.default_prompts;
  if (Array.isArray(d)) return (d as PromptSet[]).map((x) => ({ label: x.label, prompts: [...x.prompts] }));
  if (d && typeof d === 'object') return Object.entries(d as Record<string, string[] | string>).map(([label, p]) => ({ label, prompts: Array.isArray(p) ? [...p] : [p] }));
  return [
    { label: 'NORMAL', prompts: ['a normal chest X-ray'] },
    { label: 'PNEUMONIA', prompts: ['a chest X-ray showing pneumonia'] },
  ];
}

export function currentPromptSets(s: Pick<AppState, 'manifest' | 'clipId' | 'prompts'>): PromptSet[] {
  return (s.clipId && s.prompts[s.clipId]) || defaultPromptSets(clipEntry(s));
}


const initialSettings = loadSettings();

export const useAppStore = create<AppState>()((set, get) => {
  /** Download (or verify from the cache) the variant this device will run; false (with an alert) on failure. */
  async function downloadNow(id: string): Promise<boolean> {
    const s = get();
    const entry = s.manifest?.models.find((m) => m.id === id);
    if (!entry) return false;
    let variant;
    let dtype;
    try {
      const p = await planFor(entry, s.settings.backend);
      variant = p.variant;
      dtype = p.plan.dtype;
    } catch (e) {
      const msg = e instanceof NoUsableVariantError ? e.message : String(e);
      get().alert(`${entry.name} cannot run here: ${msg}`);
      return false;
    }
    downloadAbort = new AbortController();
    set({ download: { modelId: id } });
    try {
      await modelDownloader().download({
        source: s.source,
        files: variantFiles(variant),
        modelId: entry.id,
        dtype,
        signal: downloadAbort.signal,
        onProgress: (progress) => set({ download: { modelId: id, progress } }),
      });
      set((st) => ({ download: { ...st.download!, done: true } }));
      return true;
    } catch (e) {
      const msg = `Download of ${entry.name} failed: ${(e as Error).message}`;
      set((st) => ({ download: { ...(st.download ?? { modelId: id }), error: msg } }));
      get().alert(msg);
      return false;
    } finally {
      downloadAbort = null;
      await get().refreshStored();
    }
  }

  return {
    ...createBatchSlice(set, get),
    settings: initialSettings,
    source: sourceFromSetting(initialSettings.modelSource),
    manifest: null,
    prompts: {},
    models: {},
    stored: [],
    quota: null,
    download: null,
    images: [],
    viewer: { zoom: 1, panX: 0, panY: 0, showHeatmap: true, heatmapOpacity: 0.45, showIdentifying: false },
    alerts: [],
    busy: 0,

    async init() {
      await Promise.all([get().loadManifest(), get().refreshStored()]);
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
            get().alert(`Using the last saved model list: ${(e as Error).message}`, 'info');
          }
        }
        const keep = get().classifierId;
        const keepClip = get().clipId;
        const clips = manifest.models.filter((m) => m.family === 'clip');
        set({
          manifest,
          manifestError: undefined,
          classifierId: manifest.models.some((m) => m.id === keep) ? keep : defaultClassifier(manifest),
          clipId: clips.some((m) => m.id === keepClip) ? keepClip : (clips.find((m) => m.weights !== 'random-fixture') ?? clips[0])?.id,
        });
      } catch (e) {
        set({ manifest: null, manifestError: `Model manifest unavailable: ${(e as Error).message}` });
      }
    },

    async setBackend(backend) {
      const settings = { ...get().settings, backend };
      saveSettings(settings);
      // Sessions are bound to their execution provider: drop them; the next use re-creates them with the new setting.
      set({ settings, models: {} });
      await resetModelWorkers();
      if (classifierEntry(get()) && get().images.length) await get().ensureClassifierLoaded();
    },

    async setModelSource(modelSource) {
      const settings = { ...get().settings, modelSource };
      saveSettings(settings);
      set({ settings, source: sourceFromSetting(modelSource), models: {} });
      await resetModelWorkers();
      await get().loadManifest();
      await get().refreshStored();
    },

    async chooseLocalFolder(files) {
      try {
        const source = localSourceFromFiles(files);
        const name = (source.kind === 'local' && source.name) || 'folder';
        const manifest = await fetchManifest(source);
        await saveLocalManifest(name, manifest);
        const modelSource: ModelSourceSetting = { kind: 'local', name };
        const settings = { ...get().settings, modelSource };
        saveSettings(settings);
        set({ settings, source, models: {} });
        await resetModelWorkers();
        await get().loadManifest();
        await get().refreshStored();
      } catch (e) {
        get().alert(`That folder cannot be used as a model source: ${(e as Error).message}`);
      }
    },

    async refreshStored() {
      try {
        const [stored, quota] = await Promise.all([modelStore().list(), modelStore().estimateQuota()]);
        set({ stored, quota });
      } catch (e) {
        set({ stored: [], quota: null });
        get().alert(`The model cache is not available here: ${(e as Error).message}`);
      }
    },

    downloadModel(id) {
      // One download at a time (one progress bar, bandwidth not split): later requests queue behind it.
      const run = downloadQueue.then(() => downloadNow(id));
      downloadQueue = run.catch(() => false);
      return run;
    },

    cancelDownload() {
      downloadAbort?.abort(new DOMException('cancelled by the user', 'AbortError'));
    },

    async deleteModel(id) {
      await modelStore().delete(id);
      await resetModelWorkers();
      set((st) => {
        const models = { ...st.models };
        delete models[id];
        return { models, download: st.download?.modelId === id ? null : st.download };
      });
      await get().refreshStored();
    },

    setClassifier(id) {
      set({ classifierId: id });
      if (get().currentId) void get().classifyCurrent();
    },

    setClip(id) {
      set({ clipId: id });
      if (get().currentId) void get().zeroShotCurrent();
    },

    setPrompts(sets) {
      const id = get().clipId;
      if (!id) return;
      set((s) => ({ prompts: { ...s.prompts, [id]: sets } }));
    },

    resetPrompts() {
      const id = get().clipId;
      if (!id) return;
      set((s) => {
        const prompts = { ...s.prompts };
        delete prompts[id];
        return { prompts };
      });
    },

    async zeroShotCurrent() {
      const s = get();
      const item = s.images.find((i) => i.id === s.currentId);
      const entry = clipEntry(s);
      if (!item || !entry) return;
      const patch = (p: Partial<ImageItem>) => set((st) => ({ images: st.images.map((i) => (i.id === item.id ? { ...i, ...p } : i)) }));
      patch({ zeroShotRunning: true, zeroShotError: undefined });
      const report = await get().ensureModelLoaded(entry.id);
      if (!report) {
        patch({ zeroShotRunning: false, zeroShotError: get().models[entry.id]?.message });
        return;
      }
      const out = await clipWorker().zeroShot(
        { entry, override: get().settings.backend, source: workerSource(get().source) },
        [item.raster],
        currentPromptSets(get()),
      );
      if (!out.ok) {
        patch({ zeroShotRunning: false, zeroShotError: out.message });
        return;
      }
      patch({ zeroShotRunning: false, zeroShot: { ...out.value.results[0], weights: entry.weights, modelId: entry.id } });
      set((st) => ({ models: { ...st.models, [entry.id]: { status: 'ready', report: out.value.report } } }));
    },

    async addFiles(files) {
      if (!files.length) return;
      set((s) => ({ busy: s.busy + 1 }));
      const added: ImageItem[] = [];
      try {
        for (const f of files) {
          const size = f.bytes.byteLength;
          const out = await imagingWorker().decode(Comlink.transfer(f.bytes, [f.bytes]));
          if (!out.ok) {
            get().alert(`${f.name}: ${out.message}`);
            continue;
          }
          const item: ImageItem = {
            id: `img-${++imageSeq}`,
            name: f.name,
            path: f.path ?? f.name,
            bytes: size,
            format: out.image.format,
            raster: out.image.raster,
            thumbnail: out.thumbnail,
            dicom: out.image.dicom,
            groundTruth: labelFromPath(f.path ?? f.name) ?? undefined,
          };
          added.push(item);
          set((s) => ({ images: [...s.images, item] }));
        }
      } finally {
        set((s) => ({ busy: s.busy - 1 }));
      }
      // Selecting starts the analysis (see select).
      if (added.length) get().select(added[added.length - 1].id);
    },

    async analyzeCurrent() {
      const s = get();
      const item = s.images.find((i) => i.id === s.currentId);
      if (!item) return;
      // Two workers: the classifier and CLIP run side by side; results already there (for these models) are kept.
      const needClassifier = s.classifierId && !item.classifying && item.classification?.modelId !== s.classifierId;
      const needZeroShot = s.clipId && !item.zeroShotRunning && item.zeroShot?.modelId !== s.clipId;
      await Promise.all([needClassifier ? get().classifyCurrent() : null, needZeroShot ? get().zeroShotCurrent() : null]);
    },

    select(id) {
      const item = get().images.find((i) => i.id === id);
      set((s) => ({
        currentId: id,
        viewer: {
          ...s.viewer,
          zoom: 1,
          panX: 0,
          panY: 0,
          window: item?.dicom ? { ...item.dicom.window } : undefined,
          showIdentifying: false,
        },
      }));
      // Images added together are analysed when first looked at.
      void get().analyzeCurrent();
    },

    async ensureClassifierLoaded() {
      const id = get().classifierId;
      return id ? get().ensureModelLoaded(id) : null;
    },

    async ensureModelLoaded(id) {
      const s = get();
      const entry = s.manifest?.models.find((m) => m.id === id);
      if (!entry) return null;
      const setLoad = (m: ModelLoadState) => set((st) => ({ models: { ...st.models, [entry.id]: m } }));
      const ready = s.models[entry.id];
      if (ready?.status === 'ready' && ready.report) return ready.report;
      // Files must be in the model cache (verified) before a worker can read them.
      let dtype: string;
      try {
        dtype = (await planFor(entry, s.settings.backend)).plan.dtype;
      } catch (e) {
        const message = `${entry.name} cannot run here: ${(e as Error).message}`;
        setLoad({ status: 'error', message });
        get().alert(message);
        return null;
      }
      if (!downloadedVariants(entry, s.source, get().stored).includes(dtype)) {
        setLoad({ status: 'loading', message: 'downloading model files' });
        const ok = await get().downloadModel(entry.id);
        if (!ok) {
          setLoad({ status: 'error', message: get().download?.error ?? 'download failed' });
          return null;
        }
      }
      setLoad({ status: 'loading', message: 'creating session' });
      const req = { entry, override: s.settings.backend, source: workerSource(get().source) };
      const progress = Comlink.proxy((msg: string) => setLoad({ status: 'loading', message: msg }));
      const out = entry.family === 'clip' ? await clipWorker().load(req, progress) : await classifierWorker().load(req, progress);
      if (!out.ok) {
        setLoad({ status: 'error', message: out.message });
        get().alert(out.message);
        return null;
      }
      setLoad({ status: 'ready', report: out.value });
      return out.value;
    },

    async classifyCurrent() {
      const s = get();
      const item = s.images.find((i) => i.id === s.currentId);
      const entry = classifierEntry(s);
      if (!item || !entry) return;
      const patch = (p: Partial<ImageItem>) => set((st) => ({ images: st.images.map((i) => (i.id === item.id ? { ...i, ...p } : i)) }));
      patch({ classifying: true, classifyError: undefined });
      const report = await get().ensureClassifierLoaded();
      if (!report) {
        patch({ classifying: false, classifyError: get().models[entry.id]?.message });
        return;
      }
      const out = await classifierWorker().classify(
        { entry, override: get().settings.backend, source: workerSource(get().source) },
        [item.raster],
        true,
      );
      if (!out.ok) {
        patch({ classifying: false, classifyError: out.message });
        get().alert(out.message);
        return;
      }
      patch({ classifying: false, classification: { ...out.value.results[0], weights: entry.weights } });
      set((st) => ({ models: { ...st.models, [entry.id]: { status: 'ready', report: out.value.report } } }));
    },

    setViewer(p) {
      set((s) => ({ viewer: { ...s.viewer, ...p } }));
    },

    alert(message, kind = 'error') {
      const a = { id: ++alertSeq, kind, message };
      // The same message again moves to the top instead of stacking; only the last few are kept.
      set((s) => ({ alerts: [...s.alerts.filter((x) => x.message !== message), a].slice(-5) }));
    },

    dismissAlert(id) {
      set((s) => ({ alerts: s.alerts.filter((a) => a.id !== id) }));
    },
  };
});
