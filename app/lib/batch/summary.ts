/**
 * Batch-level metrics from labelled rows: classifier and (when distinct) auto-label agreement with ground truth.
 */
import { binaryReport, type BinaryReport } from '../metrics/binary';
import type { LabeledRow } from './csv';

export interface BatchSummary {
  n: number;
  /** rows with a known ground truth among the two labels */
  nWithTruth: number;
  classifier?: BinaryReport;
  /** accuracy of auto_label against ground truth */
  autoLabelAccuracy?: number;
}

/**
 * Metrics for rows whose ground truth is one of `[negative, positive]` labels, using classifier_probability as
 * P(positive) and `threshold`.
 */
export function summarizeBatch(rows: LabeledRow[], positive = 'PNEUMONIA', negative = 'NORMAL', threshold = 0.5): BatchSummary {
  const known = rows.filter((r) => r.ground_truth === positive || r.ground_truth === negative);
  const out: BatchSummary = { n: rows.length, nWithTruth: known.length };
  if (known.length === 0) return out;
  const y = known.map((r) => (r.ground_truth === positive ? 1 : 0));
  const p = known.map((r) => r.classifier_probability);
  out.classifier = binaryReport(y, p, threshold);
  out.autoLabelAccuracy = known.filter((r) => r.auto_label === r.ground_truth).length / known.length;
  return out;
}
