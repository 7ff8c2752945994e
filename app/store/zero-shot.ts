/** Zero-shot labels of the current image by the chosen CLIP model, from editable prompt sets. */
import type { ClipEngine } from '../lib/clip/engine';
import type { PromptSet } from '../lib/clip/types';
import { errorMessage } from '../lib/runtime/outcome';
import { modelInputFor } from '../lib/imaging/model-inputs';
import { guarded } from './alerts';
import { clipEntry, currentPromptSets } from './selectors';
import type { SliceCreator } from './state';

export interface ZeroShotSlice {
  /** CLIP model for zero-shot labels; undefined when the manifest has none. */
  clipId?: string;
  /** Editable prompt sets per CLIP model (defaults: the manifest's config.default_prompts). */
  prompts: Record<string, PromptSet[]>;
  setClip(id: string): void;
  setPrompts(sets: PromptSet[]): void;
  resetPrompts(): void;
  zeroShotCurrent(): Promise<void>;
}

export const createZeroShotSlice: SliceCreator<ZeroShotSlice> = (set, get) => ({
  prompts: {},

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

  zeroShotCurrent: guarded(get, 'Zero-shot labelling failed', async () => {
    const s = get();
    const item = s.images.find((i) => i.id === s.currentId);
    const entry = clipEntry(s);
    if (!item || !entry) return;
    get().patchImage(item.id, { zeroShotRunning: true, zeroShotError: undefined });
    const report = await get().ensureModelLoaded(entry.id);
    if (!report) {
      get().patchImage(item.id, { zeroShotRunning: false, zeroShotError: get().models[entry.id]?.message });
      return;
    }
    const req = get().modelRequest(entry);
    try {
      const out = await get().inference.run(req, (e: ClipEngine) => e.zeroShot(req, [modelInputFor(item.raster, item.modelInputs, entry)], currentPromptSets(get())));
      get().patchImage(item.id, { zeroShotRunning: false, zeroShot: { ...out.results[0], weights: entry.weights, modelId: entry.id } });
      get().modelRan(entry.id, out.report);
    } catch (e) {
      // Shown next to the prompts too (e.g. fewer than two usable labels).
      get().patchImage(item.id, { zeroShotRunning: false, zeroShotError: errorMessage(e) });
      throw e;
    }
  }),
});
