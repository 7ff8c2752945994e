/**
 * VOI windowing (PS3.3 C.11.2.1.2): modality values → 8-bit display values.
 */
import type { DicomImage, DicomWindow } from './dicom';
import { autoWindow } from './dicom';
import type { Raster } from './raster';
import { grayToRGBA, rgbToRGBA } from './raster';

export type VoiFunction = 'LINEAR' | 'LINEAR_EXACT' | 'SIGMOID';

export interface WindowOptions {
  /** Default 'LINEAR'. */
  fn?: VoiFunction;
  /** Invert after windowing (MONOCHROME1: low values are white). */
  invert?: boolean;
}

/** One value through the VOI function, as a float in [0, 255]. */
export function windowValue(x: number, center: number, width: number, fn: VoiFunction = 'LINEAR'): number {
  const ymax = 255;
  if (fn === 'SIGMOID') {
    return ymax / (1 + Math.exp((-4 * (x - center)) / width));
  }
  if (fn === 'LINEAR_EXACT') {
    if (x <= center - width / 2) return 0;
    if (x > center + width / 2) return ymax;
    return ((x - center) / width + 0.5) * ymax;
  }
  // LINEAR (w >= 1)
  const w = Math.max(1, width);
  const c = center - 0.5;
  const half = (w - 1) / 2;
  if (x <= c - half) return 0;
  if (x > c + half) return ymax;
  return ((x - c) / (w - 1) + 0.5) * ymax;
}

/** Apply a window to modality values → 8-bit gray, one byte per pixel (rounded). */
export function applyWindow(values: ArrayLike<number>, window: DicomWindow, opts: WindowOptions = {}): Uint8ClampedArray {
  const n = values.length;
  const out = new Uint8ClampedArray(n);
  const fn = opts.fn ?? 'LINEAR';
  const { center, width } = window;
  if (fn === 'LINEAR') {
    // Inlined fast path of windowValue for large images.
    const w = Math.max(1, width);
    const c = center - 0.5;
    const lo = c - (w - 1) / 2;
    const hi = c + (w - 1) / 2;
    const scale = w > 1 ? 255 / (w - 1) : 0;
    for (let i = 0; i < n; i++) {
      const x = values[i];
      const y = x <= lo ? 0 : x > hi ? 255 : (x - c) * scale + 127.5;
      out[i] = opts.invert ? 255 - y : y;
    }
    return out;
  }
  for (let i = 0; i < n; i++) {
    const y = windowValue(values[i], center, width, fn);
    out[i] = opts.invert ? 255 - y : y;
  }
  return out;
}

/** Window computed from the data's min/max. */
export function autoWindowOf(values: ArrayLike<number>): DicomWindow {
  let min = Infinity, max = -Infinity;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (v < min) min = v;
    if (v > max) max = v;
  }
  return autoWindow(min, max);
}

/** Windowed values → RGBA grayscale raster. */
export function windowToRaster(values: ArrayLike<number>, width: number, height: number, window: DicomWindow, opts: WindowOptions = {}): Raster {
  return grayToRGBA(applyWindow(values, window, opts), width, height);
}

/**
 * A decoded DICOM → display raster: colour images as-is; grayscale through its VOI function with `window`
 * (default: the file's window or the auto window), inverted for MONOCHROME1.
 */
export function dicomToRaster(img: DicomImage, window?: DicomWindow): Raster {
  if (img.rgb) return rgbToRGBA(img.rgb, img.width, img.height);
  return windowToRaster(img.pixels, img.width, img.height, window ?? img.window, {
    fn: img.voiLutFunction,
    invert: img.photometric === 'MONOCHROME1',
  });
}
