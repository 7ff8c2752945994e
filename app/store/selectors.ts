/** Pure functions of the state that views and slices share. */
import type { ModelEntry, ModelFamily } from '../lib/models/manifest-types';
import type { ClassifierResult, OcclusionHeatmap } from '../lib/classifier/types';
import type { ZeroShotOutput } from '../lib/clip/types';
import type { ImageItem } from './images';
import { defaultPromptSets, type PromptSet } from '../lib/clip';
import type { AppState } from './state';

export { defaultPromptSets };

/**
 * This family's chosen model (`family`: the manifest's word, 'classifier' | 'clip' | 'sam' | 'sd'): the entry of
 * `chosenModelId[family]` when the manifest lists it under that family, else undefined (no manifest, no model of
 * the family, or none chosen: a store without a CLIP choice runs no zero-shot). Loading a manifest sets every
 * family's choice to the kept one or defaultModelId (models.ts). The one accessor every slice and view uses for
 * "the model this tab runs".
 */
export function chosenModel(s: Pick<AppState, 'manifest' | 'chosenModelId'>, family: ModelFamily): ModelEntry | undefined {
  const id = s.chosenModelId[family];
  return id === undefined ? undefined : s.manifest?.models.find((m) => m.id === id && m.family === family);
}

export function currentPromptSets(s: Pick<AppState, 'manifest' | 'chosenModelId' | 'prompts'>): PromptSet[] {
  const clip = chosenModel(s, 'clip');
  return (clip && s.prompts[clip.id]) || defaultPromptSets(clip);
}

/**
 * What would be lost if the page went away now (a reload, a closed tab, a service-worker update): a running batch,
 * segmentation evaluation or generation, in words ('a batch run'), or null when nothing is running. Read by the
 * beforeunload guard and the update prompt (app/platform/browser/page-guard.ts).
 */
export function workInProgress(s: {
  batch?: { running?: boolean };
  sam?: { eval?: { running?: boolean } };
  sd?: { running?: boolean };
}): string | null {
  const running: string[] = [];
  if (s.batch?.running) running.push('a batch run');
  if (s.sam?.eval?.running) running.push('a segmentation evaluation');
  if (s.sd?.running) running.push('a generation');
  return running.length ? running.join(' and ') : null;
}

/**
 * The key a per-image result is filed under: the image, the frame shown (multi-frame DICOM), the model and the
 * variant it runs as (the user's dtype choice). A result whose key is not the current one was
 * computed for something else and is never shown; a late result for a superseded key is dropped.
 */
export function resultKey(s: Pick<AppState, 'settings'>, item: Pick<ImageItem, 'id' | 'dicom'>, entry: Pick<ModelEntry, 'id'>): string {
  return `${item.id}|frame ${item.dicom?.frameIndex ?? 0}|${entry.id}|${s.settings.dtypes[entry.id] ?? 'auto'}`;
}

type KeyState = Pick<AppState, 'settings' | 'images' | 'currentId' | 'manifest' | 'chosenModelId'>;

/**
 * The key an image's result from `family`'s chosen model would be filed under now; undefined when the image is gone
 * or the family has no model. A run compares it with the key it started under to know whether its answer is current.
 */
export function resultKeyNow(s: Pick<AppState, 'settings' | 'images' | 'manifest' | 'chosenModelId'>, imageId: string, family: ModelFamily): string | undefined {
  const item = s.images.find((i) => i.id === imageId);
  const entry = chosenModel(s, family);
  return item && entry ? resultKey(s, item, entry) : undefined;
}
const currentItem = (s: KeyState) => s.images.find((i) => i.id === s.currentId);

/** The current image's classification when it is the chosen classifier's for this frame and variant. */
export function shownClassification(s: KeyState): (ClassifierResult & { weights: ModelEntry['weights'] }) | undefined {
  const item = currentItem(s);
  const entry = chosenModel(s, 'classifier');
  const c = item?.classification;
  return item && entry && c && c.key === resultKey(s, item, entry) ? c : undefined;
}

/** The current image's zero-shot labels when they are the chosen CLIP model's for this frame and variant. */
export function shownZeroShot(s: KeyState): ImageItem['zeroShot'] {
  const item = currentItem(s);
  const entry = chosenModel(s, 'clip');
  const z: (ZeroShotOutput & { modelId: string }) | undefined = item?.zeroShot;
  return item && entry && z && z.key === resultKey(s, item, entry) ? item.zeroShot : undefined;
}

/** The current image's occlusion map when it is the chosen classifier's for this frame and variant. */
export function shownOcclusion(s: KeyState & Pick<AppState, 'occlusion'>): { status: string; done: number; total: number; heatmap?: OcclusionHeatmap; error?: string } | undefined {
  const item = currentItem(s);
  const entry = chosenModel(s, 'classifier');
  const o = item ? s.occlusion[item.id] : undefined;
  return item && entry && o && o.key === resultKey(s, item, entry) ? o : undefined;
}
