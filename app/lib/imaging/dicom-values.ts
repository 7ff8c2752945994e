/**
 * Small typed readers of dicom-parser DataSet values (strings, decimal strings, US words, LUTs) and of the
 * compressed bytes of one frame of encapsulated Pixel Data (PS3.5 A.4), used by the pixel pipeline (./dicom.ts).
 */
import * as dicomParserNs from 'dicom-parser';
import type { DataSet, Element } from 'dicom-parser';
import { ImageDecodeError } from './errors';
import { makeLut, type Lut } from './lut';
import { TS_IMPLICIT_LE } from './transfer-syntaxes';

// dicom-parser is a UMD bundle: under Node's ESM loader its API sits on `default`, under Vite on the namespace.
type DicomParserApi = typeof import('dicom-parser');
export const dicomParser: DicomParserApi =
  ((dicomParserNs as unknown as { default?: DicomParserApi }).default?.parseDicom
    ? (dicomParserNs as unknown as { default: DicomParserApi }).default
    : (dicomParserNs as unknown as DicomParserApi));

export function str(ds: DataSet, tag: string): string | undefined {
  const el = ds.elements[tag];
  if (!el || el.length === 0) return undefined;
  try {
    const v = ds.string(tag);
    return v === undefined || v === '' ? undefined : v;
  } catch {
    return undefined;
  }
}

export function strAt(ds: DataSet, tag: string, i: number): string | undefined {
  const el = ds.elements[tag];
  if (!el || el.length === 0) return undefined;
  try {
    const v = ds.string(tag, i);
    return v === undefined || v === '' ? undefined : v.trim();
  } catch {
    return undefined;
  }
}

export function ds2(ds: DataSet, tag: string): [number, number] | undefined {
  const el = ds.elements[tag];
  if (!el || el.length === 0) return undefined;
  const a = ds.floatString(tag, 0);
  const b = ds.floatString(tag, 1);
  if (a === undefined || Number.isNaN(a)) return undefined;
  return [a, b === undefined || Number.isNaN(b) ? a : b];
}

export function num(ds: DataSet, tag: string, i = 0): number | undefined {
  const el = ds.elements[tag];
  if (!el || el.length === 0) return undefined;
  const v = ds.floatString(tag, i);
  return v === undefined || Number.isNaN(v) ? undefined : v;
}

export function nums(ds: DataSet, tag: string): number[] {
  const el = ds.elements[tag];
  if (!el || el.length === 0) return [];
  const out: number[] = [];
  const n = ds.numStringValues(tag) ?? 1;
  for (let i = 0; i < n; i++) {
    const v = ds.floatString(tag, i);
    if (v !== undefined && !Number.isNaN(v)) out.push(v);
  }
  return out;
}

export function us(ds: DataSet, tag: string, i = 0): number | undefined {
  const el = ds.elements[tag];
  if (!el || el.length < 2 * (i + 1)) return undefined;
  return ds.uint16(tag, i);
}

/** The raw 16-bit words of an element (US/SS/OW LUT data), in the data set's byte order. */
export function words(ds: DataSet, el: Element): Uint16Array {
  const b = ds.byteArray as Uint8Array;
  const n = el.length >> 1;
  const out = new Uint16Array(n);
  const little = ds.byteArrayParser === dicomParser.littleEndianByteArrayParser;
  for (let i = 0, j = el.dataOffset; i < n; i++, j += 2) out[i] = little ? b[j] | (b[j + 1] << 8) : (b[j] << 8) | b[j + 1];
  return out;
}

export function lutFrom(ds: DataSet, descTag: string, dataTag: string, signedInput: boolean, explanationTag?: string): Lut | undefined {
  const d = ds.elements[descTag];
  const data = ds.elements[dataTag];
  if (!d || !data || d.length < 6) return undefined;
  const descriptor: [number, number, number] = [us(ds, descTag, 0)!, us(ds, descTag, 1)!, us(ds, descTag, 2)!];
  return makeLut(descriptor, words(ds, data), signedInput, explanationTag ? str(ds, explanationTag) : undefined);
}

/** The 0-based frames' compressed bytes, found by Extended Offset Table, Basic Offset Table or fragment markers. */
export function encapsulatedFrame(ds: DataSet, el: Element, index: number, frames: number, notes: string[]): Uint8Array {
  const frags = el.fragments ?? [];
  if (frags.length === 0) throw new ImageDecodeError('corrupt', 'The encapsulated Pixel Data has no fragments');
  const b = ds.byteArray as Uint8Array;
  const fragBytes = (i: number) => b.subarray(frags[i].position, frags[i].position + frags[i].length);
  const join = (first: number, count: number): Uint8Array => {
    if (count === 1) return fragBytes(first);
    const total = frags.slice(first, first + count).reduce((s, f) => s + f.length, 0);
    const out = new Uint8Array(total);
    let o = 0;
    for (let i = first; i < first + count; i++) {
      out.set(fragBytes(i), o);
      o += frags[i].length;
    }
    return out;
  };
  // Extended Offset Table (7FE0,0001), 64-bit offsets into the first fragment's item (PS3.5 A.4, PS3.3 C.7.6.3.1.8)
  const eot = ds.elements.x7fe00001;
  const eotLengths = ds.elements.x7fe00002;
  if (eot && eotLengths && eot.length >= 8 * frames) {
    const dv = new DataView(b.buffer, b.byteOffset + eot.dataOffset, eot.length);
    const dl = new DataView(b.buffer, b.byteOffset + eotLengths.dataOffset, eotLengths.length);
    const off = Number(dv.getBigUint64(8 * index, true));
    const len = Number(dl.getBigUint64(8 * index, true));
    const base = frags[0].position - 8; // offsets count from the first byte of the first fragment's item tag
    return b.subarray(base + off + 8, base + off + 8 + len);
  }
  const bot = el.basicOffsetTable ?? [];
  if (frames === 1) return join(0, frags.length);
  if (bot.length === frames) {
    // Fragments whose offset lies in [bot[index], bot[index+1])
    const startOff = bot[index];
    const endOff = index + 1 < frames ? bot[index + 1] : Infinity;
    const sel = frags.map((f, i) => ({ f, i })).filter(({ f }) => f.offset >= startOff && f.offset < endOff);
    if (sel.length === 0) throw new ImageDecodeError('corrupt', `The Basic Offset Table points frame ${index + 1} at offset ${startOff}, where no fragment starts`);
    return join(sel[0].i, sel.length);
  }
  if (frags.length === frames) return fragBytes(index);
  // Empty Basic Offset Table and more fragments than frames: a frame starts where a fragment starts with a codestream
  // marker (JPEG SOI FFD8, JPEG 2000 SOC FF4F); PS3.5 A.4 puts each frame in its own fragments.
  const starts: number[] = [];
  for (let i = 0; i < frags.length; i++) {
    const f = fragBytes(i);
    if (f.length >= 2 && f[0] === 0xff && (f[1] === 0xd8 || f[1] === 0x4f)) starts.push(i);
  }
  if (starts.length !== frames) {
    throw new ImageDecodeError('corrupt', `The Pixel Data has ${frags.length} fragments, an empty Basic Offset Table and ${starts.length} codestream starts for ${frames} frames: the frame boundaries cannot be found`);
  }
  if (index === 0) notes.push('Frame boundaries found from codestream markers (empty Basic Offset Table)');
  const first = starts[index];
  const end = index + 1 < starts.length ? starts[index + 1] : frags.length;
  return join(first, end - first);
}

export function transferSyntaxOf(ds: DataSet): string {
  const tsRaw = str(ds, 'x00020010') ?? TS_IMPLICIT_LE;
  return tsRaw.replace(/\0/g, '').trim();
}

