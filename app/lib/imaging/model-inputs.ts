/**
 * A model's input size (Preprocessing.size / .resize) and the image resized once to it in the imaging worker, so a
 * full-resolution raster is not copied to every model worker (each engine resizes only when the size differs, with
 * the same resizeRaster: the tensor is identical).
 */
import type { Preprocessing } from '../models/manifest-types';
import type { Raster } from './raster';
import type { ModelInputSize } from './decode-outcome';

/** The input size of a model (224×224 bilinear when the manifest gives no preprocessing). */
export function modelInputSize(entry: { preprocessing?: Preprocessing } | undefined): ModelInputSize {
  const p = entry?.preprocessing;
  return p ? { width: p.size[1], height: p.size[0], resize: p.resize } : { width: 224, height: 224, resize: 'bilinear' };
}

export function inputSizeKey(s: ModelInputSize): string {
  return `${s.width}x${s.height}:${s.resize}`;
}

/** The distinct input sizes of some models, in order. */
export function distinctInputSizes(entries: ({ preprocessing?: Preprocessing } | undefined)[]): ModelInputSize[] {
  const out: ModelInputSize[] = [];
  for (const e of entries) {
    if (!e) continue;
    const s = modelInputSize(e);
    if (!out.some((o) => inputSizeKey(o) === inputSizeKey(s))) out.push(s);
  }
  return out;
}

/** Rasters resized once for some input sizes, valid for the raster `of` (a new frame or decode invalidates them). */
export interface ModelInputs {
  of: Raster;
  sizes: ModelInputSize[];
  rasters: Raster[];
}

/** The raster to hand a model: the pre-resized one when it exists for `raster` and the model's size, else `raster`. */
export function modelInputFor(raster: Raster, inputs: ModelInputs | undefined, entry: { preprocessing?: Preprocessing } | undefined): Raster {
  if (!inputs || inputs.of !== raster) return raster;
  const i = inputs.sizes.findIndex((s) => inputSizeKey(s) === inputSizeKey(modelInputSize(entry)));
  return i >= 0 ? inputs.rasters[i] : raster;
}
