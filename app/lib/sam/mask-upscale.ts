/**
 * The binary mask at the image's size from one low-res logit map, computed only where it can be non-zero, and the
 * mask's bounds (remembered per mask so the overlay paint and the lung-side count read only that rectangle).
 *
 * Why exact: SAM's upscale (postprocess.ts upscaleMaskLogits: bilinear m×m → S×S cropped to resizedW×resizedH, then
 * bilinear → origW×origH, align_corners=False) makes every output logit a combination, with non-negative weights,
 * of the low-res logits it reads. Where all of those are ≤ 0 the products and their sum are ≤ 0 in floating point
 * too (a sign never flips by rounding), so the pixel is 0 at SAM's threshold 0 (Sam.mask_threshold). Only the output
 * rows and columns that read a low-res row / column of the positive logits' bounding box are computed, with the
 * same taps and the same arithmetic (intermediate stored as float32, the output rounded to float32 before the
 * threshold), so the mask equals thresholdLogits(upscaleMaskLogits(...)) pixel for pixel (tests/unit/sam).
 */
import type { FrameGeometry } from './geometry';
import { bilinearTaps, type Taps } from './postprocess';

/** Half-open pixel rectangle [x0, y0, x1, y1) holding every foreground pixel of a mask. */
export type MaskBounds = readonly [number, number, number, number];

/** The output indices [first, last] (inclusive) that read any source index in [lo, hi]; null when none. */
function reachedRange(t: Taps, lo: number, hi: number): [number, number] | null {
  let first = -1;
  let last = -1;
  for (let d = 0; d < t.i0.length; d++) {
    if (t.i1[d] >= lo && t.i0[d] <= hi) {
      if (first < 0) first = d;
      last = d;
    }
  }
  return first < 0 ? null : [first, last];
}

/**
 * Binary mask (origW·origH, 1 = logit > 0) of one m×m low-res logit map, equal pixel for pixel to
 * thresholdLogits(upscaleMaskLogits(lowRes, m, g)), and its tight bounds (null for an empty mask). Cost: the
 * rectangle the positive logits can reach, not the whole image. Throws a RangeError when lowRes is not m×m.
 */
export function upscaleMask(lowRes: Float32Array, m: number, g: FrameGeometry): { mask: Uint8Array; bounds: MaskBounds | null } {
  if (lowRes.length !== m * m) throw new RangeError(`upscaleMask: ${lowRes.length} values, expected ${m}×${m}`);
  const { origW: W, origH: H, resizedW: RW, resizedH: RH, size: S } = g;
  const mask = new Uint8Array(W * H);
  // bounding box of the positive low-res logits
  let r0 = m;
  let r1 = -1;
  let c0 = m;
  let c1 = -1;
  for (let r = 0; r < m; r++) {
    const row = r * m;
    for (let c = 0; c < m; c++) {
      if (!(lowRes[row + c] > 0)) continue;
      if (r < r0) r0 = r;
      r1 = r;
      if (c < c0) c0 = c;
      if (c > c1) c1 = c;
    }
  }
  if (r1 < 0) return { mask, bounds: null };
  // stage 1 (m×m → the resizedW×resizedH corner of an S×S grid) and stage 2 (→ origW×origH) taps, as resizeBilinear
  const tx1 = bilinearTaps(m, RW, m / S);
  const ty1 = bilinearTaps(m, RH, m / S);
  const tx2 = bilinearTaps(RW, W);
  const ty2 = bilinearTaps(RH, H);
  const fxr = reachedRange(tx1, c0, c1);
  const fyr = reachedRange(ty1, r0, r1);
  if (!fxr || !fyr) return { mask, bounds: null };
  const xr = reachedRange(tx2, fxr[0], fxr[1]);
  const yr = reachedRange(ty2, fyr[0], fyr[1]);
  if (!xr || !yr) return { mask, bounds: null };
  const [xs, xe] = xr;
  const [ys, ye] = yr;
  // the frame values those output pixels read (all of them, reached or not: same values as the full upscale)
  const fx0 = tx2.i0[xs];
  const fx1 = tx2.i1[xe];
  const fy0 = ty2.i0[ys];
  const fy1 = ty2.i1[ye];
  const frame = new Float32Array(RW * RH);
  for (let y = fy0; y <= fy1; y++) {
    const a0 = ty1.i0[y] * m;
    const a1 = ty1.i1[y] * m;
    const b = ty1.w1[y];
    const a = 1 - b;
    for (let x = fx0; x <= fx1; x++) {
      const k0 = tx1.i0[x];
      const k1 = tx1.i1[x];
      const q = tx1.w1[x];
      const p = 1 - q;
      frame[y * RW + x] = a * (p * lowRes[a0 + k0] + q * lowRes[a0 + k1]) + b * (p * lowRes[a1 + k0] + q * lowRes[a1 + k1]);
    }
  }
  let bx0 = W;
  let bx1 = -1;
  let by0 = H;
  let by1 = -1;
  for (let y = ys; y <= ye; y++) {
    const a0 = ty2.i0[y] * RW;
    const a1 = ty2.i1[y] * RW;
    const b = ty2.w1[y];
    const a = 1 - b;
    const row = y * W;
    let first = -1;
    let last = -1;
    for (let x = xs; x <= xe; x++) {
      const k0 = tx2.i0[x];
      const k1 = tx2.i1[x];
      const q = tx2.w1[x];
      const p = 1 - q;
      const v = a * (p * frame[a0 + k0] + q * frame[a0 + k1]) + b * (p * frame[a1 + k0] + q * frame[a1 + k1]);
      // the reference stores the logit as float32 before thresholding: a tiny positive double can round to 0
      if (Math.fround(v) > 0) {
        mask[row + x] = 1;
        if (first < 0) first = x;
        last = x;
      }
    }
    if (first < 0) continue;
    if (y < by0) by0 = y;
    by1 = y;
    if (first < bx0) bx0 = first;
    if (last > bx1) bx1 = last;
  }
  const bounds: MaskBounds | null = by1 < 0 ? null : [bx0, by0, bx1 + 1, by1 + 1];
  rememberMaskBounds(mask, bounds);
  return { mask, bounds };
}

const known = new WeakMap<ArrayLike<number>, MaskBounds | null>();

/**
 * Record the bounds of a mask computed elsewhere (the segment worker computes them; the page receives a copy of the
 * mask, so the page registers them again on arrival). The caller vouches for them: every foreground pixel inside.
 */
export function rememberMaskBounds(mask: ArrayLike<number>, bounds: MaskBounds | null): void {
  known.set(mask, bounds);
}

/** Tight bounds of a mask (w·h, non-zero = inside): remembered ones, else one scan (then remembered); null if empty. */
export function maskBounds(mask: ArrayLike<number>, w: number, h: number): MaskBounds | null {
  const have = known.get(mask);
  if (have !== undefined) return have;
  let x0 = w;
  let x1 = -1;
  let y0 = h;
  let y1 = -1;
  for (let y = 0; y < h; y++) {
    const row = y * w;
    for (let x = 0; x < w; x++) {
      if (!mask[row + x]) continue;
      if (x < x0) x0 = x;
      if (x > x1) x1 = x;
      if (y < y0) y0 = y;
      y1 = y;
    }
  }
  const b: MaskBounds | null = y1 < 0 ? null : [x0, y0, x1 + 1, y1 + 1];
  if (typeof mask === 'object') known.set(mask, b);
  return b;
}

/** The smallest rectangle holding all of `bounds` (nulls skipped); null when all are null. */
export function unionBounds(bounds: readonly (MaskBounds | null)[]): MaskBounds | null {
  let u: [number, number, number, number] | null = null;
  for (const b of bounds) {
    if (!b) continue;
    if (!u) u = [b[0], b[1], b[2], b[3]];
    else u = [Math.min(u[0], b[0]), Math.min(u[1], b[1]), Math.max(u[2], b[2]), Math.max(u[3], b[3])];
  }
  return u;
}

/** Foreground pixels of a mask (w·h), counted inside its bounds only (remembered, else one scan). */
export function maskAreaIn(mask: ArrayLike<number>, w: number, h: number): number {
  const b = maskBounds(mask, w, h);
  let n = 0;
  if (b) for (let y = b[1]; y < b[3]; y++) for (let i = y * w + b[0], end = y * w + b[2]; i < end; i++) n += mask[i] ? 1 : 0;
  return n;
}
