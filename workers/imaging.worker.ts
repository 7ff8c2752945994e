/**
 * Decodes user files off the main thread (DICOM parsing and 50-MP JPEGs would otherwise freeze the UI), and for
 * batch mode also reads the file or zip entry itself (a Blob reference crosses, not its bytes), inflates zip entries,
 * and resizes once to each model's input size, so a full-resolution raster never travels to the model workers.
 * Returns outcome objects (app/lib/imaging/decode-outcome.ts) instead of throwing.
 */
import * as Comlink from 'comlink';
import { isImageDecodeError } from '../app/lib/imaging/errors';
import { checkFileSize } from '../app/lib/imaging/limits';
import type { BatchDecodeOutcome, BatchSource, DecodeOutcome, DecodeRequest, ImagingApi, ZipListOutcome } from '../app/lib/imaging/decode-outcome';
import { resizeRaster } from '../app/lib/imaging/preprocess';
import type { Raster } from '../app/lib/imaging/raster';
import { blobSource, listZip, readZipEntry, type BlobLike } from '../app/lib/batch/zip';
import { decodeImageBytes } from '../app/platform/browser/decode';

const THUMB = 96;

function thumbnailOf(r: Raster, size: number): Raster {
  const s = size / Math.max(r.width, r.height);
  if (s >= 1) return r;
  return resizeRaster(r, Math.max(1, Math.round(r.width * s)), Math.max(1, Math.round(r.height * s)), 'bilinear');
}

function failure(e: unknown): { ok: false; code: string; message: string } {
  if (isImageDecodeError(e)) return { ok: false, code: e.code, message: e.message };
  const err = e as Error;
  if (err?.name === 'ZipReadError') return { ok: false, code: 'zip', message: err.message };
  if (err?.name === 'FileReadError') return { ok: false, code: 'unreadable', message: err.message };
  return { ok: false, code: 'corrupt', message: `The file could not be decoded: ${err?.message ?? String(e)}` };
}

const fileReadError = (message: string) => Object.assign(new Error(message), { name: 'FileReadError' });

/**
 * A picked File's bytes. A file moved, changed or deleted after it was chosen reads as an error or as fewer bytes
 * than its size (Chromium returns an empty buffer): both are reported as that, not as an empty or damaged image.
 */
async function readFileBytes(file: BlobLike, size: number): Promise<Uint8Array> {
  checkFileSize(Math.max(size, file.size)); // before the read: a file over the limit is never held
  let buf: ArrayBuffer;
  try {
    buf = await file.slice(0, Math.max(size, file.size)).arrayBuffer();
  } catch (e) {
    throw fileReadError(`The file could not be read (moved, changed or deleted after it was chosen?): ${(e as Error)?.message ?? String(e)}`);
  }
  if (buf.byteLength !== size) {
    throw fileReadError(`The file could not be read: ${buf.byteLength} of its ${size} bytes came back (moved, changed or deleted after it was chosen?)`);
  }
  return new Uint8Array(buf);
}

const api: ImagingApi = {
  async decode(bytes: ArrayBuffer, req: DecodeRequest = {}): Promise<DecodeOutcome> {
    try {
      const image = await decodeImageBytes(new Uint8Array(bytes), { frame: req.frame });
      const thumbnail = thumbnailOf(image.raster, THUMB);
      const transfers: Transferable[] = [image.raster.data.buffer as ArrayBuffer];
      if (thumbnail !== image.raster) transfers.push(thumbnail.data.buffer as ArrayBuffer);
      if (image.dicom) transfers.push(image.dicom.pixels.buffer as ArrayBuffer);
      // Multi-frame: hand the bytes back (moved, not copied) for the frame picker.
      const source = image.dicom && image.dicom.frames > 1 ? bytes : undefined;
      if (source) transfers.push(source);
      // Resized once here for the models: the full raster is not copied to each model worker.
      const modelInputs = (req.sizes ?? []).map((s) => {
        const r = resizeRaster(image.raster, s.width, s.height, s.resize);
        return r === image.raster ? { ...r, data: r.data.slice() } : r;
      });
      for (const r of modelInputs) transfers.push(r.data.buffer as ArrayBuffer);
      return Comlink.transfer({ ok: true, image, thumbnail, source, modelInputs }, [...new Set(transfers)]);
    } catch (e) {
      return failure(e);
    }
  },

  async decodeForBatch(source: BatchSource, sizes, thumbnail): Promise<BatchDecodeOutcome> {
    try {
      const bytes = 'zip' in source ? await readZipEntry(blobSource(source.zip), source.entry) : await readFileBytes(source.file, source.size);
      const image = await decodeImageBytes(bytes);
      const own = (r: Raster) => (r === image.raster ? { ...r, data: r.data.slice() } : r);
      const thumb = own(thumbnailOf(image.raster, thumbnail));
      // One resized copy per model input size; the full-resolution raster is dropped here.
      const modelInputs = sizes.map((s) => own(resizeRaster(image.raster, s.width, s.height, s.resize)));
      const buffers = [...new Set([thumb, ...modelInputs].map((r) => r.data.buffer as ArrayBuffer))];
      const notes = image.rasterInfo?.notes ?? [];
      return Comlink.transfer({ ok: true, width: image.width, height: image.height, format: image.format, thumbnail: thumb, modelInputs, notes }, buffers);
    } catch (e) {
      return failure(e);
    }
  },

  async listZip(zip): Promise<ZipListOutcome> {
    try {
      return { ok: true, listing: await listZip(blobSource(zip)) };
    } catch (e) {
      return { ok: false, message: (e as Error)?.message ?? String(e) };
    }
  },
};

Comlink.expose(api);
