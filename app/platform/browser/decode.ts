/**
 * Browser platform decoder for app/lib/imaging (page or worker): PNG/JPEG through the browser's own codecs
 * (createImageBitmap + OffscreenCanvas) into an RGBA raster. Sniffing, size limits and DICOM are shared with Node in
 * app/lib/imaging (decodeImageFile); this file only supplies the pixels.
 */
import { decodeImageFile, type DecodedImage, type DecodeOptions } from '../../lib/imaging';
import { ImageDecodeError } from '../../lib/imaging/errors';
import type { Raster } from '../../lib/imaging/raster';

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
  return decodeImageFile(bytes, { maxPixels: BROWSER_MAX_PIXELS, ...opts, decodeRaster: decodeRasterBrowser });
}

export type { DecodedImage };
