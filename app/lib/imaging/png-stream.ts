/**
 * Very large PNGs (a 10000×10000 scan is 400 MB as RGBA) decoded in bounded memory: the zlib stream of the IDAT
 * chunks is inflated incrementally (fflate's Unzlib), each scanline is un-filtered against the previous one only
 * (PNG 1.2 §9 filter types 0-4) and box-averaged into a raster downsampled by an integer factor while decoding.
 * Peak memory: the file's bytes, two scanlines, one row of accumulators and the downsampled raster.
 *
 * Same output in the browser and in Node (pure JS). 16-bit samples are windowed by their stored range (png16.ts):
 * min and max over the full-resolution samples, applied to the averaged values. Adam7-interlaced PNGs cannot be
 * streamed row by row: `streamablePng` says so and the caller decodes them whole (within the usual pixel limit).
 */
import { Unzlib } from 'fflate';
import type { Raster } from './raster';
import { ImageDecodeError } from './errors';
import { readPngHeader, type PngHeader, type StoredRangeWindow } from './png16';

/** Images with more pixels than this are downsampled while decoding (4096×4096). */
export const LARGE_IMAGE_MAX_PIXELS = 4096 * 4096;

/** Integer downsampling factor that brings width×height to at most maxPixels. */
export function downsampleFactor(width: number, height: number, maxPixels = LARGE_IMAGE_MAX_PIXELS): number {
  let f = Math.max(1, Math.ceil(Math.sqrt((width * height) / maxPixels)));
  while (Math.ceil(width / f) * Math.ceil(height / f) > maxPixels) f++;
  return f;
}

/** Can this PNG be decoded row by row (non-interlaced, a standard colour type and depth)? */
export function streamablePng(h: PngHeader | null, bytes: Uint8Array): h is PngHeader {
  if (!h || bytes[28] !== 0) return false; // interlace method (IHDR byte 12)
  const ok: Record<number, number[]> = { 0: [1, 2, 4, 8, 16], 2: [8, 16], 3: [1, 2, 4, 8], 4: [8, 16], 6: [8, 16] };
  return ok[h.colorType]?.includes(h.bitDepth) ?? false;
}

const CHANNELS: Record<number, number> = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 };

export interface StreamedPng {
  raster: Raster;
  /** The integer factor the image was box-averaged by (1: full resolution). */
  factor: number;
  sourceWidth: number;
  sourceHeight: number;
  storedRange?: StoredRangeWindow;
}

/**
 * Decode a non-interlaced PNG scanline by scanline, box-averaging `factor`×`factor` blocks (edge blocks: the pixels
 * they have). Alpha is dropped (opaque), palette expanded, grey replicated, 1/2/4-bit grey scaled to 0..255 as
 * PNG §13.12 describes. Throws ImageDecodeError 'corrupt' / 'truncated'.
 */
export function decodePngStreaming(bytes: Uint8Array, factor: number): StreamedPng {
  const h = readPngHeader(bytes);
  if (!streamablePng(h, bytes)) throw new ImageDecodeError('corrupt', 'This PNG cannot be decoded row by row (interlaced or unknown format)');
  const { width: W, height: H, bitDepth: depth, colorType } = h;
  const ch = CHANNELS[colorType];
  const bitsPerPixel = ch * depth;
  const bpp = Math.max(1, bitsPerPixel >> 3); // filter byte distance (§9.2)
  const rowBytes = Math.ceil((W * bitsPerPixel) / 8);
  const ow = Math.ceil(W / factor);
  const oh = Math.ceil(H / factor);
  const colour = colorType === 2 || colorType === 6 || colorType === 3 ? 3 : 1;
  let palette: Uint8Array | null = null;

  const acc = new Float64Array(ow * colour);
  const out = new Float32Array(ow * oh * colour);
  let prev = new Uint8Array(rowBytes);
  let cur = new Uint8Array(rowBytes);
  let filled = -1; // -1: waiting for the filter byte
  let filter = 0;
  let y = 0;
  let min = Infinity;
  let max = -Infinity;
  const maxGrey = depth < 8 ? (1 << depth) - 1 : 0;

  const sample = (row: Uint8Array, x: number, c: number): number => {
    if (depth === 16) return (row[(x * ch + c) * 2] << 8) | row[(x * ch + c) * 2 + 1];
    if (depth === 8) return row[x * ch + c];
    const bit = x * depth;
    return (row[bit >> 3] >> (8 - depth - (bit & 7))) & ((1 << depth) - 1);
  };

  const flushBand = (oy: number, rowsInBand: number) => {
    for (let ox = 0; ox < ow; ox++) {
      const cols = Math.min(factor, W - ox * factor);
      const n = cols * rowsInBand;
      for (let c = 0; c < colour; c++) out[(oy * ow + ox) * colour + c] = acc[ox * colour + c] / n;
    }
    acc.fill(0);
  };

  const takeRow = () => {
    // Un-filter (§9.2): a = left, b = up, c = up-left.
    switch (filter) {
      case 0: break;
      case 1: for (let i = bpp; i < rowBytes; i++) cur[i] = (cur[i] + cur[i - bpp]) & 0xff; break;
      case 2: for (let i = 0; i < rowBytes; i++) cur[i] = (cur[i] + prev[i]) & 0xff; break;
      case 3:
        for (let i = 0; i < rowBytes; i++) cur[i] = (cur[i] + (((i >= bpp ? cur[i - bpp] : 0) + prev[i]) >> 1)) & 0xff;
        break;
      case 4:
        for (let i = 0; i < rowBytes; i++) {
          const a = i >= bpp ? cur[i - bpp] : 0;
          const b = prev[i];
          const c = i >= bpp ? prev[i - bpp] : 0;
          const p = a + b - c;
          const pa = Math.abs(p - a);
          const pb = Math.abs(p - b);
          const pc = Math.abs(p - c);
          cur[i] = (cur[i] + (pa <= pb && pa <= pc ? a : pb <= pc ? b : c)) & 0xff;
        }
        break;
      default:
        throw new ImageDecodeError('corrupt', `The PNG is damaged: scanline ${y} has filter type ${filter}`);
    }
    for (let x = 0; x < W; x++) {
      const o = Math.floor(x / factor) * colour;
      if (colorType === 3) {
        const k = sample(cur, x, 0) * 3;
        if (!palette || k + 2 >= palette.length) throw new ImageDecodeError('corrupt', 'The PNG is damaged: palette index out of range');
        acc[o] += palette[k];
        acc[o + 1] += palette[k + 1];
        acc[o + 2] += palette[k + 2];
        continue;
      }
      for (let c = 0; c < colour; c++) {
        let v = sample(cur, x, c);
        if (depth === 16) {
          if (v < min) min = v;
          if (v > max) max = v;
        } else if (maxGrey) v = Math.floor((v * 255) / maxGrey);
        acc[o + c] += v;
      }
    }
    y++;
    if (y % factor === 0 || y === H) flushBand(Math.floor((y - 1) / factor), y % factor === 0 ? factor : H % factor);
    const t = prev;
    prev = cur;
    cur = t;
  };

  const inflater = new Unzlib((chunk) => {
    for (let i = 0; i < chunk.length && y < H; ) {
      if (filled < 0) {
        filter = chunk[i++];
        filled = 0;
        continue;
      }
      const n = Math.min(rowBytes - filled, chunk.length - i);
      cur.set(chunk.subarray(i, i + n), filled);
      filled += n;
      i += n;
      if (filled === rowBytes) {
        takeRow();
        filled = -1;
      }
    }
  });

  let i = 8;
  let sawEnd = false;
  try {
    while (i + 12 <= bytes.length) {
      const len = ((bytes[i] << 24) | (bytes[i + 1] << 16) | (bytes[i + 2] << 8) | bytes[i + 3]) >>> 0;
      const type = String.fromCharCode(bytes[i + 4], bytes[i + 5], bytes[i + 6], bytes[i + 7]);
      const data = bytes.subarray(i + 8, i + 8 + len);
      if (type === 'PLTE') palette = data.slice();
      else if (type === 'IDAT') inflater.push(data, false);
      else if (type === 'IEND') {
        inflater.push(new Uint8Array(0), true);
        sawEnd = true;
        break;
      }
      i += 12 + len;
    }
  } catch (e) {
    if (e instanceof ImageDecodeError) throw e;
    throw new ImageDecodeError('corrupt', `The PNG's image data is damaged: ${(e as Error)?.message ?? String(e)}`, undefined, { cause: e });
  }
  if (!sawEnd || y < H) throw new ImageDecodeError('truncated', `The PNG is truncated: ${y} of ${H} rows decoded`);

  const n = ow * oh;
  const rgba = new Uint8ClampedArray(n * 4);
  let storedRange: StoredRangeWindow | undefined;
  const span = max - min;
  const map =
    depth === 16
      ? (v: number) => (span > 0 ? Math.floor(((v - min) * 255) / span + 0.5) : 0)
      : (v: number) => Math.floor(v + 0.5);
  if (depth === 16) storedRange = { kind: 'stored-range', bitDepth: 16, min, max, ...(h.significantBits ? { significantBits: h.significantBits } : {}) };
  for (let p = 0, j = 0; p < n; p++, j += 4) {
    if (colour === 1) {
      const g = map(out[p]);
      rgba[j] = g;
      rgba[j + 1] = g;
      rgba[j + 2] = g;
    } else {
      rgba[j] = map(out[p * 3]);
      rgba[j + 1] = map(out[p * 3 + 1]);
      rgba[j + 2] = map(out[p * 3 + 2]);
    }
    rgba[j + 3] = 255;
  }
  return { raster: { width: ow, height: oh, data: rgba }, factor, sourceWidth: W, sourceHeight: H, storedRange };
}
