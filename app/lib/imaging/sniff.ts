/**
 * Format detection from magic bytes; file extensions are never trusted.
 */
import { ImageDecodeError } from './errors';

export type ImageFormat = 'png' | 'jpeg' | 'dicom';

export interface SniffResult {
  format: ImageFormat;
  /** DICOM only: true when the file has the 128-byte preamble and 'DICM' prefix (PS3.10). */
  dicomPreamble?: boolean;
}

const PNG_SIG = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

function startsWith(b: Uint8Array, sig: number[], at = 0): boolean {
  if (b.length < at + sig.length) return false;
  for (let i = 0; i < sig.length; i++) if (b[at + i] !== sig[i]) return false;
  return true;
}

function isUpper(c: number): boolean {
  return c >= 0x41 && c <= 0x5a;
}

/**
 * A preamble-less DICOM stream begins with an element of group 0002 (meta header, explicit VR LE) or a data-set
 * group such as 0008 (little endian): tag group LE, then either an explicit VR (two upper-case letters) or an
 * implicit 4-byte length.
 */
export function looksLikeRawDicom(b: Uint8Array): boolean {
  if (b.length < 8) return false;
  const group = b[0] | (b[1] << 8);
  const element = b[2] | (b[3] << 8);
  if (group !== 0x0002 && group !== 0x0008) return false;
  if (element > 0x1fff) return false;
  if (isUpper(b[4]) && isUpper(b[5])) return true; // explicit VR
  // implicit VR: 32-bit length that fits in the file
  const len = (b[4] | (b[5] << 8) | (b[6] << 16) | (b[7] << 24)) >>> 0;
  return group === 0x0008 && len < b.length;
}

/** Identify the format; returns null when the bytes are none of PNG, JPEG or DICOM. */
export function sniffFormat(bytes: Uint8Array): SniffResult | null {
  if (startsWith(bytes, PNG_SIG)) return { format: 'png' };
  if (startsWith(bytes, [0xff, 0xd8, 0xff])) return { format: 'jpeg' };
  if (bytes.length >= 132 && startsWith(bytes, [0x44, 0x49, 0x43, 0x4d], 128)) return { format: 'dicom', dicomPreamble: true };
  if (looksLikeRawDicom(bytes)) return { format: 'dicom', dicomPreamble: false };
  return null;
}

/** Does the JPEG end with its EOI marker (FF D9)? Trailing padding (zeros, a few garbage bytes) is tolerated. */
export function jpegHasEOI(bytes: Uint8Array): boolean {
  const tail = Math.max(2, bytes.length - 4096);
  for (let i = bytes.length - 2; i >= tail; i--) {
    if (bytes[i] === 0xff && bytes[i + 1] === 0xd9) return true;
  }
  return false;
}

/** Does the PNG contain its IEND chunk near the end? */
export function pngHasIEND(bytes: Uint8Array): boolean {
  const tail = Math.max(8, bytes.length - 4096);
  for (let i = bytes.length - 4; i >= tail; i--) {
    if (bytes[i] === 0x49 && bytes[i + 1] === 0x45 && bytes[i + 2] === 0x4e && bytes[i + 3] === 0x44) return true;
  }
  return false;
}

/**
 * Sniff and check basic integrity; throws ImageDecodeError 'empty', 'not-an-image' or 'truncated'.
 */
export function sniffOrThrow(bytes: Uint8Array): SniffResult {
  if (bytes.length === 0) throw new ImageDecodeError('empty', 'The file is empty (0 bytes)');
  const s = sniffFormat(bytes);
  if (!s) throw new ImageDecodeError('not-an-image', 'This file is not a PNG, JPEG or DICOM image');
  if (s.format === 'jpeg' && !jpegHasEOI(bytes)) {
    throw new ImageDecodeError('truncated', 'The JPEG is truncated (no end-of-image marker); the file may be incompletely copied or downloaded');
  }
  if (s.format === 'png' && !pngHasIEND(bytes)) {
    throw new ImageDecodeError('truncated', 'The PNG is truncated (no IEND chunk); the file may be incompletely copied or downloaded');
  }
  return s;
}
