/**
 * The per-file limits every input path applies, and the size check that runs BEFORE a file is read: from the
 * File/Blob size in the browser, from fs.stat in Node (app/platform/node/read-input.ts), from a zip entry's header
 * (app/lib/batch/zip.ts), so that a file over the limit never costs its size in memory.
 */
import { ImageDecodeError } from './errors';

/** Largest file (bytes) the decoders accept: 256 MiB. */
export const DEFAULT_MAX_BYTES = 256 * 1024 * 1024;
/** Largest image (rows × columns) decoded in full: 100 MP. */
export const DEFAULT_MAX_PIXELS = 100_000_000;

function mb(n: number): string {
  return `${(n / 2 ** 20).toFixed(n < 10 * 2 ** 20 ? 1 : 0)} MB`;
}

/** The refusal of a file of `size` bytes over `maxBytes`, or undefined when it fits. */
export function fileSizeError(size: number, maxBytes = DEFAULT_MAX_BYTES, name?: string): ImageDecodeError | undefined {
  if (size <= maxBytes) return undefined;
  return new ImageDecodeError('too-large', `${name ? `${name}: ` : ''}the file is ${mb(size)}, over the limit of ${mb(maxBytes)} for one image; not read`, { bytes: size, maxBytes });
}

/** Throws ImageDecodeError 'too-large' naming the size and the limit when `size` is over `maxBytes`. */
export function checkFileSize(size: number, maxBytes = DEFAULT_MAX_BYTES, name?: string): void {
  const e = fileSizeError(size, maxBytes, name);
  if (e) throw e;
}
