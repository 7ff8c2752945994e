/**
 * DICOM (PS3.10 files, with or without the 128-byte preamble) → one frame of modality values, its display
 * transforms and separated metadata: the pixel pipeline of PS3.3 C.11, shared by the app, the CLI and the tests.
 *
 * Parsing is dicom-parser's (made lenient where pydicom is, see parseDicomLenient); deflate is fflate's; compressed
 * frames go to one codec package each (./codecs); RLE (PS3.5 Annex G), native unpacking (BitsAllocated 1/8/16/32,
 * BitsStored/HighBit masking, two's complement, big endian incl. 8-bit OW), YBR_FULL/YBR_FULL_422, PALETTE COLOR
 * (incl. segmented), Modality LUT Sequence / Rescale, VOI LUT Sequence / windows with the LINEAR, LINEAR_EXACT and
 * SIGMOID functions, MONOCHROME1 and Presentation LUT Shape are here.
 */
import * as dicomParserNs from 'dicom-parser';
import type { DataSet, Element } from 'dicom-parser';
import { inflateSync } from 'fflate';
import { ImageDecodeError } from './errors';
import { CODEC_SYNTAXES, REFUSED_SYNTAXES } from './codecs/syntaxes';
import { decodeRleFrame, rlePlanesToSamples } from './codecs/rle';
import type { DecodedFrame, EncodedFrameInfo, WasmBinaryLoader } from './codecs/types';
import { applyLut, expandSegmentedLut, makeLut, type Lut } from './lut';

// dicom-parser is a UMD bundle: under Node's ESM loader its API sits on `default`, under Vite on the namespace.
type DicomParserApi = typeof import('dicom-parser');
const dicomParser: DicomParserApi =
  ((dicomParserNs as unknown as { default?: DicomParserApi }).default?.parseDicom
    ? (dicomParserNs as unknown as { default: DicomParserApi }).default
    : (dicomParserNs as unknown as DicomParserApi));

export const TRANSFER_SYNTAXES: Record<string, string> = {
  '1.2.840.10008.1.2': 'Implicit VR Little Endian',
  '1.2.840.10008.1.2.1': 'Explicit VR Little Endian',
  '1.2.840.10008.1.2.1.99': 'Deflated Explicit VR Little Endian',
  '1.2.840.10008.1.2.2': 'Explicit VR Big Endian',
  '1.2.840.10008.1.2.5': 'RLE Lossless',
  '1.2.840.10008.1.2.4.50': 'JPEG Baseline (Process 1)',
  '1.2.840.10008.1.2.4.51': 'JPEG Extended (Process 2 & 4)',
  '1.2.840.10008.1.2.4.57': 'JPEG Lossless, Non-Hierarchical (Process 14)',
  '1.2.840.10008.1.2.4.70': 'JPEG Lossless, Non-Hierarchical, First-Order Prediction (Process 14 [Selection Value 1])',
  '1.2.840.10008.1.2.4.80': 'JPEG-LS Lossless',
  '1.2.840.10008.1.2.4.81': 'JPEG-LS Lossy (Near-Lossless)',
  '1.2.840.10008.1.2.4.90': 'JPEG 2000 Image Compression (Lossless Only)',
  '1.2.840.10008.1.2.4.91': 'JPEG 2000 Image Compression',
  '1.2.840.10008.1.2.4.92': 'JPEG 2000 Part 2 Multi-component (Lossless Only)',
  '1.2.840.10008.1.2.4.93': 'JPEG 2000 Part 2 Multi-component',
  '1.2.840.10008.1.2.4.100': 'MPEG2 Main Profile / Main Level',
  '1.2.840.10008.1.2.4.101': 'MPEG2 Main Profile / High Level',
  '1.2.840.10008.1.2.4.102': 'MPEG-4 AVC/H.264 High Profile / Level 4.1',
  '1.2.840.10008.1.2.4.103': 'MPEG-4 AVC/H.264 BD-compatible High Profile / Level 4.1',
  '1.2.840.10008.1.2.4.201': 'High-Throughput JPEG 2000 (Lossless Only)',
  '1.2.840.10008.1.2.4.202': 'High-Throughput JPEG 2000 with RPCL Options (Lossless Only)',
  '1.2.840.10008.1.2.4.203': 'High-Throughput JPEG 2000',
  '1.2.840.10008.1.2.4.104': 'MPEG-4 AVC/H.264 High Profile For 2D Video',
  '1.2.840.10008.1.2.4.105': 'MPEG-4 AVC/H.264 High Profile For 3D Video',
  '1.2.840.10008.1.2.4.106': 'MPEG-4 AVC/H.264 Stereo High Profile',
  '1.2.840.10008.1.2.4.107': 'HEVC/H.265 Main Profile',
  '1.2.840.10008.1.2.4.108': 'HEVC/H.265 Main 10 Profile',
  '1.2.840.10008.1.2.4.94': 'JPIP Referenced',
  '1.2.840.10008.1.2.4.95': 'JPIP Referenced Deflate',
  '1.2.840.10008.1.2.4.110': 'JPEG XL Lossless',
  '1.2.840.10008.1.2.4.111': 'JPEG XL JPEG Recompression',
  '1.2.840.10008.1.2.4.112': 'JPEG XL',
  '1.2.840.10008.1.2.1.98': 'Encapsulated Uncompressed Explicit VR Little Endian',
};

export const TS_IMPLICIT_LE = '1.2.840.10008.1.2';
export const TS_EXPLICIT_LE = '1.2.840.10008.1.2.1';
export const TS_DEFLATED_LE = '1.2.840.10008.1.2.1.99';
export const TS_EXPLICIT_BE = '1.2.840.10008.1.2.2';
export const TS_RLE = '1.2.840.10008.1.2.5';
export const TS_ENCAPSULATED_UNCOMPRESSED = '1.2.840.10008.1.2.1.98';

/** Transfer syntaxes decoded without a codec package (native pixel data, deflate, RLE). */
export const NATIVE_TRANSFER_SYNTAXES = [TS_IMPLICIT_LE, TS_EXPLICIT_LE, TS_DEFLATED_LE, TS_EXPLICIT_BE, TS_RLE, TS_ENCAPSULATED_UNCOMPRESSED] as const;
/** Every transfer syntax this module decodes (native ones here, the others through ./codecs). */
export const SUPPORTED_TRANSFER_SYNTAXES: readonly string[] = [...NATIVE_TRANSFER_SYNTAXES, ...Object.keys(CODEC_SYNTAXES)];

export type Photometric = 'MONOCHROME1' | 'MONOCHROME2' | 'RGB' | 'YBR_FULL' | 'YBR_FULL_422' | 'PALETTE COLOR' | 'YBR_RCT' | 'YBR_ICT';
export type VoiFunction = 'LINEAR' | 'LINEAR_EXACT' | 'SIGMOID';

/** Attributes safe to show by default. */
export interface DicomPublicMetadata {
  TransferSyntaxUID: string;
  TransferSyntaxName: string;
  SOPClassUID?: string;
  Modality?: string;
  BodyPartExamined?: string;
  ViewPosition?: string;
  StudyDescription?: string;
  SeriesDescription?: string;
  Manufacturer?: string;
  ManufacturerModelName?: string;
  Rows: number;
  Columns: number;
  SamplesPerPixel: number;
  PhotometricInterpretation: string;
  BitsAllocated: number;
  BitsStored: number;
  HighBit: number;
  PixelRepresentation: number;
  NumberOfFrames: number;
  PixelSpacing?: [number, number];
  ImagerPixelSpacing?: [number, number];
  RescaleSlope: number;
  RescaleIntercept: number;
  RescaleType?: string;
  WindowCenter?: number;
  WindowWidth?: number;
  VOILUTFunction?: string;
  PresentationLUTShape?: string;
  PlanarConfiguration?: number;
}

/** Attributes that identify a patient, a study or a place; hidden in the UI unless the user asks. */
export interface DicomIdentifyingMetadata {
  PatientName?: string;
  PatientID?: string;
  OtherPatientIDs?: string;
  PatientBirthDate?: string;
  PatientSex?: string;
  PatientAge?: string;
  AccessionNumber?: string;
  StudyID?: string;
  StudyDate?: string;
  StudyTime?: string;
  SeriesDate?: string;
  AcquisitionDate?: string;
  ContentDate?: string;
  InstitutionName?: string;
  InstitutionAddress?: string;
  StationName?: string;
  DeviceSerialNumber?: string;
  ReferringPhysicianName?: string;
  PerformingPhysicianName?: string;
  OperatorsName?: string;
  StudyInstanceUID?: string;
  SeriesInstanceUID?: string;
  SOPInstanceUID?: string;
}

export interface DicomWindow {
  center: number;
  width: number;
}

/**
 * One way to turn modality values into display values (PS3.3 C.11.2): a window (with its VOI LUT Function) or a
 * VOI LUT Sequence item. The viewer offers them all; `DicomImage.defaultPresetId` is what the model sees.
 */
export type VoiPreset =
  | { id: string; kind: 'window'; label: string; center: number; width: number; fn: VoiFunction; source: 'file' | 'auto' }
  | { id: string; kind: 'lut'; label: string; lut: Lut; source: 'file' };

export interface DicomImage {
  width: number;
  height: number;
  /** Number of frames in the file and the 0-based frame these pixels are from. */
  frames: number;
  frameIndex: number;
  /**
   * Greyscale: modality values (after the Modality LUT Sequence or Rescale Slope/Intercept), one per pixel,
   * row-major. Colour: ITU-R 601 luma of `rgb` (0..255).
   */
  pixels: Float32Array;
  /** Interleaved 8-bit RGB for colour images (RGB, YBR_* converted, PALETTE COLOR looked up). */
  rgb?: Uint8Array;
  /** PALETTE COLOR only: the palette's full-precision RGB (as pydicom's apply_color_lut), interleaved. */
  paletteRgb16?: Uint16Array;
  /** Linear window of the default preset, or of the file's first window; the viewer's drag starts from it. */
  window: DicomWindow;
  windowSource: 'file' | 'auto';
  /** Display choices, file's first; see VoiPreset. */
  presets: VoiPreset[];
  defaultPresetId: string;
  photometric: Photometric;
  /** VOI LUT Function of the file's windows: 'LINEAR' (default), 'LINEAR_EXACT' or 'SIGMOID'. */
  voiLutFunction: VoiFunction;
  /** Display inverted: MONOCHROME1, or Presentation LUT Shape INVERSE (PS3.3 C.11.6). */
  invert: boolean;
  /** Minimum and maximum of `pixels`. */
  range: { min: number; max: number };
  /** How stored values became modality values, e.g. "Rescale 1·x+0" or "Modality LUT Sequence (4096 entries)". */
  modalityTransform: string;
  /** Which codec package decoded the frame (absent for native pixel data). */
  codec?: string;
  metadata: DicomPublicMetadata;
  identifying: DicomIdentifyingMetadata;
  /** Things the user should know, e.g. "Frame 1 of 12". */
  notes: string[];
}

export interface DecodeDicomOptions {
  /** Refuse images with more pixels than this (rows × columns); default 100 MP. */
  maxPixels?: number;
  /** 0-based frame to decode (default 0). */
  frame?: number;
  /** The frame, already decoded by a codec (decodeDicomAsync does this). */
  decodedFrame?: DecodedFrame;
}

export interface DecodeDicomAsyncOptions extends Omit<DecodeDicomOptions, 'decodedFrame'> {
  /** Supplies codec wasm binaries (platform code: fetch in the browser, node_modules in Node). */
  loadWasm: WasmBinaryLoader;
}

const PUBLIC_STRING_TAGS: [keyof DicomPublicMetadata, string][] = [
  ['SOPClassUID', 'x00080016'],
  ['Modality', 'x00080060'],
  ['BodyPartExamined', 'x00180015'],
  ['ViewPosition', 'x00185101'],
  ['StudyDescription', 'x00081030'],
  ['SeriesDescription', 'x0008103e'],
  ['Manufacturer', 'x00080070'],
  ['ManufacturerModelName', 'x00081090'],
  ['RescaleType', 'x00281054'],
];

const IDENTIFYING_TAGS: [keyof DicomIdentifyingMetadata, string][] = [
  ['PatientName', 'x00100010'],
  ['PatientID', 'x00100020'],
  ['OtherPatientIDs', 'x00101000'],
  ['PatientBirthDate', 'x00100030'],
  ['PatientSex', 'x00100040'],
  ['PatientAge', 'x00101010'],
  ['AccessionNumber', 'x00080050'],
  ['StudyID', 'x00200010'],
  ['StudyDate', 'x00080020'],
  ['StudyTime', 'x00080030'],
  ['SeriesDate', 'x00080021'],
  ['AcquisitionDate', 'x00080022'],
  ['ContentDate', 'x00080023'],
  ['InstitutionName', 'x00080080'],
  ['InstitutionAddress', 'x00080081'],
  ['StationName', 'x00081010'],
  ['DeviceSerialNumber', 'x00181000'],
  ['ReferringPhysicianName', 'x00080090'],
  ['PerformingPhysicianName', 'x00081050'],
  ['OperatorsName', 'x00081070'],
  ['StudyInstanceUID', 'x0020000d'],
  ['SeriesInstanceUID', 'x0020000e'],
  ['SOPInstanceUID', 'x00080018'],
];

function isUpper(c: number): boolean {
  return c >= 0x41 && c <= 0x5a;
}

function errorText(e: unknown): string {
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

export interface ParsedDicom {
  ds: DataSet;
  /** What was irregular and read leniently anyway. */
  notes: string[];
}

function inflaterOption(): dicomParserNs.ParseDicomOptions['inflater'] {
  return ((arr: Uint8Array, position: number) => {
    let inflated: Uint8Array;
    try {
      inflated = inflateSync(arr.subarray(position));
    } catch (e) {
      throw new ImageDecodeError('corrupt', `The Deflated Explicit VR Little Endian data set does not inflate: ${errorText(e)}`, undefined, { cause: e });
    }
    const full = new Uint8Array(position + inflated.length);
    full.set(arr.subarray(0, position), 0);
    full.set(inflated, position);
    return full;
  }) as unknown as dicomParserNs.ParseDicomOptions['inflater'];
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
export function parseDicomLenient(bytes: Uint8Array): ParsedDicom {
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
  }
  const options: dicomParserNs.ParseDicomOptions = { inflater: inflaterOption() };
  if (pre.bareTransferSyntax) options.TransferSyntaxUID = pre.bareTransferSyntax;
  let lastError: unknown;
  for (let attempt = 0; attempt < 8; attempt++) {
    try {
      return { ds: dicomParser.parseDicom(input, options), notes };
    } catch (e) {
      if (e instanceof ImageDecodeError) throw e;
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

/** Parse with dicom-parser (lenient, see parseDicomLenient). */
export function parseDicomBytes(bytes: Uint8Array): DataSet {
  return parseDicomLenient(bytes).ds;
}

function str(ds: DataSet, tag: string): string | undefined {
  const el = ds.elements[tag];
  if (!el || el.length === 0) return undefined;
  try {
    const v = ds.string(tag);
    return v === undefined || v === '' ? undefined : v;
  } catch {
    return undefined;
  }
}

function strAt(ds: DataSet, tag: string, i: number): string | undefined {
  const el = ds.elements[tag];
  if (!el || el.length === 0) return undefined;
  try {
    const v = ds.string(tag, i);
    return v === undefined || v === '' ? undefined : v.trim();
  } catch {
    return undefined;
  }
}

function ds2(ds: DataSet, tag: string): [number, number] | undefined {
  const el = ds.elements[tag];
  if (!el || el.length === 0) return undefined;
  const a = ds.floatString(tag, 0);
  const b = ds.floatString(tag, 1);
  if (a === undefined || Number.isNaN(a)) return undefined;
  return [a, b === undefined || Number.isNaN(b) ? a : b];
}

function num(ds: DataSet, tag: string, i = 0): number | undefined {
  const el = ds.elements[tag];
  if (!el || el.length === 0) return undefined;
  const v = ds.floatString(tag, i);
  return v === undefined || Number.isNaN(v) ? undefined : v;
}

function nums(ds: DataSet, tag: string): number[] {
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

function us(ds: DataSet, tag: string, i = 0): number | undefined {
  const el = ds.elements[tag];
  if (!el || el.length < 2 * (i + 1)) return undefined;
  return ds.uint16(tag, i);
}

/** The raw 16-bit words of an element (US/SS/OW LUT data), in the data set's byte order. */
function words(ds: DataSet, el: Element): Uint16Array {
  const b = ds.byteArray as Uint8Array;
  const n = el.length >> 1;
  const out = new Uint16Array(n);
  const little = ds.byteArrayParser === dicomParser.littleEndianByteArrayParser;
  for (let i = 0, j = el.dataOffset; i < n; i++, j += 2) out[i] = little ? b[j] | (b[j + 1] << 8) : (b[j] << 8) | b[j + 1];
  return out;
}

function lutFrom(ds: DataSet, descTag: string, dataTag: string, signedInput: boolean, explanationTag?: string): Lut | undefined {
  const d = ds.elements[descTag];
  const data = ds.elements[dataTag];
  if (!d || !data || d.length < 6) return undefined;
  const descriptor: [number, number, number] = [us(ds, descTag, 0)!, us(ds, descTag, 1)!, us(ds, descTag, 2)!];
  return makeLut(descriptor, words(ds, data), signedInput, explanationTag ? str(ds, explanationTag) : undefined);
}

/** The 0-based frames' compressed bytes, found by Extended Offset Table, Basic Offset Table or fragment markers. */
function encapsulatedFrame(ds: DataSet, el: Element, index: number, frames: number, notes: string[]): Uint8Array {
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

/**
 * The compressed bytes of one frame (0-based, default the first) of an encapsulated DICOM, with its transfer syntax.
 * Throws ImageDecodeError when the pixel data is not encapsulated or the frame cannot be found.
 */
export function extractEncapsulatedFrame(bytes: Uint8Array, index = 0): { transferSyntaxUID: string; frame: Uint8Array } {
  const { ds } = parseDicomLenient(bytes);
  const ts = transferSyntaxOf(ds);
  const el = ds.elements.x7fe00010;
  if (!el) throw new ImageDecodeError('no-pixel-data');
  if (!el.encapsulatedPixelData) throw new ImageDecodeError('corrupt', 'The DICOM pixel data is not encapsulated');
  const frames = Math.max(1, Math.round(num(ds, 'x00280008') ?? 1));
  return { transferSyntaxUID: ts, frame: encapsulatedFrame(ds, el, index, frames, []) };
}

function transferSyntaxOf(ds: DataSet): string {
  const tsRaw = str(ds, 'x00020010') ?? TS_IMPLICIT_LE;
  return tsRaw.replace(/\0/g, '').trim();
}

/** The image attributes of the Image Pixel module (PS3.3 C.7.6.3) and what the pipeline derives from them. */
interface Prepared {
  ds: DataSet;
  ts: string;
  tsName: string;
  pixelEl: Element;
  rows: number;
  cols: number;
  spp: number;
  bitsAllocated: number;
  bitsStored: number;
  highBit: number;
  pixelRep: number;
  photometricRaw: string;
  planarConfig: number;
  frames: number;
  frameIndex: number;
  notes: string[];
}

function prepare(bytes: Uint8Array, opts: DecodeDicomOptions): Prepared {
  if (bytes.length === 0) throw new ImageDecodeError('empty');
  const { ds, notes } = parseDicomLenient(bytes);
  const ts = transferSyntaxOf(ds);
  const tsName = TRANSFER_SYNTAXES[ts] ?? 'an unknown transfer syntax';
  const pixelEl = ds.elements.x7fe00010 ?? ds.elements.x7fe00008 ?? ds.elements.x7fe00009;
  if (!pixelEl) throw new ImageDecodeError('no-pixel-data', 'This DICOM file has no image (no Pixel Data element); it may be a report or a structured document');
  if (pixelEl.tag !== 'x7fe00010') throw new ImageDecodeError('unsupported-dicom', 'This DICOM file holds Float or Double Float Pixel Data (parametric maps), not an X-ray image');
  if (!SUPPORTED_TRANSFER_SYNTAXES.includes(ts)) {
    const why = REFUSED_SYNTAXES[ts] ?? 'no decoder for it is part of this app';
    throw new ImageDecodeError(
      'unsupported-transfer-syntax',
      `This DICOM file is encoded with ${tsName} (transfer syntax ${ts}), which cannot be decoded here: ${why}. Convert it to Explicit VR Little Endian first, e.g. with dcmtk's dcmconv/dcmdjpeg or gdcmconv --raw.`,
      { transferSyntaxUID: ts, transferSyntaxName: tsName },
    );
  }
  const rows = us(ds, 'x00280010');
  const cols = us(ds, 'x00280011');
  if (!rows || !cols) throw new ImageDecodeError('unsupported-dicom', 'The DICOM file has no Rows/Columns; it is not an image');
  const maxPixels = opts.maxPixels ?? 100_000_000;
  if (rows * cols > maxPixels) {
    throw new ImageDecodeError('too-large', `The image is ${cols}×${rows} pixels, over the limit of ${Math.round(maxPixels / 1e6)} megapixels`, { width: cols, height: rows });
  }
  const spp = us(ds, 'x00280002') ?? 1;
  const bitsAllocated = us(ds, 'x00280100') ?? 16;
  const bitsStored = us(ds, 'x00280101') ?? bitsAllocated;
  const highBit = us(ds, 'x00280102') ?? bitsStored - 1;
  const pixelRep = us(ds, 'x00280103') ?? 0;
  const photometricRaw = (str(ds, 'x00280004') ?? (spp === 3 ? 'RGB' : 'MONOCHROME2')).toUpperCase().trim();
  const planarConfig = us(ds, 'x00280006') ?? 0;
  const frames = Math.max(1, Math.round(num(ds, 'x00280008') ?? 1));
  const frameIndex = opts.frame ?? 0;
  if (!Number.isInteger(frameIndex) || frameIndex < 0 || frameIndex >= frames) {
    throw new ImageDecodeError('corrupt', `Frame ${frameIndex + 1} was asked for, but the file has ${frames} frame${frames === 1 ? '' : 's'}`);
  }
  if (![1, 8, 16, 32].includes(bitsAllocated)) {
    throw new ImageDecodeError('unsupported-dicom', `DICOM with ${bitsAllocated} bits allocated is not supported (1, 8, 16 or 32)`);
  }
  if (bitsStored < 1 || bitsStored > bitsAllocated || highBit < bitsStored - 1 || highBit >= bitsAllocated) {
    throw new ImageDecodeError('corrupt', `Inconsistent pixel description: BitsAllocated ${bitsAllocated}, BitsStored ${bitsStored}, HighBit ${highBit}`);
  }
  if (spp !== 1 && spp !== 3) throw new ImageDecodeError('unsupported-dicom', `DICOM with ${spp} samples per pixel is not supported (1 or 3)`);
  if (spp === 1 && !['MONOCHROME1', 'MONOCHROME2', 'PALETTE COLOR'].includes(photometricRaw)) {
    throw new ImageDecodeError('unsupported-dicom', `Photometric Interpretation ${photometricRaw} with one sample per pixel is not defined (MONOCHROME1, MONOCHROME2 or PALETTE COLOR)`, { photometric: photometricRaw });
  }
  if (spp === 3 && !['RGB', 'YBR_FULL', 'YBR_FULL_422', 'YBR_RCT', 'YBR_ICT', 'YBR_PARTIAL_420', 'YBR_PARTIAL_422'].includes(photometricRaw)) {
    throw new ImageDecodeError('unsupported-dicom', `Photometric Interpretation ${photometricRaw} with three samples per pixel is not supported`, { photometric: photometricRaw });
  }
  if (frames > 1) notes.push(`Frame ${frameIndex + 1} of ${frames}`);
  return { ds, ts, tsName, pixelEl, rows, cols, spp, bitsAllocated, bitsStored, highBit, pixelRep, photometricRaw, planarConfig, frames, frameIndex, notes };
}

/** Native (uncompressed) frame bytes, little-endian; big endian 16/32-bit words swapped, 8-bit OW un-swapped. */
function nativeFrameBytes(p: Prepared): { bytes: Uint8Array; littleEndian: boolean } {
  const { ds, pixelEl, rows, cols, spp, bitsAllocated, frameIndex } = p;
  const b = ds.byteArray as Uint8Array;
  const npix = rows * cols;
  // YBR_FULL_422 stores 2 samples per pixel on average (PS3.3 C.7.6.3.1.2)
  const samplesPerFrame = spp === 3 && p.photometricRaw === 'YBR_FULL_422' ? npix * 2 : npix * spp;
  const frameBits = samplesPerFrame * bitsAllocated;
  if (p.ts === TS_ENCAPSULATED_UNCOMPRESSED) {
    if (!pixelEl.encapsulatedPixelData) throw new ImageDecodeError('corrupt', 'Encapsulated Uncompressed transfer syntax but the Pixel Data is not encapsulated');
    const f = encapsulatedFrame(ds, pixelEl, frameIndex, p.frames, p.notes);
    if (f.length * 8 < frameBits) throw new ImageDecodeError('truncated', `Frame ${frameIndex + 1} holds ${f.length} of ${Math.ceil(frameBits / 8)} bytes`);
    return { bytes: f, littleEndian: true };
  }
  if (pixelEl.encapsulatedPixelData) throw new ImageDecodeError('corrupt', `The Pixel Data is encapsulated (compressed fragments) although the transfer syntax is ${p.tsName}, which stores it natively`);
  // Frames are contiguous; 1-bit frames need not start on a byte boundary (PS3.5 8.1.1).
  const startBit = frameIndex * frameBits;
  const available = Math.min(pixelEl.length, b.length - pixelEl.dataOffset);
  const needBytes = Math.ceil((startBit + frameBits) / 8);
  if (available < needBytes && pixelEl.dataOffset + pixelEl.length <= b.length) {
    // The element is complete: the header's image size, not the file, is wrong.
    throw new ImageDecodeError('corrupt', `The Pixel Data holds ${pixelEl.length} bytes but ${p.frames > 1 ? `${p.frames} frames of ` : ''}${cols}×${rows} × ${spp} sample${spp > 1 ? 's' : ''} × ${bitsAllocated} bits needs ${needBytes}: Rows, Columns, Number of Frames or Bits Allocated do not match the pixel data (the file is not truncated)`, { available, expected: needBytes });
  }
  if (available < needBytes) {
    throw new ImageDecodeError('truncated', `The DICOM pixel data is truncated: ${available} of ${needBytes} bytes for ${frameIndex + 1 < p.frames || p.frames === 1 ? `a ${cols}×${rows}` : `${p.frames} ${cols}×${rows}`} frame${p.frames > 1 ? 's' : ''}`, { available, expected: needBytes });
  }
  if (bitsAllocated === 1) {
    const out = new Uint8Array(npix);
    for (let i = 0; i < npix; i++) {
      const bit = startBit + i;
      out[i] = (b[pixelEl.dataOffset + (bit >> 3)] >> (bit & 7)) & 1; // PS3.5 D.1: bit 0 first
    }
    return { bytes: out, littleEndian: true };
  }
  const start = pixelEl.dataOffset + startBit / 8;
  let bytes = b.subarray(start, start + frameBits / 8);
  const bigEndian = p.ts === TS_EXPLICIT_BE;
  if (bigEndian && bitsAllocated === 8 && pixelEl.vr === 'OW') {
    // OW is a stream of 16-bit words: under big endian each pair of 8-bit pixels is stored swapped (PS3.5 7.3,
    // 8.1.1). pydicom un-swaps; so must we. OB would be byte order-free.
    const out = new Uint8Array(bytes.length);
    const pairStart = startBit / 8; // frames of odd byte length start mid-word
    for (let i = 0; i < bytes.length; i++) out[i] = b[pixelEl.dataOffset + ((pairStart + i) ^ 1)];
    bytes = out;
    p.notes.push('8-bit pixels in OW under Explicit VR Big Endian: byte pairs swapped back (PS3.5 8.1.1)');
  }
  return { bytes, littleEndian: !bigEndian };
}

/** Unsigned/two's complement stored values from native bytes (BitsStored/HighBit masking, PS3.5 8.1.1). */
function storedFromBytes(p: Prepared, bytes: Uint8Array, littleEndian: boolean, samples: number): Int32Array | Float64Array {
  const { bitsAllocated, bitsStored, highBit, pixelRep } = p;
  const out = bitsAllocated === 32 ? new Float64Array(samples) : new Int32Array(samples);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const shift = highBit + 1 - bitsStored;
  const full = 2 ** bitsStored;
  const signBit = 2 ** (bitsStored - 1);
  for (let i = 0; i < samples; i++) {
    let raw: number;
    if (bitsAllocated <= 8) raw = bytes[i];
    else if (bitsAllocated === 16) raw = dv.getUint16(i * 2, littleEndian);
    else raw = dv.getUint32(i * 4, littleEndian);
    let v = Math.floor(raw / 2 ** shift) % full;
    if (pixelRep === 1 && v >= signBit) v -= full;
    out[i] = v;
  }
  return out;
}

/** Stored values from a codec's samples: masked to BitsStored and sign-extended per Pixel Representation. */
function storedFromCodec(p: Prepared, f: DecodedFrame): Int32Array {
  const n = f.samples.length;
  const out = new Int32Array(n);
  const bits = Math.min(p.bitsStored, 16);
  const full = 2 ** bits;
  const mask = full - 1;
  const signBit = 2 ** (bits - 1);
  const s = f.samples;
  for (let i = 0; i < n; i++) {
    let v = (s[i] & 0xffff) & mask;
    if (p.pixelRep === 1 && v >= signBit) v -= full;
    out[i] = v;
  }
  return out;
}

function clamp255(x: number): number {
  return x < 0 ? 0 : x > 255 ? 255 : x;
}

/**
 * YCbCr (full range, PS3.3 C.7.6.3.1.2 YBR_FULL) → RGB, the way pydicom.pixels.processing.convert_color_space
 * does: float, the ITU-R BT.601 matrix, +0.5 then floor, clipped.
 */
export function ybrFullToRgb(ybr: Uint8Array): Uint8Array {
  const out = new Uint8Array(ybr.length);
  const g1 = (-0.114 * 1.772) / 0.587;
  const g2 = (-0.299 * 1.402) / 0.587;
  for (let i = 0; i < ybr.length; i += 3) {
    const y = Math.fround(ybr[i]);
    const cb = Math.fround(ybr[i + 1] - 128);
    const cr = Math.fround(ybr[i + 2] - 128);
    out[i] = clamp255(Math.floor(Math.fround(y + 1.402 * cr) + 0.5));
    out[i + 1] = clamp255(Math.floor(Math.fround(y + g1 * cb + g2 * cr) + 0.5));
    out[i + 2] = clamp255(Math.floor(Math.fround(y + 1.772 * cb) + 0.5));
  }
  return out;
}

function lumaOf(rgb: Uint8Array, npix: number): Float32Array {
  const px = new Float32Array(npix);
  for (let i = 0; i < npix; i++) px[i] = (rgb[i * 3] * 299 + rgb[i * 3 + 1] * 587 + rgb[i * 3 + 2] * 114) / 1000;
  return px;
}

/** The shared second half: stored values → colour conversion or Modality LUT → presets → DicomImage. */
function finish(p: Prepared, stored: Int32Array | Float64Array, codecFrame?: DecodedFrame): DicomImage {
  const { ds, rows, cols, spp, notes } = p;
  const npix = rows * cols;
  let photometric = p.photometricRaw as Photometric;
  let rgb: Uint8Array | undefined;
  let paletteRgb16: Uint16Array | undefined;
  let pixels: Float32Array;
  let modalityTransform = 'none (colour)';

  if (spp === 3) {
    if (p.bitsStored > 8) throw new ImageDecodeError('unsupported-dicom', `Colour DICOM with ${p.bitsStored} bits per sample is not supported (8)`);
    const interleaved = new Uint8Array(npix * 3);
    const planar = !codecFrame && p.planarConfig === 1;
    if (!codecFrame && photometric === 'YBR_FULL_422' && stored.length === npix * 2) {
      // Native YBR_FULL_422: Y1 Y2 Cb Cr per horizontal pixel pair (PS3.3 C.7.6.3.1.2); chroma repeated.
      for (let r = 0; r < rows; r++) {
        for (let c = 0; c < cols; c += 2) {
          const k = (r * cols + c) * 2;
          const y1 = stored[k], y2 = stored[k + 1], cb = stored[k + 2], cr = stored[k + 3];
          const o = (r * cols + c) * 3;
          interleaved[o] = y1; interleaved[o + 1] = cb; interleaved[o + 2] = cr;
          if (c + 1 < cols) { interleaved[o + 3] = y2; interleaved[o + 4] = cb; interleaved[o + 5] = cr; }
        }
      }
    } else if (planar) {
      for (let i = 0; i < npix; i++) {
        interleaved[i * 3] = stored[i];
        interleaved[i * 3 + 1] = stored[npix + i];
        interleaved[i * 3 + 2] = stored[2 * npix + i];
      }
    } else {
      for (let i = 0; i < npix * 3; i++) interleaved[i] = stored[i];
    }
    if (codecFrame?.colorConvertedToRgb || photometric === 'RGB') {
      rgb = interleaved;
      if (photometric !== 'RGB') notes.push(`Colour decoded to RGB by ${codecFrame?.codec ?? 'the codec'} (the file says ${photometric}, which describes the compressed stream)`);
    } else if (photometric === 'YBR_FULL' || photometric === 'YBR_FULL_422') {
      rgb = ybrFullToRgb(interleaved);
    } else {
      throw new ImageDecodeError('unsupported-dicom', `Colour conversion from ${photometric} is not supported here`);
    }
    pixels = lumaOf(rgb, npix);
  } else if (photometric === 'PALETTE COLOR') {
    // PS3.3 C.7.6.3.1.5-6: descriptor per channel; data plain or segmented (C.7.9.2).
    const signed = p.pixelRep === 1;
    const channel = (descTag: string, dataTag: string, segTag: string): Lut => {
      const d = ds.elements[descTag];
      if (!d) throw new ImageDecodeError('corrupt', 'PALETTE COLOR image without its Palette Color Lookup Table Descriptors');
      const desc: [number, number, number] = [us(ds, descTag, 0)!, us(ds, descTag, 1)!, us(ds, descTag, 2)!];
      const seg = ds.elements[segTag];
      const plain = ds.elements[dataTag];
      if (seg) return makeLut(desc, expandSegmentedLut(words(ds, seg), desc[2]), signed);
      if (plain) return makeLut(desc, words(ds, plain), signed);
      throw new ImageDecodeError('corrupt', 'PALETTE COLOR image without Palette Color Lookup Table Data');
    };
    const luts = [
      channel('x00281101', 'x00281201', 'x00281221'),
      channel('x00281102', 'x00281202', 'x00281222'),
      channel('x00281103', 'x00281203', 'x00281223'),
    ];
    paletteRgb16 = new Uint16Array(npix * 3);
    rgb = new Uint8Array(npix * 3);
    for (let c = 0; c < 3; c++) {
      const lut = luts[c];
      const scale = 255 / (2 ** lut.bits - 1);
      for (let i = 0; i < npix; i++) {
        const v = applyLutOne(lut, stored[i]);
        paletteRgb16[i * 3 + c] = v;
        rgb[i * 3 + c] = Math.round(v * scale);
      }
    }
    if (ds.elements.x00281221) notes.push('Segmented palette colour lookup tables expanded (PS3.3 C.7.9.2)');
    pixels = lumaOf(rgb, npix);
  } else {
    // Modality LUT (PS3.3 C.11.1): the Modality LUT Sequence when present, else Rescale Slope/Intercept.
    const mlutSeq = ds.elements.x00283000?.items?.[0]?.dataSet;
    const mlut = mlutSeq ? lutFrom(mlutSeq, 'x00283002', 'x00283006', p.pixelRep === 1, 'x00283003') : undefined;
    if (mlut) {
      pixels = applyLut(mlut, stored);
      modalityTransform = `Modality LUT Sequence (${mlut.entries} entries from ${mlut.firstMapped}, ${mlut.bits}-bit${mlut.explanation ? `, ${mlut.explanation}` : ''})`;
      if (ds.elements.x00281053 || ds.elements.x00281052) notes.push('The file has both a Modality LUT Sequence and Rescale Slope/Intercept; the LUT is used (PS3.3 C.11.1)');
    } else {
      const slope = num(ds, 'x00281053') ?? 1;
      const intercept = num(ds, 'x00281052') ?? 0;
      pixels = new Float32Array(npix);
      for (let i = 0; i < npix; i++) pixels[i] = stored[i] * slope + intercept;
      modalityTransform = `Rescale ${slope}·x + ${intercept}${str(ds, 'x00281054') ? ` (${str(ds, 'x00281054')})` : ''}`;
    }
  }

  let min = Infinity, max = -Infinity;
  for (let i = 0; i < npix; i++) {
    const v = pixels[i];
    if (v < min) min = v;
    if (v > max) max = v;
  }

  // VOI (PS3.3 C.11.2): VOI LUT Sequence items, then Window Center/Width pairs, then the full range.
  const voiRaw = (str(ds, 'x00281056') ?? 'LINEAR').toUpperCase().trim();
  const voiLutFunction: VoiFunction = voiRaw === 'SIGMOID' || voiRaw === 'LINEAR_EXACT' ? voiRaw : 'LINEAR';
  if (ds.elements.x00281056 && voiRaw !== voiLutFunction) notes.push(`Unknown VOI LUT Function "${voiRaw}"; LINEAR used`);
  const presets: VoiPreset[] = [];
  const grey = !rgb;
  if (grey) {
    const voiItems = ds.elements.x00283010?.items ?? [];
    voiItems.forEach((item, k) => {
      const lut = item.dataSet ? lutFrom(item.dataSet, 'x00283002', 'x00283006', p.pixelRep === 1 && !ds.elements.x00283000, 'x00283003') : undefined;
      if (lut) presets.push({ id: `voi-lut-${k + 1}`, kind: 'lut', lut, source: 'file', label: `VOI LUT ${k + 1}${lut.explanation ? ` (${lut.explanation})` : ''}` });
    });
    const centers = nums(ds, 'x00281050');
    const widths = nums(ds, 'x00281051');
    for (let k = 0; k < Math.min(centers.length, widths.length); k++) {
      const width = widths[k];
      if (!(width > 0) || (voiLutFunction === 'LINEAR' && width < 1)) {
        notes.push(`Window ${k + 1} has width ${width}, which PS3.3 C.11.2.1.2 does not allow; skipped`);
        continue;
      }
      const expl = strAt(ds, 'x00281055', k);
      presets.push({ id: `window-${k + 1}`, kind: 'window', center: centers[k], width, fn: voiLutFunction, source: 'file', label: `Window ${k + 1}${expl ? ` (${expl})` : ''}: C ${fmt(centers[k])} / W ${fmt(width)}` });
    }
  }
  const auto = autoWindow(min, max);
  presets.push({ id: 'full-range', kind: 'window', center: auto.center, width: auto.width, fn: 'LINEAR', source: 'auto', label: `Full range ${fmt(min)}..${fmt(max)}: C ${fmt(auto.center)} / W ${fmt(auto.width)}` });

  // Default: the file's first choice, unless it shows nothing (every pixel on one side of the window).
  let defaultPreset = presets[0];
  if (grey && defaultPreset.source === 'file') {
    const useless = presetShowsNothing(defaultPreset, min, max);
    if (useless) {
      notes.push(`The file's ${defaultPreset.label.split(':')[0]} lies entirely ${useless} the pixel values (${fmt(min)}..${fmt(max)}) and would show a blank image; the full range is shown by default`);
      defaultPreset = presets[presets.length - 1];
    }
  }
  const fileWindow = presets.find((q) => q.kind === 'window' && q.source === 'file') as Extract<VoiPreset, { kind: 'window' }> | undefined;
  const winPreset = defaultPreset.kind === 'window' ? defaultPreset : fileWindow ?? (presets[presets.length - 1] as Extract<VoiPreset, { kind: 'window' }>);
  const window = { center: winPreset.center, width: winPreset.width };
  const windowSource = winPreset.source;

  // Presentation (PS3.3 C.11.6): MONOCHROME1 is displayed inverted; so is Presentation LUT Shape INVERSE.
  const shape = str(ds, 'x20500020')?.toUpperCase().trim();
  let invert = photometric === 'MONOCHROME1';
  if (shape === 'INVERSE' && grey) {
    if (photometric === 'MONOCHROME2') invert = true;
    notes.push(photometric === 'MONOCHROME1' ? 'Presentation LUT Shape INVERSE on MONOCHROME1: displayed inverted once (PS3.3 C.11.6.1)' : 'Presentation LUT Shape INVERSE: displayed inverted');
  }
  if (photometric === 'YBR_RCT' || photometric === 'YBR_ICT') photometric = 'RGB';

  const metadata = collectMetadata(p, voiRaw, shape);
  const identifying: DicomIdentifyingMetadata = {};
  for (const [key, tag] of IDENTIFYING_TAGS) {
    const v = str(ds, tag);
    if (v !== undefined) identifying[key] = v;
  }
  if (codecFrame) notes.push(`Decoded from ${p.tsName} with ${codecFrame.codec}`);
  return {
    width: cols,
    height: rows,
    frames: p.frames,
    frameIndex: p.frameIndex,
    pixels,
    rgb,
    paletteRgb16,
    window,
    windowSource,
    presets,
    defaultPresetId: defaultPreset.id,
    photometric,
    voiLutFunction,
    invert,
    range: { min, max },
    modalityTransform,
    codec: codecFrame?.codec,
    metadata,
    identifying,
    notes,
  };
}

function applyLutOne(lut: Lut, x: number): number {
  let i = x - lut.firstMapped;
  if (i < 0) i = 0;
  else if (i >= lut.entries) i = lut.entries - 1;
  return lut.data[i];
}

function fmt(x: number): string {
  return Number.isInteger(x) ? String(x) : String(Math.round(x * 1000) / 1000);
}

/** 'below'/'above' when every value in [min, max] maps to one end of the preset; undefined when it shows something. */
function presetShowsNothing(q: VoiPreset, min: number, max: number): 'below' | 'above' | undefined {
  if (q.kind === 'lut') return undefined;
  if (q.fn === 'SIGMOID') return undefined;
  const lo = q.fn === 'LINEAR_EXACT' ? q.center - q.width / 2 : q.center - 0.5 - (q.width - 1) / 2;
  const hi = q.fn === 'LINEAR_EXACT' ? q.center + q.width / 2 : q.center - 0.5 + (q.width - 1) / 2;
  if (min > hi) return 'below';
  if (max <= lo) return 'above';
  return undefined;
}

function collectMetadata(p: Prepared, voiRaw: string, shape: string | undefined): DicomPublicMetadata {
  const { ds } = p;
  const metadata: DicomPublicMetadata = {
    TransferSyntaxUID: p.ts,
    TransferSyntaxName: p.tsName,
    Rows: p.rows,
    Columns: p.cols,
    SamplesPerPixel: p.spp,
    PhotometricInterpretation: p.photometricRaw,
    BitsAllocated: p.bitsAllocated,
    BitsStored: p.bitsStored,
    HighBit: p.highBit,
    PixelRepresentation: p.pixelRep,
    NumberOfFrames: p.frames,
    RescaleSlope: num(ds, 'x00281053') ?? 1,
    RescaleIntercept: num(ds, 'x00281052') ?? 0,
  };
  for (const [key, tag] of PUBLIC_STRING_TAGS) {
    const v = str(ds, tag);
    if (v !== undefined) (metadata as unknown as Record<string, unknown>)[key] = v;
  }
  const ps = ds2(ds, 'x00280030');
  if (ps) metadata.PixelSpacing = ps;
  const ips = ds2(ds, 'x00181164');
  if (ips) metadata.ImagerPixelSpacing = ips;
  const wc = num(ds, 'x00281050');
  const ww = num(ds, 'x00281051');
  if (wc !== undefined) metadata.WindowCenter = wc;
  if (ww !== undefined) metadata.WindowWidth = ww;
  if (ds.elements.x00281056) metadata.VOILUTFunction = voiRaw;
  if (shape) metadata.PresentationLUTShape = shape;
  if (p.spp === 3) metadata.PlanarConfiguration = p.planarConfig;
  return metadata;
}

function encodedInfo(p: Prepared): EncodedFrameInfo {
  return { rows: p.rows, columns: p.cols, samplesPerPixel: p.spp, bitsAllocated: p.bitsAllocated, bitsStored: p.bitsStored, pixelRepresentation: p.pixelRep };
}

function checkCodecFrame(p: Prepared, f: DecodedFrame): void {
  if (f.width === 0 || f.height === 0 || f.samples.length === 0) {
    throw new ImageDecodeError('corrupt', `The ${p.tsName} frame could not be decoded by ${f.codec}: it yields no image (the codestream is damaged or not ${p.tsName})`, { transferSyntaxUID: p.ts, codec: f.codec });
  }
  if (f.width !== p.cols || f.height !== p.rows) {
    throw new ImageDecodeError('corrupt', `The compressed frame is ${f.width}×${f.height} but the DICOM header says ${p.cols}×${p.rows}`);
  }
  if (f.samplesPerPixel !== p.spp) {
    throw new ImageDecodeError('corrupt', `The compressed frame has ${f.samplesPerPixel} components but the DICOM header says ${p.spp} samples per pixel`);
  }
}

/**
 * Decode one frame of a DICOM file whose pixels need no codec package (native, deflated, RLE, encapsulated
 * uncompressed), or whose frame `opts.decodedFrame` already holds. Throws ImageDecodeError: 'unsupported-transfer-
 * syntax' (naming the syntax; for codec syntaxes without decodedFrame, use decodeDicomAsync), 'unsupported-dicom',
 * 'no-pixel-data', 'truncated', 'corrupt', 'too-large', 'empty'.
 */
export function decodeDicom(bytes: Uint8Array, opts: DecodeDicomOptions = {}): DicomImage {
  return decodePrepared(prepare(bytes, opts), opts);
}

function decodePrepared(p: Prepared, opts: DecodeDicomOptions): DicomImage {
  if (opts.decodedFrame) {
    checkCodecFrame(p, opts.decodedFrame);
    return finish(p, storedFromCodec(p, opts.decodedFrame), opts.decodedFrame);
  }
  if (CODEC_SYNTAXES[p.ts]) {
    throw new ImageDecodeError('unsupported-transfer-syntax', `${p.tsName} (transfer syntax ${p.ts}) needs a codec: decode with decodeDicomAsync`, { transferSyntaxUID: p.ts, transferSyntaxName: p.tsName, needsCodec: true });
  }
  const npix = p.rows * p.cols;
  if (p.ts === TS_RLE) {
    if (!p.pixelEl.encapsulatedPixelData) throw new ImageDecodeError('corrupt', 'RLE transfer syntax but the Pixel Data is not encapsulated');
    const frame = encapsulatedFrame(p.ds, p.pixelEl, p.frameIndex, p.frames, p.notes);
    const bytesPerSample = p.bitsAllocated / 8;
    if (!Number.isInteger(bytesPerSample)) throw new ImageDecodeError('unsupported-dicom', 'RLE with 1-bit pixels is not supported');
    const planes = decodeRleFrame(frame, npix);
    const le = rlePlanesToSamples(planes, npix, p.spp, bytesPerSample);
    // RLE colour is always colour-by-plane in segments; rlePlanesToSamples interleaves it, so ignore Planar Configuration.
    return finish({ ...p, planarConfig: 0 }, storedFromBytes(p, le, true, npix * p.spp));
  }
  const { bytes: raw, littleEndian } = nativeFrameBytes(p);
  const samples = p.photometricRaw === 'YBR_FULL_422' && p.spp === 3 ? npix * 2 : npix * p.spp;
  if (p.photometricRaw === 'YBR_FULL_422' && raw.length < samples * (p.bitsAllocated / 8)) {
    throw new ImageDecodeError('truncated', 'The YBR_FULL_422 pixel data is shorter than its frame');
  }
  const stored = p.bitsAllocated === 1 ? Int32Array.from(raw) : storedFromBytes(p, raw, littleEndian, samples);
  return finish(p, stored);
}

/**
 * Decode one frame of any supported DICOM file, running the transfer syntax's codec package (./codecs) when it
 * needs one. Same errors as decodeDicom; a codec failure becomes 'corrupt' naming the codec and its message.
 */
export async function decodeDicomAsync(bytes: Uint8Array, opts: DecodeDicomAsyncOptions): Promise<DicomImage> {
  const p = prepare(bytes, opts);
  if (!CODEC_SYNTAXES[p.ts]) return decodePrepared(p, opts);
  // Loaded on first use: the codec glue (and, through it, the wasm) only where a compressed file is decoded.
  const { CODEC_FOR_SYNTAX } = await import('./codecs/index');
  const entry = CODEC_FOR_SYNTAX[p.ts];
  if (!p.pixelEl.encapsulatedPixelData) throw new ImageDecodeError('corrupt', `${p.tsName} requires encapsulated Pixel Data, but this file's is native`);
  const frame = encapsulatedFrame(p.ds, p.pixelEl, p.frameIndex, p.frames, p.notes);
  const info = encodedInfo(p);
  const codec = entry.pick(info);
  let decoded: DecodedFrame;
  try {
    decoded = await codec.decode(frame, info, opts.loadWasm);
  } catch (e) {
    if (e instanceof ImageDecodeError) throw e;
    throw new ImageDecodeError('corrupt', `The ${p.tsName} frame could not be decoded by ${codec.packageName}: ${errorText(e)}`, { transferSyntaxUID: p.ts, codec: codec.packageName }, { cause: e });
  }
  checkCodecFrame(p, decoded);
  return finish(p, storedFromCodec(p, decoded), decoded);
}

/**
 * The window that, under the DICOM LINEAR function (PS3.3 C.11.2.1.2.1), maps `min` to black and `max` to white:
 * c − 0.5 − (w−1)/2 = min and c − 0.5 + (w−1)/2 = max, i.e. w = max − min + 1, c = min + w/2.
 * For an 8-bit image spanning 0..255 this is the classic c=128, w=256.
 */
export function autoWindow(min: number, max: number): DicomWindow {
  if (!Number.isFinite(min) || !Number.isFinite(max) || max < min) return { center: 0.5, width: 1 };
  const width = max - min + 1;
  return { center: min + width / 2, width };
}
