/**
 * Zero-shot labels of the current image by the chosen CLIP model, from editable prompt sets. The operation is
 * app/services/clip.ts; results are filed under resultKey (image, frame, model, variant) like classifier.ts's: a
 * late result for a superseded key is dropped and only the newest request clears the busy flag.
 */
import type { PromptSet } from '../lib/clip/types';
import { errorMessage } from '../lib/runtime/outcome';
import { modelInputFor } from '../lib/imaging/model-inputs';
import { zeroShotImage } from '../services/clip';
import { guarded } from './alerts';
import { chosenModel, currentPromptSets, resultKey, resultKeyNow } from './selectors';
import type { AppState, SliceCreator } from './state';

export interface ClipSlice {
  /** Editable prompt sets per CLIP model (defaults: the manifest's config.default_prompts). */
  prompts: Record<string, PromptSet[]>;
  setPrompts(sets: PromptSet[]): void;
  resetPrompts(): void;
  zeroShotCurrent(): Promise<void>;
}

export const createClipSlice: SliceCreator<ClipSlice> = (set, get) => {
  const latest = new Map<string, number>();
  let seq = 0;

  return {
    prompts: {},

    setPrompts(sets) {
      const id = chosenModel(get(), 'clip')?.id;
      if (!id) return;
      set((s) => ({ prompts: { ...s.prompts, [id]: sets } }));
    },

    resetPrompts() {
      const id = chosenModel(get(), 'clip')?.id;
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
      const entry = chosenModel(s, 'clip');
      if (!item || !entry) return;
      const key = resultKey(s, item, entry);
      const token = ++seq;
      latest.set(item.id, token);
      const finish = (p: Parameters<AppState['patchImage']>[1]) => {
        const current = resultKeyNow(get(), item.id, 'clip') === key;
        const newest = latest.get(item.id) === token;
        if (newest) latest.delete(item.id);
        get().patchImage(item.id, { ...(current ? p : {}), ...(newest ? { zeroShotRunning: false } : {}) });
        if (!current && newest && get().currentId === item.id && resultKeyNow(get(), item.id, 'clip')) void get().zeroShotCurrent();
      };
      get().patchImage(item.id, { zeroShotRunning: true, zeroShotError: undefined });
      try {
        const report = await get().ensureModelLoaded(entry.id);
        if (!report) {
          finish({ zeroShotError: get().models[entry.id]?.message ?? `${entry.name} could not be loaded` });
          return;
        }
        const { result, report: ran } = await zeroShotImage(get().inference, get().modelRequest(entry), modelInputFor(item.raster, item.modelInputs, entry), currentPromptSets(get()));
        get().modelRan(entry.id, ran);
        finish({ zeroShot: { ...result, weights: entry.weights, modelId: entry.id, key } });
      } catch (e) {
        // Shown next to the prompts too (e.g. fewer than two usable labels).
        finish({ zeroShotError: errorMessage(e) });
        throw e;
      }
    }),
  };
};
