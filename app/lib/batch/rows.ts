/**
 * Batch rows (one per image of a batch) and what is derived from them row by row. Labels come from the classifier's
 * manifest entry (`labels`, any names, two or more): nothing here assumes NORMAL/PNEUMONIA.
 *
 * - Binary models (2 labels): the positive label is positiveIndex(labels) (PNEUMONIA when present, else the second);
 *   a row is predicted positive when P(positive) >= the threshold.
 * - Multi-class models: the prediction is the label of highest probability; the threshold does not apply.
 */
import type { Raster } from '../imaging/raster';
import { argmax, positiveIndex } from '../classifier/postprocess';
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
  /** The classifier's prediction at the model card's threshold (what the worker returned). */
  classifierPrediction?: string;
  /** Binary models: P(positive class), e.g. P(PNEUMONIA). */
  classifierProbability?: number;
  /** Per label of the classifier, in its manifest `labels` order. */
  classifierProbabilities?: number[];
  classifierEmbedding?: Float32Array;
  clipEmbedding?: Float32Array;
  /** The classifier's out-of-distribution verdict (when its variant ships statistics). */
  oodScore?: number;
  ood?: boolean;
  /** What the badge says (from the model's ood.json). */
  oodBadge?: string;
  /** The OOD threshold the verdict was made at. */
  oodThreshold?: number;
}

/** Rows the classifier flagged as out of distribution, over the finished rows it scored (undefined: none scored). */
export function batchOodFraction(rows: BatchRow[]): { flagged: number; scored: number; fraction: number } | undefined {
  const scored = rows.filter((r) => r.status === 'done' && r.ood != null);
  if (!scored.length) return undefined;
  const flagged = scored.filter((r) => r.ood).length;
  return { flagged, scored: scored.length, fraction: flagged / scored.length };
}

/** Rows processed (done or failed) and failed, the OOD fraction flagged (batchOodFraction) and the OOD badge text. */
export interface BatchRowCounts {
  processed: number;
  failed: number;
  ood?: ReturnType<typeof batchOodFraction>;
  oodBadge?: string;
}

/** The batch's counts (BatchRowCounts) over its rows. */
export function batchRowCounts(rows: BatchRow[]): BatchRowCounts {
  return {
    processed: rows.filter((r) => r.status !== 'pending').length,
    failed: rows.filter((r) => r.status === 'error').length,
    ood: batchOodFraction(rows),
    oodBadge: rows.find((r) => r.oodBadge)?.oodBadge,
  };
}

/** The classifier labels a batch was computed with. */
export interface BatchLabels {
  labels: string[];
  /** Binary models only: the positive and negative label. */
  positive?: string;
  negative?: string;
}

export function batchLabels(labels: string[] | undefined): BatchLabels {
  const l = labels?.length ? labels : ['NORMAL', 'PNEUMONIA'];
  if (l.length !== 2) return { labels: l };
  const pos = positiveIndex(l);
  return { labels: l, positive: l[pos], negative: l[1 - pos] };
}

/** The classifier's label for a row at `threshold` (binary) or by argmax (multi-class); undefined without output. */
export function predictAt(r: Pick<BatchRow, 'classifierProbability' | 'classifierProbabilities'>, threshold: number, lab: BatchLabels): string | undefined {
  if (lab.positive != null) {
    const p = r.classifierProbability;
    if (p == null || Number.isNaN(p)) return undefined;
    return p >= threshold ? lab.positive : lab.negative;
  }
  const ps = r.classifierProbabilities;
  if (!ps?.length) return undefined;
  return lab.labels[argmax(ps)];
}

/** Probability of the label predictAt gives (binary: P(positive) or 1 − it). */
export function confidenceAt(r: Pick<BatchRow, 'classifierProbability' | 'classifierProbabilities'>, threshold: number, lab: BatchLabels): number | undefined {
  const label = predictAt(r, threshold, lab);
  if (label == null) return undefined;
  if (lab.positive != null) return label === lab.positive ? r.classifierProbability! : 1 - r.classifierProbability!;
  return r.classifierProbabilities![lab.labels.indexOf(label)];
}

/**
 * The finished rows as labeled_dataset.csv rows, every classifier-derived value at ONE threshold:
 * classifier_prediction at `threshold`; auto_label and confidence_score are the zero-shot label and its probability
 * when a CLIP model labelled the row, else the classifier's prediction at the same `threshold` and its probability.
 */
export function batchLabeledRows(rows: BatchRow[], threshold: number, lab: BatchLabels): LabeledRow[] {
  return rows
    .filter((r) => r.status === 'done')
    .map((r) => {
      const pred = predictAt(r, threshold, lab) ?? '';
      const zeroShot = r.autoLabel != null;
      return {
        image_id: r.imageId,
        auto_label: zeroShot ? r.autoLabel! : pred,
        ground_truth: r.groundTruth ?? '',
        confidence_score: zeroShot ? (r.autoConfidence ?? NaN) : (confidenceAt(r, threshold, lab) ?? NaN),
        classifier_prediction: pred,
        classifier_probability: lab.positive != null ? (r.classifierProbability ?? NaN) : (confidenceAt(r, threshold, lab) ?? NaN),
        ood_score: r.oodScore ?? null,
        ood: r.ood ?? null,
        ...(r.zeroShotProbabilities ? { zero_shot: r.zeroShotProbabilities } : {}),
      };
    });
}

/**
 * The CSV row of each finished row among `rows`, keyed by BatchRow.index (unfinished rows have none): the batch
 * table's cells, for all rows or only those a chunk just finished (each row's cells depend on that row alone).
 */
export function batchLabeledCells(rows: BatchRow[], threshold: number, lab: BatchLabels): Record<number, LabeledRow> {
  const done = rows.filter((r) => r.status === 'done');
  const labeled = batchLabeledRows(done, threshold, lab);
  return Object.fromEntries(done.map((r, i) => [r.index, labeled[i]]));
}

/**
 * Throughput: rows processed (done or failed) per second of RUNNING time, i.e. the summed durations of the runs
 * (start or resume -> stop), so the time a batch sat paused between a cancel and a resume is not counted.
 * `activeMs` is that sum; undefined when nothing ran.
 */
export function batchImagesPerSecond(rows: BatchRow[], activeMs: number): number | undefined {
  if (!(activeMs > 0)) return undefined;
  return rows.filter((r) => r.status !== 'pending').length / (activeMs / 1000);
}
