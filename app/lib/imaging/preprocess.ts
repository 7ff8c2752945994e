/**
 * Model-input preprocessing that matches the Python side (PIL resize → ToTensor → Normalize) bit-for-bit where
 * possible: the resize is a port of Pillow's separable resampling (libImaging/Resample.c) for 8-bit images,
 * including its antialiasing (filter support scaled by the downscale factor), bicubic a = −0.5, 22-bit fixed-point
 * coefficients and the rounding to uint8 between the horizontal and the vertical pass.
 */
import type { Preprocessing } from '../models/manifest-types';
import type { Raster } from './raster';

export type ResampleFilter = 'bilinear' | 'bicubic' | 'box' | 'nearest';

interface FilterDef {
  support: number;
  fn: (x: number) => number;
}

const FILTERS: Record<Exclude<ResampleFilter, 'nearest'>, FilterDef> = {
  box: {
    support: 0.5,
    fn: (x) => (x > -0.5 && x <= 0.5 ? 1 : 0),
  },
  bilinear: {
    support: 1,
    fn: (x) => {
      if (x < 0) x = -x;
      return x < 1 ? 1 - x : 0;
    },
  },
  bicubic: {
    support: 2,
    fn: (x) => {
      const a = -0.5;
      if (x < 0) x = -x;
      if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
      if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
      return 0;
    },
  },
};

const PRECISION_BITS = 32 - 8 - 2;
const ONE = 2 ** PRECISION_BITS;
const HALF = 2 ** (PRECISION_BITS - 1);
const CLIP_HI = 2 ** (PRECISION_BITS + 8);

interface Coeffs {
  ksize: number;
  bounds: Int32Array; // [xmin, count] per output pixel
  kk: Int32Array; // fixed-point coefficients, ksize per output pixel
}

/** Pillow's precompute_coeffs + normalize_coeffs_8bpc for a full-extent box [0, inSize). */
export function precomputeCoeffs(inSize: number, outSize: number, filter: FilterDef): Coeffs {
  const scale = inSize / outSize;
  const filterscale = Math.max(1, scale);
  const support = filter.support * filterscale;
  const ksize = Math.ceil(support) * 2 + 1;
  const bounds = new Int32Array(outSize * 2);
  const kk = new Int32Array(outSize * ksize);
  const pre = new Float64Array(ksize);
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale;
    const ss = 1 / filterscale;
    let xmin = Math.trunc(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    let xmax = Math.trunc(center + support + 0.5);
    if (xmax > inSize) xmax = inSize;
    xmax -= xmin;
    let ww = 0;
    for (let x = 0; x < xmax; x++) {
      const w = filter.fn((x + xmin - center + 0.5) * ss);
      pre[x] = w;
      ww += w;
    }
    for (let x = 0; x < ksize; x++) {
      let w = x < xmax ? pre[x] : 0;
      if (x < xmax && ww !== 0) w /= ww;
      // (int)(±0.5 + w * 2^22): C truncation toward zero.
      kk[xx * ksize + x] = w < 0 ? Math.trunc(-0.5 + w * ONE) : Math.trunc(0.5 + w * ONE);
    }
    bounds[xx * 2] = xmin;
    bounds[xx * 2 + 1] = xmax;
  }
  return { ksize, bounds, kk };
}

function clip8(v: number): number {
  if (v < 0) return 0;
  if (v >= CLIP_HI) return 255;
  return Math.floor(v / ONE);
}

function nearestResize(src: Raster, outW: number, outH: number): Raster {
  // Pillow NEAREST: source index = floor((x + 0.5) * in / out).
  const out = new Uint8ClampedArray(outW * outH * 4);
  for (let y = 0; y < outH; y++) {
    const sy = Math.min(src.height - 1, Math.floor(((y + 0.5) * src.height) / outH));
    for (let x = 0; x < outW; x++) {
      const sx = Math.min(src.width - 1, Math.floor(((x + 0.5) * src.width) / outW));
      const si = (sy * src.width + sx) * 4;
      const di = (y * outW + x) * 4;
      out[di] = src.data[si];
      out[di + 1] = src.data[si + 1];
      out[di + 2] = src.data[si + 2];
      out[di + 3] = 255;
    }
  }
  return { width: outW, height: outH, data: out };
}

/**
 * Resize an RGBA raster like Pillow's `Image.resize((outW, outH), filter)` on an 'RGB' image (alpha is set to 255).
 * Returns the input unchanged when it already has the target size.
 */
export function resizeRaster(src: Raster, outW: number, outH: number, filter: ResampleFilter = 'bilinear'): Raster {
  if (!(outW > 0 && outH > 0)) throw new RangeError(`resizeRaster: bad target size ${outW}x${outH}`);
  if (src.width === outW && src.height === outH) return src;
  if (filter === 'nearest') return nearestResize(src, outW, outH);
  const f = FILTERS[filter];
  let cur = src;
  if (src.width !== outW) {
    const { ksize, bounds, kk } = precomputeCoeffs(src.width, outW, f);
    const h = cur.height;
    const inW = cur.width;
    const inD = cur.data;
    const out = new Uint8ClampedArray(outW * h * 4);
    for (let y = 0; y < h; y++) {
      const row = y * inW * 4;
      for (let xx = 0; xx < outW; xx++) {
        const xmin = bounds[xx * 2];
        const xmax = bounds[xx * 2 + 1];
        const k0 = xx * ksize;
        let s0 = HALF, s1 = HALF, s2 = HALF;
        for (let x = 0; x < xmax; x++) {
          const k = kk[k0 + x];
          const p = row + (x + xmin) * 4;
          s0 += inD[p] * k;
          s1 += inD[p + 1] * k;
          s2 += inD[p + 2] * k;
        }
        const o = (y * outW + xx) * 4;
        out[o] = clip8(s0);
        out[o + 1] = clip8(s1);
        out[o + 2] = clip8(s2);
        out[o + 3] = 255;
      }
    }
    cur = { width: outW, height: h, data: out };
  }
  if (cur.height !== outH) {
    const { ksize, bounds, kk } = precomputeCoeffs(cur.height, outH, f);
    const w = cur.width;
    const inD = cur.data;
    const out = new Uint8ClampedArray(w * outH * 4);
    for (let yy = 0; yy < outH; yy++) {
      const ymin = bounds[yy * 2];
      const ymax = bounds[yy * 2 + 1];
      const k0 = yy * ksize;
      for (let xx = 0; xx < w; xx++) {
        let s0 = HALF, s1 = HALF, s2 = HALF;
        for (let y = 0; y < ymax; y++) {
          const k = kk[k0 + y];
          const p = ((y + ymin) * w + xx) * 4;
          s0 += inD[p] * k;
          s1 += inD[p + 1] * k;
          s2 += inD[p + 2] * k;
        }
        const o = (yy * w + xx) * 4;
        out[o] = clip8(s0);
        out[o + 1] = clip8(s1);
        out[o + 2] = clip8(s2);
        out[o + 3] = 255;
      }
    }
    cur = { width: w, height: outH, data: out };
  }
  return cur;
}

/** Centre crop (Pillow/torchvision CenterCrop rounding: top = round((h − ch) / 2)). */
export function centerCrop(src: Raster, cropW: number, cropH: number): Raster {
  if (cropW > src.width || cropH > src.height) throw new RangeError(`centerCrop: ${cropW}x${cropH} is larger than ${src.width}x${src.height}`);
  const left = Math.round((src.width - cropW) / 2);
  const top = Math.round((src.height - cropH) / 2);
  const out = new Uint8ClampedArray(cropW * cropH * 4);
  for (let y = 0; y < cropH; y++) {
    const s = ((y + top) * src.width + left) * 4;
    out.set(src.data.subarray(s, s + cropW * 4), y * cropW * 4);
  }
  return { width: cropW, height: cropH, data: out };
}

/**
 * Per-channel lookup tables from 8-bit value to normalized float32, computed the way torchvision does in float32:
 * x = v / 255; x = (x − mean) / std.
 */
export function normalizationLUT(mean: readonly number[], std: readonly number[]): Float32Array[] {
  const f = Math.fround;
  return [0, 1, 2].map((c) => {
    const lut = new Float32Array(256);
    const m = f(mean[c]);
    const s = f(std[c]);
    for (let v = 0; v < 256; v++) lut[v] = f(f(f(v / 255) - m) / s);
    return lut;
  });
}

/**
 * Raster → model input, NCHW RGB float32 of length 3·H·W: resized (Pillow-compatible) to `pre.size` unless it is
 * already that size, scaled to [0,1] and normalized with `pre.mean` / `pre.std`. When `out` is given, writes into it
 * at `offset` (for batching) and returns it.
 */
export function toModelInput(raster: Raster, pre: Preprocessing, out?: Float32Array, offset = 0): Float32Array {
  const [h, w] = pre.size;
  if (pre.layout && pre.layout !== 'NCHW') throw new Error(`Unsupported layout ${pre.layout}`);
  const r = resizeRaster(raster, w, h, pre.resize);
  const plane = w * h;
  const dst = out ?? new Float32Array(3 * plane);
  if (dst.length < offset + 3 * plane) throw new RangeError('toModelInput: output buffer too small');
  const [l0, l1, l2] = normalizationLUT(pre.mean, pre.std);
  const d = r.data;
  for (let i = 0, j = 0; i < plane; i++, j += 4) {
    dst[offset + i] = l0[d[j]];
    dst[offset + plane + i] = l1[d[j + 1]];
    dst[offset + 2 * plane + i] = l2[d[j + 2]];
  }
  return dst;
}

/** Several rasters → one [b, 3, H, W] float32 batch. */
export function toModelInputBatch(rasters: Raster[], pre: Preprocessing): Float32Array {
  const [h, w] = pre.size;
  const per = 3 * h * w;
  const out = new Float32Array(rasters.length * per);
  rasters.forEach((r, i) => toModelInput(r, pre, out, i * per));
  return out;
}
