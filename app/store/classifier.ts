/**
 * Classification of the current image by the chosen classifier, its out-of-distribution verdict, and the heatmap
 * method: attention rollout (comes with every classification) or occlusion sensitivity (computed on request, per
 * image, with progress). The operations are app/services/classifier.ts; this slice holds their state.
 *
 * Every result is filed under resultKey (image, frame, model, variant). A result that comes back after the frame,
 * the model or the variant changed is dropped, and only the newest request for an image clears its busy flag.
 */
import type { HeatmapMethod, OcclusionHeatmap } from '../lib/classifier/types';
import type { RuntimeReport } from '../lib/runtime/report';
import { errorMessage } from '../lib/runtime/outcome';
import { modelInputFor } from '../lib/imaging/model-inputs';
import { classifyImage, occludeImage } from '../services/classifier';
import { guarded } from './alerts';
import { chosenModel, resultKey, resultKeyNow } from './selectors';
import type { AppState, SliceCreator } from './state';

export interface ClassifierSlice {
  classifyCurrent(): Promise<void>;
  ensureClassifierLoaded(): Promise<RuntimeReport | null>;
  /** Which heatmap the viewer shows. */
  heatmapMethod: HeatmapMethod;
  /** Choose the heatmap method; 'occlusion' computes the current image's map when it has none yet. */
  setHeatmapMethod(m: HeatmapMethod): Promise<void>;
  /** Occlusion maps by image id (for the classifier, frame and variant of `key`). */
  occlusion: Record<string, OcclusionState>;
  occludeCurrent(): Promise<void>;
}

export interface OcclusionState {
  modelId: string;
  /** resultKey of the image, frame, model and variant the map is for. */
  key: string;
  status: 'running' | 'done' | 'error';
  done: number;
  total: number;
  heatmap?: OcclusionHeatmap;
  error?: string;
}

/** The current image and the chosen classifier, with the key a result for them is filed under. */
function target(s: AppState) {
  const item = s.images.find((i) => i.id === s.currentId);
  const entry = chosenModel(s, 'classifier');
  return item && entry ? { item, entry, key: resultKey(s, item, entry) } : undefined;
}

export const createClassifierSlice: SliceCreator<ClassifierSlice> = (set, get) => {
  /** The newest classification request per image (a late answer to an older one neither shows nor clears busy). */
  const latest = new Map<string, number>();
  let seq = 0;

  return {
    heatmapMethod: 'attention-rollout',
    occlusion: {},

    async setHeatmapMethod(m) {
      set({ heatmapMethod: m });
      if (m === 'occlusion') await get().occludeCurrent();
    },

    occludeCurrent: guarded(get, 'Occlusion heatmap failed', async () => {
      const t = target(get());
      if (!t) return;
      const { item, entry, key } = t;
      const have = get().occlusion[item.id];
      if (have && have.key === key && have.status !== 'error') return;
      // Only while the map in the slot is still this request's: a newer key owns the slot.
      const put = (p: Partial<OcclusionState>) =>
        set((st) => (st.occlusion[item.id]?.key !== key ? {} : { occlusion: { ...st.occlusion, [item.id]: { ...st.occlusion[item.id], ...p } } }));
      set((st) => ({ occlusion: { ...st.occlusion, [item.id]: { modelId: entry.id, key, status: 'running', done: 0, total: 0 } } }));
      if (!(await get().ensureClassifierLoaded())) {
        put({ status: 'error', error: get().models[entry.id]?.message ?? 'the classifier could not be loaded' });
        return;
      }
      try {
        const heatmap = await occludeImage(get().inference, get().modelRequest(entry), item.raster, (done, total) => put({ done, total }));
        put({ status: 'done', heatmap: { ...heatmap, key }, done: heatmap.width * heatmap.height, total: heatmap.width * heatmap.height });
      } catch (e) {
        put({ status: 'error', error: errorMessage(e) });
        throw e;
      }
    }),

    async ensureClassifierLoaded() {
      const id = chosenModel(get(), 'classifier')?.id;
      return id ? get().ensureModelLoaded(id) : null;
    },

    classifyCurrent: guarded(get, 'Classification failed', async () => {
      const t = target(get());
      if (!t) return;
      const { item, entry, key } = t;
      const token = ++seq;
      latest.set(item.id, token);
      const finish = (p: Parameters<AppState['patchImage']>[1]) => {
        // A result is filed only while its key is still the image's current one; busy is cleared by the newest request.
        const current = resultKeyNow(get(), item.id, 'classifier') === key;
        const newest = latest.get(item.id) === token;
        if (newest) latest.delete(item.id);
        get().patchImage(item.id, { ...(current ? p : {}), ...(newest ? { classifying: false } : {}) });
        // The frame, model or variant changed while this ran (and nothing newer is running): run for what is shown now.
        if (!current && newest && get().currentId === item.id && resultKeyNow(get(), item.id, 'classifier')) void get().classifyCurrent();
        return current;
      };
      get().patchImage(item.id, { classifying: true, classifyError: undefined });
      try {
        // A session already made (the idle prewarm) is not asked for again here: classifyImage ensures it anyway, and
        // each ask is a round trip to the worker.
        const report = get().models[entry.id]?.status === 'ready' ? get().models[entry.id].report : await get().ensureClassifierLoaded();
        if (!report) {
          finish({ classifyError: get().models[entry.id]?.message ?? `${entry.name} could not be loaded` });
          return;
        }
        const { result, report: ran } = await classifyImage(get().inference, get().modelRequest(entry), modelInputFor(item.raster, item.modelInputs, entry));
        get().modelRan(entry.id, ran);
        const filed = finish({ classification: { ...result, weights: entry.weights, key } });
        if (filed && get().heatmapMethod === 'occlusion' && get().currentId === item.id) await get().occludeCurrent();
      } catch (e) {
        finish({ classifyError: errorMessage(e) });
        throw e;
      }
    }),
  };
};
