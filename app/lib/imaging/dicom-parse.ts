/**
 * Reading a DICOM Part 10 file into a dicom-parser DataSet, as leniently as pydicom reads (parseDicomLenient).
 * Data-set value readers are in ./dicom-values.
 */
import type * as dicomParserNs from 'dicom-parser';
import type { DataSet, Element } from 'dicom-parser';
import { CODEC_SYNTAXES } from './codecs/syntaxes';
import { ImageDecodeError } from './errors';
import { TRANSFER_SYNTAXES, TS_ENCAPSULATED_UNCOMPRESSED, TS_EXPLICIT_BE, TS_EXPLICIT_LE, TS_IMPLICIT_LE, TS_RLE, TS_DEFLATED_LE } from './transfer-syntaxes';
import { dicomParser } from './dicom-values';
import { inflateDataSet, MAX_INFLATED_DATASET_BYTES } from './dicom-inflate';
import { checkSequenceDepth } from './dicom-nesting';

export { ds2, encapsulatedFrame, lutFrom, num, nums, str, strAt, transferSyntaxOf, us, words } from './dicom-values';

function isUpper(c: number): boolean {
  return c >= 0x41 && c <= 0x5a;
}

export function errorText(e: unknown): string {
  if (typeof e === 'string') return e;
  if (e instanceof Error) return e.message;
  // dicom-parser throws { exception: string, dataSet } on partial parses
  const ex = (e as { exception?: unknown })?.exception;
  if (ex !== undefined) return errorText(ex);
  return String(e);
}

function tagName(tag: string): string {
  return `(${tag.slice(1, 5).toUpperCase()},${tag.slice(5, 9).toUpperCase()})`;
}

const DELIM_ITEM = 0xe00d;
const DELIM_SEQ = 0xe0dd;

/**
 * Positions of delimitation items (FFFE,E00D)/(FFFE,E0DD) with a non-zero length, which PS3.5 7.5 requires to be 0,
 * after `from`. Walks encapsulated pixel data item by item when `encapsulatedAt` is given (no false hits inside
 * fragments); otherwise scans for the tag bytes.
 */
function badDelimiters(b: Uint8Array, from: number, littleEndian: boolean, encapsulatedAt?: number): number[] {
  const u16 = (i: number) => (littleEndian ? b[i] | (b[i + 1] << 8) : (b[i] << 8) | b[i + 1]);
  const u32 = (i: number) => (littleEndian ? (b[i] | (b[i + 1] << 8) | (b[i + 2] << 16)) + b[i + 3] * 2 ** 24 : b[i] * 2 ** 24 + ((b[i + 1] << 16) | (b[i + 2] << 8) | b[i + 3]));
  const out: number[] = [];
  if (encapsulatedAt !== undefined) {
    let i = encapsulatedAt;
    while (i + 8 <= b.length) {
      if (u16(i) !== 0xfffe) break;
      const el = u16(i + 2);
      const len = u32(i + 4);
      if (el === DELIM_SEQ) {
        if (len !== 0) out.push(i);
        break;
      }
      if (el !== 0xe000 || len === 0xffffffff) break;
      i += 8 + len;
    }
    return out;
  }
  for (let i = from; i + 8 <= b.length; i++) {
    if (u16(i) === 0xfffe && (u16(i + 2) === DELIM_SEQ || u16(i + 2) === DELIM_ITEM) && u32(i + 4) !== 0) out.push(i);
  }
  return out;
}

function withPreamble(bytes: Uint8Array): { input: Uint8Array; bareTransferSyntax?: string; note?: string } {
  const hasPreamble = bytes.length >= 132 && bytes[128] === 0x44 && bytes[129] === 0x49 && bytes[130] === 0x43 && bytes[131] === 0x4d;
  if (hasPreamble) return { input: bytes };
  if (bytes.length >= 4 && bytes[0] === 0x44 && bytes[1] === 0x49 && bytes[2] === 0x43 && bytes[3] === 0x4d) {
    // 'DICM' at byte 0: the preamble was stripped.
    const input = new Uint8Array(128 + bytes.length);
    input.set(bytes, 128);
    return { input, note: 'The file has no 128-byte preamble before "DICM"; read anyway' };
  }
  const group = bytes.length >= 2 ? bytes[0] | (bytes[1] << 8) : -1;
  if (group === 0x0002) {
    // Meta header without preamble: add the 128-byte preamble and 'DICM' that dicom-parser expects.
    const input = new Uint8Array(132 + bytes.length);
    input.set([0x44, 0x49, 0x43, 0x4d], 128);
    input.set(bytes, 132);
    return { input };
  }
  // No meta header at all: a bare data set (PS3.10 allows none off media). Guess explicit vs implicit VR LE.
  const explicit = bytes.length >= 6 && isUpper(bytes[4]) && isUpper(bytes[5]);
  return { input: bytes, bareTransferSyntax: explicit ? TS_EXPLICIT_LE : TS_IMPLICIT_LE, note: 'The file has no File Meta Information; read as a bare data set' };
}

const VRS = new Set('AE AS AT CS DA DS DT FD FL IS LO LT OB OD OF OL OV OW PN SH SL SQ SS ST SV TM UC UI UL UN UR US UT UV'.split(' '));

/**
 * The File Meta Information of a preamble'd Part 10 file (always Explicit VR Little Endian, PS3.10 7.1): where its
 * Transfer Syntax UID value lies and where the data set starts. Undefined when it cannot be walked.
 */
function scanMeta(b: Uint8Array): { tsAt: number; tsLen: number; ts: string; end: number } | undefined {
  let i = 132;
  let ts: { at: number; len: number; uid: string } | undefined;
  while (i + 8 <= b.length) {
    const group = b[i] | (b[i + 1] << 8);
    if (group !== 0x0002) break;
    const elem = b[i + 2] | (b[i + 3] << 8);
    const vr = String.fromCharCode(b[i + 4], b[i + 5]);
    if (!VRS.has(vr)) return undefined;
    const long = ['OB', 'OD', 'OF', 'OL', 'OV', 'OW', 'SQ', 'SV', 'UC', 'UN', 'UR', 'UT', 'UV'].includes(vr);
    const len = long ? (b[i + 8] | (b[i + 9] << 8) | (b[i + 10] << 16)) + b[i + 11] * 2 ** 24 : b[i + 6] | (b[i + 7] << 8);
    const head = long ? 12 : 8;
    if (elem === 0x0010) ts = { at: i, len, uid: String.fromCharCode(...b.subarray(i + head, i + head + len)).replace(/\0/g, '').trim() };
    i += head + len;
  }
  return ts ? { tsAt: ts.at, tsLen: ts.len, ts: ts.uid, end: i } : undefined;
}

/**
 * A file whose meta header names Explicit VR but whose data set is Implicit VR (or the reverse) is read as it is
 * encoded, as pydicom does: the first data element says which (a VR there, or not). Returns the bytes with the
 * Transfer Syntax UID value replaced, and the note, or undefined when they agree.
 */
function fixVrEncoding(b: Uint8Array): { bytes: Uint8Array; note: string } | undefined {
  const meta = scanMeta(b);
  if (!meta || meta.end + 8 > b.length) return undefined;
  const declaredExplicit = meta.ts === TS_EXPLICIT_LE || meta.ts === TS_EXPLICIT_BE || (meta.ts in CODEC_SYNTAXES) || meta.ts === TS_RLE || meta.ts === TS_ENCAPSULATED_UNCOMPRESSED;
  const declaredImplicit = meta.ts === TS_IMPLICIT_LE;
  if (!declaredExplicit && !declaredImplicit) return undefined;
  const looksExplicit = VRS.has(String.fromCharCode(b[meta.end + 4], b[meta.end + 5]));
  if (declaredExplicit === looksExplicit) return undefined;
  // Only the native little-endian pair can be swapped safely (a compressed syntax keeps its name, its data set is
  // just read with the other VR encoding: not expressible to dicom-parser, so those are left alone).
  if (meta.ts !== TS_EXPLICIT_LE && meta.ts !== TS_IMPLICIT_LE) return undefined;
  const uid = looksExplicit ? TS_EXPLICIT_LE : TS_IMPLICIT_LE;
  const value = uid.length % 2 ? uid + '\0' : uid;
  const head = 8; // UI has a 2-byte length
  const out = new Uint8Array(b.length - meta.tsLen + value.length);
  out.set(b.subarray(0, meta.tsAt + 6), 0);
  out[meta.tsAt + 6] = value.length & 0xff;
  out[meta.tsAt + 7] = value.length >> 8;
  for (let k = 0; k < value.length; k++) out[meta.tsAt + head + k] = value.charCodeAt(k);
  out.set(b.subarray(meta.tsAt + head + meta.tsLen), meta.tsAt + head + value.length);
  const said = TRANSFER_SYNTAXES[meta.ts];
  return { bytes: out, note: `The file meta header says ${said}, but the data set is encoded as ${looksExplicit ? 'Explicit' : 'Implicit'} VR; read as it is encoded, as pydicom does` };
}

const LONG_VRS = new Set(['OB', 'OD', 'OF', 'OL', 'OV', 'OW', 'SQ', 'SV', 'UC', 'UN', 'UR', 'UT', 'UV']);
/** VRs added in 2018 (PS3.5 6.2) that dicom-parser 1.8 reads with a 2-byte length: OV (Extended Offset Table), SV, UV. */
const VRS_DICOM_PARSER_LACKS = new Set(['OV', 'SV', 'UV']);

/**
 * Offsets of the VR fields of OV/SV/UV elements in an explicit VR data set starting at `start` (walked element by
 * element, sequences and items included), so that they can be relabelled UN, which has the same layout (2 reserved
 * bytes, 4-byte length) and which dicom-parser knows. Undefined when the walk fails (the file is left as it is).
 */
function newVrPositions(b: Uint8Array, start: number, little: boolean): number[] | undefined {
  const u16 = (i: number) => (little ? b[i] | (b[i + 1] << 8) : (b[i] << 8) | b[i + 1]);
  const u32 = (i: number) => (little ? (b[i] | (b[i + 1] << 8) | (b[i + 2] << 16)) + b[i + 3] * 2 ** 24 : b[i] * 2 ** 24 + ((b[i + 1] << 16) | (b[i + 2] << 8) | b[i + 3]));
  const found: number[] = [];
  // Walk a data set from i until `end` (or, with end undefined, an Item Delimitation Item); returns the position after.
  const walk = (i: number, end: number | undefined, depth: number): number => {
    if (depth > 16) throw new Error('too deep');
    while (end === undefined ? i + 8 <= b.length : i < end) {
      const group = u16(i);
      const elem = u16(i + 2);
      if (group === 0xfffe) {
        if (elem === 0xe00d && end === undefined) return i + 8; // item delimiter
        throw new Error('unexpected delimiter');
      }
      const vr = String.fromCharCode(b[i + 4], b[i + 5]);
      if (!/^[A-Z]{2}$/.test(vr)) throw new Error('no VR');
      if (!LONG_VRS.has(vr)) {
        i += 8 + u16(i + 6);
        continue;
      }
      if (VRS_DICOM_PARSER_LACKS.has(vr)) found.push(i + 4);
      const len = u32(i + 8);
      i += 12;
      if (len !== 0xffffffff) {
        i += len;
        continue;
      }
      // undefined length: a sequence of items, or encapsulated pixel data (items of raw bytes)
      const encapsulated = group === 0x7fe0 && elem === 0x0010;
      for (;;) {
        if (i + 8 > b.length) throw new Error('runs off the end');
        const ig = u16(i), ie = u16(i + 2), il = u32(i + 4);
        if (ig !== 0xfffe) throw new Error('no item');
        i += 8;
        if (ie === 0xe0dd) break; // sequence delimiter
        if (ie !== 0xe000) throw new Error('not an item');
        if (encapsulated || il !== 0xffffffff) {
          if (!encapsulated) walk(i, i + il, depth + 1);
          i += il;
        } else i = walk(i, undefined, depth + 1);
      }
    }
    return i;
  };
  try {
    walk(start, b.length, 0);
    return found;
  } catch {
    return undefined;
  }
}

/** Relabel OV/SV/UV elements as UN for dicom-parser (explicit VR syntaxes only); undefined when there are none. */
function relabelNewVrs(b: Uint8Array): Uint8Array | undefined {
  const meta = scanMeta(b);
  if (!meta || meta.ts === TS_IMPLICIT_LE || meta.ts === '1.2.840.10008.1.2.1.99') return undefined;
  const at = newVrPositions(b, meta.end, meta.ts !== TS_EXPLICIT_BE);
  if (!at || at.length === 0) return undefined;
  const out = new Uint8Array(b);
  for (const i of at) {
    out[i] = 0x55; // 'U'
    out[i + 1] = 0x4e; // 'N'
  }
  return out;
}

export interface ParsedDicom {
  ds: DataSet;
  /** What was irregular and read leniently anyway. */
  notes: string[];
}

/** Options of parseDicomLenient. */
export interface ParseDicomOptions {
  /** Cap on a Deflated Explicit VR Little Endian data set once inflated (default MAX_INFLATED_DATASET_BYTES). */
  maxInflatedBytes?: number;
  /** Deepest sequence nesting accepted (default MAX_SEQUENCE_DEPTH). */
  maxSequenceDepth?: number;
}

/** The inflater, capped, with the nesting check on the inflated data set (explicit VR little endian). */
function inflaterOption(opts: ParseDicomOptions): dicomParserNs.ParseDicomOptions['inflater'] {
  return ((arr: Uint8Array, position: number) => {
    const full = inflateDataSet(arr, position, opts.maxInflatedBytes ?? MAX_INFLATED_DATASET_BYTES);
    checkSequenceDepth(full, position, true, true, opts.maxSequenceDepth);
    return full;
  }) as unknown as dicomParserNs.ParseDicomOptions['inflater'];
}

/** The nesting check on a data set that is not deflated: from the end of the meta header, in its encoding. */
function checkNesting(input: Uint8Array, bareTransferSyntax: string | undefined, opts: ParseDicomOptions): void {
  let start = 0;
  let ts = bareTransferSyntax;
  if (!bareTransferSyntax) {
    const meta = scanMeta(input);
    if (!meta) return; // dicom-parser will say what is wrong with the meta header
    start = meta.end;
    ts = meta.ts;
  }
  if (ts === TS_DEFLATED_LE) return; // checked once inflated
  checkSequenceDepth(input, start, ts !== TS_EXPLICIT_BE, ts !== TS_IMPLICIT_LE, opts.maxSequenceDepth);
}

/** A Pixel Data element that lies wholly within the bytes (so a failure after it loses nothing). */
function completePixelData(ds: DataSet | undefined): Element | undefined {
  const el = ds?.elements?.x7fe00010;
  if (!el || !ds) return undefined;
  const n = (ds.byteArray as Uint8Array).length;
  if (el.encapsulatedPixelData) {
    const frags = el.fragments ?? [];
    if (frags.length === 0) return undefined;
    const last = frags[frags.length - 1];
    return last.position + last.length <= n ? el : undefined;
  }
  return el.dataOffset + el.length <= n ? el : undefined;
}

/**
 * Parse with dicom-parser, as leniently as pydicom reads: a missing preamble or meta header, a delimitation item
 * with a non-zero length (PS3.5 7.5 says 0; some writers put 0xFFFFFFFF), bytes after the Pixel Data that do not
 * form an element. Anything else throws ImageDecodeError naming the fault: 'truncated' only when an element's
 * value runs past the end of the file (naming the element, its length and the bytes left), 'corrupt' otherwise.
 */
export function parseDicomLenient(bytes: Uint8Array, parseOpts: ParseDicomOptions = {}): ParsedDicom {
  const notes: string[] = [];
  const pre = withPreamble(bytes);
  if (pre.note) notes.push(pre.note);
  let input = pre.input;
  if (!pre.bareTransferSyntax) {
    const fixed = fixVrEncoding(input);
    if (fixed) {
      input = fixed.bytes;
      notes.push(fixed.note);
    }
    // Not a fault of the file: the parser predates these VRs. No note.
    input = relabelNewVrs(input) ?? input;
  }
  checkNesting(input, pre.bareTransferSyntax, parseOpts);
  const options: dicomParserNs.ParseDicomOptions = { inflater: inflaterOption(parseOpts) };
  if (pre.bareTransferSyntax) options.TransferSyntaxUID = pre.bareTransferSyntax;
  let lastError: unknown;
  for (let attempt = 0; attempt < 8; attempt++) {
    try {
      return { ds: dicomParser.parseDicom(input, options), notes };
    } catch (e) {
      if (e instanceof ImageDecodeError) throw e;
      if (e instanceof RangeError && /call stack/i.test(e.message)) {
        // The walk above follows dicom-parser's reading; should they ever disagree, the overflow is still named.
        throw new ImageDecodeError('unsupported-dicom', `The DICOM data set nests sequences too deep for the parser (its call stack ran out); refused`, { parserMessage: e.message }, { cause: e });
      }
      lastError = e;
      const partial = (e as { dataSet?: DataSet })?.dataSet;
      const els = partial ? Object.values(partial.elements) : [];
      const last = els[els.length - 1] as Element | undefined;
      const tsRaw = partial ? safeString(partial, 'x00020010') : undefined;
      const little = (tsRaw ?? '').replace(/\0/g, '').trim() !== TS_EXPLICIT_BE;
      // 1. Delimitation items with a non-zero length make dicom-parser add it to the enclosing element's length.
      if (last && (last as Element & { hadUndefinedLength?: boolean }).hadUndefinedLength) {
        const arr = (partial!.byteArray as Uint8Array) ?? input;
        const bad = badDelimiters(arr, last.dataOffset, little, last.encapsulatedPixelData ? last.dataOffset : undefined);
        if (bad.length > 0 && arr === input) {
          const fixed = new Uint8Array(input); // a copy: Buffer#slice would patch the caller's bytes
          for (const at of bad) fixed.fill(0, at + 4, at + 8);
          const elem = little ? arr[bad[0] + 2] | (arr[bad[0] + 3] << 8) : (arr[bad[0] + 2] << 8) | arr[bad[0] + 3];
          const which = elem === DELIM_SEQ ? 'Sequence Delimitation Item' : 'Item Delimitation Item';
          notes.push(`The ${which}${bad.length > 1 ? ` (and ${bad.length - 1} more)` : ''} in ${tagName(last.tag)} carries length 0x${lengthHex(arr, bad[0] + 4, little)} instead of 0 (PS3.5 7.5); read leniently, as pydicom does`);
          input = fixed;
          continue;
        }
      }
      // 2. Garbage after a complete Pixel Data element: keep what was read.
      const pix = completePixelData(partial);
      if (partial && pix && last && last.tag === 'x7fe00010' && !(last as Element & { hadUndefinedLength?: boolean }).hadUndefinedLength) {
        const end = pix.dataOffset + pix.length;
        const extra = (partial.byteArray as Uint8Array).length - end;
        notes.push(`${extra} bytes after the Pixel Data do not form a DICOM element; ignored, as pydicom does`);
        return { ds: partial, notes };
      }
      throw diagnose(e, partial, last);
    }
  }
  throw diagnose(lastError, undefined, undefined);
}

function lengthHex(b: Uint8Array, at: number, little: boolean): string {
  const v = little ? (b[at] | (b[at + 1] << 8) | (b[at + 2] << 16)) + b[at + 3] * 2 ** 24 : b[at] * 2 ** 24 + ((b[at + 1] << 16) | (b[at + 2] << 8) | b[at + 3]);
  return v.toString(16).toUpperCase().padStart(8, '0');
}

function safeString(ds: DataSet, tag: string): string | undefined {
  try {
    return ds.string(tag);
  } catch {
    return undefined;
  }
}

function diagnose(e: unknown, partial: DataSet | undefined, last: Element | undefined): ImageDecodeError {
  const msg = errorText(e);
  const total = partial ? (partial.byteArray as Uint8Array).length : undefined;
  if (last && total !== undefined) {
    const declaredEnd = last.dataOffset + last.length;
    const undefinedLength = (last as Element & { hadUndefinedLength?: boolean }).hadUndefinedLength;
    if (!undefinedLength && declaredEnd > total && last.length < 0xffffffff) {
      const have = Math.max(0, total - last.dataOffset);
      const what = last.tag === 'x7fe00010' ? 'Pixel Data' : `element ${tagName(last.tag)}`;
      return new ImageDecodeError('truncated', `The DICOM file is truncated: its ${what} declares ${last.length} bytes but the file ends ${have} bytes into it (the file was cut short, e.g. by an interrupted copy)`, { parserMessage: msg, tag: last.tag, declared: last.length, available: have });
    }
    if (undefinedLength) {
      return new ImageDecodeError('corrupt', `The DICOM file is malformed: the undefined-length ${last.tag === 'x7fe00010' ? 'Pixel Data' : `element ${tagName(last.tag)}`} starting at byte ${last.dataOffset} has no valid closing delimiter (${msg})`, { parserMessage: msg, tag: last.tag });
    }
    return new ImageDecodeError('corrupt', `The DICOM file is malformed after element ${tagName(last.tag)} (byte ${declaredEnd}): ${msg}`, { parserMessage: msg, tag: last.tag });
  }
  if (/overrun|overread|beyond|end of buffer/i.test(msg)) {
    return new ImageDecodeError('truncated', `The DICOM file ends in the middle of its header (${msg})`, { parserMessage: msg });
  }
  return new ImageDecodeError('corrupt', `The DICOM file could not be parsed: ${msg}`, { parserMessage: msg }, { cause: e });
}
