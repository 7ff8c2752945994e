/**
 * Browser platform decoder for app/lib/imaging (page or worker): PNG/JPEG through the browser's own codecs
 * (createImageBitmap + OffscreenCanvas) into an RGBA raster. Sniffing, size limits and DICOM are shared with Node in
 * app/lib/imaging (decodeImageFile); this file only supplies the pixels.
 */
import { decodeImageFile, type DecodedImage, type DecodeOptions } from '../../lib/imaging';
import { ImageDecodeError } from '../../lib/imaging/errors';
import type { Raster } from '../../lib/imaging/raster';
import type { CodecWasmName, WasmBinaryLoader } from '../../lib/imaging/codecs/types';
// The codec packages' own wasm files, emitted by Vite as assets of this app (same origin, hashed names, precached by
// the service worker: available offline after the first visit). Fetched only when a file needs that codec.
import libjpegTurboWasmUrl from '@cornerstonejs/codec-libjpeg-turbo-8bit/decodewasm?url';
import charlsWasmUrl from '@cornerstonejs/codec-charls/decodewasm?url';
import openjpegWasmUrl from '@cornerstonejs/codec-openjpeg/decodewasm?url';
import openjphWasmUrl from '@cornerstonejs/codec-openjph/wasm?url';
import dcmjsCodecsWasmUrl from 'dcmjs-codecs/build/dcmjs-native-codecs.wasm?url';

export const CODEC_WASM_URLS: Record<CodecWasmName, string> = {
  'libjpeg-turbo-8bit': libjpegTurboWasmUrl,
  charls: charlsWasmUrl,
  openjpeg: openjpegWasmUrl,
  openjph: openjphWasmUrl,
  'dcmjs-native-codecs': dcmjsCodecsWasmUrl,
};

/** The browser's WasmBinaryLoader: the app's own copy of each codec's wasm (never a CDN). */
export const browserWasmLoader: WasmBinaryLoader = async (name) => {
  const url = CODEC_WASM_URLS[name];
  let res: Response;
  try {
    res = await fetch(url);
  } catch (e) {
    throw new ImageDecodeError('corrupt', `The ${name} decoder could not be loaded (${url}): offline before it was ever cached?`, { codec: name }, { cause: e });
  }
  if (!res.ok) throw new ImageDecodeError('corrupt', `The ${name} decoder could not be loaded: HTTP ${res.status} for ${url}`, { codec: name });
  return res.arrayBuffer();
};

/** 50 MP: a 7000×7000 radiograph fits; larger ones would take hundreds of MB of RGBA per copy in a tab. */
export const BROWSER_MAX_PIXELS = 50_000_000;

export async function decodeRasterBrowser(bytes: Uint8Array, format: 'png' | 'jpeg'): Promise<Raster> {
  let bitmap: ImageBitmap;
  try {
    // Colour management off: models were trained on raw pixel values (PIL ignores ICC profiles too).
    bitmap = await createImageBitmap(new Blob([bytes as BlobPart], { type: `image/${format}` }), {
      colorSpaceConversion: 'none',
      premultiplyAlpha: 'none',
      imageOrientation: 'from-image',
    });
  } catch (e) {
    throw new ImageDecodeError('corrupt', `The ${format.toUpperCase()} file is damaged and cannot be decoded`, undefined, { cause: e });
  }
  try {
    const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
    const ctx = canvas.getContext('2d', { willReadFrequently: true });
    if (!ctx) throw new ImageDecodeError('corrupt', 'No 2D canvas is available to decode the image');
    ctx.drawImage(bitmap, 0, 0);
    const img = ctx.getImageData(0, 0, bitmap.width, bitmap.height);
    // Alpha dropped (opaque), as PIL's convert('RGB') does.
    const d = img.data;
    for (let j = 3; j < d.length; j += 4) d[j] = 255;
    return { width: img.width, height: img.height, data: d };
  } finally {
    bitmap.close();
  }
}

/** Decode user bytes in the browser; throws ImageDecodeError with a message fit for the UI. */
export function decodeImageBytes(bytes: Uint8Array, opts: Omit<DecodeOptions, 'decodeRaster'> = {}): Promise<DecodedImage> {
  return decodeImageFile(bytes, { maxPixels: BROWSER_MAX_PIXELS, loadWasm: browserWasmLoader, ...opts, decodeRaster: decodeRasterBrowser });
}

export type { DecodedImage };
