/**
 * DICOM (PS3.10 files, with or without the 128-byte preamble) → modality-valued float pixels + separated metadata.
 *
 * Parsing is done by dicom-parser; this module adds transfer-syntax policy, pixel unpacking (8/16/32-bit,
 * BitsStored/HighBit masking, signed), Modality LUT (RescaleSlope/Intercept), VOI window defaults, RLE Lossless
 * decompression, and a split of public vs identifying attributes so the UI can hide PHI unless asked.
 */
import * as dicomParserNs from 'dicom-parser';
import type { DataSet, Element } from 'dicom-parser';
import { inflateSync } from 'fflate';
import { ImageDecodeError } from './errors';

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
};

export const TS_IMPLICIT_LE = '1.2.840.10008.1.2';
export const TS_EXPLICIT_LE = '1.2.840.10008.1.2.1';
export const TS_DEFLATED_LE = '1.2.840.10008.1.2.1.99';
export const TS_EXPLICIT_BE = '1.2.840.10008.1.2.2';
export const TS_RLE = '1.2.840.10008.1.2.5';

/** Transfer syntaxes whose pixels this module decodes. */
export const SUPPORTED_TRANSFER_SYNTAXES = [TS_IMPLICIT_LE, TS_EXPLICIT_LE, TS_DEFLATED_LE, TS_EXPLICIT_BE, TS_RLE] as const;

export type Photometric = 'MONOCHROME1' | 'MONOCHROME2' | 'RGB' | 'YBR_FULL';

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

export interface DicomImage {
  width: number;
  height: number;
  /** Modality values (after RescaleSlope/Intercept), one per pixel, row-major. For RGB: ITU-R 601 luma. */
  pixels: Float32Array;
  /** Interleaved 8-bit RGB, only for SamplesPerPixel 3. */
  rgb?: Uint8Array;
  /** Window to display with: from the file (first value when multi-valued), else min/max of the pixels. */
  window: DicomWindow;
  windowSource: 'file' | 'auto';
  photometric: Photometric;
  /** 'LINEAR' (default), 'LINEAR_EXACT' or 'SIGMOID'. */
  voiLutFunction: 'LINEAR' | 'LINEAR_EXACT' | 'SIGMOID';
  /** Minimum and maximum of `pixels`. */
  range: { min: number; max: number };
  metadata: DicomPublicMetadata;
  identifying: DicomIdentifyingMetadata;
  /** Things the user should know, e.g. "multi-frame (12 frames): showing frame 1". */
  notes: string[];
}

export interface DecodeDicomOptions {
  /** Refuse images with more pixels than this (rows × columns); default 100 MP. */
  maxPixels?: number;
  /**
   * The first frame of an encapsulated 8-bit JPEG (baseline / extended) file, already decoded by a platform codec
   * (createImageBitmap in browsers, jpeg-js in Node) as RGBA. See extractEncapsulatedFrame and decodeImageFile.
   */
  decodedFrame?: { width: number; height: number; data: Uint8ClampedArray | Uint8Array };
}

/** Encapsulated syntaxes whose frames are ordinary 8-bit JPEG streams that platform image decoders can read. */
export const PLATFORM_JPEG_SYNTAXES: readonly string[] = ['1.2.840.10008.1.2.4.50', '1.2.840.10008.1.2.4.51'];

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

/** Parse with dicom-parser, handling preamble-less files and deflate (via fflate, no zlib/pako needed). */
export function parseDicomBytes(bytes: Uint8Array): DataSet {
  let input = bytes;
  const options: dicomParserNs.ParseDicomOptions = {
    inflater: ((arr: Uint8Array, position: number) => {
      const inflated = inflateSync(arr.subarray(position));
      const full = new Uint8Array(position + inflated.length);
      full.set(arr.subarray(0, position), 0);
      full.set(inflated, position);
      return full;
    }) as unknown as dicomParserNs.ParseDicomOptions['inflater'],
  };
  const hasPreamble = bytes.length >= 132 && bytes[128] === 0x44 && bytes[129] === 0x49 && bytes[130] === 0x43 && bytes[131] === 0x4d;
  if (!hasPreamble) {
    const group = bytes.length >= 2 ? bytes[0] | (bytes[1] << 8) : -1;
    if (group === 0x0002) {
      // Meta header without preamble: add the 128-byte preamble and 'DICM' that dicom-parser expects.
      input = new Uint8Array(132 + bytes.length);
      input.set([0x44, 0x49, 0x43, 0x4d], 128);
      input.set(bytes, 132);
    } else {
      // No meta header at all: a bare data set. Guess explicit vs implicit VR little endian from bytes 4–5.
      const explicit = bytes.length >= 6 && isUpper(bytes[4]) && isUpper(bytes[5]);
      options.TransferSyntaxUID = explicit ? TS_EXPLICIT_LE : TS_IMPLICIT_LE;
    }
  }
  try {
    return dicomParser.parseDicom(input, options);
  } catch (e) {
    const msg = errorText(e);
    const partial = (e as { dataSet?: DataSet })?.dataSet;
    if (/overread|exceed|beyond|end of buffer|buffer/i.test(msg)) {
      throw new ImageDecodeError('truncated', 'The DICOM file is truncated (it ends in the middle of an element)', { parserMessage: msg, partial: !!partial }, { cause: e });
    }
    throw new ImageDecodeError('corrupt', `The DICOM file could not be parsed: ${msg}`, { parserMessage: msg }, { cause: e });
  }
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

function ds2(ds: DataSet, tag: string): [number, number] | undefined {
  const el = ds.elements[tag];
  if (!el || el.length === 0) return undefined;
  const a = ds.floatString(tag, 0);
  const b = ds.floatString(tag, 1);
  if (a === undefined || Number.isNaN(a)) return undefined;
  return [a, b === undefined || Number.isNaN(b) ? a : b];
}

function num(ds: DataSet, tag: string): number | undefined {
  const el = ds.elements[tag];
  if (!el || el.length === 0) return undefined;
  const v = ds.floatString(tag, 0);
  return v === undefined || Number.isNaN(v) ? undefined : v;
}

function us(ds: DataSet, tag: string): number | undefined {
  const el = ds.elements[tag];
  if (!el || el.length < 2) return undefined;
  return ds.uint16(tag);
}

/**
 * The compressed bytes of the first frame of an encapsulated DICOM (for codecs outside this module), with its
 * transfer syntax. Throws ImageDecodeError when the pixel data is not encapsulated.
 */
export function extractEncapsulatedFrame(bytes: Uint8Array): { transferSyntaxUID: string; frame: Uint8Array } {
  const ds = parseDicomBytes(bytes);
  const ts = (str(ds, 'x00020010') ?? TS_IMPLICIT_LE).replace(/\0/g, '').trim();
  const el = ds.elements.x7fe00010;
  if (!el) throw new ImageDecodeError('no-pixel-data');
  if (!el.encapsulatedPixelData) throw new ImageDecodeError('corrupt', 'The DICOM pixel data is not encapsulated');
  const frames = Math.max(1, Math.round(num(ds, 'x00280008') ?? 1));
  try {
    const frame = (frames === 1 && (!el.basicOffsetTable || el.basicOffsetTable.length === 0)
      ? dicomParser.readEncapsulatedPixelDataFromFragments(ds, el, 0, el.fragments?.length ?? 1)
      : dicomParser.readEncapsulatedPixelData(ds, el, 0)) as Uint8Array;
    return { transferSyntaxUID: ts, frame: new Uint8Array(frame.buffer, frame.byteOffset, frame.byteLength) };
  } catch (e) {
    throw new ImageDecodeError('corrupt', `The encapsulated pixel data could not be read: ${errorText(e)}`, undefined, { cause: e });
  }
}

/** Decode RLE Lossless (PS3.5 Annex G) frame bytes into `segments` byte planes. */
export function decodeRleFrame(frame: Uint8Array, planeLength: number): Uint8Array[] {
  if (frame.length < 64) throw new ImageDecodeError('corrupt', 'The RLE frame is shorter than its 64-byte header');
  const dv = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  const n = dv.getUint32(0, true);
  if (n < 1 || n > 15) throw new ImageDecodeError('corrupt', `The RLE header declares ${n} segments`);
  const offsets: number[] = [];
  for (let i = 0; i < n; i++) offsets.push(dv.getUint32(4 + 4 * i, true));
  const planes: Uint8Array[] = [];
  for (let s = 0; s < n; s++) {
    const start = offsets[s];
    const end = s + 1 < n ? offsets[s + 1] : frame.length;
    const out = new Uint8Array(planeLength);
    let i = start;
    let o = 0;
    while (i < end && o < planeLength) {
      const h = (frame[i++] << 24) >> 24; // int8
      if (h >= 0) {
        const count = Math.min(h + 1, planeLength - o, end - i);
        out.set(frame.subarray(i, i + count), o);
        i += h + 1;
        o += count;
      } else if (h !== -128) {
        const count = Math.min(1 - h, planeLength - o);
        out.fill(frame[i++], o, o + count);
        o += count;
      }
    }
    if (o < planeLength) throw new ImageDecodeError('truncated', 'The RLE-compressed pixel data is truncated');
    planes.push(out);
  }
  return planes;
}

/**
 * Decode a DICOM file's first frame. Throws ImageDecodeError with codes 'unsupported-transfer-syntax' (naming the
 * syntax), 'unsupported-dicom', 'no-pixel-data', 'truncated', 'corrupt' or 'too-large'.
 */
export function decodeDicom(bytes: Uint8Array, opts: DecodeDicomOptions = {}): DicomImage {
  if (bytes.length === 0) throw new ImageDecodeError('empty');
  const ds = parseDicomBytes(bytes);
  const tsRaw = str(ds, 'x00020010') ?? (ds.elements.x00020010 as Element & { Value?: string })?.Value ?? TS_IMPLICIT_LE;
  const ts = tsRaw.replace(/\0/g, '').trim();
  const tsName = TRANSFER_SYNTAXES[ts] ?? 'unknown transfer syntax';

  const pixelEl = ds.elements.x7fe00010;
  if (!pixelEl) throw new ImageDecodeError('no-pixel-data', 'This DICOM file has no image (no Pixel Data element); it may be a report or a structured document');

  const platformJpeg = !!opts.decodedFrame && PLATFORM_JPEG_SYNTAXES.includes(ts);
  if (!(SUPPORTED_TRANSFER_SYNTAXES as readonly string[]).includes(ts) && !platformJpeg) {
    throw new ImageDecodeError(
      'unsupported-transfer-syntax',
      `This DICOM file is compressed with ${tsName} (transfer syntax ${ts}), which cannot be decoded here. Convert it to uncompressed (Explicit VR Little Endian) first, e.g. with dcmtk: dcmdjpeg / gdcmconv --raw.`,
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
  let bitsAllocated = us(ds, 'x00280100') ?? 16;
  let bitsStored = us(ds, 'x00280101') ?? bitsAllocated;
  let highBit = us(ds, 'x00280102') ?? bitsStored - 1;
  let pixelRep = us(ds, 'x00280103') ?? 0;
  let photometricRaw = (str(ds, 'x00280004') ?? (spp === 3 ? 'RGB' : 'MONOCHROME2')).toUpperCase();
  if (platformJpeg) {
    if (bitsStored > 8) {
      throw new ImageDecodeError('unsupported-transfer-syntax', `This DICOM file holds ${bitsStored}-bit ${tsName} data (transfer syntax ${ts}), which browsers' JPEG decoders cannot read. Convert it to uncompressed first.`, { transferSyntaxUID: ts, transferSyntaxName: tsName });
    }
    // The codec returns 8-bit samples; colour JPEGs come back as RGB whatever the declared YBR variant.
    bitsAllocated = 8;
    bitsStored = 8;
    highBit = 7;
    pixelRep = 0;
    if (spp === 3) photometricRaw = 'RGB';
  }
  const planarConfig = us(ds, 'x00280006') ?? 0;
  const frames = Math.max(1, Math.round(num(ds, 'x00280008') ?? 1));
  const notes: string[] = [];
  if (frames > 1) notes.push(`Multi-frame image (${frames} frames): showing frame 1`);

  let photometric: Photometric;
  if (spp === 1) {
    if (photometricRaw !== 'MONOCHROME1' && photometricRaw !== 'MONOCHROME2') {
      throw new ImageDecodeError('unsupported-dicom', `Photometric interpretation ${photometricRaw} with one sample per pixel is not supported (PALETTE COLOR images are not chest radiographs)`, { photometric: photometricRaw });
    }
    photometric = photometricRaw;
  } else if (spp === 3) {
    if (photometricRaw !== 'RGB' && photometricRaw !== 'YBR_FULL') {
      throw new ImageDecodeError('unsupported-dicom', `Colour DICOM with photometric interpretation ${photometricRaw} is not supported (only RGB and YBR_FULL)`, { photometric: photometricRaw });
    }
    if (bitsAllocated !== 8) throw new ImageDecodeError('unsupported-dicom', `Colour DICOM with ${bitsAllocated} bits per sample is not supported (only 8)`);
    photometric = photometricRaw;
  } else {
    throw new ImageDecodeError('unsupported-dicom', `DICOM with ${spp} samples per pixel is not supported`);
  }
  if (![8, 16, 32].includes(bitsAllocated)) {
    throw new ImageDecodeError('unsupported-dicom', `DICOM with ${bitsAllocated} bits allocated is not supported (8, 16 or 32)`);
  }
  if (bitsStored < 1 || bitsStored > bitsAllocated || highBit < bitsStored - 1 || highBit >= bitsAllocated) {
    throw new ImageDecodeError('corrupt', `Inconsistent pixel description: BitsAllocated ${bitsAllocated}, BitsStored ${bitsStored}, HighBit ${highBit}`);
  }

  const npix = rows * cols;
  const bytesPerSample = bitsAllocated / 8;
  const frameBytes = npix * spp * bytesPerSample;
  const byteArray = ds.byteArray as Uint8Array;
  let frame: Uint8Array;
  let littleEndian = ts !== TS_EXPLICIT_BE;

  if (platformJpeg) {
    const f = opts.decodedFrame!;
    if (f.width !== cols || f.height !== rows) throw new ImageDecodeError('corrupt', `The embedded JPEG is ${f.width}×${f.height} but the DICOM header says ${cols}×${rows}`);
    frame = new Uint8Array(npix * spp);
    for (let p = 0; p < npix; p++) for (let c = 0; c < spp; c++) frame[p * spp + c] = f.data[p * 4 + c];
    notes.push(`Decoded from ${tsName} with the platform JPEG decoder`);
  } else if (ts === TS_RLE) {
    if (!pixelEl.encapsulatedPixelData) throw new ImageDecodeError('corrupt', 'RLE transfer syntax but the pixel data is not encapsulated');
    let rle: Uint8Array;
    try {
      rle = (frames === 1 && (!pixelEl.basicOffsetTable || pixelEl.basicOffsetTable.length === 0)
        ? dicomParser.readEncapsulatedPixelDataFromFragments(ds, pixelEl, 0, pixelEl.fragments?.length ?? 1)
        : dicomParser.readEncapsulatedPixelData(ds, pixelEl, 0)) as Uint8Array;
    } catch (e) {
      throw new ImageDecodeError('corrupt', `The RLE pixel data could not be read: ${errorText(e)}`, undefined, { cause: e });
    }
    const planes = decodeRleFrame(rle, npix);
    const expected = spp * bytesPerSample;
    if (planes.length !== expected) throw new ImageDecodeError('corrupt', `RLE frame has ${planes.length} segments, expected ${expected}`);
    // Segments are byte planes, most significant byte first, per sample; rebuild little-endian interleaved samples.
    frame = new Uint8Array(frameBytes);
    for (let s = 0; s < spp; s++) {
      for (let b = 0; b < bytesPerSample; b++) {
        const plane = planes[s * bytesPerSample + b];
        const byteIndex = bytesPerSample - 1 - b; // little-endian position of this significance
        for (let p = 0; p < npix; p++) frame[(p * spp + s) * bytesPerSample + byteIndex] = plane[p];
      }
    }
    littleEndian = true;
  } else {
    if (pixelEl.encapsulatedPixelData) throw new ImageDecodeError('corrupt', `Encapsulated pixel data in a native transfer syntax (${tsName})`);
    const available = Math.min(pixelEl.length, byteArray.length - pixelEl.dataOffset);
    if (available < frameBytes) {
      throw new ImageDecodeError('truncated', `The DICOM pixel data is truncated: ${available} of ${frameBytes} bytes for a ${cols}×${rows} image`, { available, expected: frameBytes });
    }
    frame = byteArray.subarray(pixelEl.dataOffset, pixelEl.dataOffset + frameBytes);
  }

  const slope = num(ds, 'x00281053') ?? 1;
  const intercept = num(ds, 'x00281052') ?? 0;
  const pixels = new Float32Array(npix);
  let rgb: Uint8Array | undefined;

  if (spp === 3) {
    rgb = new Uint8Array(npix * 3);
    if (planarConfig === 1) {
      for (let p = 0; p < npix; p++) {
        rgb[p * 3] = frame[p];
        rgb[p * 3 + 1] = frame[npix + p];
        rgb[p * 3 + 2] = frame[2 * npix + p];
      }
    } else {
      rgb.set(frame.subarray(0, npix * 3));
    }
    if (photometric === 'YBR_FULL') {
      for (let p = 0; p < npix * 3; p += 3) {
        const y = rgb[p], cb = rgb[p + 1] - 128, cr = rgb[p + 2] - 128;
        rgb[p] = Math.max(0, Math.min(255, Math.round(y + 1.402 * cr)));
        rgb[p + 1] = Math.max(0, Math.min(255, Math.round(y - 0.344136 * cb - 0.714136 * cr)));
        rgb[p + 2] = Math.max(0, Math.min(255, Math.round(y + 1.772 * cb)));
      }
    }
    for (let p = 0; p < npix; p++) pixels[p] = (rgb[p * 3] * 299 + rgb[p * 3 + 1] * 587 + rgb[p * 3 + 2] * 114) / 1000;
  } else {
    const dv = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
    const shift = highBit + 1 - bitsStored;
    const signBit = 2 ** (bitsStored - 1);
    const full = 2 ** bitsStored;
    const mask = full - 1;
    for (let p = 0; p < npix; p++) {
      let raw: number;
      if (bitsAllocated === 8) raw = frame[p];
      else if (bitsAllocated === 16) raw = dv.getUint16(p * 2, littleEndian);
      else raw = dv.getUint32(p * 4, littleEndian);
      let v = bitsStored === 32 ? raw >>> shift : Math.floor(raw / 2 ** shift) % full;
      if (bitsStored < 32) v = v & mask;
      if (pixelRep === 1 && v >= signBit) v -= full;
      pixels[p] = v * slope + intercept;
    }
  }

  let min = Infinity, max = -Infinity;
  for (let p = 0; p < npix; p++) {
    const v = pixels[p];
    if (v < min) min = v;
    if (v > max) max = v;
  }

  const wc = num(ds, 'x00281050');
  const ww = num(ds, 'x00281051');
  let window: DicomWindow;
  let windowSource: 'file' | 'auto';
  if (spp === 1 && wc !== undefined && ww !== undefined && ww > 0) {
    window = { center: wc, width: ww };
    windowSource = 'file';
  } else {
    window = autoWindow(min, max);
    windowSource = 'auto';
  }
  const voiRaw = (str(ds, 'x00281056') ?? 'LINEAR').toUpperCase();
  const voiLutFunction = voiRaw === 'SIGMOID' || voiRaw === 'LINEAR_EXACT' ? voiRaw : 'LINEAR';

  const metadata: DicomPublicMetadata = {
    TransferSyntaxUID: ts,
    TransferSyntaxName: tsName,
    Rows: rows,
    Columns: cols,
    SamplesPerPixel: spp,
    PhotometricInterpretation: photometricRaw,
    BitsAllocated: bitsAllocated,
    BitsStored: bitsStored,
    HighBit: highBit,
    PixelRepresentation: pixelRep,
    NumberOfFrames: frames,
    RescaleSlope: slope,
    RescaleIntercept: intercept,
  };
  for (const [key, tag] of PUBLIC_STRING_TAGS) {
    const v = str(ds, tag);
    if (v !== undefined) (metadata as unknown as Record<string, unknown>)[key] = v;
  }
  const ps = ds2(ds, 'x00280030');
  if (ps) metadata.PixelSpacing = ps;
  const ips = ds2(ds, 'x00181164');
  if (ips) metadata.ImagerPixelSpacing = ips;
  if (wc !== undefined) metadata.WindowCenter = wc;
  if (ww !== undefined) metadata.WindowWidth = ww;
  if (ds.elements.x00281056) metadata.VOILUTFunction = voiRaw;

  const identifying: DicomIdentifyingMetadata = {};
  for (const [key, tag] of IDENTIFYING_TAGS) {
    const v = str(ds, tag);
    if (v !== undefined) identifying[key] = v;
  }
  if (ds.elements.x00283010) notes.push('The file has a VOI LUT Sequence; a linear window is used instead');
  if (ds.elements.x00283000) notes.push('The file has a Modality LUT Sequence; RescaleSlope/Intercept (or identity) is used instead');

  return {
    width: cols,
    height: rows,
    pixels,
    rgb,
    window,
    windowSource,
    photometric,
    voiLutFunction,
    range: { min, max },
    metadata,
    identifying,
    notes,
  };
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
