/**
 * Image-statistics features of the OOD score (ood.ts), from the classifier's own input tensor: the grey-level layout
 * on a coarse grid (contrast-normalised), the grey histogram and the colour saturation. Same definition as
 * export-scripts/cxr_export/ood_image_stats.py (which says why: the attention features alone rank a grey radiograph
 * of another body part inside the spread of the training images).
 *
 *   rgb = x·std + mean, grey = mean_c rgb_c, m / s = mean / population std of grey, z = (grey − m) / (s + 1e-3)
 *   f = [mean z per cell (grid²), log(1e-3 + std z per cell) (grid²), √(fraction per grey bin) (bins),
 *        log(1e-3 + mean |rgb_c − grey|), m, log(1e-3 + s)]
 */

export interface ImageStatsSpec {
  grid: number;
  bins: number;
  /** The model's per-channel normalisation (manifest preprocessing), to go back from x to [0, 1]. */
  mean: readonly number[];
  std: readonly number[];
}

const EPS = 1e-3;

/** Number of features for a grid and bin count: 2·grid² + bins + 3. */
export function imageStatsDim(grid: number, bins: number): number {
  return 2 * grid * grid + bins + 3;
}

/**
 * Features of image `batchIndex` of a model input batch `x` [b, 3, H, W] (row-major `dims`). Returns float64
 * [2·grid² + bins + 3]. Throws RangeError when the tensor is not [b, 3, H, W] or H, W are not multiples of grid.
 */
export function imageStatsFeatures(x: ArrayLike<number>, dims: readonly number[], spec: ImageStatsSpec, batchIndex = 0): Float64Array {
  if (dims.length !== 4 || dims[1] !== 3) throw new RangeError(`ood: model input must be [b, 3, H, W], got [${dims}]`);
  const [b, , H, W] = dims;
  const { grid, bins } = spec;
  if (batchIndex < 0 || batchIndex >= b) throw new RangeError(`ood: batchIndex ${batchIndex} out of range ${b}`);
  if (H % grid || W % grid) throw new RangeError(`ood: ${H}×${W} is not a multiple of the ${grid}×${grid} grid`);
  const HW = H * W;
  const base = batchIndex * 3 * HW;
  if (x.length < base + 3 * HW) throw new RangeError('ood: model input shorter than dims');
  const grey = new Float64Array(HW);
  let sat = 0;
  for (let i = 0; i < HW; i++) {
    const r = x[base + i] * spec.std[0] + spec.mean[0];
    const g = x[base + HW + i] * spec.std[1] + spec.mean[1];
    const bl = x[base + 2 * HW + i] * spec.std[2] + spec.mean[2];
    const v = (r + g + bl) / 3;
    grey[i] = v;
    sat += Math.abs(r - v) + Math.abs(g - v) + Math.abs(bl - v);
  }
  let m = 0;
  for (let i = 0; i < HW; i++) m += grey[i];
  m /= HW;
  let s = 0;
  for (let i = 0; i < HW; i++) s += (grey[i] - m) ** 2;
  s = Math.sqrt(s / HW);
  const G2 = grid * grid;
  const out = new Float64Array(imageStatsDim(grid, bins));
  const ch = H / grid;
  const cw = W / grid;
  const n = ch * cw;
  for (let gy = 0; gy < grid; gy++) {
    for (let gx = 0; gx < grid; gx++) {
      let sum = 0;
      let sum2 = 0;
      for (let y = gy * ch; y < (gy + 1) * ch; y++) {
        for (let xx = gx * cw; xx < (gx + 1) * cw; xx++) {
          const z = (grey[y * W + xx] - m) / (s + EPS);
          sum += z;
          sum2 += z * z;
        }
      }
      const mu = sum / n;
      // Two-pass would be exact; one-pass is within 1e-12 here (z is O(1), n ≤ a few thousand).
      out[gy * grid + gx] = mu;
      out[G2 + gy * grid + gx] = Math.log(Math.sqrt(Math.max(0, sum2 / n - mu * mu)) + EPS);
    }
  }
  const counts = new Float64Array(bins);
  for (let i = 0; i < HW; i++) counts[Math.min(bins - 1, Math.floor(Math.min(1, Math.max(0, grey[i])) * bins))]++;
  for (let k = 0; k < bins; k++) out[2 * G2 + k] = Math.sqrt(counts[k] / HW);
  out[2 * G2 + bins] = Math.log(sat / (3 * HW) + EPS);
  out[2 * G2 + bins + 1] = m;
  out[2 * G2 + bins + 2] = Math.log(s + EPS);
  return out;
}
