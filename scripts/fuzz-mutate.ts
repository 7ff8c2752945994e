/**
 * Mutations for `npm run fuzz` (scripts/fuzz.ts): deterministic from a 32-bit seed (mulberry32), so a failure is
 * replayed from its seed. Generic (bit flips, byte runs set to 00/FF, truncation, a slice duplicated) and
 * format-aware: length fields set to lies (DICOM element lengths, PNG chunk lengths, zip header sizes), duplicated
 * and deeply nested elements (DICOM sequences), oversized and compressed chunks (PNG zTXt/iCCP/iTXt/IDAT bombs).
 */
import { deflateSync, zlibSync } from 'fflate';
import { pngChunk } from '../app/lib/imaging/png-encode';
import { crc32 } from '../app/lib/util/crc32';

export type Kind = 'dicom' | 'png' | 'jpeg' | 'zip';

/** mulberry32: a small, well-distributed 32-bit PRNG (Tommy Ettinger's). Returns floats in [0, 1). */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The seed of mutation `index` of a run seeded `seed` (a 32-bit mix, so neighbouring indices differ widely). */
export function mutationSeed(seed: number, index: number): number {
  let h = (seed ^ 0x9e3779b9) >>> 0;
  h = Math.imul(h ^ index, 0x85ebca6b) >>> 0;
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35) >>> 0;
  return (h ^ (h >>> 16)) >>> 0;
}

type R = () => number;
const bombs = new Map<string, Uint8Array>();
/** Compressed bombs are made once per size (compressing 280 MB of zeros takes a second). */
function cached(key: string, make: () => Uint8Array): Uint8Array {
  let v = bombs.get(key);
  if (!v) bombs.set(key, (v = make()));
  return v;
}
const int = (r: R, n: number) => Math.floor(r() * n);
const pick = <T>(r: R, a: readonly T[]): T => a[int(r, a.length)];
const LIES = [0, 1, 0xff, 0xffff, 0x7fffffff, 0xfffffffe, 0xffffffff, 0x10000, 0x1000000];

function setU32(b: Uint8Array, at: number, v: number, little = true): void {
  if (at + 4 > b.length) return;
  new DataView(b.buffer, b.byteOffset).setUint32(at, v >>> 0, little);
}

function splice(b: Uint8Array, at: number, del: number, ins: Uint8Array): Uint8Array {
  at = Math.max(0, Math.min(at, b.length));
  del = Math.max(0, Math.min(del, b.length - at));
  const out = new Uint8Array(b.length - del + ins.length);
  out.set(b.subarray(0, at), 0);
  out.set(ins, at);
  out.set(b.subarray(at + del), at + ins.length);
  return out;
}

function bitFlips(b: Uint8Array, r: R): Uint8Array {
  const out = new Uint8Array(b);
  const n = 1 + int(r, 16);
  // most of a file is pixels: half the flips land in its first 4 KB, where the headers are
  for (let k = 0; k < n; k++) {
    const i = r() < 0.5 ? int(r, Math.min(4096, out.length)) : int(r, out.length);
    out[i] ^= 1 << int(r, 8);
  }
  return out;
}

function byteRuns(b: Uint8Array, r: R): Uint8Array {
  const out = new Uint8Array(b);
  const at = int(r, out.length);
  out.fill(r() < 0.5 ? 0 : 0xff, at, at + 1 + int(r, 16));
  return out;
}

function truncate(b: Uint8Array, r: R): Uint8Array {
  return b.slice(0, int(r, b.length));
}

function duplicateSlice(b: Uint8Array, r: R): Uint8Array {
  const at = int(r, b.length);
  const len = 1 + int(r, Math.min(4096, b.length - at));
  return splice(b, int(r, b.length), 0, b.slice(at, at + len));
}

/** Offsets of plausible explicit VR element headers (group, element, two upper-case VR letters). */
function dicomHeaders(b: Uint8Array): { at: number; long: boolean }[] {
  const out: { at: number; long: boolean }[] = [];
  for (let i = 128; i + 12 <= b.length && out.length < 4000; i++) {
    const v0 = b[i + 4], v1 = b[i + 5];
    if (v0 < 0x41 || v0 > 0x5a || v1 < 0x41 || v1 > 0x5a) continue;
    const vr = String.fromCharCode(v0, v1);
    if (!/^(AE|AS|AT|CS|DA|DS|DT|FD|FL|IS|LO|LT|OB|OD|OF|OL|OW|PN|SH|SL|SQ|SS|ST|TM|UC|UI|UL|UN|UR|US|UT)$/.test(vr)) continue;
    const group = b[i] | (b[i + 1] << 8);
    if (group % 2 === 1 && group !== 0x0009) continue;
    out.push({ at: i, long: /^(OB|OD|OF|OL|OW|SQ|UC|UN|UR|UT)$/.test(vr) });
    i += 7;
  }
  return out;
}

function dicomLengthLie(b: Uint8Array, r: R): Uint8Array {
  const hs = dicomHeaders(b);
  if (!hs.length) return bitFlips(b, r);
  const out = new Uint8Array(b);
  const h = pick(r, hs);
  if (h.long) setU32(out, h.at + 8, pick(r, LIES) || int(r, 1 << 20));
  else new DataView(out.buffer).setUint16(h.at + 6, int(r, 0x10000), true);
  return out;
}

/** Set an image attribute (Rows, Columns, Bits, Number of Frames, LUT descriptors...) to a lie. */
function dicomValueLie(b: Uint8Array, r: R): Uint8Array {
  const targets = [0x0010, 0x0011, 0x0100, 0x0101, 0x0102, 0x0103, 0x0002, 0x0006, 0x0008, 0x1101, 0x1102, 0x1103, 0x3002, 0x1053, 0x1050, 0x1051, 0x0120];
  const hs = dicomHeaders(b).filter((h) => (b[h.at] | (b[h.at + 1] << 8)) === 0x0028 && targets.includes(b[h.at + 2] | (b[h.at + 3] << 8)));
  if (!hs.length) return dicomLengthLie(b, r);
  const h = pick(r, hs);
  const out = new Uint8Array(b);
  const len = out[h.at + 6] | (out[h.at + 7] << 8);
  const vr = String.fromCharCode(out[h.at + 4], out[h.at + 5]);
  const at = h.at + 8;
  if (vr === 'US' || vr === 'SS' || vr === 'XS') {
    for (let k = 0; k + 1 < len && at + k + 2 <= out.length; k += 2) new DataView(out.buffer).setUint16(at + k, pick(r, [0, 1, 2, 3, 7, 8, 12, 15, 16, 17, 24, 32, 33, 255, 256, 4096, 0x7fff, 0xffff]), true);
  } else {
    const text = pick(r, ['0', '-1', '999999999', '1e308', 'NaN', '0.0', '2147483648', '65536', '-0']);
    for (let k = 0; k < len && at + k < out.length; k++) out[at + k] = k < text.length ? text.charCodeAt(k) : 0x20;
  }
  return out;
}

/** A run of nested empty sequences (explicit VR LE, defined or undefined lengths) inserted before an element. */
function dicomNested(b: Uint8Array, r: R): Uint8Array {
  const hs = dicomHeaders(b).filter((h) => (b[h.at] | (b[h.at + 1] << 8)) >= 0x0008);
  if (!hs.length) return bitFlips(b, r);
  const depth = pick(r, [2, 10, 65, 500, 5000, 20000]);
  const parts: number[] = [];
  for (let d = 0; d < depth; d++) parts.push(0x09, 0x00, 0x10, 0x10, 0x53, 0x51, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xfe, 0xff, 0x00, 0xe0, 0xff, 0xff, 0xff, 0xff);
  for (let d = 0; d < depth; d++) parts.push(0xfe, 0xff, 0x0d, 0xe0, 0, 0, 0, 0, 0xfe, 0xff, 0xdd, 0xe0, 0, 0, 0, 0);
  return splice(b, pick(r, hs).at, 0, Uint8Array.from(parts));
}

function dicomDuplicate(b: Uint8Array, r: R): Uint8Array {
  const hs = dicomHeaders(b);
  if (hs.length < 2) return duplicateSlice(b, r);
  const k = int(r, hs.length - 1);
  const el = b.slice(hs[k].at, hs[k + 1].at);
  return splice(b, hs[int(r, hs.length)].at, 0, el.length < 1 << 20 ? el : el.subarray(0, 64));
}

/** PNG chunks: [offset of the length field, type, data length]. */
function pngChunks(b: Uint8Array): { at: number; type: string; len: number }[] {
  const out: { at: number; type: string; len: number }[] = [];
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  for (let i = 8; i + 12 <= b.length; ) {
    const len = dv.getUint32(i);
    out.push({ at: i, type: String.fromCharCode(b[i + 4], b[i + 5], b[i + 6], b[i + 7]), len });
    if (len > b.length) break;
    i += 12 + len;
  }
  return out;
}

/** A compressed ancillary chunk (zTXt, iCCP, iTXt) or an extra IDAT holding a deflate bomb, after IHDR. */
function pngBombChunk(b: Uint8Array, r: R): Uint8Array {
  const cs = pngChunks(b);
  if (!cs.length) return bitFlips(b, r);
  const size = pick(r, [1 << 20, 64 << 20, 280 << 20]);
  const bomb = cached(`zlib${size}`, () => zlibSync(new Uint8Array(size), { level: 9 }));
  const kw = new TextEncoder().encode('Comment');
  const type = pick(r, ['zTXt', 'iCCP', 'iTXt', 'IDAT']);
  let data: Uint8Array;
  if (type === 'iTXt') data = Uint8Array.from([...kw, 0, 1, 0, 0, 0, ...bomb]);
  else if (type === 'IDAT') data = bomb;
  else data = Uint8Array.from([...kw, 0, 0, ...bomb]);
  const at = type === 'IDAT' ? (cs.find((c) => c.type === 'IDAT')?.at ?? cs[0].at) : cs[0].at + 12 + cs[0].len;
  return splice(b, at, 0, pngChunk(type, data));
}

function fixPngCrcs(b: Uint8Array): Uint8Array {
  const out = new Uint8Array(b);
  const dv = new DataView(out.buffer);
  for (const c of pngChunks(out)) if (c.at + 12 + c.len <= out.length) dv.setUint32(c.at + 8 + c.len, crc32(out.subarray(c.at + 4, c.at + 8 + c.len)));
  return out;
}

function pngLengthLie(b: Uint8Array, r: R): Uint8Array {
  const cs = pngChunks(b);
  if (!cs.length) return bitFlips(b, r);
  const out = new Uint8Array(b);
  setU32(out, pick(r, cs).at, pick(r, LIES), false);
  return out;
}

function pngDuplicate(b: Uint8Array, r: R): Uint8Array {
  const cs = pngChunks(b).filter((c) => c.at + 12 + c.len <= b.length && c.type !== 'IEND');
  if (!cs.length) return duplicateSlice(b, r);
  const c = pick(r, cs);
  return splice(b, pick(r, cs).at, 0, b.slice(c.at, c.at + 12 + c.len));
}

function jpegSegmentLie(b: Uint8Array, r: R): Uint8Array {
  const out = new Uint8Array(b);
  const marks: number[] = [];
  for (let i = 2; i + 4 < out.length && marks.length < 64; i++) if (out[i] === 0xff && out[i + 1] >= 0xc0 && out[i + 1] <= 0xfe && out[i + 1] !== 0xd8) marks.push(i);
  if (!marks.length) return bitFlips(b, r);
  const at = pick(r, marks);
  new DataView(out.buffer).setUint16(at + 2, pick(r, [0, 1, 2, 0xffff, 0x8000, int(r, 0x10000)]));
  // SOF: dimensions lie too
  if (out[at + 1] >= 0xc0 && out[at + 1] <= 0xc3 && r() < 0.5) new DataView(out.buffer).setUint16(at + 5 + 2 * int(r, 2), pick(r, [0, 1, 0xffff, 30000, 9999, 4000]));
  return out;
}

function zipLie(b: Uint8Array, r: R): Uint8Array {
  const out = new Uint8Array(b);
  const dv = new DataView(out.buffer);
  const sigs: number[] = [];
  for (let i = 0; i + 46 <= out.length; i++) {
    const s = dv.getUint32(i, true);
    if (s === 0x02014b50 || s === 0x04034b50 || s === 0x06054b50) sigs.push(i);
  }
  if (!sigs.length) return bitFlips(b, r);
  const at = pick(r, sigs);
  const s = dv.getUint32(at, true);
  const fields = s === 0x02014b50 ? [16, 20, 24, 28, 30, 42] : s === 0x04034b50 ? [14, 18, 22, 26, 28] : [10, 12, 16];
  const f = pick(r, fields);
  if ([26, 28, 30].includes(f) && s !== 0x06054b50) dv.setUint16(at + f, int(r, 0x10000), true);
  else setU32(out, at + f, pick(r, LIES));
  return out;
}

/** A zip holding one deflated entry of zeros whose headers declare a small size (a lying bomb). */
function zipLyingBomb(_b: Uint8Array, r: R): Uint8Array {
  const size = pick(r, [1 << 20, 32 << 20]);
  const data = cached(`deflate${size}`, () => deflateSync(new Uint8Array(size), { level: 9 }));
  const name = new TextEncoder().encode('NORMAL/x.png');
  const declared = pick(r, [0, 100, 5000]);
  const lfh = new Uint8Array(30 + name.length);
  const lv = new DataView(lfh.buffer);
  lv.setUint32(0, 0x04034b50, true); lv.setUint16(8, 8, true); lv.setUint32(18, data.length, true); lv.setUint32(22, declared, true); lv.setUint16(26, name.length, true);
  lfh.set(name, 30);
  const cdh = new Uint8Array(46 + name.length);
  const cv = new DataView(cdh.buffer);
  cv.setUint32(0, 0x02014b50, true); cv.setUint16(10, 8, true); cv.setUint32(20, data.length, true); cv.setUint32(24, declared, true); cv.setUint16(28, name.length, true);
  cdh.set(name, 46);
  const eocd = new Uint8Array(22);
  const ev = new DataView(eocd.buffer);
  ev.setUint32(0, 0x06054b50, true); ev.setUint16(8, 1, true); ev.setUint16(10, 1, true); ev.setUint32(12, cdh.length, true); ev.setUint32(16, lfh.length + data.length, true);
  return Uint8Array.from([...lfh, ...data, ...cdh, ...eocd]);
}

const GENERIC = [bitFlips, byteRuns, truncate, duplicateSlice];
const BY_KIND: Record<Kind, ((b: Uint8Array, r: R) => Uint8Array)[]> = {
  dicom: [...GENERIC, dicomLengthLie, dicomLengthLie, dicomValueLie, dicomValueLie, dicomValueLie, dicomNested, dicomDuplicate],
  png: [...GENERIC, pngBombChunk, pngLengthLie, pngLengthLie, pngDuplicate],
  jpeg: [...GENERIC, jpegSegmentLie, jpegSegmentLie],
  zip: [...GENERIC, zipLie, zipLie, zipLie, zipLyingBomb],
};

/** Apply 1-3 mutations of `kind` to `bytes`, chosen by `seed`; returns the new bytes and the mutators' names. */
export function mutate(bytes: Uint8Array, kind: Kind, seed: number): { bytes: Uint8Array; ops: string[] } {
  const r = rng(seed);
  let b = bytes;
  const ops: string[] = [];
  const n = 1 + int(r, 3);
  for (let k = 0; k < n && b.length > 0; k++) {
    const m = pick(r, BY_KIND[kind]);
    ops.push(m.name);
    try {
      b = m(b, r);
    } catch {
      // a mutator that meets bytes it cannot handle (a header at the very end): flip bits instead, same seed stream
      ops.push('bitFlips');
      b = bitFlips(b, r);
    }
  }
  // PNG decoders check chunk CRCs: most mutations would stop there. Recomputing them reaches the chunk parsers.
  if (kind === 'png' && r() < 0.7) {
    b = fixPngCrcs(b);
    ops.push('fixPngCrcs');
  }
  return { bytes: b, ops };
}
