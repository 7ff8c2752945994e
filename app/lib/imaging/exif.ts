/**
 * EXIF Orientation (tag 0x0112, EXIF 2.32 / TIFF 6.0 §"Orientation") for JPEG (APP1 "Exif\0\0") and PNG (eXIf chunk,
 * PNG 1.5 extension).
 *
 * ONE behaviour everywhere (app, `npm run label`, export-scripts' training and evaluation): the orientation is APPLIED,
 * so the model sees the image upright, the way every browser and photo viewer shows it. The browser would apply it on
 * its own (createImageBitmap's imageOrientation 'from-image'; the 'none' value is deprecated and treated like it), the
 * Node decoders (jpeg-js, pngjs, fast-png) and Pillow's Image.open would not; so the shared decoder hands every
 * platform decoder bytes whose Orientation is rewritten to 1 (`withNeutralOrientation`) and turns the raster itself
 * with `orientRaster`. export-scripts uses Pillow's `ImageOps.exif_transpose`, the same eight transforms.
 */
import type { Raster } from './raster';
import { crc32 } from '../util/crc32';

/** EXIF orientation value 1..8 (1 = stored upright). */
export type ExifOrientation = 1 | 2 | 3 | 4 | 5 | 6 | 7 | 8;

/** Names of the transforms, as Pillow's ImageOps.exif_transpose maps them (Image.Transpose members). */
export const ORIENTATION_TRANSFORM: Record<ExifOrientation, string> = {
  1: 'none',
  2: 'mirror horizontal',
  3: 'rotate 180°',
  4: 'mirror vertical',
  5: 'transpose',
  6: 'rotate 90° clockwise',
  7: 'transverse',
  8: 'rotate 90° counter-clockwise',
};

interface OrientationField {
  orientation: number;
  /** Absolute offset of the 2-byte SHORT value (or first 2 bytes of a LONG, endian-aware) in the file. */
  valueOffset: number;
  valueBytes: 2 | 4;
  littleEndian: boolean;
  /** PNG only: the eXIf chunk's data range, to re-compute its CRC after a patch. */
  pngChunk?: { typeOffset: number; dataEnd: number };
}

/** Find IFD0's Orientation entry in a TIFF structure starting at `tiff` (absolute offset into `b`). */
function orientationInTiff(b: Uint8Array, tiff: number, end: number): Omit<OrientationField, 'pngChunk'> | null {
  if (tiff + 8 > end) return null;
  const le = b[tiff] === 0x49 && b[tiff + 1] === 0x49;
  const be = b[tiff] === 0x4d && b[tiff + 1] === 0x4d;
  if (!le && !be) return null;
  const u16 = (o: number) => (le ? b[o] | (b[o + 1] << 8) : (b[o] << 8) | b[o + 1]);
  const u32 = (o: number) => (le ? (b[o] | (b[o + 1] << 8) | (b[o + 2] << 16) | (b[o + 3] << 24)) >>> 0 : ((b[o] << 24) | (b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3]) >>> 0);
  if (u16(tiff + 2) !== 42) return null;
  const ifd = tiff + u32(tiff + 4);
  if (ifd + 2 > end) return null;
  const n = u16(ifd);
  for (let i = 0; i < n; i++) {
    const e = ifd + 2 + i * 12;
    if (e + 12 > end) return null;
    if (u16(e) !== 0x0112) continue;
    const type = u16(e + 2);
    // SHORT (3) per the standard; some writers use LONG (4). Either way the value sits in the entry itself.
    if (type === 3) return { orientation: u16(e + 8), valueOffset: e + 8, valueBytes: 2, littleEndian: le };
    if (type === 4) return { orientation: u32(e + 8), valueOffset: e + 8, valueBytes: 4, littleEndian: le };
    return null;
  }
  return null;
}

function findJpegOrientation(b: Uint8Array): OrientationField | null {
  let i = 2;
  while (i + 4 <= b.length) {
    if (b[i] !== 0xff) return null;
    const marker = b[i + 1];
    if (marker === 0xff) {
      i++;
      continue;
    }
    if (marker === 0xda || marker === 0xd9) return null; // start of scan / end: no more metadata segments
    if (marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) {
      i += 2;
      continue;
    }
    const len = (b[i + 2] << 8) | b[i + 3];
    const end = Math.min(b.length, i + 2 + len);
    // APP1 "Exif\0\0"
    if (marker === 0xe1 && len >= 16 && b[i + 4] === 0x45 && b[i + 5] === 0x78 && b[i + 6] === 0x69 && b[i + 7] === 0x66 && b[i + 8] === 0 && b[i + 9] === 0) {
      const f = orientationInTiff(b, i + 10, end);
      if (f) return f;
    }
    i += 2 + len;
  }
  return null;
}

function findPngOrientation(b: Uint8Array): OrientationField | null {
  let i = 8;
  while (i + 12 <= b.length) {
    const len = ((b[i] << 24) | (b[i + 1] << 16) | (b[i + 2] << 8) | b[i + 3]) >>> 0;
    const t = String.fromCharCode(b[i + 4], b[i + 5], b[i + 6], b[i + 7]);
    const data = i + 8;
    const end = data + len;
    if (end + 4 > b.length) return null;
    // eXIf may precede or (non-conforming but seen) follow IDAT; stop at IEND.
    if (t === 'eXIf') {
      const f = orientationInTiff(b, data, end);
      return f ? { ...f, pngChunk: { typeOffset: i + 4, dataEnd: end } } : null;
    }
    if (t === 'IEND') return null;
    i = end + 4;
  }
  return null;
}

function findOrientation(bytes: Uint8Array, format: 'png' | 'jpeg'): OrientationField | null {
  return format === 'jpeg' ? findJpegOrientation(bytes) : findPngOrientation(bytes);
}

/**
 * The EXIF Orientation of a JPEG or PNG: 1..8, or 1 when there is none. A value outside 1..8 (seen from broken
 * writers) is returned as is in `raw` and treated as 1.
 */
export function readExifOrientation(bytes: Uint8Array, format: 'png' | 'jpeg'): { orientation: ExifOrientation; raw?: number } {
  const f = findOrientation(bytes, format);
  if (!f) return { orientation: 1 };
  if (f.orientation >= 1 && f.orientation <= 8) return { orientation: f.orientation as ExifOrientation };
  return { orientation: 1, raw: f.orientation };
}

/**
 * A copy of the file with its Orientation rewritten to 1 (the PNG chunk's CRC recomputed), so a platform decoder
 * that honours EXIF (the browser's) and one that does not (jpeg-js, pngjs) return the same stored pixels. Returns the
 * input itself when there is no Orientation entry.
 */
export function withNeutralOrientation(bytes: Uint8Array, format: 'png' | 'jpeg'): Uint8Array {
  const f = findOrientation(bytes, format);
  if (!f || f.orientation === 1) return bytes;
  const out = bytes.slice();
  const o = f.valueOffset;
  if (f.valueBytes === 2) {
    out[o] = f.littleEndian ? 1 : 0;
    out[o + 1] = f.littleEndian ? 0 : 1;
  } else {
    out.set(f.littleEndian ? [1, 0, 0, 0] : [0, 0, 0, 1], o);
  }
  if (f.pngChunk) {
    const c = crc32(out.subarray(f.pngChunk.typeOffset, f.pngChunk.dataEnd));
    const e = f.pngChunk.dataEnd;
    out[e] = c >>> 24;
    out[e + 1] = (c >>> 16) & 0xff;
    out[e + 2] = (c >>> 8) & 0xff;
    out[e + 3] = c & 0xff;
  }
  return out;
}

/**
 * Apply an EXIF orientation to a stored raster, giving the displayed raster (width and height swapped for 5..8).
 * Pixel mapping as Pillow's ImageOps.exif_transpose: 2 FLIP_LEFT_RIGHT, 3 ROTATE_180, 4 FLIP_TOP_BOTTOM,
 * 5 TRANSPOSE, 6 ROTATE_270 (90° clockwise), 7 TRANSVERSE, 8 ROTATE_90 (90° counter-clockwise).
 */
export function orientRaster(r: Raster, orientation: ExifOrientation): Raster {
  if (orientation === 1) return r;
  const W = r.width;
  const H = r.height;
  const swap = orientation >= 5;
  const w = swap ? H : W;
  const h = swap ? W : H;
  // One 32-bit word per RGBA pixel (byte order irrelevant: whole pixels are moved). Needs 4-byte alignment.
  const data = r.data.byteOffset % 4 ? r.data.slice() : r.data;
  const src = new Uint32Array(data.buffer, data.byteOffset, W * H);
  const out = new Uint8ClampedArray(w * h * 4);
  const dst = new Uint32Array(out.buffer);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      // (sx, sy): the stored pixel shown at displayed (x, y).
      let sx: number;
      let sy: number;
      switch (orientation) {
        case 2: sx = W - 1 - x; sy = y; break;
        case 3: sx = W - 1 - x; sy = H - 1 - y; break;
        case 4: sx = x; sy = H - 1 - y; break;
        case 5: sx = y; sy = x; break;
        case 6: sx = y; sy = H - 1 - x; break;
        case 7: sx = W - 1 - y; sy = H - 1 - x; break;
        default: sx = W - 1 - y; sy = x; break; // 8
      }
      dst[y * w + x] = src[sy * W + sx];
    }
  }
  return { width: w, height: h, data: out };
}
