/**
 * Overlap metrics for binary masks with an ignore region (the cxr-lung-masks convention: 255 lung, 127 ignore,
 * 0 background; ignored pixels count neither way). Dice = 2|A∩B| / (|A| + |B|), IoU = |A∩B| / |A∪B|; both 1 when
 * prediction and truth are empty.
 */

export interface Overlap {
  dice: number;
  iou: number;
  /** Pixels in prediction, truth, intersection (ignore excluded). */
  pred: number;
  truth: number;
  inter: number;
}

/** pred, truth: 0/1 per pixel; ignore (optional): 1 where the pixel does not count. */
export function overlap(pred: ArrayLike<number>, truth: ArrayLike<number>, ignore?: ArrayLike<number>): Overlap {
  if (pred.length !== truth.length) throw new RangeError(`overlap: ${pred.length} vs ${truth.length} pixels`);
  let p = 0, t = 0, i = 0;
  for (let k = 0; k < pred.length; k++) {
    if (ignore && ignore[k]) continue;
    const a = pred[k] ? 1 : 0;
    const b = truth[k] ? 1 : 0;
    p += a;
    t += b;
    i += a & b;
  }
  const dice = p + t === 0 ? 1 : (2 * i) / (p + t);
  const u = p + t - i;
  return { dice, iou: u === 0 ? 1 : i / u, pred: p, truth: t, inter: i };
}

export interface Summary {
  n: number;
  mean: number;
  median: number;
  /** 10th percentile (linear interpolation between order statistics, numpy's default). */
  p10: number;
  min: number;
}

/** Quantile q ∈ [0,1] of sorted values, numpy 'linear' method. */
export function quantile(sorted: readonly number[], q: number): number {
  if (!sorted.length) return NaN;
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

export function summarize(values: readonly number[]): Summary {
  const s = [...values].sort((a, b) => a - b);
  const mean = s.reduce((a, b) => a + b, 0) / (s.length || NaN);
  return { n: s.length, mean, median: quantile(s, 0.5), p10: quantile(s, 0.1), min: s[0] ?? NaN };
}
