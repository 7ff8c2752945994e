/**
 * Node decoders for the CLI and tests: PNG via pngjs (8/16-bit, gray/RGB/palette/alpha → 8-bit RGBA), JPEG via
 * jpeg-js with memory/resolution limits. Not for the browser bundle (the app decodes with createImageBitmap).
 */
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { PNG } from 'pngjs';
import jpeg from 'jpeg-js';
import { ImageDecodeError } from '../../lib/imaging/errors';
import type { Raster } from '../../lib/imaging/raster';
import { decodeImageFile, DEFAULT_MAX_PIXELS, type DecodedImage, type DecodeOptions } from '../../lib/imaging';
import type { CodecWasmName, WasmBinaryLoader } from '../../lib/imaging/codecs/types';

/** Each codec's wasm as its package exports it (package.json "exports"), resolved from node_modules. */
export const CODEC_WASM_SPECIFIERS: Record<CodecWasmName, string> = {
  'libjpeg-turbo-8bit': '@cornerstonejs/codec-libjpeg-turbo-8bit/decodewasm',
  charls: '@cornerstonejs/codec-charls/decodewasm',
  openjpeg: '@cornerstonejs/codec-openjpeg/decodewasm',
  openjph: '@cornerstonejs/codec-openjph/wasm',
  'dcmjs-native-codecs': 'dcmjs-codecs/build/dcmjs-native-codecs.wasm',
};

/** Node's WasmBinaryLoader: read the codec packages' own wasm from node_modules. */
export const nodeWasmLoader: WasmBinaryLoader = async (name) => {
  const require = createRequire(import.meta.url);
  return new Uint8Array(await readFile(require.resolve(CODEC_WASM_SPECIFIERS[name])));
};

export interface NodeDecodeLimits {
  maxPixels?: number;
  maxMemoryUsageInMB?: number;
}

export function decodePngNode(bytes: Uint8Array): Raster {
  const png = PNG.sync.read(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  return { width: png.width, height: png.height, data: new Uint8ClampedArray(png.data.buffer, png.data.byteOffset, png.data.byteLength) };
}

export function decodeJpegNode(bytes: Uint8Array, limits: NodeDecodeLimits = {}): Raster {
  const maxMP = (limits.maxPixels ?? DEFAULT_MAX_PIXELS) / 1e6;
  const img = jpeg.decode(bytes, {
    useTArray: true,
    formatAsRGBA: true,
    maxResolutionInMP: maxMP,
    maxMemoryUsageInMB: limits.maxMemoryUsageInMB ?? 1024,
  });
  return { width: img.width, height: img.height, data: new Uint8ClampedArray(img.data.buffer, img.data.byteOffset, img.data.byteLength) };
}

/** PlatformDecoder for Node. */
export function decodeRasterNode(bytes: Uint8Array, format: 'png' | 'jpeg', limits: NodeDecodeLimits = {}): Raster {
  try {
    return format === 'png' ? decodePngNode(bytes) : decodeJpegNode(bytes, limits);
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    if (/maxResolutionInMP|maxMemoryUsageInMB|memory/i.test(msg)) throw new ImageDecodeError('too-large', `The ${format.toUpperCase()} is too large to decode: ${msg}`, undefined, { cause: e });
    if (/end of|unexpected end|truncat|premature/i.test(msg)) throw new ImageDecodeError('truncated', `The ${format.toUpperCase()} is truncated: ${msg}`, undefined, { cause: e });
    throw new ImageDecodeError('corrupt', `The ${format.toUpperCase()} could not be decoded: ${msg}`, undefined, { cause: e });
  }
}

/** decodeImageFile wired to the Node decoders. */
export function decodeImageFileNode(bytes: Uint8Array | ArrayBuffer, opts: Omit<DecodeOptions, 'decodeRaster'> = {}): Promise<DecodedImage> {
  return decodeImageFile(bytes, { loadWasm: nodeWasmLoader, ...opts, decodeRaster: (b, f) => decodeRasterNode(b, f, { maxPixels: opts.maxPixels }) });
}
