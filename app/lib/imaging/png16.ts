/**
 * 16-bit PNGs (PNG 1.2 §11.2.2 IHDR bit depth 16: greyscale, greyscale+alpha, RGB, RGBA) at full precision.
 *
 * Browsers' createImageBitmap and pngjs' default keep only 8 bits (the high byte), and Pillow's convert('RGB') clips
 * 'I;16' at 255; a detector PNG holding 12-bit values (0..4095) then comes out nearly black. Here the 16-bit samples
 * are decoded by fast-png (the same library in the browser and Node) and WINDOWED BY THEIR STORED RANGE: the
 * smallest stored sample maps to 0, the largest to 255,
 *
 *     out = floor((v - min) * 255 / (max - min) + 0.5)      (float64; all 0 when max == min)
 *
 * over the grey channel (greyscale) or the three colour channels together (RGB); alpha is dropped (opaque), as
 * Pillow's convert('RGB') does. export-scripts' `cxr_export.images.open_rgb` computes exactly the same numbers.
 */
import { decode as decodePng } from 'fast-png';
import type { Raster } from './raster';
import { ImageDecodeError } from './errors';

/** PNG IHDR fields (PNG 1.2 §11.2.2) and the significant bits of sBIT (§11.3.4.4) when present. */
export interface PngHeader {
  width: number;
  height: number;
  bitDepth: number;
  /** 0 grey, 2 RGB, 3 palette, 4 grey+alpha, 6 RGBA. */
  colorType: number;
  /** sBIT's first value (significant bits of the grey or red channel), e.g. 12 for a 12-bit detector. */
  significantBits?: number;
}

/** The window a 16-bit PNG was displayed (and fed to the models) with, in stored sample units. */
export interface StoredRangeWindow {
  kind: 'stored-range';
  bitDepth: 16;
  /** Smallest and largest stored sample (of the windowed channels); they map to 0 and 255. */
  min: number;
  max: number;
  significantBits?: number;
}

const u32be = (b: Uint8Array, i: number) => ((b[i] << 24) | (b[i + 1] << 16) | (b[i + 2] << 8) | b[i + 3]) >>> 0;

/** IHDR (and sBIT) of a PNG; null when the bytes do not start with a PNG signature and IHDR. */
export function readPngHeader(b: Uint8Array): PngHeader | null {
  if (b.length < 33 || b[12] !== 0x49 || b[13] !== 0x48 || b[14] !== 0x44 || b[15] !== 0x52) return null;
  const h: PngHeader = { width: u32be(b, 16), height: u32be(b, 20), bitDepth: b[24], colorType: b[25] };
  // sBIT comes before the first IDAT.
  let i = 33;
  while (i + 12 <= b.length) {
    const len = u32be(b, i);
    const t = String.fromCharCode(b[i + 4], b[i + 5], b[i + 6], b[i + 7]);
    if (t === 'IDAT' || t === 'IEND') break;
    if (t === 'sBIT' && len >= 1 && i + 9 <= b.length) h.significantBits = b[i + 8];
    i += 12 + len;
  }
  return h;
}

/**
 * Window 16-bit samples by their stored range into an opaque RGBA raster.
 * @param data interleaved samples, `channels` per pixel (1 grey, 2 grey+alpha, 3 RGB, 4 RGBA)
 */
export function windowStoredRange(data: ArrayLike<number>, width: number, height: number, channels: number, significantBits?: number): { raster: Raster; window: StoredRangeWindow } {
  const n = width * height;
  if (data.length < n * channels) throw new RangeError(`windowStoredRange: expected ${n * channels} samples, got ${data.length}`);
  const colour = channels >= 3 ? 3 : 1;
  let min = Infinity;
  let max = -Infinity;
  for (let i = 0; i < n; i++) {
    for (let c = 0; c < colour; c++) {
      const v = data[i * channels + c];
      if (v < min) min = v;
      if (v > max) max = v;
    }
  }
  if (n === 0) min = max = 0;
  const span = max - min;
  const out = new Uint8ClampedArray(n * 4);
  const map = (v: number) => (span > 0 ? Math.floor(((v - min) * 255) / span + 0.5) : 0);
  for (let i = 0, j = 0; i < n; i++, j += 4) {
    const k = i * channels;
    if (colour === 1) {
      const g = map(data[k]);
      out[j] = g;
      out[j + 1] = g;
      out[j + 2] = g;
    } else {
      out[j] = map(data[k]);
      out[j + 1] = map(data[k + 1]);
      out[j + 2] = map(data[k + 2]);
    }
    out[j + 3] = 255;
  }
  return { raster: { width, height, data: out }, window: { kind: 'stored-range', bitDepth: 16, min, max, ...(significantBits ? { significantBits } : {}) } };
}

/** Decode a 16-bit PNG at full precision and window it by its stored range. Throws ImageDecodeError('corrupt'). */
export function decodePng16(bytes: Uint8Array): { raster: Raster; window: StoredRangeWindow } {
  const header = readPngHeader(bytes);
  let png;
  try {
    png = decodePng(bytes);
  } catch (e) {
    throw new ImageDecodeError('corrupt', `The 16-bit PNG could not be decoded: ${(e as Error)?.message ?? String(e)}`, undefined, { cause: e });
  }
  if (png.depth !== 16) throw new ImageDecodeError('corrupt', `Expected a 16-bit PNG, the decoder read ${png.depth} bits`);
  return windowStoredRange(png.data, png.width, png.height, png.channels, header?.significantBits);
}
