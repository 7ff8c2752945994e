/**
 * When a quantized variant may stand in for fp32: its model-card metrics, measured by export-scripts on the same
 * test split (card.metrics: `accuracy`, ... for fp32 and `int8_accuracy`, ... for int8), must each be within a
 * tolerance of fp32's. Pure: the plan (runtime/execution-plan.ts) and the Models view both read it.
 */
import type { ModelEntry } from './manifest-types';

/** The card metrics compared (ECE is a calibration figure, compared too: int8 must not be worse calibrated). */
export const COMPARED_METRICS = ['accuracy', 'precision', 'recall', 'specificity', 'f1', 'auc', 'ece_15'] as const;
/** Issue 13.4 / 12.3: "when its card metrics match fp32 within 0.005". */
export const CARD_TOLERANCE = 0.005;

export interface MetricComparison {
  metric: string;
  fp32: number;
  quantized: number;
  /** quantized − fp32 */
  diff: number;
}

export interface QuantizedVerdict {
  dtype: 'int8' | 'fp16';
  /** true: every compared metric present for both and |diff| ≤ tolerance. */
  matches: boolean;
  tolerance: number;
  compared: MetricComparison[];
  /** The largest |diff| (undefined when nothing could be compared). */
  worst?: MetricComparison;
  /** One sentence for the UI, e.g. "int8 card metrics within 0.005 of fp32 (largest: specificity +0.0043)". */
  reason: string;
}

/**
 * Compare the card metrics of a quantized variant with fp32's. A model without a card (random fixtures) or without
 * the quantized metrics never "matches": there is nothing to show it is as good.
 */
export function quantizedVerdict(entry: ModelEntry, dtype: 'int8' | 'fp16' = 'int8', tolerance = CARD_TOLERANCE): QuantizedVerdict {
  const m = entry.card.metrics ?? {};
  const compared: MetricComparison[] = [];
  const missing: string[] = [];
  for (const k of COMPARED_METRICS) {
    const a = m[k];
    const b = m[`${dtype}_${k}`];
    if (typeof a === 'number' && typeof b === 'number') compared.push({ metric: k, fp32: a, quantized: b, diff: b - a });
    else missing.push(k);
  }
  if (!entry.variants[dtype]) return { dtype, matches: false, tolerance, compared, reason: `no ${dtype} variant` };
  if (compared.length === 0) return { dtype, matches: false, tolerance, compared, reason: `the model card has no ${dtype} metrics to compare with fp32` };
  const worst = compared.reduce((w, c) => (Math.abs(c.diff) > Math.abs(w.diff) ? c : w));
  const sign = (x: number) => (x >= 0 ? '+' : '−') + Math.abs(x).toFixed(4);
  if (missing.length) {
    return { dtype, matches: false, tolerance, compared, worst, reason: `the model card lacks ${dtype} or fp32 ${missing.join(', ')}` };
  }
  const matches = Math.abs(worst.diff) <= tolerance;
  return {
    dtype,
    matches,
    tolerance,
    compared,
    worst,
    reason: matches
      ? `${dtype} card metrics within ${tolerance} of fp32 (largest: ${worst.metric} ${sign(worst.diff)})`
      : `${dtype} ${worst.metric} differs from fp32 by ${sign(worst.diff)} (more than ${tolerance})`,
  };
}
