/**
 * Reading image batches from zip archives with fflate, with guards against zip bombs and junk entries.
 */
import { unzipSync } from 'fflate';

export interface ZipEntry {
  path: string;
  bytes: Uint8Array;
}

export interface ReadZipOptions {
  /** Refuse archives whose entries expand to more than this (default 2 GiB). */
  maxTotalBytes?: number;
  maxEntries?: number;
  /** Keep only entries for which this returns true (after junk filtering). */
  filter?: (path: string, originalSize: number) => boolean;
}

export class ZipReadError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ZipReadError';
  }
}

/** Directories, macOS resource forks and hidden files are skipped. */
export function isJunkEntry(path: string): boolean {
  if (path.endsWith('/')) return true;
  const segs = path.split('/');
  return segs.includes('__MACOSX') || segs.some((s) => s.startsWith('.')) || segs.at(-1) === 'Thumbs.db';
}

export function readZip(bytes: Uint8Array, opts: ReadZipOptions = {}): ZipEntry[] {
  const maxTotal = opts.maxTotalBytes ?? 2 * 1024 ** 3;
  const maxEntries = opts.maxEntries ?? 100_000;
  let total = 0;
  let count = 0;
  let files: Record<string, Uint8Array>;
  try {
    files = unzipSync(bytes, {
      filter: (f) => {
        if (isJunkEntry(f.name)) return false;
        if (opts.filter && !opts.filter(f.name, f.originalSize)) return false;
        total += f.originalSize;
        count++;
        if (count > maxEntries) throw new ZipReadError(`The zip has more than ${maxEntries} files`);
        if (total > maxTotal) throw new ZipReadError(`The zip expands to more than ${(maxTotal / 1024 ** 3).toFixed(1)} GiB`);
        return true;
      },
    });
  } catch (e) {
    if (e instanceof ZipReadError) throw e;
    throw new ZipReadError(`The zip file could not be read: ${(e as Error).message}`, { cause: e });
  }
  return Object.entries(files)
    .map(([path, b]) => ({ path, bytes: b }))
    .sort((a, b) => a.path.localeCompare(b.path));
}

/** Is this a file name we would try to decode (the decoder still sniffs the bytes)? */
export function looksLikeImagePath(path: string): boolean {
  return /\.(png|jpe?g|dcm|dicom)$/i.test(path) || !/\.[a-z0-9]{1,5}$/i.test(path.split('/').pop() ?? '');
}
