/**
 * SAM's frame geometry: the image is resized so its longest side is S (1024 for the real models), then padded
 * bottom-right to S×S. Prompts given in original image pixels are scaled into that frame; masks come back as
 * low-res logits over the padded frame and are upscaled, cropped and resized back to the original size.
 *
 * Source: segment_anything/utils/transforms.py ResizeLongestSide.get_preprocess_shape / apply_coords, and
 * transformers' SamImageProcessor._get_preprocess_shape / SamProcessor._normalize_coordinates (same rounding).
 */

export interface FrameGeometry {
  /** Original image size in pixels. */
  origW: number;
  origH: number;
  /** Size after the longest-side resize (before padding), pixels of the S×S frame. */
  resizedW: number;
  resizedH: number;
  /** Model input side S. */
  size: number;
}

/**
 * Longest-side resize target: scale = S / max(h, w); new = int(old·scale + 0.5) (Python's int truncation).
 * Throws RangeError for an empty image or a non-positive S.
 */
export function longestSideShape(origW: number, origH: number, size: number): FrameGeometry {
  if (!(origW > 0 && origH > 0 && size > 0)) throw new RangeError(`longestSideShape: bad sizes ${origW}x${origH} → ${size}`);
  const scale = (size * 1.0) / Math.max(origW, origH);
  return {
    origW,
    origH,
    resizedW: Math.trunc(origW * scale + 0.5),
    resizedH: Math.trunc(origH * scale + 0.5),
    size,
  };
}

/** Original pixel (x, y) → the S×S frame: x·(resizedW/origW), y·(resizedH/origH) (apply_coords). */
export function toFrame(g: FrameGeometry, x: number, y: number): [number, number] {
  return [x * (g.resizedW / g.origW), y * (g.resizedH / g.origH)];
}

/** Inverse of toFrame: a point of the S×S frame → original image pixels. */
export function fromFrame(g: FrameGeometry, fx: number, fy: number): [number, number] {
  return [fx * (g.origW / g.resizedW), fy * (g.origH / g.resizedH)];
}

/** Clamp a point to the image (0 ≤ x ≤ w−1 is not required by SAM, but a prompt outside the image is a slip). */
export function clampToImage(g: Pick<FrameGeometry, 'origW' | 'origH'>, x: number, y: number): [number, number] {
  return [Math.min(Math.max(x, 0), g.origW), Math.min(Math.max(y, 0), g.origH)];
}
