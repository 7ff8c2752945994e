/** Batch rows (one per image of a batch) and what is derived from them row by row. */
import type { Raster } from '../imaging/raster';
import { precisionAtK } from '../embeddings';
import type { LabeledRow } from './csv';

export interface BatchRow {
  index: number;
  imageId: string;
  groundTruth?: string;
  status: 'pending' | 'done' | 'error';
  error?: string;
  thumbnail?: Raster;
  autoLabel?: string;
  autoConfidence?: number;
  zeroShotProbabilities?: Record<string, number>;
  classifierPrediction?: string;
  /** P(positive class), e.g. P(PNEUMONIA). */
  classifierProbability?: number;
  classifierEmbedding?: Float32Array;
  clipEmbedding?: Float32Array;
}

/** Probability of the classifier's predicted label. */
export function confidenceOf(r: BatchRow): number {
  const p = r.classifierProbability ?? 0;
  return r.classifierPrediction === 'PNEUMONIA' ? p : 1 - p;
}

/** PNEUMONIA when P(PNEUMONIA) ≥ threshold, NORMAL below; undefined without a probability. */
export function predictAt(p: number | undefined, threshold: number): string | undefined {
  if (p == null || Number.isNaN(p)) return undefined;
  return p >= threshold ? 'PNEUMONIA' : 'NORMAL';
}

/** The finished rows as labeled_dataset.csv rows. */
export function batchLabeledRows(rows: BatchRow[]): LabeledRow[] {
  return rows
    .filter((r) => r.status === 'done')
    .map((r) => ({
      image_id: r.imageId,
      auto_label: r.autoLabel ?? r.classifierPrediction ?? '',
      ground_truth: r.groundTruth ?? '',
      confidence_score: r.autoConfidence ?? (r.classifierProbability != null && r.classifierPrediction ? confidenceOf(r) : 0),
      classifier_prediction: r.classifierPrediction ?? '',
      classifier_probability: r.classifierProbability ?? NaN,
    }));
}

/**
 * precision@5 of label agreement: over the finished rows with ground truth and a classifier embedding, the mean
 * fraction of each row's 5 nearest neighbours (cosine, self excluded) sharing its ground truth. Needs ≥ 2 such rows.
 */
export function batchPrecisionAt5(rows: BatchRow[]): number | undefined {
  const withEmb = rows.filter((r) => r.status === 'done' && r.groundTruth && r.classifierEmbedding?.length);
  if (withEmb.length < 2) return undefined;
  const D = withEmb[0].classifierEmbedding!.length;
  const known = withEmb.filter((r) => r.classifierEmbedding!.length === D);
  const M = new Float32Array(known.length * D);
  known.forEach((r, i) => M.set(r.classifierEmbedding!, i * D));
  const v = precisionAtK(M, D, known.map((r) => r.groundTruth!), 5);
  return Number.isFinite(v) ? v : undefined;
}

/** Throughput of a finished batch: processed rows (done or failed) per second between startedAt and finishedAt. */
export function batchImagesPerSecond(rows: BatchRow[], startedAt?: number, finishedAt?: number): number | undefined {
  if (startedAt == null || finishedAt == null || !(finishedAt > startedAt)) return undefined;
  return rows.filter((r) => r.status !== 'pending').length / ((finishedAt - startedAt) / 1000);
}
