/** Pure functions of the state that views and slices share. */
import type { Manifest, ModelEntry } from '../lib/models/manifest-types';
import { defaultPromptSets, type PromptSet } from '../lib/clip';
import type { AppState } from './state';

export { defaultPromptSets };

export function classifierEntry(s: Pick<AppState, 'manifest' | 'classifierId'>): ModelEntry | undefined {
  return s.manifest?.models.find((m) => m.id === s.classifierId);
}

/** The trained classifier when the manifest has one, else its first. */
export function defaultClassifier(manifest: Manifest): string | undefined {
  const cls = manifest.models.filter((m) => m.family === 'classifier');
  return (cls.find((m) => m.weights === 'trained') ?? cls[0])?.id;
}

/** The first CLIP model that is not a random fixture, else the first. */
export function defaultClip(manifest: Manifest): string | undefined {
  const clips = manifest.models.filter((m) => m.family === 'clip');
  return (clips.find((m) => m.weights !== 'random-fixture') ?? clips[0])?.id;
}

export function clipEntry(s: Pick<AppState, 'manifest' | 'clipId'>): ModelEntry | undefined {
  return s.manifest?.models.find((m) => m.id === s.clipId);
}

export function currentPromptSets(s: Pick<AppState, 'manifest' | 'clipId' | 'prompts'>): PromptSet[] {
  return (s.clipId && s.prompts[s.clipId]) || defaultPromptSets(clipEntry(s));
}

/**
 * What would be lost if the page went away now (a reload, a closed tab, a service-worker update): a running batch,
 * segmentation evaluation or generation, in words ('a batch run'), or null when nothing is running. Read by the
 * beforeunload guard and the update prompt (app/platform/browser/page-guard.ts).
 */
export function workInProgress(s: {
  batch?: { running?: boolean };
  segment?: { eval?: { running?: boolean } };
  gen?: { running?: boolean };
}): string | null {
  const running: string[] = [];
  if (s.batch?.running) running.push('a batch run');
  if (s.segment?.eval?.running) running.push('a segmentation evaluation');
  if (s.gen?.running) running.push('a generation');
  return running.length ? running.join(' and ') : null;
}
