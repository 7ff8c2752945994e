import { describe, expect, it } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { centerCrop, normalizationLUT, resizeRaster, toModelInput, toModelInputBatch } from '../../../app/lib/imaging/preprocess';
import type { Raster } from '../../../app/lib/imaging/raster';
import { REPO_ROOT } from '../helpers/shared';

interface Case { in: [number, number]; out: [number, number]; filter: 'bilinear' | 'bicubic' | 'nearest'; rgb: number[] }
const fixture = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'tests/unit/fixtures/pil-resize.json'), 'utf8')) as {
  cases: Case[];
  normalize: { mean: number[]; std: number[]; lut: number[][] };
};

/** Same formula as tests/unit/fixtures/gen_pil_resize.py. */
function synth(w: number, h: number): Raster {
  const data = new Uint8ClampedArray(w * h * 4);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++)
      for (let c = 0; c < 4; c++) data[(y * w + x) * 4 + c] = c === 3 ? 255 : (x * x * 3 + y * 7 + x * y + c * 50) & 255;
  return { width: w, height: h, data };
}

describe('resizeRaster matches Pillow exactly', () => {
  for (const c of fixture.cases) {
    it(`${c.filter} ${c.in.join('x')} -> ${c.out.join('x')}`, () => {
      const r = resizeRaster(synth(c.in[0], c.in[1]), c.out[0], c.out[1], c.filter);
      expect([r.width, r.height]).toEqual(c.out);
      const rgb: number[] = [];
      for (let i = 0; i < r.width * r.height; i++) rgb.push(r.data[i * 4], r.data[i * 4 + 1], r.data[i * 4 + 2]);
      let mismatches = 0;
      for (let i = 0; i < rgb.length; i++) if (rgb[i] !== c.rgb[i]) mismatches++;
      expect(mismatches).toBe(0);
    });
  }

  it('returns the same raster when already at target size', () => {
    const s = synth(8, 8);
    expect(resizeRaster(s, 8, 8, 'bicubic')).toBe(s);
  });
});

describe('normalization', () => {
  it('LUT equals torchvision float32 arithmetic', () => {
    const luts = normalizationLUT(fixture.normalize.mean, fixture.normalize.std);
    for (let c = 0; c < 3; c++) for (let v = 0; v < 256; v++) expect(luts[c][v]).toBe(Math.fround(fixture.normalize.lut[c][v]));
  });

  it('toModelInput writes NCHW planes', () => {
    const r = synth(4, 2);
    const pre = { size: [2, 4] as [number, number], resize: 'bilinear' as const, mean: [0, 0, 0] as [number, number, number], std: [1, 1, 1] as [number, number, number], layout: 'NCHW' as const };
    const t = toModelInput(r, pre);
    expect(t.length).toBe(3 * 8);
    // pixel (x=1,y=1), channel 2 → plane 2, index 5
    expect(t[2 * 8 + 5]).toBeCloseTo(((1 * 1 * 3 + 7 + 1 + 100) & 255) / 255, 6);
    const b = toModelInputBatch([r, r], pre);
    expect(b.length).toBe(48);
    expect(Array.from(b.subarray(24))).toEqual(Array.from(t));
  });

  it('centerCrop takes the middle', () => {
    const c = centerCrop(synth(6, 6), 2, 2);
    expect(c.width).toBe(2);
    const full = synth(6, 6);
    expect(c.data[0]).toBe(full.data[(2 * 6 + 2) * 4]);
  });
});
