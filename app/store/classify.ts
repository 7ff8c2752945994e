/** Classification of the current image by the chosen classifier (with its attention-rollout heatmap). */
import type { ClassifierEngine } from '../lib/classify/engine';
import type { RuntimeReport } from '../lib/runtime/report';
import { errorMessage } from '../lib/runtime/outcome';
import { guarded } from './alerts';
import { classifierEntry } from './selectors';
import type { SliceCreator } from './state';

export interface ClassifySlice {
  /** Model chosen for classification (a 'classifier' family entry). */
  classifierId?: string;
  setClassifier(id: string): void;
  classifyCurrent(): Promise<void>;
  ensureClassifierLoaded(): Promise<RuntimeReport | null>;
}

export const createClassifySlice: SliceCreator<ClassifySlice> = (set, get) => ({
  setClassifier(id) {
    set({ classifierId: id });
    if (get().currentId) void get().classifyCurrent();
  },

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
      const out = await get().inference.run(req, (e: ClassifierEngine) => e.classify(req, [item.raster], { heatmap: true }));
      get().patchImage(item.id, { classifying: false, classification: { ...out.results[0], weights: entry.weights } });
      get().modelRan(entry.id, out.report);
    } catch (e) {
      get().patchImage(item.id, { classifying: false, classifyError: errorMessage(e) });
      throw e;
    }
  }),
});
