/**
 * Zip archives for batch mode, read from their central directory (PKWARE APPNOTE.TXT 6.3.10, §4.3) so that
 *
 * - an entry the app cannot inflate (Deflate64, bzip2, LZMA, Zstandard, PPMd, encrypted...) is SKIPPED with its
 *   reason, and every readable entry is still read (fflate's unzipSync throws on the first unknown method and loses
 *   them all);
 * - nothing but the central directory is read up front: entries are read and inflated one at a time, on demand,
 *   from a random-access source (a Blob slice in the browser's imaging worker, a file Blob in Node), so a 1 GB zip
 *   is never held in memory;
 * - Zip64 (§4.3.14-15, extra field 0x0001) archives and entries work; CRC-32 of every inflated entry is checked;
 * - memory is bounded before it is spent: an entry whose header declares more than the per-file limit is skipped,
 *   named, before a byte of it is read; the others are inflated in slices into a buffer of their declared size,
 *   and one that inflates past it (headers can lie) is stopped there;
 * - unsafe names (`..`, absolute, drive letters, backslashes) are made safe as Python's zipfile does and listed in
 *   `renamed`; every entry is an entry, a skipped one (with its reason) or an ignored directory/junk one.
 *
 * Stored (0) and Deflate (8) entries are inflated with fflate's streaming Inflate.
 */
import { Inflate, strFromU8 } from 'fflate';
import { crc32 } from '../util/crc32';
import { sanitizeEntryPath, unsafeEntryReason } from './zip-paths';

export { sanitizeEntryPath, unsafeEntryReason } from './zip-paths';

/** The per-file limit of the decoders (app/lib/imaging DEFAULT_MAX_BYTES): an entry over it is never inflated. */
export const ZIP_MAX_ENTRY_BYTES = 256 * 1024 * 1024;

/** Random-access bytes: read(offset, length) returns exactly that range (shorter only at the end). */
export interface ByteSource {
  readonly size: number;
  read(offset: number, length: number): Promise<Uint8Array>;
}

/** The part of the Blob interface used here (browser Blob/File, Node's Blob and fs.openAsBlob). */
export interface BlobLike {
  readonly size: number;
  slice(start?: number, end?: number): { arrayBuffer(): Promise<ArrayBuffer> };
}

export function blobSource(blob: BlobLike): ByteSource {
  return {
    size: blob.size,
    read: async (offset, length) => new Uint8Array(await blob.slice(offset, Math.min(blob.size, offset + length)).arrayBuffer()),
  };
}

export function bytesSource(bytes: Uint8Array): ByteSource {
  return { size: bytes.length, read: async (offset, length) => bytes.subarray(offset, Math.min(bytes.length, offset + length)) };
}

/** One entry of the central directory. Sizes in bytes; offsets from the start of the archive. */
export interface ZipEntryInfo {
  /** The entry's name, made safe when the stored one was not (see `storedPath`). */
  path: string;
  /** The name as stored in the archive, when it was unsafe and `path` is its sanitised form. */
  storedPath?: string;
  /** Compression method (APPNOTE §4.4.5): 0 stored, 8 deflate, 9 Deflate64, 12 bzip2, 14 LZMA, ... */
  method: number;
  compressedSize: number;
  size: number;
  crc32: number;
  /** Offset of the local file header. */
  localHeaderOffset: number;
  flags: number;
}

export interface ZipSkipped {
  path: string;
  /** Why it was not read, for the user: "compression method 9 (Deflate64) is not supported". */
  reason: string;
}

export interface ZipRenamed {
  /** The name it is read under. */
  path: string;
  /** The unsafe name stored in the archive. */
  storedPath: string;
  /** e.g. "'..' segments": why the stored name was unsafe. */
  reason: string;
}

export interface ZipListing {
  /** Readable entries (stored or deflate, not encrypted), in archive order, junk and directories left out. */
  entries: ZipEntryInfo[];
  skipped: ZipSkipped[];
  /** Entries (also in `entries`) whose unsafe stored names were sanitised: report them to the user. */
  renamed: ZipRenamed[];
  /** Directories and junk (__MACOSX, hidden files, Thumbs.db) left out: entries + skipped + ignored = all. */
  ignored: number;
}

export interface ZipEntry {
  path: string;
  bytes: Uint8Array;
}

export interface ReadZipOptions {
  /** Refuse archives whose readable entries expand to more than this (default 4 GiB). */
  maxTotalBytes?: number;
  /** Refuse archives with more entries than this (default 100,000). */
  maxEntries?: number;
  /** Skip, before reading, an entry declaring more bytes than this, compressed or not (default ZIP_MAX_ENTRY_BYTES). */
  maxEntryBytes?: number;
  /** Skip (silently) an entry for which this returns false (after junk filtering). */
  filter?: (path: string, originalSize: number) => boolean;
}

export class ZipReadError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ZipReadError';
  }
}

/** Compression method names of APPNOTE §4.4.5. */
export const ZIP_METHOD_NAMES: Record<number, string> = {
  0: 'stored',
  1: 'Shrink',
  6: 'Implode',
  8: 'Deflate',
  9: 'Deflate64',
  12: 'bzip2',
  14: 'LZMA',
  18: 'IBM TERSE',
  19: 'IBM LZ77',
  93: 'Zstandard',
  95: 'XZ',
  96: 'JPEG variant',
  97: 'WavPack',
  98: 'PPMd',
  99: 'AES encryption (WinZip AE-x)',
};

/** Directories, macOS resource forks and hidden files are skipped. */
export function isJunkEntry(path: string): boolean {
  if (path.endsWith('/')) return true;
  const segs = path.split('/');
  return segs.includes('__MACOSX') || segs.some((s) => s.startsWith('.')) || segs.at(-1) === 'Thumbs.db';
}

/** Is this a file name we would try to decode (the decoder still sniffs the bytes)? */
export function looksLikeImagePath(path: string): boolean {
  return /\.(png|jpe?g|dcm|dicom)$/i.test(path) || !/\.[a-z0-9]{1,5}$/i.test(path.split('/').pop() ?? '');
}

const SIG_EOCD = 0x06054b50;
const SIG_EOCD64 = 0x06064b50;
const SIG_EOCD64_LOC = 0x07064b50;
const SIG_CDH = 0x02014b50;
const SIG_LFH = 0x04034b50;

const u16 = (b: Uint8Array, i: number) => b[i] | (b[i + 1] << 8);
const u32 = (b: Uint8Array, i: number) => (b[i] | (b[i + 1] << 8) | (b[i + 2] << 16) | (b[i + 3] << 24)) >>> 0;
const u64 = (b: Uint8Array, i: number) => u32(b, i) + u32(b, i + 4) * 2 ** 32;

function isValidUtf8(b: Uint8Array): boolean {
  for (let i = 0; i < b.length; ) {
    const c = b[i];
    const n = c < 0x80 ? 0 : c >= 0xc2 && c < 0xe0 ? 1 : c >= 0xe0 && c < 0xf0 ? 2 : c >= 0xf0 && c < 0xf5 ? 3 : -1;
    if (n < 0 || i + n >= b.length) return false;
    for (let k = 1; k <= n; k++) if ((b[i + k] & 0xc0) !== 0x80) return false;
    i += n + 1;
  }
  return true;
}

/** Entry names: UTF-8 when flagged (bit 11) or valid UTF-8; otherwise read as Latin-1 (CP437 has no decoder here). */
function decodeName(b: Uint8Array, flags: number): string {
  return flags & 0x800 || isValidUtf8(b) ? strFromU8(b) : strFromU8(b, true);
}

interface Eocd {
  cdOffset: number;
  cdSize: number;
  entries: number;
}

/** Locate the End of Central Directory record (§4.3.16) and, when its fields overflow, the Zip64 one (§4.3.14). */
async function readEocd(src: ByteSource): Promise<Eocd> {
  if (src.size < 22) throw new ZipReadError('This is not a zip file (too short for an end-of-central-directory record)');
  const tailLen = Math.min(src.size, 22 + 0xffff + 20);
  const tailStart = src.size - tailLen;
  const tail = await src.read(tailStart, tailLen);
  let at = -1;
  for (let i = tail.length - 22; i >= 0; i--) {
    if (u32(tail, i) === SIG_EOCD && i + 22 + u16(tail, i + 20) <= tail.length) {
      at = i;
      break;
    }
  }
  if (at < 0) throw new ZipReadError('This is not a zip file, or it is truncated (no end-of-central-directory record)');
  let eocd: Eocd = { entries: u16(tail, at + 10), cdSize: u32(tail, at + 12), cdOffset: u32(tail, at + 16) };
  const overflow = eocd.entries === 0xffff || eocd.cdSize === 0xffffffff || eocd.cdOffset === 0xffffffff;
  if (at >= 20 && u32(tail, at - 20) === SIG_EOCD64_LOC) {
    const off = u64(tail, at - 20 + 8);
    const rec = await src.read(off, 56);
    if (rec.length === 56 && u32(rec, 0) === SIG_EOCD64) {
      eocd = { entries: u64(rec, 32), cdSize: u64(rec, 40), cdOffset: u64(rec, 48) };
    } else if (overflow) {
      throw new ZipReadError('The zip64 end-of-central-directory record is missing or damaged');
    }
  } else if (overflow && eocd.cdOffset === 0xffffffff) {
    throw new ZipReadError('The zip needs a zip64 record that is not there (damaged archive)');
  }
  if (eocd.cdOffset + eocd.cdSize > src.size) {
    throw new ZipReadError(`The zip is truncated: its central directory should end at byte ${eocd.cdOffset + eocd.cdSize}, the file has ${src.size}`);
  }
  return eocd;
}

/**
 * List a zip's entries from its central directory: readable ones, and the ones skipped with the reason.
 * Throws ZipReadError when the archive itself is unreadable or over the limits.
 */
export async function listZip(src: ByteSource, opts: ReadZipOptions = {}): Promise<ZipListing> {
  const maxTotal = opts.maxTotalBytes ?? 4 * 1024 ** 3;
  const maxEntries = opts.maxEntries ?? 100_000;
  const maxEntry = opts.maxEntryBytes ?? ZIP_MAX_ENTRY_BYTES;
  const eocd = await readEocd(src);
  if (eocd.entries > maxEntries) throw new ZipReadError(`The zip has ${eocd.entries} entries, more than the limit of ${maxEntries}`);
  const cd = await src.read(eocd.cdOffset, eocd.cdSize);
  const entries: ZipEntryInfo[] = [];
  const skipped: ZipSkipped[] = [];
  const renamed: ZipRenamed[] = [];
  const names = new Set<string>();
  let ignored = 0;
  let total = 0;
  let p = 0;
  for (let n = 0; n < eocd.entries; n++) {
    if (p + 46 > cd.length || u32(cd, p) !== SIG_CDH) {
      throw new ZipReadError(`The zip's central directory is damaged at entry ${n + 1} of ${eocd.entries}`);
    }
    const flags = u16(cd, p + 8);
    const method = u16(cd, p + 10);
    let crc = u32(cd, p + 16);
    let compressedSize = u32(cd, p + 20);
    let size = u32(cd, p + 24);
    const nameLen = u16(cd, p + 28);
    const extraLen = u16(cd, p + 30);
    const commentLen = u16(cd, p + 32);
    let localHeaderOffset = u32(cd, p + 42);
    const storedPath = decodeName(cd.subarray(p + 46, p + 46 + nameLen), flags);
    // Zip64 extended information (§4.5.3): only the fields whose 32-bit value is 0xFFFFFFFF, in this order.
    let e = p + 46 + nameLen;
    const extraEnd = e + extraLen;
    while (e + 4 <= extraEnd) {
      const id = u16(cd, e);
      const len = u16(cd, e + 2);
      if (id === 0x0001) {
        let q = e + 4;
        if (size === 0xffffffff && q + 8 <= e + 4 + len) (size = u64(cd, q)), (q += 8);
        if (compressedSize === 0xffffffff && q + 8 <= e + 4 + len) (compressedSize = u64(cd, q)), (q += 8);
        if (localHeaderOffset === 0xffffffff && q + 8 <= e + 4 + len) localHeaderOffset = u64(cd, q);
      }
      e += 4 + len;
    }
    p = extraEnd + commentLen;
    crc >>>= 0;
    const unsafe = unsafeEntryReason(storedPath);
    const path = unsafe ? sanitizeEntryPath(storedPath) : storedPath;
    if (unsafe && !path) {
      skipped.push({ path: storedPath, reason: `unsafe name (${unsafe}) with nothing left once made safe; skipped` });
      continue;
    }
    if (isJunkEntry(path)) {
      ignored++;
      continue;
    }
    if (opts.filter && !opts.filter(path, size)) {
      ignored++;
      continue;
    }
    if (names.has(path)) {
      skipped.push({ path: storedPath, reason: unsafe ? `unsafe name (${unsafe}); its safe form ${path} is already another entry's name; skipped` : 'a second entry of the same name; skipped' });
      continue;
    }
    names.add(path);
    if (size > maxEntry || compressedSize > maxEntry) {
      skipped.push({ path: storedPath, reason: `declares ${mb(Math.max(size, compressedSize))} ${size >= compressedSize ? 'uncompressed' : 'compressed'}, over the per-file limit of ${mb(maxEntry)}: skipped before inflating` });
      continue;
    }
    if (flags & 0x1 || method === 99) {
      skipped.push({ path, reason: 'the entry is encrypted (password-protected zips are not supported)' });
      continue;
    }
    if (method !== 0 && method !== 8) {
      const name = ZIP_METHOD_NAMES[method];
      skipped.push({ path, reason: `compression method ${method}${name ? ` (${name})` : ''} is not supported; re-zip with Deflate or store` });
      continue;
    }
    total += size;
    if (total > maxTotal) throw new ZipReadError(`The zip expands to more than ${(maxTotal / 1024 ** 3).toFixed(1)} GiB`);
    entries.push({ path, ...(unsafe ? { storedPath } : {}), method, compressedSize, size, crc32: crc, localHeaderOffset, flags });
    if (unsafe) renamed.push({ path, storedPath, reason: unsafe });
  }
  return { entries, skipped, renamed, ignored };
}

/** Where an entry's data starts: after its local header (§4.3.7), whose extra field may differ from the central one. */
async function dataOffset(src: ByteSource, entry: ZipEntryInfo): Promise<number> {
  const h = await src.read(entry.localHeaderOffset, 30);
  if (h.length < 30 || u32(h, 0) !== SIG_LFH) throw new ZipReadError(`${entry.path}: the local header is missing (damaged archive)`);
  return entry.localHeaderOffset + 30 + u16(h, 26) + u16(h, 28);
}

function mb(n: number): string {
  return n >= 2 ** 30 ? `${(n / 2 ** 30).toFixed(1)} GiB` : `${Math.round(n / 2 ** 20)} MB`;
}

const SLICE = 256 * 1024;
const PUSH = 16 * 1024;

/**
 * Inflate (or copy) an entry from its compressed bytes, delivered in slices by `next` (undefined at the end), into
 * a buffer of the size its directory declares, and check its CRC-32. Throws ZipReadError naming the entry when it
 * inflates past that size (stopped there: the header lies), falls short, is damaged or fails its CRC.
 */
async function inflateSlices(entry: ZipEntryInfo, next: () => Promise<Uint8Array | undefined> | Uint8Array | undefined): Promise<Uint8Array> {
  const out = new Uint8Array(entry.size);
  let o = 0;
  const lies = () => new ZipReadError(`${entry.path}: inflates past the ${entry.size} bytes its header declares (the header lies); stopped there`);
  const take = (chunk: Uint8Array) => {
    if (o + chunk.length > out.length) throw lies();
    out.set(chunk, o);
    o += chunk.length;
  };
  let read = 0;
  if (entry.method === 0) {
    for (let c = await next(); c && o < out.length; c = await next()) take(c.subarray(0, out.length - o));
  } else {
    const inflater = new Inflate((chunk) => take(chunk));
    try {
      for (let c = await next(); c; c = await next()) {
        // pushed 16 KB at a time: deflate expands up to ~1032:1, so one push yields at most ~17 MB past the cap
        for (let k = 0; k < c.length; k += PUSH) {
          const part = c.subarray(k, k + PUSH);
          read += part.length;
          inflater.push(part, read >= entry.compressedSize);
        }
      }
    } catch (e) {
      if (e instanceof ZipReadError) throw e;
      throw new ZipReadError(`${entry.path}: the deflate stream is damaged (${(e as Error).message})`, { cause: e });
    }
  }
  if (o !== entry.size) throw new ZipReadError(`${entry.path}: inflated to ${o} bytes, the directory says ${entry.size}`);
  if (crc32(out) !== entry.crc32) throw new ZipReadError(`${entry.path}: CRC-32 mismatch (the entry is damaged)`);
  return out;
}

/** Inflate (or copy) one entry's compressed bytes and check its CRC-32 (see inflateSlices). Throws ZipReadError. */
export async function inflateZipEntry(entry: ZipEntryInfo, compressed: Uint8Array): Promise<Uint8Array> {
  if (compressed.length < entry.compressedSize) throw new ZipReadError(`${entry.path}: the entry is truncated`);
  let at = 0;
  return inflateSlices(entry, () => {
    if (at >= entry.compressedSize) return undefined;
    const c = compressed.subarray(at, Math.min(entry.compressedSize, at + SLICE));
    at += c.length;
    return c;
  });
}

/**
 * Read and inflate one listed entry: only its own bytes, read in slices, into a buffer of its declared size.
 * Throws ZipReadError (see inflateSlices; also for an entry over ZIP_MAX_ENTRY_BYTES listed by other means).
 */
export async function readZipEntry(src: ByteSource, entry: ZipEntryInfo, maxEntryBytes = ZIP_MAX_ENTRY_BYTES): Promise<Uint8Array> {
  if (entry.size > maxEntryBytes || entry.compressedSize > maxEntryBytes) throw new ZipReadError(`${entry.path}: declares ${mb(Math.max(entry.size, entry.compressedSize))}, over the per-file limit of ${mb(maxEntryBytes)}; not read`);
  const start = await dataOffset(src, entry);
  let at = 0;
  return inflateSlices(entry, async () => {
    if (at >= entry.compressedSize) return undefined;
    const c = await src.read(start + at, Math.min(SLICE, entry.compressedSize - at));
    if (c.length === 0) throw new ZipReadError(`${entry.path}: the entry is truncated`);
    at += c.length;
    return c;
  });
}

/**
 * Whole archive in memory (small zips, tests): the readable entries (sorted by path) and the skipped ones.
 * Entries that fail to inflate are skipped with their reason too.
 */
export async function readZipAll(bytes: Uint8Array, opts: ReadZipOptions = {}): Promise<{ entries: ZipEntry[]; skipped: ZipSkipped[] }> {
  const src = bytesSource(bytes);
  const listing = await listZip(src, opts);
  const entries: ZipEntry[] = [];
  const skipped = [...listing.skipped];
  for (const e of listing.entries) {
    try {
      entries.push({ path: e.path, bytes: await readZipEntry(src, e) });
    } catch (err) {
      skipped.push({ path: e.path, reason: (err as Error).message });
    }
  }
  entries.sort((a, b) => a.path.localeCompare(b.path));
  return { entries, skipped };
}
