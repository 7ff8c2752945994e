/**
 * Classification of the current image by the chosen classifier, its out-of-distribution verdict, and the heatmap
 * method: attention rollout (comes with every classification) or occlusion sensitivity (computed on request, per
 * image, with progress).
 */
import type { ClassifierEngine } from '../lib/classify/engine';
import type { HeatmapMethod, OcclusionHeatmap } from '../lib/classify/types';
import type { RuntimeReport } from '../lib/runtime/report';
import { errorMessage } from '../lib/runtime/outcome';
import { modelInputFor } from '../lib/imaging/model-inputs';
import { guarded } from './alerts';
import { classifierEntry } from './selectors';
import type { SliceCreator } from './state';

export interface ClassifySlice {
  /** Model chosen for classification (a 'classifier' family entry). */
  classifierId?: string;
  setClassifier(id: string): void;
  classifyCurrent(): Promise<void>;
  ensureClassifierLoaded(): Promise<RuntimeReport | null>;
  /** Which heatmap the viewer shows. */
  heatmapMethod: HeatmapMethod;
  /** Choose the heatmap method; 'occlusion' computes the current image's map when it has none yet. */
  setHeatmapMethod(m: HeatmapMethod): Promise<void>;
  /** Occlusion maps by image id (for the classifier that made them). */
  occlusion: Record<string, OcclusionState>;
  occludeCurrent(): Promise<void>;
}

export interface OcclusionState {
  modelId: string;
  status: 'running' | 'done' | 'error';
  done: number;
  total: number;
  heatmap?: OcclusionHeatmap;
  error?: string;
}

export const createClassifySlice: SliceCreator<ClassifySlice> = (set, get) => ({
  heatmapMethod: 'attention-rollout',
  occlusion: {},

  setClassifier(id) {
    set({ classifierId: id });
    if (get().currentId) void get().classifyCurrent();
  },

  async setHeatmapMethod(m) {
    set({ heatmapMethod: m });
    if (m === 'occlusion') await get().occludeCurrent();
  },

  occludeCurrent: guarded(get, 'Occlusion heatmap failed', async () => {
    const s = get();
    const item = s.images.find((i) => i.id === s.currentId);
    const entry = classifierEntry(s);
    if (!item || !entry) return;
    const have = s.occlusion[item.id];
    if (have && have.modelId === entry.id && have.status !== 'error') return;
    const put = (p: Partial<OcclusionState>) =>
      set((st) => ({ occlusion: { ...st.occlusion, [item.id]: { ...(st.occlusion[item.id] ?? { modelId: entry.id, status: 'running', done: 0, total: 0 }), ...p } } }));
    put({ modelId: entry.id, status: 'running', done: 0, total: 0, heatmap: undefined, error: undefined });
    if (!(await get().ensureClassifierLoaded())) {
      put({ status: 'error', error: get().models[entry.id]?.message ?? 'the classifier could not be loaded' });
      return;
    }
    const req = get().modelRequest(entry);
    try {
      const heatmap = await get().inference.run(req, (e: ClassifierEngine) =>
        e.occlusion(req, item.raster, {}, (msg) => {
          const m = /(\d+)\/(\d+)/.exec(msg);
          if (m) put({ done: Number(m[1]), total: Number(m[2]) });
        }),
      );
      put({ status: 'done', heatmap, done: heatmap.width * heatmap.height, total: heatmap.width * heatmap.height });
    } catch (e) {
      put({ status: 'error', error: errorMessage(e) });
      throw e;
    }
  }),

  async ensureClassifierLoaded() {
    const id = get().classifierId;
    return id ? get().ensureModelLoaded(id) : null;
  },

  classifyCurrent: guarded(get, 'Classification failed', async () => {
    const s = get();
    const item = s.images.find((i) => i.id === s.currentId);
    const entry = classifierEntry(s);
    if (!item || !entry) return;
    get().patchImage(item.id, { classifying: true, classifyError: undefined });
    const report = await get().ensureClassifierLoaded();
    if (!report) {
      get().patchImage(item.id, { classifying: false, classifyError: get().models[entry.id]?.message });
      return;
    }
    const req = get().modelRequest(entry);
    try {
      const out = await get().inference.run(req, (e: ClassifierEngine) => e.classify(req, [modelInputFor(item.raster, item.modelInputs, entry)], { heatmap: true }));
      get().patchImage(item.id, { classifying: false, classification: { ...out.results[0], weights: entry.weights } });
      get().modelRan(entry.id, out.report);
      if (get().heatmapMethod === 'occlusion' && get().currentId === item.id) await get().occludeCurrent();
    } catch (e) {
      get().patchImage(item.id, { classifying: false, classifyError: errorMessage(e) });
      throw e;
    }
  }),
});
