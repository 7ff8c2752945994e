/**
 * DICOM (PS3.10 files, with or without the 128-byte preamble) → one frame of modality values, its display
 * transforms and separated metadata: the pixel pipeline of PS3.3 C.11, shared by the app, the CLI and the tests.
 *
 * Parsing is dicom-parser's, made lenient where pydicom is (./dicom-parse); deflate is fflate's; compressed
 * frames go to one codec package each (./codecs); RLE (PS3.5 Annex G), native unpacking (BitsAllocated 1/8/16/32,
 * BitsStored/HighBit masking, two's complement, big endian incl. 8-bit OW), YBR_FULL/YBR_FULL_422, PALETTE COLOR
 * (incl. segmented), Modality LUT Sequence / Rescale, VOI LUT Sequence / windows with the LINEAR, LINEAR_EXACT and
 * SIGMOID functions, MONOCHROME1 and Presentation LUT Shape are here.
 */
import type { DataSet, Element } from 'dicom-parser';
import { ImageDecodeError } from './errors';
import { CODEC_SYNTAXES, REFUSED_SYNTAXES } from './codecs/syntaxes';
import { decodeRleFrame, rlePlanesToSamples } from './codecs/rle';
import type { DecodedFrame, EncodedFrameInfo, WasmBinaryLoader } from './codecs/types';
import { applyLut, expandSegmentedLut, makeLut, type Lut } from './lut';
import { ds2, encapsulatedFrame, errorText, lutFrom, num, nums, parseDicomLenient, str, strAt, transferSyntaxOf, us, words } from './dicom-parse';
import { SUPPORTED_TRANSFER_SYNTAXES, TRANSFER_SYNTAXES, TS_ENCAPSULATED_UNCOMPRESSED, TS_EXPLICIT_BE, TS_RLE } from './transfer-syntaxes';

export * from './transfer-syntaxes';
export { parseDicomLenient, type ParsedDicom } from './dicom-parse';

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
  /** Minimum and maximum of `pixels`, padding (Pixel Padding Value) left out. */
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
  const shift = highBit + 1 - bitsStored;
  if (bitsAllocated === 32) {
    // 32-bit words do not fit int32 bit operations when unsigned: float arithmetic
    const out = new Float64Array(samples);
    const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const full = 2 ** bitsStored;
    for (let i = 0; i < samples; i++) {
      let v = Math.floor(dv.getUint32(i * 4, littleEndian) / 2 ** shift) % full;
      if (pixelRep === 1 && v >= full / 2) v -= full;
      out[i] = v;
    }
    return out;
  }
  const out = new Int32Array(samples);
  const mask = bitsStored === 32 ? -1 : (1 << bitsStored) - 1;
  const ext = 32 - bitsStored; // sign extension by shifting the sign bit to bit 31 and back
  if (bitsAllocated <= 8) {
    for (let i = 0; i < samples; i++) out[i] = (bytes[i] >>> shift) & mask;
  } else if (littleEndian) {
    for (let i = 0, j = 0; i < samples; i++, j += 2) out[i] = ((bytes[j] | (bytes[j + 1] << 8)) >>> shift) & mask;
  } else {
    for (let i = 0, j = 0; i < samples; i++, j += 2) out[i] = (((bytes[j] << 8) | bytes[j + 1]) >>> shift) & mask;
  }
  if (pixelRep === 1) for (let i = 0; i < samples; i++) out[i] = (out[i] << ext) >> ext;
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

  // Pixel Padding Value / Range Limit (PS3.3 C.7.5.1.1.2): stored values that are not part of the image (the area
  // outside a CR/DX collimation); left out of the full range, so the default display is not flattened by them.
  const padding = !rgb ? paddingRange(ds, p.pixelRep === 1) : undefined;
  let min = Infinity, max = -Infinity;
  let padded = 0;
  for (let i = 0; i < npix; i++) {
    if (padding && stored[i] >= padding[0] && stored[i] <= padding[1]) {
      padded++;
      continue;
    }
    const v = pixels[i];
    if (v < min) min = v;
    if (v > max) max = v;
  }
  if (padding && padded > 0) {
    if (padded === npix) {
      // everything is padding: fall back to all values rather than show nothing
      for (let i = 0; i < npix; i++) {
        min = Math.min(min, pixels[i]);
        max = Math.max(max, pixels[i]);
      }
    }
    notes.push(`${padded} pixels are padding (Pixel Padding Value ${padding[0] === padding[1] ? padding[0] : `${padding[0]}..${padding[1]}`}); the full range leaves them out`);
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
  // PS3.3 C.7.6.1.1.5: the image has been lossy-compressed at some point (maybe before this file's syntax)
  if (str(ds, 'x00282110')?.trim() === '01') {
    const method = str(ds, 'x00282114');
    const ratio = str(ds, 'x00282112');
    notes.push(`Lossy Image Compression: this image has been lossy-compressed${method ? ` (${method.replace(/\\/g, ', ')})` : ''}${ratio ? `, ratio ${ratio.replace(/\\/g, ', ')}:1` : ''}`);
  }
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

/** [lo, hi] of stored values that are padding, from Pixel Padding Value and Pixel Padding Range Limit. */
function paddingRange(ds: DataSet, signed: boolean): [number, number] | undefined {
  const a = us(ds, 'x00280120');
  if (a === undefined) return undefined;
  const b = us(ds, 'x00280121') ?? a;
  const sv = (x: number) => (signed && x > 32767 ? x - 65536 : x); // US or SS, as Pixel Representation says
  const [lo, hi] = [sv(a), sv(b)];
  return lo <= hi ? [lo, hi] : [hi, lo];
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
