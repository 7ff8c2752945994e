/** Platform-neutral image containers and conversions. */

/** 8-bit RGBA pixels, row-major, 4 bytes per pixel (the layout of ImageData). */
export interface Raster {
  width: number;
  height: number;
  data: Uint8ClampedArray;
}

export function createRaster(width: number, height: number): Raster {
  return { width, height, data: new Uint8ClampedArray(width * height * 4) };
}

/** 8-bit grayscale (one byte per pixel) → RGBA with opaque alpha. */
export function grayToRGBA(gray: ArrayLike<number>, width: number, height: number): Raster {
  const n = width * height;
  if (gray.length < n) throw new RangeError(`grayToRGBA: expected ${n} values, got ${gray.length}`);
  const out = new Uint8ClampedArray(n * 4);
  for (let i = 0, j = 0; i < n; i++, j += 4) {
    const v = gray[i];
    out[j] = v;
    out[j + 1] = v;
    out[j + 2] = v;
    out[j + 3] = 255;
  }
  return { width, height, data: out };
}

/** Float grayscale in [0,1] → RGBA (rounded, clamped). */
export function floatGrayToRGBA(gray: ArrayLike<number>, width: number, height: number): Raster {
  const n = width * height;
  const out = new Uint8ClampedArray(n * 4);
  for (let i = 0, j = 0; i < n; i++, j += 4) {
    const v = Math.round(gray[i] * 255);
    out[j] = v;
    out[j + 1] = v;
    out[j + 2] = v;
    out[j + 3] = 255;
  }
  return { width, height, data: out };
}

/** Interleaved RGB (3 bytes per pixel) → RGBA. */
export function rgbToRGBA(rgb: ArrayLike<number>, width: number, height: number): Raster {
  const n = width * height;
  const out = new Uint8ClampedArray(n * 4);
  for (let i = 0, j = 0, k = 0; i < n; i++, j += 4, k += 3) {
    out[j] = rgb[k];
    out[j + 1] = rgb[k + 1];
    out[j + 2] = rgb[k + 2];
    out[j + 3] = 255;
  }
  return { width, height, data: out };
}

/** Luma (ITU-R 601, as PIL's convert('L')) of an RGBA raster, one byte per pixel. */
export function rasterToGray(r: Raster): Uint8ClampedArray {
  const n = r.width * r.height;
  const out = new Uint8ClampedArray(n);
  const d = r.data;
  for (let i = 0, j = 0; i < n; i++, j += 4) {
    // PIL: L = R * 299/1000 + G * 587/1000 + B * 114/1000
    out[i] = (d[j] * 299 + d[j + 1] * 587 + d[j + 2] * 114 + 500) / 1000;
  }
  return out;
}
