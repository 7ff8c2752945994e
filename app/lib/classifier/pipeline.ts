/**
 * Runtime-agnostic classifier glue shared by the app worker and the CLI: batch preparation and output
 * interpretation. The ONNX session itself is injected (a function running `pixel_values`).
 */
import type { ModelEntry, Preprocessing } from '../models/manifest-types';
import type { Raster } from '../imaging/raster';
import { toModelInputBatch } from '../imaging/preprocess';
import { positiveIndex, predictFromProbabilities, softmax, type ClassPrediction } from './postprocess';

export interface ClassifierOutputs {
  logits?: ArrayLike<number>;
  probabilities?: ArrayLike<number>;
  embedding?: ArrayLike<number>;
}

/** One image of a batch, interpreted: prediction at the threshold, P(positive), embedding. */
export interface ClassifierInterpretation extends ClassPrediction {
  /** P(positive class), e.g. P(PNEUMONIA) */
  positiveProbability: number;
  embedding?: Float32Array;
}

/** [b,3,H,W] float32 input and its dims. */
export function prepareClassifierBatch(rasters: Raster[], pre: Preprocessing): { data: Float32Array; dims: [number, number, number, number] } {
  const [h, w] = pre.size;
  return { data: toModelInputBatch(rasters, pre), dims: [rasters.length, 3, h, w] };
}

/** Threshold from the model card (default 0.5). */
export function classifierThreshold(entry: ModelEntry): number {
  return typeof entry.card.threshold === 'number' ? entry.card.threshold : 0.5;
}

/** Interpret a batch of outputs: probabilities (or softmax of logits), thresholded prediction, per-image embedding. */
export function interpretClassifierOutputs(out: ClassifierOutputs, batch: number, labels: string[], threshold?: number): ClassifierInterpretation[] {
  const C = labels.length;
  let probs: ArrayLike<number>;
  if (out.probabilities) probs = out.probabilities;
  else if (out.logits) probs = softmax(out.logits, C);
  else throw new Error('Classifier produced neither probabilities nor logits');
  if (probs.length !== batch * C) throw new RangeError(`Classifier output has ${probs.length} values, expected ${batch}×${C}`);
  const preds = predictFromProbabilities(probs, labels, threshold);
  const pos = positiveIndex(labels);
  const D = out.embedding ? out.embedding.length / batch : 0;
  return preds.map((p, i) => ({
    ...p,
    positiveProbability: probs[i * C + pos],
    embedding: out.embedding ? Float32Array.from(Array.prototype.slice.call(out.embedding, i * D, (i + 1) * D) as number[]) : undefined,
  }));
}
