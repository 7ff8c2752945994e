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
 * Paint `masks` (each w·h) into `out` (RGBA, cleared first unless `keep`): the whole image (w·h·4), or with
 * `region` [x0, y0, x1, y1) only that rectangle, `out` then holding (x1−x0)·(y1−y0)·4 bytes (the same pixels as the
 * whole paint's crop; a region holding every mask's bounds leaves nothing painted outside it). Throws a RangeError
 * naming the mask whose size is not w·h, or when `out` does not fit. Returns `out`.
 */
export function paintMaskOverlay(out: Uint8ClampedArray, w: number, h: number, masks: readonly OverlayMask[], keep = false, region?: readonly [number, number, number, number]): Uint8ClampedArray {
  const [x0, y0, x1, y1] = region ?? [0, 0, w, h];
  if (x0 < 0 || y0 < 0 || x1 > w || y1 > h || x1 < x0 || y1 < y0) throw new RangeError(`overlay region ${x0},${y0},${x1},${y1} is not inside ${w}×${h}`);
  const rw = x1 - x0;
  if (out.length !== rw * (y1 - y0) * 4) throw new RangeError(`overlay buffer holds ${out.length} bytes, ${rw}×${y1 - y0} RGBA needs ${rw * (y1 - y0) * 4}`);
  if (!keep) out.fill(0);
  masks.forEach(({ mask, color, alpha }, k) => {
    if (mask.length !== w * h) throw new RangeError(`mask ${k} has ${mask.length} pixels, the image ${w}×${h}`);
    const a = Math.round(Math.min(1, Math.max(0, alpha)) * 255);
    for (let y = y0; y < y1; y++) {
      for (let i = y * w + x0, end = y * w + x1, j = (y - y0) * rw * 4; i < end; i++, j += 4) {
        if (!mask[i]) continue;
        out[j] = color[0];
        out[j + 1] = color[1];
        out[j + 2] = color[2];
        out[j + 3] = Math.max(out[j + 3], a);
      }
    }
  });
  return out;
}
