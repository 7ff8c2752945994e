/**
 * Binary-classification metrics, pure and dependency-free. Conventions:
 * - labels are 0/1 (1 = positive, e.g. PNEUMONIA); scores are P(positive) or any monotone score;
 * - predicted positive ⇔ score ≥ threshold;
 * - a ratio whose denominator is 0 is reported as 0 (like sklearn's zero_division=0).
 */

export interface Confusion {
  tp: number;
  fp: number;
  tn: number;
  fn: number;
}

export interface ThresholdMetrics {
  threshold: number;
  accuracy: number;
  precision: number;
  /** = sensitivity = true-positive rate */
  recall: number;
  specificity: number;
  f1: number;
  /** negative predictive value */
  npv: number;
  confusion: Confusion;
}

export interface BinaryReport extends ThresholdMetrics {
  n: number;
  positives: number;
  auc: number;
  /** ECE on P(positive) (see expectedCalibrationError) */
  ece: number;
  /** ECE of the predicted class's confidence at 0.5 (see topLabelCalibrationError); what the Python model cards call ece_15 */
  eceTopLabel: number;
}

function check(labels: ArrayLike<number>, scores: ArrayLike<number>) {
  if (labels.length !== scores.length) throw new RangeError(`labels (${labels.length}) and scores (${scores.length}) differ in length`);
  for (let i = 0; i < labels.length; i++) {
    if (labels[i] !== 0 && labels[i] !== 1) throw new RangeError(`label ${i} is ${labels[i]}, expected 0 or 1`);
    if (Number.isNaN(scores[i])) throw new RangeError(`score ${i} is NaN`);
  }
}

const ratio = (a: number, b: number) => (b === 0 ? 0 : a / b);

export function confusionAt(labels: ArrayLike<number>, scores: ArrayLike<number>, threshold: number): Confusion {
  check(labels, scores);
  const c: Confusion = { tp: 0, fp: 0, tn: 0, fn: 0 };
  for (let i = 0; i < labels.length; i++) {
    const pred = scores[i] >= threshold;
    if (labels[i] === 1) pred ? c.tp++ : c.fn++;
    else pred ? c.fp++ : c.tn++;
  }
  return c;
}

export function metricsFromConfusion(c: Confusion, threshold = NaN): ThresholdMetrics {
  const n = c.tp + c.fp + c.tn + c.fn;
  const precision = ratio(c.tp, c.tp + c.fp);
  const recall = ratio(c.tp, c.tp + c.fn);
  return {
    threshold,
    accuracy: ratio(c.tp + c.tn, n),
    precision,
    recall,
    specificity: ratio(c.tn, c.tn + c.fp),
    f1: ratio(2 * c.tp, 2 * c.tp + c.fp + c.fn),
    npv: ratio(c.tn, c.tn + c.fn),
    confusion: { ...c },
  };
}

export function metricsAt(labels: ArrayLike<number>, scores: ArrayLike<number>, threshold: number): ThresholdMetrics {
  return metricsFromConfusion(confusionAt(labels, scores, threshold), threshold);
}

/**
 * ROC AUC as the Mann–Whitney U statistic with average ranks for ties: the probability that a random positive scores
 * above a random negative, ties counting ½. NaN when one class is absent.
 */
export function rocAuc(labels: ArrayLike<number>, scores: ArrayLike<number>): number {
  check(labels, scores);
  const n = labels.length;
  const idx = Array.from({ length: n }, (_, i) => i).sort((a, b) => scores[a] - scores[b]);
  let rankSumPos = 0;
  let nPos = 0;
  for (let i = 0; i < n; ) {
    let j = i;
    while (j + 1 < n && scores[idx[j + 1]] === scores[idx[i]]) j++;
    const avgRank = (i + j) / 2 + 1; // 1-based average rank of the tie group
    for (let k = i; k <= j; k++) {
      if (labels[idx[k]] === 1) {
        rankSumPos += avgRank;
        nPos++;
      }
    }
    i = j + 1;
  }
  const nNeg = n - nPos;
  if (nPos === 0 || nNeg === 0) return NaN;
  return (rankSumPos - (nPos * (nPos + 1)) / 2) / (nPos * nNeg);
}

export interface RocCurve {
  fpr: number[];
  tpr: number[];
  /** Decreasing; thresholds[0] = Infinity (nothing predicted positive), like sklearn's roc_curve(drop_intermediate=False). */
  thresholds: number[];
}

export function rocCurve(labels: ArrayLike<number>, scores: ArrayLike<number>): RocCurve {
  check(labels, scores);
  const n = labels.length;
  const idx = Array.from({ length: n }, (_, i) => i).sort((a, b) => scores[b] - scores[a]);
  let P = 0;
  for (let i = 0; i < n; i++) P += labels[i];
  const N = n - P;
  const out: RocCurve = { fpr: [0], tpr: [0], thresholds: [Infinity] };
  let tp = 0, fp = 0;
  for (let i = 0; i < n; ) {
    const s = scores[idx[i]];
    while (i < n && scores[idx[i]] === s) {
      labels[idx[i]] === 1 ? tp++ : fp++;
      i++;
    }
    out.fpr.push(ratio(fp, N));
    out.tpr.push(ratio(tp, P));
    out.thresholds.push(s);
  }
  return out;
}

/** Trapezoidal area under a ROC curve (equals rocAuc for the full curve). */
export function trapezoidAuc(x: number[], y: number[]): number {
  let a = 0;
  for (let i = 1; i < x.length; i++) a += ((x[i] - x[i - 1]) * (y[i] + y[i - 1])) / 2;
  return a;
}

export interface CalibrationBin {
  lo: number;
  hi: number;
  count: number;
  /** mean predicted P(positive) in the bin */
  confidence: number;
  /** observed fraction of positives in the bin */
  accuracy: number;
}

/**
 * Reliability bins on P(positive): `bins` equal-width bins over [0,1], bin k = (k/B, (k+1)/B] with 0 in the first.
 */
export function reliabilityBins(labels: ArrayLike<number>, probs: ArrayLike<number>, bins = 15): CalibrationBin[] {
  check(labels, probs);
  const sumP = new Float64Array(bins), sumY = new Float64Array(bins), cnt = new Float64Array(bins);
  for (let i = 0; i < labels.length; i++) {
    const p = Math.min(1, Math.max(0, probs[i]));
    const k = Math.min(bins - 1, Math.max(0, Math.ceil(p * bins) - 1));
    sumP[k] += p;
    sumY[k] += labels[i];
    cnt[k]++;
  }
  return Array.from({ length: bins }, (_, k) => ({
    lo: k / bins,
    hi: (k + 1) / bins,
    count: cnt[k],
    confidence: cnt[k] ? sumP[k] / cnt[k] : 0,
    accuracy: cnt[k] ? sumY[k] / cnt[k] : 0,
  }));
}

/**
 * Expected calibration error on P(positive) (not top-label confidence): Σ_b |B_b|/N · |mean(y in b) − mean(p in b)|
 * with `bins` equal-width bins (default 15).
 */
export function expectedCalibrationError(labels: ArrayLike<number>, probs: ArrayLike<number>, bins = 15): number {
  const n = labels.length;
  if (n === 0) return NaN;
  let e = 0;
  for (const b of reliabilityBins(labels, probs, bins)) if (b.count) e += (b.count / n) * Math.abs(b.accuracy - b.confidence);
  return e;
}

/**
 * Top-label ECE, as export-scripts' model cards report it (`ece_15`): predicted class = [P(positive) ≥ 0.5],
 * confidence = probability of the predicted class, correctness vs. the label; same equal-width bins.
 */
export function topLabelCalibrationError(labels: ArrayLike<number>, probs: ArrayLike<number>, bins = 15): number {
  check(labels, probs);
  const n = labels.length;
  if (n === 0) return NaN;
  const correct: number[] = [];
  const conf: number[] = [];
  for (let i = 0; i < n; i++) {
    const pred = probs[i] >= 0.5 ? 1 : 0;
    conf.push(pred ? probs[i] : 1 - probs[i]);
    correct.push(pred === labels[i] ? 1 : 0);
  }
  return expectedCalibrationError(correct, conf, bins);
}

/** Metrics at each threshold (default: 0, 0.01, …, 1). */
export function thresholdSweep(labels: ArrayLike<number>, scores: ArrayLike<number>, thresholds?: number[]): ThresholdMetrics[] {
  const ts = thresholds ?? Array.from({ length: 101 }, (_, i) => i / 100);
  return ts.map((t) => metricsAt(labels, scores, t));
}

/** Threshold maximizing Youden's J (sensitivity + specificity − 1) or F1 among the observed scores. */
export function bestThreshold(labels: ArrayLike<number>, scores: ArrayLike<number>, criterion: 'youden' | 'f1' = 'youden'): ThresholdMetrics {
  const uniq = [...new Set(Array.from(scores))].sort((a, b) => a - b);
  let best: ThresholdMetrics | null = null;
  let bestVal = -Infinity;
  for (const t of uniq) {
    const m = metricsAt(labels, scores, t);
    const v = criterion === 'f1' ? m.f1 : m.recall + m.specificity - 1;
    if (v > bestVal) {
      bestVal = v;
      best = m;
    }
  }
  return best ?? metricsAt(labels, scores, 0.5);
}

/** Everything at once, for batch reports and the CLI. */
export function binaryReport(labels: ArrayLike<number>, probs: ArrayLike<number>, threshold = 0.5, eceBins = 15): BinaryReport {
  const m = metricsAt(labels, probs, threshold);
  let positives = 0;
  for (let i = 0; i < labels.length; i++) positives += labels[i];
  return {
    ...m,
    n: labels.length,
    positives,
    auc: rocAuc(labels, probs),
    ece: expectedCalibrationError(labels, probs, eceBins),
    eceTopLabel: topLabelCalibrationError(labels, probs, eceBins),
  };
}
