/**
 * The batch's metrics report: the JSON `npm run label` prints on its last line and the app exports next to
 * labeled_dataset.csv (one function, so both report the same numbers for the same rows).
 *
 * - classifier metrics over the finished rows whose ground truth is one of the classifier's labels: binary models
 *   at `threshold` on P(positive) (binaryReport: accuracy, precision, recall, specificity, F1, ROC AUC, ECE);
 *   multi-class models at argmax (accuracy, macro F1, confusion matrix);
 * - zero-shot: accuracy of the zero-shot label (argmax over the prompt labels) over the rows whose ground truth is
 *   one of the prompt labels, and ROC AUC on P(positive prompt label) when there are exactly two prompt labels and
 *   both classes are present (positive: PNEUMONIA when a label is named so, else the second, as for classifiers);
 * - precision@5 of ground-truth agreement by each embedding (app/lib/embeddings precisionAtK, cosine, self excluded);
 * - the out-of-distribution fraction flagged.
 */
import { binaryReport, rocAuc } from '../metrics/binary';
import { positiveIndex } from '../classifier/postprocess';
import { precisionAtK } from '../embeddings';
import { multiclassMetrics } from './analysis';
import { batchOodFraction, predictAt, type BatchLabels, type BatchRow } from './rows';

export interface BatchReport {
  n: number;
  n_with_ground_truth: number;
  /** Labels of the classifier (binary: positive_label is P's label). */
  positive_label: string | null;
  threshold: number | null;
  accuracy: number | null;
  precision: number | null;
  recall: number | null;
  specificity: number | null;
  f1: number | null;
  auc: number | null;
  ece: number | null;
  ece_top_label: number | null;
  /** Binary: {tp, fp, tn, fn}; multi-class: rows of true label, columns of predicted label (labels order). */
  confusion: { tp: number; fp: number; tn: number; fn: number } | number[][] | null;
  macro_f1: number | null;
  auto_label_accuracy: number | null;
  zero_shot_labels: string[];
  zero_shot_accuracy: number | null;
  zero_shot_auc: number | null;
  precision_at_5: number | null;
  clip_precision_at_5: number | null;
  ood_flagged: number | null;
  ood_flagged_fraction: number | null;
  ood_threshold: number | null;
}

const finite = (x: number | undefined): number | null => (x != null && Number.isFinite(x) ? x : null);

/**
 * precision@5 of ground-truth agreement by embedding `key` over the finished rows with ground truth and that
 * embedding (same length as the first); null with fewer than 2 such rows.
 */
export function embeddingPrecisionAt5(rows: BatchRow[], key: 'classifierEmbedding' | 'clipEmbedding'): number | null {
  const withEmb = rows.filter((r) => r.status === 'done' && r.groundTruth && r[key]?.length);
  if (withEmb.length < 2) return null;
  const D = withEmb[0][key]!.length;
  const known = withEmb.filter((r) => r[key]!.length === D);
  const M = new Float32Array(known.length * D);
  known.forEach((r, i) => M.set(r[key]!, i * D));
  return finite(precisionAtK(M, D, known.map((r) => r.groundTruth!), 5));
}

/** precision@5 by the classifier embedding (the batch view's figure); undefined when it cannot be computed. */
export function batchPrecisionAt5(rows: BatchRow[]): number | undefined {
  return embeddingPrecisionAt5(rows, 'classifierEmbedding') ?? undefined;
}

/** The report of the finished rows (see the module comment). `zeroShotLabels`: the prompt labels, in order. */
export function batchReport(rows: BatchRow[], threshold: number, lab: BatchLabels, zeroShotLabels: string[] = []): BatchReport {
  const done = rows.filter((r) => r.status === 'done');
  const binary = lab.positive != null;
  const out: BatchReport = {
    n: done.length,
    n_with_ground_truth: 0,
    positive_label: lab.positive ?? null,
    threshold: binary ? threshold : null,
    accuracy: null, precision: null, recall: null, specificity: null, f1: null, auc: null, ece: null, ece_top_label: null,
    confusion: null,
    macro_f1: null,
    auto_label_accuracy: null,
    zero_shot_labels: zeroShotLabels,
    zero_shot_accuracy: null,
    zero_shot_auc: null,
    precision_at_5: embeddingPrecisionAt5(rows, 'classifierEmbedding'),
    clip_precision_at_5: embeddingPrecisionAt5(rows, 'clipEmbedding'),
    ood_flagged: null,
    ood_flagged_fraction: null,
    ood_threshold: finite(done.find((r) => r.oodThreshold != null)?.oodThreshold),
  };
  const known = done.filter((r) => r.groundTruth != null && lab.labels.includes(r.groundTruth));
  out.n_with_ground_truth = known.length;
  if (binary) {
    const scored = known.filter((r) => r.classifierProbability != null && !Number.isNaN(r.classifierProbability));
    if (scored.length) {
      const rep = binaryReport(scored.map((r) => (r.groundTruth === lab.positive ? 1 : 0)), scored.map((r) => r.classifierProbability!), threshold);
      Object.assign(out, {
        accuracy: rep.accuracy, precision: rep.precision, recall: rep.recall, specificity: rep.specificity, f1: rep.f1,
        auc: finite(rep.auc), ece: finite(rep.ece), ece_top_label: finite(rep.eceTopLabel), confusion: rep.confusion,
      });
    }
  } else {
    const scored = known.filter((r) => r.classifierProbabilities?.length === lab.labels.length);
    if (scored.length) {
      const m = multiclassMetrics(lab.labels, scored.map((r) => lab.labels.indexOf(r.groundTruth!)), scored.map((r) => lab.labels.indexOf(predictAt(r, threshold, lab)!)));
      Object.assign(out, { accuracy: m.accuracy, confusion: m.confusion, macro_f1: m.macroF1 });
    }
  }
  if (known.length) {
    // auto_label: the zero-shot label when a CLIP model labelled the row, else the classifier's prediction.
    const auto = (r: BatchRow) => r.autoLabel ?? predictAt(r, threshold, lab);
    out.auto_label_accuracy = known.filter((r) => auto(r) === r.groundTruth).length / known.length;
  }
  const zsKnown = done.filter((r) => r.zeroShotProbabilities && r.groundTruth != null && zeroShotLabels.includes(r.groundTruth));
  if (zsKnown.length) {
    out.zero_shot_accuracy = zsKnown.filter((r) => r.autoLabel === r.groundTruth).length / zsKnown.length;
    if (zeroShotLabels.length === 2) {
      const pos = zeroShotLabels[positiveIndex(zeroShotLabels)];
      const y = zsKnown.map((r) => (r.groundTruth === pos ? 1 : 0));
      if (new Set(y).size === 2) out.zero_shot_auc = finite(rocAuc(y, zsKnown.map((r) => r.zeroShotProbabilities![pos] ?? NaN)));
    }
  }
  const ood = batchOodFraction(rows);
  if (ood) {
    out.ood_flagged = ood.flagged;
    out.ood_flagged_fraction = ood.fraction;
  }
  return out;
}
