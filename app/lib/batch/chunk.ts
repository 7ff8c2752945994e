/** Pure steps of one batch chunk (app/store/batch.ts): the model input sizes to resize to, and a row's outcome. */
import type { ClassifierResult } from '../classifier/types';
import type { ZeroShotOutput } from '../clip/types';
import type { ModelInputSize } from '../imaging/decode-outcome';
import type { ModelEntry } from '../models/manifest-types';
import type { BatchRow } from './rows';

/**
 * The distinct model input sizes (Preprocessing.size is [height, width]) of the batch's models, so the imaging worker
 * resizes each image once per size; `index(entry)` is the entry's position in `sizes`. A model without
 * preprocessing gets 224×224 bilinear, the ViT/CLIP default.
 */
export function batchInputSizes(entries: (ModelEntry | undefined)[]): { sizes: ModelInputSize[]; index: (e: ModelEntry | undefined) => number } {
  const key = (e: ModelEntry | undefined) => {
    const p = e?.preprocessing;
    return p ? `${p.size[1]}x${p.size[0]}:${p.resize}` : '224x224:bilinear';
  };
  const sizes: ModelInputSize[] = [];
  const keys: string[] = [];
  for (const e of entries) {
    if (!e || keys.includes(key(e))) continue;
    keys.push(key(e));
    const p = e.preprocessing;
    sizes.push(p ? { width: p.size[1], height: p.size[0], resize: p.resize } : { width: 224, height: 224, resize: 'bilinear' });
  }
  return { sizes, index: (e) => keys.indexOf(key(e)) };
}

/**
 * The fields of a decoded row once its models ran: 'done' when either model gave a result, else 'error' with
 * `failure` (the first model's error message) or 'no model output'.
 */
export function batchRowOutcome(cr: ClassifierResult | undefined, zr: ZeroShotOutput | undefined, failure: string | undefined): Partial<BatchRow> {
  return {
    status: cr || zr ? 'done' : 'error',
    error: cr || zr ? undefined : (failure ?? 'no model output'),
    classifierPrediction: cr?.predicted,
    classifierProbability: cr?.positiveProbability,
    classifierProbabilities: cr?.probabilities,
    classifierEmbedding: cr?.embedding,
    oodScore: cr?.ood?.score,
    ood: cr?.ood?.ood,
    oodBadge: cr?.ood?.badge,
    oodThreshold: cr?.ood?.threshold,
    autoLabel: zr?.autoLabel,
    autoConfidence: zr?.confidence,
    zeroShotProbabilities: zr?.probabilities,
    clipEmbedding: zr?.imageEmbedding,
  };
}
