/**
 * PNG and JPEG decoding shared by every platform: the platform decoder (browser codecs, pngjs/jpeg-js) supplies 8-bit
 * pixels; this file adds what must be the same everywhere: 16-bit PNGs at full precision windowed by their stored
 * range (png16.ts) and the EXIF orientation applied (exif.ts). `notes` say, in words for the UI and sidecars, what
 * was done to the stored pixels.
 */
import type { Raster } from './raster';
import { ORIENTATION_TRANSFORM, orientRaster, readExifOrientation, withNeutralOrientation, type ExifOrientation } from './exif';
import { decodePng16, readPngHeader, type StoredRangeWindow } from './png16';

/** Decodes PNG or JPEG bytes into an 8-bit RGBA raster (platform-specific; EXIF ignored). */
export type PlatformRasterDecoder = (bytes: Uint8Array, format: 'png' | 'jpeg') => Promise<Raster> | Raster;

export interface RasterDecodeInfo {
  /** EXIF orientation found in the file (1 when none); applied to `raster`. */
  exifOrientation: ExifOrientation;
  /** 16-bit PNGs: the window their samples were mapped to 0..255 with. */
  storedRange?: StoredRangeWindow;
  /** Human-readable account of the transforms, e.g. "EXIF orientation 6 applied (rotate 90° clockwise)". */
  notes: string[];
}

export async function decodePngOrJpeg(bytes: Uint8Array, format: 'png' | 'jpeg', platform: PlatformRasterDecoder): Promise<{ raster: Raster; info: RasterDecodeInfo }> {
  const notes: string[] = [];
  const { orientation, raw } = readExifOrientation(bytes, format);
  if (raw != null) notes.push(`EXIF orientation ${raw} is not a valid value (1–8); shown as stored`);
  const header = format === 'png' ? readPngHeader(bytes) : null;
  let raster: Raster;
  let storedRange: StoredRangeWindow | undefined;
  if (header?.bitDepth === 16) {
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
  return { raster, info: { exifOrientation: orientation, storedRange, notes } };
}
