/**
 * Mask overlays as RGBA pixels, painted by lib code so views only blit them: each mask's pixels get its colour at
 * its alpha; where masks overlap the later colour wins and the alpha is the larger one. Pure (no DOM): the result
 * goes into an ImageData in the view (or an OffscreenCanvas in a worker).
 */

export interface OverlayMask {
  /** w·h, non-zero = inside. */
  mask: ArrayLike<number>;
  /** RGB 0..255. */
  color: readonly [number, number, number];
  /** 0..1. */
  alpha: number;
}

/**
 * Paint `masks` into `out` (RGBA, w·h·4, cleared first unless `keep`). Throws a RangeError naming the mask whose
 * size is not w·h. Returns `out`.
 */
export function paintMaskOverlay(out: Uint8ClampedArray, w: number, h: number, masks: readonly OverlayMask[], keep = false): Uint8ClampedArray {
  if (out.length !== w * h * 4) throw new RangeError(`overlay buffer holds ${out.length} bytes, ${w}×${h} RGBA needs ${w * h * 4}`);
  if (!keep) out.fill(0);
  masks.forEach(({ mask, color, alpha }, k) => {
    if (mask.length !== w * h) throw new RangeError(`mask ${k} has ${mask.length} pixels, the image ${w}×${h}`);
    const a = Math.round(Math.min(1, Math.max(0, alpha)) * 255);
    for (let i = 0, j = 0; i < mask.length; i++, j += 4) {
      if (!mask[i]) continue;
      out[j] = color[0];
      out[j + 1] = color[1];
      out[j + 2] = color[2];
      out[j + 3] = Math.max(out[j + 3], a);
    }
  });
  return out;
}
