/**
 * The app's comlink workers, created on first use: one per model family plus one for decoding images.
 */
import * as Comlink from 'comlink';
import type { ClassifierApi } from '../../workers/classifier.worker';
import type { ClipApi } from '../../workers/clip.worker';
import type { ImagingApi } from '../../workers/imaging.worker';

let imaging: Comlink.Remote<ImagingApi> | null = null;
let classifier: Comlink.Remote<ClassifierApi> | null = null;
let clip: Comlink.Remote<ClipApi> | null = null;

export function imagingWorker(): Comlink.Remote<ImagingApi> {
  imaging ??= Comlink.wrap<ImagingApi>(new Worker(new URL('../../workers/imaging.worker.ts', import.meta.url), { type: 'module', name: 'imaging' }));
  return imaging;
}

export function classifierWorker(): Comlink.Remote<ClassifierApi> {
  classifier ??= Comlink.wrap<ClassifierApi>(
    new Worker(new URL('../../workers/classifier.worker.ts', import.meta.url), { type: 'module', name: 'classifier' }),
  );
  return classifier;
}

export function clipWorker(): Comlink.Remote<ClipApi> {
  clip ??= Comlink.wrap<ClipApi>(new Worker(new URL('../../workers/clip.worker.ts', import.meta.url), { type: 'module', name: 'clip' }));
  return clip;
}

/** Release every model session (backend setting changed, model deleted); workers stay alive. */
export async function resetModelWorkers(): Promise<void> {
  await Promise.all([classifier?.reset(), clip?.reset()]);
}

export { Comlink };
