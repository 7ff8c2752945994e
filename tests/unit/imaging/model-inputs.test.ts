/**
 * Issue 8 item 6: the image is resized once (imaging worker) to each model's input size instead of copying the full
 * raster to each model worker; the engines' tensor must be identical either way.
 */
import { expect, it } from 'vitest';
import { distinctInputSizes, modelInputFor, modelInputSize, resizeRaster, toModelInput, type Raster } from '../../../app/lib/imaging';
import type { Preprocessing } from '../../../app/lib/models/manifest-types';

const pre = (h: number, w: number, resize: Preprocessing['resize']): Preprocessing => ({ size: [h, w], resize, mean: [0.5, 0.4, 0.3], std: [0.2, 0.25, 0.3], layout: 'NCHW' });

it('a raster resized once gives the engines the same tensor as the full-resolution one', () => {
  const full: Raster = { width: 517, height: 389, data: new Uint8ClampedArray(517 * 389 * 4).map((_, i) => (i * 2654435761) >>> 24) };
  for (const p of [pre(224, 224, 'bilinear'), pre(224, 224, 'bicubic'), pre(192, 256, 'bilinear')]) {
    const s = modelInputSize({ preprocessing: p });
    const once = resizeRaster(full, s.width, s.height, s.resize);
    expect(Array.from(toModelInput(once, p))).toEqual(Array.from(toModelInput(full, p)));
  }
  const cls = { preprocessing: pre(224, 224, 'bicubic') };
  const clip = { preprocessing: pre(224, 224, 'bicubic') };
  const other = { preprocessing: pre(192, 256, 'bilinear') };
  expect(distinctInputSizes([cls, clip, undefined, other])).toHaveLength(2);
  const sizes = distinctInputSizes([cls, other]);
  const inputs = { of: full, sizes, rasters: sizes.map((s) => resizeRaster(full, s.width, s.height, s.resize)) };
  expect(modelInputFor(full, inputs, other)).toBe(inputs.rasters[1]);
  // another raster (a new DICOM frame) invalidates them; an unknown size falls back to the full raster
  const frame2 = { ...full, data: full.data.slice() };
  expect(modelInputFor(frame2, inputs, cls)).toBe(frame2);
  expect(modelInputFor(full, inputs, { preprocessing: pre(96, 96, 'bilinear') })).toBe(full);
});
