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
import { ImageDecodeError } from './errors';
import { CODEC_SYNTAXES } from './codecs/syntaxes';
import { decodeRleFrame, rlePlanesToSamples } from './codecs/rle';
import type { DecodedFrame } from './codecs/types';
import { encapsulatedFrame, errorText } from './dicom-parse';
import { checkCodecFrame, encodedInfo, nativeFrameBytes, prepare, storedFromBytes, storedFromCodec, type Prepared } from './dicom-prepare';
import { finish } from './dicom-finish';
import type { DecodeDicomAsyncOptions, DecodeDicomOptions, DicomImage } from './dicom-types';
import { TS_RLE } from './transfer-syntaxes';
import { checkJpegDataLength, codestreamSize } from './jpeg-checks';

export * from './transfer-syntaxes';
export * from './dicom-types';
export { parseDicomLenient, type ParsedDicom } from './dicom-parse';
export { ybrFullToRgb } from './dicom-colour';
export { autoWindow } from './dicom-voi';

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
  // The codestream's own header (JPEG/JPEG-LS SOF, JPEG 2000 SIZ) sizes what the codec allocates, and a codec fed a
  // stream that disagrees with Rows/Columns can spend seconds failing (fuzz seed 19 #2340: charls, 30 s): checked
  // before decoding, as checkCodecFrame checks the result after.
  const declared = codestreamSize(frame);
  if (declared && declared.width > 0 && declared.height > 0 && (declared.width !== p.cols || declared.height !== p.rows)) {
    throw new ImageDecodeError('corrupt', `The compressed frame is ${declared.width}×${declared.height} (its codestream header) but the DICOM header says ${p.cols}×${p.rows} (Columns × Rows); refused before decoding`);
  }
  if (frame[0] === 0xff && frame[1] === 0xd8) checkJpegDataLength(frame, `${p.tsName} frame ${p.frameIndex + 1}`);
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
