/**
 * The first half of the DICOM pixel pipeline: the Image Pixel module read and checked (PS3.3 C.7.6.3), one frame's
 * bytes found (native or encapsulated) and unpacked into stored values (PS3.5 8.1.1), codec output checked against
 * the header.
 */
import type { DataSet, Element } from 'dicom-parser';
import { ImageDecodeError } from './errors';
import { REFUSED_SYNTAXES } from './codecs/syntaxes';
import type { DecodedFrame, EncodedFrameInfo } from './codecs/types';
import { encapsulatedFrame, num, parseDicomLenient, str, transferSyntaxOf, us } from './dicom-parse';
import type { DecodeDicomOptions } from './dicom-types';
import { SUPPORTED_TRANSFER_SYNTAXES, TRANSFER_SYNTAXES, TS_ENCAPSULATED_UNCOMPRESSED, TS_EXPLICIT_BE } from './transfer-syntaxes';

/** The image attributes of the Image Pixel module (PS3.3 C.7.6.3) and what the pipeline derives from them. */
export interface Prepared {
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
  /** Frames that exist in the Pixel Data (Number of Frames, unless the Pixel Data holds fewer). */
  frames: number;
  /** Number of Frames (0028,0008) as the header says. */
  declaredFrames: number;
  frameIndex: number;
  notes: string[];
}

export function prepare(bytes: Uint8Array, opts: DecodeDicomOptions): Prepared {
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
  const declared = num(ds, 'x00280008') ?? 1;
  const declaredFrames = Number.isFinite(declared) ? Math.max(1, Math.round(declared)) : Number.MAX_SAFE_INTEGER;
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
  const frames = framesPresent(ds, pixelEl, ts, declaredFrames, rows * cols * (spp === 3 && photometricRaw === 'YBR_FULL_422' ? 2 : spp) * bitsAllocated, notes);
  const frameIndex = opts.frame ?? 0;
  if (!Number.isInteger(frameIndex) || frameIndex < 0 || frameIndex >= frames) {
    throw new ImageDecodeError('corrupt', `Frame ${frameIndex + 1} was asked for, but the file has ${frames} frame${frames === 1 ? '' : 's'}`);
  }
  if (frames > 1) notes.push(`Frame ${frameIndex + 1} of ${frames}`);
  return { ds, ts, tsName, pixelEl, rows, cols, spp, bitsAllocated, bitsStored, highBit, pixelRep, photometricRaw, planarConfig, frames, declaredFrames, frameIndex, notes };
}

/**
 * Number of Frames checked against the Pixel Data BEFORE any frame is planned: native frames are contiguous, so the
 * element's length says how many exist; an encapsulated frame takes at least one fragment (PS3.5 A.4), or one
 * Extended Offset Table entry. When the header declares more than exist (and at least one does), the frames that
 * exist are what the file has, with a note saying the header lies; pydicom refuses such a file ("The number of bytes
 * of pixel data is less than expected"), dcmtk decodes the frames present. No frame at all is left to the frame
 * reader, which refuses naming the bytes it lacks.
 */
function framesPresent(ds: DataSet, pixelEl: Element, ts: string, declared: number, frameBits: number, notes: string[]): number {
  let present: number;
  if (pixelEl.encapsulatedPixelData) {
    const eot = ds.elements.x7fe00001;
    present = eot && eot.length >= 8 ? Math.floor(eot.length / 8) : (pixelEl.fragments?.length ?? 0);
  } else {
    const b = ds.byteArray as Uint8Array;
    const available = Math.max(0, Math.min(pixelEl.length, b.length - pixelEl.dataOffset));
    present = frameBits > 0 ? Math.floor((available * 8) / frameBits) : 0;
  }
  if (declared <= present || present < 1) return declared;
  const what = declared === Number.MAX_SAFE_INTEGER ? `a Number of Frames (0028,0008) of "${(ds.string('x00280008') ?? '').trim()}"` : `${declared} frames in Number of Frames (0028,0008)`;
  notes.push(`The header declares ${what}, but the Pixel Data${ts === TS_ENCAPSULATED_UNCOMPRESSED || pixelEl.encapsulatedPixelData ? ` (${pixelEl.fragments?.length ?? 0} fragments)` : ` (${pixelEl.length} bytes)`} holds ${present}: only ${present === 1 ? 'frame 1 exists' : `frames 1-${present} exist`}, and only ${present === 1 ? 'it is' : 'they are'} read`);
  return present;
}

/** Native (uncompressed) frame bytes, little-endian; big endian 16/32-bit words swapped, 8-bit OW un-swapped. */
export function nativeFrameBytes(p: Prepared): { bytes: Uint8Array; littleEndian: boolean } {
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
export function storedFromBytes(p: Prepared, bytes: Uint8Array, littleEndian: boolean, samples: number): Int32Array | Float64Array {
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
export function storedFromCodec(p: Prepared, f: DecodedFrame): Int32Array {
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

export function encodedInfo(p: Prepared): EncodedFrameInfo {
  return { rows: p.rows, columns: p.cols, samplesPerPixel: p.spp, bitsAllocated: p.bitsAllocated, bitsStored: p.bitsStored, pixelRepresentation: p.pixelRep };
}

export function checkCodecFrame(p: Prepared, f: DecodedFrame): void {
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
