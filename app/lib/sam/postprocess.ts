/**
 * Mask post-processing: low-res logits (m×m over the padded S×S frame) → logits at the original image size →
 * binary mask, and the IoU choice.
 *
 * Source: segment_anything/modeling/sam.py Sam.postprocess_masks and transformers' SamImageProcessor
 * .post_process_masks: F.interpolate(m → S×S, bilinear, align_corners=False), crop [:resizedH, :resizedW],
 * F.interpolate(→ H×W, bilinear, align_corners=False), threshold at 0 (Sam.mask_threshold).
 */
import type { FrameGeometry } from './geometry';

/** Per output index: the two source indices it reads and the second one's weight (the first's is 1 − w1). */
export interface Taps {
  i0: Int32Array;
  i1: Int32Array;
  w1: Float32Array;
}

/** PyTorch upsample_bilinear2d source indices (align_corners=False): src = (dst + 0.5)·in/out − 0.5, clamped at 0. */
export function bilinearTaps(inSize: number, outSize: number, scale = inSize / outSize): Taps {
  const i0 = new Int32Array(outSize);
  const i1 = new Int32Array(outSize);
  const w1 = new Float32Array(outSize);
  for (let d = 0; d < outSize; d++) {
    let s = (d + 0.5) * scale - 0.5;
    if (s < 0) s = 0;
    const a = Math.min(Math.floor(s), inSize - 1);
    i0[d] = a;
    i1[d] = a < inSize - 1 ? a + 1 : a;
    w1[d] = s - a;
  }
  return { i0, i1, w1 };
}

/**
 * Bilinear resize of a float plane like torch.nn.functional.interpolate(mode='bilinear', align_corners=False)
 * to an output of dw×dh whose sampling grid is that of a `gridW`×`gridH` output (default dw×dh): with a larger grid
 * only its top-left dw×dh corner is computed (the crop of SAM's first upscale, without computing the padding).
 * src is sw×sh, row-major.
 */
export function resizeBilinear(src: Float32Array, sw: number, sh: number, dw: number, dh: number, gridW = dw, gridH = dh): Float32Array {
  const tx = bilinearTaps(sw, dw, sw / gridW);
  const ty = bilinearTaps(sh, dh, sh / gridH);
  const out = new Float32Array(dw * dh);
  for (let y = 0; y < dh; y++) {
    const r0 = ty.i0[y] * sw;
    const r1 = ty.i1[y] * sw;
    const b = ty.w1[y];
    const a = 1 - b;
    for (let x = 0; x < dw; x++) {
      const c0 = tx.i0[x];
      const c1 = tx.i1[x];
      const q = tx.w1[x];
      const p = 1 - q;
      out[y * dw + x] = a * (p * src[r0 + c0] + q * src[r0 + c1]) + b * (p * src[r1 + c0] + q * src[r1 + c1]);
    }
  }
  return out;
}

/** One m×m low-res logit map → logits at the original image size (origW×origH), SAM's two-step upscale. */
export function upscaleMaskLogits(lowRes: Float32Array, m: number, g: FrameGeometry): Float32Array {
  if (lowRes.length !== m * m) throw new RangeError(`upscaleMaskLogits: ${lowRes.length} values, expected ${m}×${m}`);
  const S = g.size;
  const frame = resizeBilinear(lowRes, m, m, g.resizedW, g.resizedH, S, S);
  return resizeBilinear(frame, g.resizedW, g.resizedH, g.origW, g.origH);
}

/** Logits → 0/1 mask (logit > threshold; SAM's mask_threshold is 0). */
export function thresholdLogits(logits: Float32Array, threshold = 0): Uint8Array {
  const out = new Uint8Array(logits.length);
  for (let i = 0; i < logits.length; i++) out[i] = logits[i] > threshold ? 1 : 0;
  return out;
}

/** Index of the highest predicted IoU (SAM's "best mask" choice); the first on ties. */
export function bestMaskIndex(iou: readonly number[]): number {
  let k = 0;
  for (let i = 1; i < iou.length; i++) if (iou[i] > iou[k]) k = i;
  return k;
}

/** Number of foreground pixels. */
export function maskArea(mask: Uint8Array): number {
  let n = 0;
  for (let i = 0; i < mask.length; i++) n += mask[i] ? 1 : 0;
  return n;
}
