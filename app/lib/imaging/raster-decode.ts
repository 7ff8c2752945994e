/**
 * PNG and JPEG decoding shared by every platform: the platform decoder (browser codecs, pngjs/jpeg-js) supplies 8-bit
 * pixels; this file adds what must be the same everywhere: 16-bit PNGs at full precision windowed by their stored
 * range (png16.ts) and the EXIF orientation applied (exif.ts). `notes` say, in words for the UI and sidecars, what
 * was done to the stored pixels.
 */
import type { Raster } from './raster';
import { ORIENTATION_TRANSFORM, orientRaster, readExifOrientation, withNeutralOrientation, type ExifOrientation } from './exif';
import { decodePng16, readPngHeader, type StoredRangeWindow } from './png16';
import { checkPngChunks } from './png-chunks';
import { decodePngStreaming, downsampleFactor, LARGE_IMAGE_MAX_PIXELS, streamablePng } from './png-stream';

/** Beyond this many pixels even a streamed PNG is refused (20000×20000: decode time, not memory, is the limit). */
export const STREAMED_PNG_MAX_PIXELS = 400_000_000;

/** Is this a large PNG decoded row by row with downsampling (within STREAMED_PNG_MAX_PIXELS)? */
export function isStreamedPng(bytes: Uint8Array): boolean {
  const h = readPngHeader(bytes);
  return !!h && h.width * h.height > LARGE_IMAGE_MAX_PIXELS && h.width * h.height <= STREAMED_PNG_MAX_PIXELS && streamablePng(h, bytes);
}

/**
 * The pixel limit that applies to a file: `maxPixels` (what a full decode may hold), except for a streamable PNG over
 * LARGE_IMAGE_MAX_PIXELS, which is decoded into at most that many pixels and may have up to STREAMED_PNG_MAX_PIXELS
 * (when the caller allows at least a LARGE_IMAGE_MAX_PIXELS raster).
 */
export function pixelLimitFor(bytes: Uint8Array, format: 'png' | 'jpeg', maxPixels: number): number {
  if (format !== 'png' || maxPixels < LARGE_IMAGE_MAX_PIXELS) return maxPixels;
  const h = readPngHeader(bytes);
  return h && h.width * h.height > LARGE_IMAGE_MAX_PIXELS && streamablePng(h, bytes) ? Math.max(maxPixels, STREAMED_PNG_MAX_PIXELS) : maxPixels;
}

/** Decodes PNG or JPEG bytes into an 8-bit RGBA raster (platform-specific; EXIF ignored). */
export type PlatformRasterDecoder = (bytes: Uint8Array, format: 'png' | 'jpeg') => Promise<Raster> | Raster;

export interface RasterDecodeInfo {
  /** EXIF orientation found in the file (1 when none); applied to `raster`. */
  exifOrientation: ExifOrientation;
  /** 16-bit PNGs: the window their samples were mapped to 0..255 with. */
  storedRange?: StoredRangeWindow;
  /** Very large PNGs: box-averaged by this integer factor while decoding (bounded memory); the source size. */
  downsampled?: { factor: number; sourceWidth: number; sourceHeight: number };
  /** Human-readable account of the transforms, e.g. "EXIF orientation 6 applied (rotate 90° clockwise)". */
  notes: string[];
}

export async function decodePngOrJpeg(bytes: Uint8Array, format: 'png' | 'jpeg', platform: PlatformRasterDecoder): Promise<{ raster: Raster; info: RasterDecodeInfo }> {
  const notes: string[] = [];
  const { orientation, raw } = readExifOrientation(bytes, format);
  if (raw != null) notes.push(`EXIF orientation ${raw} is not a valid value (1–8); shown as stored`);
  const header = format === 'png' ? readPngHeader(bytes) : null;
  const streamed = !!header && isStreamedPng(bytes);
  // Before any decoder inflates a byte: chunk lengths, compressed metadata chunks and the image data under caps.
  if (format === 'png') checkPngChunks(bytes, !streamed);
  let raster: Raster;
  let storedRange: StoredRangeWindow | undefined;
  let downsampled: RasterDecodeInfo['downsampled'];
  if (header && streamed) {
    const s = decodePngStreaming(bytes, downsampleFactor(header.width, header.height));
    raster = s.raster;
    storedRange = s.storedRange;
    downsampled = { factor: s.factor, sourceWidth: s.sourceWidth, sourceHeight: s.sourceHeight };
    notes.push(`${s.sourceWidth}×${s.sourceHeight} PNG averaged ${s.factor}×${s.factor} while decoding to ${raster.width}×${raster.height} (bounded memory)`);
    if (storedRange) notes.push(`16-bit PNG windowed by its stored range ${storedRange.min}–${storedRange.max}`);
  } else if (header?.bitDepth === 16) {
    ({ raster, window: storedRange } = decodePng16(bytes));
    notes.push(
      `16-bit PNG${storedRange.significantBits ? ` (${storedRange.significantBits} significant bits)` : ''} windowed by its stored range ${storedRange.min}–${storedRange.max}`,
    );
  } else {
    raster = await platform(orientation !== 1 ? withNeutralOrientation(bytes, format) : bytes, format);
  }
  if (orientation !== 1) {
    raster = orientRaster(raster, orientation);
    notes.push(`EXIF orientation ${orientation} applied (${ORIENTATION_TRANSFORM[orientation]})`);
  }
  return { raster, info: { exifOrientation: orientation, storedRange, downsampled, notes } };
}
