/**
 * Decodes user files off the main thread (DICOM parsing and 50-MP JPEGs would otherwise freeze the UI).
 * Returns a DecodeOutcome (app/lib/imaging/decode-outcome.ts) instead of throwing.
 */
import * as Comlink from 'comlink';
import { isImageDecodeError } from '../app/lib/imaging/errors';
import type { DecodeOutcome, DecodeRequest, ImagingApi } from '../app/lib/imaging/decode-outcome';
import { resizeRaster } from '../app/lib/imaging/preprocess';
import { decodeImageBytes } from '../app/platform/browser/decode';

const THUMB = 96;

const api: ImagingApi = {
  async decode(bytes: ArrayBuffer, req: DecodeRequest = {}): Promise<DecodeOutcome> {
    try {
      const image = await decodeImageBytes(new Uint8Array(bytes), { frame: req.frame });
      const { width, height } = image.raster;
      const s = THUMB / Math.max(width, height);
      const thumbnail = resizeRaster(image.raster, Math.max(1, Math.round(width * s)), Math.max(1, Math.round(height * s)), 'bilinear');
      const transfers: Transferable[] = [image.raster.data.buffer as ArrayBuffer];
      if (thumbnail !== image.raster) transfers.push(thumbnail.data.buffer as ArrayBuffer);
      if (image.dicom) transfers.push(image.dicom.pixels.buffer as ArrayBuffer);
      // Multi-frame: hand the bytes back (moved, not copied) for the frame picker.
      const source = image.dicom && image.dicom.frames > 1 ? bytes : undefined;
      if (source) transfers.push(source);
      return Comlink.transfer({ ok: true, image, thumbnail, source }, transfers);
    } catch (e) {
      if (isImageDecodeError(e)) return { ok: false, code: e.code, message: e.message };
      return { ok: false, code: 'corrupt', message: `The file could not be decoded: ${(e as Error)?.message ?? String(e)}` };
    }
  },
};

Comlink.expose(api);
