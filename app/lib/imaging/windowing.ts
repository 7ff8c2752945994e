/**
 * VOI and presentation (PS3.3 C.11.2, C.11.6): modality values → 8-bit display values, through a window (LINEAR,
 * LINEAR_EXACT or SIGMOID) or a VOI LUT Sequence item, then inverted for MONOCHROME1 / Presentation LUT Shape
 * INVERSE. The viewer, the models and `npm run convert` all render with these functions.
 */
import type { DicomImage, DicomWindow, VoiFunction, VoiPreset } from './dicom';
import { autoWindow } from './dicom';
import type { Raster } from './raster';
import { grayToRGBA, rgbToRGBA } from './raster';

export type { VoiFunction };

export interface WindowOptions {
  /** Default 'LINEAR'. */
  fn?: VoiFunction;
  /** Invert after windowing (MONOCHROME1: low values are white). */
  invert?: boolean;
}

/**
 * One value through the VOI function, as a float in [0, 255] (PS3.3 C.11.2.1.2.1 LINEAR, C.11.2.1.3.2
 * LINEAR_EXACT, C.11.2.1.3.1 SIGMOID with y_min 0 and y_max 255).
 */
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

/** A VOI preset (window or VOI LUT) applied to modality values → 8-bit gray. LUT output is scaled from its bits. */
export function applyPreset(values: ArrayLike<number>, preset: VoiPreset, invert = false): Uint8ClampedArray {
  if (preset.kind === 'window') return applyWindow(values, preset, { fn: preset.fn, invert });
  const lut = preset.lut;
  const scale = 255 / (2 ** lut.bits - 1);
  // Precompute the 8-bit table once: the LUT is small next to the image.
  const table = new Uint8ClampedArray(lut.entries);
  for (let i = 0; i < lut.entries; i++) {
    const y = lut.data[i] * scale;
    table[i] = invert ? 255 - y : y;
  }
  const out = new Uint8ClampedArray(values.length);
  for (let i = 0; i < values.length; i++) {
    let k = Math.round(values[i]) - lut.firstMapped;
    if (k < 0) k = 0;
    else if (k >= lut.entries) k = lut.entries - 1;
    out[i] = table[k];
  }
  return out;
}

/** What to render: a preset of the image (default: its defaultPresetId), or a window the user dragged to. */
export interface VoiSelection {
  presetId?: string;
  window?: DicomWindow;
}

export function presetOf(img: DicomImage, presetId?: string): VoiPreset {
  return img.presets.find((p) => p.id === (presetId ?? img.defaultPresetId)) ?? img.presets[0];
}

/** Human description of what a selection renders with, e.g. "Window 1 (SOFT): C 40 / W 400". */
export function describeSelection(img: DicomImage, sel: VoiSelection = {}): string {
  if (img.rgb) return `colour (${img.photometric})`;
  const w = sel.window;
  if (w) return `window C ${w.center} / W ${w.width} (${img.voiLutFunction})`;
  const p = presetOf(img, sel.presetId);
  return p.kind === 'window' && p.fn !== 'LINEAR' ? `${p.label} (${p.fn})` : p.label;
}

/** Greyscale display values (one byte per pixel) of a DICOM frame under a selection, presentation applied. */
export function renderGray(img: DicomImage, sel: VoiSelection = {}): Uint8ClampedArray {
  if (sel.window) return applyWindow(img.pixels, sel.window, { fn: img.voiLutFunction, invert: img.invert });
  return applyPreset(img.pixels, presetOf(img, sel.presetId), img.invert);
}

/**
 * A decoded DICOM → display raster: colour images as-is; greyscale through `window` (a dragged window, with the
 * file's VOI LUT Function) or else the default preset, inverted for MONOCHROME1 / INVERSE.
 */
export function dicomToRaster(img: DicomImage, window?: DicomWindow, presetId?: string): Raster {
  if (img.rgb) return rgbToRGBA(img.rgb, img.width, img.height);
  return grayToRGBA(renderGray(img, { window, presetId }), img.width, img.height);
}
