/**
 * Shared image-decoding entry point for browser and Node: sniff the bytes (never the extension), enforce size limits,
 * decode DICOM here (dicom.ts) and hand PNG/JPEG to an injected platform decoder (createImageBitmap + OffscreenCanvas
 * in the browser, pngjs/jpeg-js in Node: see app/platform/node/decode.ts and app/platform/browser/decode.ts).
 */
import { ImageDecodeError, isImageDecodeError } from './errors';
import { decodeDicom, decodeDicomAsync, type DicomImage, type DicomWindow } from './dicom';
import { describeSelection, dicomToRaster } from './windowing';
import type { WasmBinaryLoader } from './codecs/types';
import type { Raster } from './raster';
import { sniffOrThrow, type ImageFormat } from './sniff';
import { decodePngOrJpeg, pixelLimitFor, type RasterDecodeInfo } from './raster-decode';
import { checkFileSize, DEFAULT_MAX_BYTES, DEFAULT_MAX_PIXELS } from './limits';
import { checkJpegDataLength } from './jpeg-checks';

export * from './errors';
export * from './sniff';
export * from './raster';
export * from './dicom';
export * from './windowing';
export * from './lut';
export { CODEC_SYNTAXES, REFUSED_SYNTAXES } from './codecs/syntaxes';
export type { WasmBinaryLoader, CodecWasmName, DecodedFrame } from './codecs/types';
export * from './preprocess';
export * from './exif';
export * from './png16';
export * from './raster-decode';
export * from './png-stream';
export * from './model-inputs';

/** Decodes PNG or JPEG bytes into an RGBA raster (platform-specific). */
export type PlatformDecoder = (bytes: Uint8Array, format: 'png' | 'jpeg') => Promise<Raster> | Raster;

export { DEFAULT_MAX_BYTES, DEFAULT_MAX_PIXELS, checkFileSize, fileSizeError } from './limits';

export interface DecodeOptions {
  decodeRaster: PlatformDecoder;
  /** Refuse files over this many bytes (default 256 MB). */
  maxBytes?: number;
  /** Refuse images over this many pixels (default 100 MP). */
  maxPixels?: number;
  /** DICOM: window to render with instead of the default preset. */
  window?: DicomWindow;
  /** DICOM: VOI preset id to render with (see DicomImage.presets). */
  presetId?: string;
  /** DICOM: 0-based frame of a multi-frame file (default 0). */
  frame?: number;
  /** DICOM: codec wasm source (platform code). Without it, compressed syntaxes other than RLE are refused. */
  loadWasm?: WasmBinaryLoader;
}

export interface DecodedImage {
  format: ImageFormat;
  width: number;
  height: number;
  /** Display pixels (DICOM: windowed, MONOCHROME1 inverted). This is also what the models see. */
  raster: Raster;
  /** Present for DICOM: modality values, window, metadata (public and identifying, separated). */
  dicom?: DicomImage;
  /** DICOM: what `raster` (and so the model input) was rendered with, e.g. "Window 1 (LUNG): C -600 / W 1500". */
  display?: string;
  /** PNG/JPEG: EXIF orientation applied, 16-bit stored-range window, and notes saying so. */
  rasterInfo?: RasterDecodeInfo;
}

function u32be(b: Uint8Array, i: number): number {
  return ((b[i] << 24) | (b[i + 1] << 16) | (b[i + 2] << 8) | b[i + 3]) >>> 0;
}

/** Image dimensions from the PNG IHDR or the JPEG SOFn header without decoding; null if not found. */
export function readImageSize(bytes: Uint8Array, format: 'png' | 'jpeg'): { width: number; height: number } | null {
  if (format === 'png') {
    if (bytes.length < 24) return null;
    return { width: u32be(bytes, 16), height: u32be(bytes, 20) };
  }
  let i = 2;
  while (i + 9 < bytes.length) {
    if (bytes[i] !== 0xff) {
      i++;
      continue;
    }
    const marker = bytes[i + 1];
    if (marker === 0xff) {
      i++;
      continue;
    }
    if (marker === 0xd8 || marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) {
      i += 2;
      continue;
    }
    const len = (bytes[i + 2] << 8) | bytes[i + 3];
    const isSOF = marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc;
    if (isSOF) return { height: (bytes[i + 5] << 8) | bytes[i + 6], width: (bytes[i + 7] << 8) | bytes[i + 8] };
    if (marker === 0xda) return null;
    i += 2 + len;
  }
  return null;
}

function tooLarge(width: number, height: number, maxPixels: number): ImageDecodeError {
  return new ImageDecodeError(
    'too-large',
    `The image is ${width}×${height} pixels (${(width * height / 1e6).toFixed(1)} MP), over this device's limit of ${Math.round(maxPixels / 1e6)} MP`,
    { width, height, maxPixels },
  );
}

/**
 * Decode user bytes into a display/model raster. Throws ImageDecodeError: 'empty', 'not-an-image', 'truncated',
 * 'too-large', 'corrupt', 'unsupported-transfer-syntax', 'unsupported-dicom', 'no-pixel-data'.
 */
export async function decodeImageFile(input: Uint8Array | ArrayBuffer, opts: DecodeOptions): Promise<DecodedImage> {
  const bytes = input instanceof Uint8Array ? input : new Uint8Array(input);
  const maxBytes = opts.maxBytes ?? DEFAULT_MAX_BYTES;
  const maxPixels = opts.maxPixels ?? DEFAULT_MAX_PIXELS;
  checkFileSize(bytes.length, maxBytes);
  const sniff = sniffOrThrow(bytes);
  if (sniff.format === 'dicom') {
    const dopts = { maxPixels, frame: opts.frame };
    const dicom = opts.loadWasm ? await decodeDicomAsync(bytes, { ...dopts, loadWasm: opts.loadWasm }) : decodeDicom(bytes, dopts);
    const raster = dicomToRaster(dicom, opts.window, opts.presetId);
    return { format: 'dicom', width: dicom.width, height: dicom.height, raster, dicom, display: describeSelection(dicom, { window: opts.window, presetId: opts.presetId }) };
  }
  // Before a decoder allocates what the header declares: a SOF claiming far more pixels than its data can hold.
  if (sniff.format === 'jpeg') checkJpegDataLength(bytes);
  const size = readImageSize(bytes, sniff.format);
  // Very large non-interlaced PNGs are streamed and downsampled (bounded memory): they have their own, higher limit.
  const limit = pixelLimitFor(bytes, sniff.format, maxPixels);
  if (size && size.width * size.height > limit) throw tooLarge(size.width, size.height, limit);
  let raster: Raster;
  let rasterInfo: RasterDecodeInfo;
  try {
    ({ raster, info: rasterInfo } = await decodePngOrJpeg(bytes, sniff.format, opts.decodeRaster));
  } catch (e) {
    if (isImageDecodeError(e)) throw e;
    const msg = e instanceof Error ? e.message : String(e);
    throw new ImageDecodeError('corrupt', `The ${sniff.format.toUpperCase()} could not be decoded: ${msg}`, { decoderMessage: msg }, { cause: e });
  }
  if (raster.width * raster.height > maxPixels) throw tooLarge(raster.width, raster.height, maxPixels);
  return { format: sniff.format, width: raster.width, height: raster.height, raster, rasterInfo };
}
