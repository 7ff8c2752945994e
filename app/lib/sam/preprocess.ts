/**
 * SAM image preprocessing: Pillow-exact bilinear longest-side resize (app/lib/imaging/preprocess.ts), scale to
 * [0,1], normalise per channel, zero-pad bottom-right to S×S, NCHW float32.
 *
 * Matches transformers' SamImageProcessor (resize BILINEAR → rescale 1/255 → normalize → pad with 0) and
 * segment_anything's SamPredictor (ResizeLongestSide via PIL bilinear → (x − mean)/std on 0..255 → pad with 0):
 * the two differ only in float rounding.
 */
import type { Raster } from '../imaging/raster';
import { normalizationLUT, resizeRaster } from '../imaging/preprocess';
import { longestSideShape, type FrameGeometry } from './geometry';

export interface SamPreprocessing {
  /** Model input side S (square). */
  size: number;
  mean: readonly [number, number, number] | readonly number[];
  std: readonly [number, number, number] | readonly number[];
}

export interface SamInput {
  /** [1, 3, S, S] float32, padded area 0. */
  data: Float32Array;
  dims: [1, 3, number, number];
  geometry: FrameGeometry;
}

/** Raster (any size, RGBA) → SAM encoder input and the frame geometry needed to map prompts and masks. */
export function prepareSamInput(raster: Raster, pre: SamPreprocessing): SamInput {
  const S = pre.size;
  const g = longestSideShape(raster.width, raster.height, S);
  const r = resizeRaster(raster, g.resizedW, g.resizedH, 'bilinear');
  const plane = S * S;
  const out = new Float32Array(3 * plane);
  const [l0, l1, l2] = normalizationLUT(pre.mean, pre.std);
  const d = r.data;
  for (let y = 0; y < g.resizedH; y++) {
    for (let x = 0; x < g.resizedW; x++) {
      const j = (y * g.resizedW + x) * 4;
      const i = y * S + x;
      out[i] = l0[d[j]];
      out[plane + i] = l1[d[j + 1]];
      out[2 * plane + i] = l2[d[j + 2]];
    }
  }
  return { data: out, dims: [1, 3, S, S], geometry: g };
}
