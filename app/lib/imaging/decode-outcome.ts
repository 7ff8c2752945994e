import type { DecodedImage } from './index';
import type { Raster } from './raster';
import type { BlobLike, ZipEntryInfo, ZipListing } from '../batch/zip';

/**
 * What the imaging worker returns for one file: a result object instead of a thrown error, because comlink keeps only
 * name/message of thrown errors and the UI needs the decoder's error code (ImageDecodeError.code).
 */
export type DecodeOutcome =
  | {
      ok: true;
      image: DecodedImage;
      thumbnail: Raster;
      /** The file's bytes handed back for a multi-frame DICOM, so that another frame can be decoded on request. */
      source?: ArrayBuffer;
      /** The image resized once to each of DecodeRequest.sizes (same order). */
      modelInputs?: Raster[];
    }
  | { ok: false; code: string; message: string };

export interface DecodeRequest {
  /** 0-based frame of a multi-frame DICOM (default 0). */
  frame?: number;
  /** Model input sizes to resize the image to once, here (see model-inputs.ts). */
  sizes?: ModelInputSize[];
}

/** A model's input size and resampling filter (Preprocessing.size / .resize). */
export interface ModelInputSize {
  width: number;
  height: number;
  resize: 'bilinear' | 'bicubic';
}

/**
 * Where a batch item's bytes are: a File/Blob (with the size it had when it was chosen: a file deleted or changed
 * since reads short, and must be reported as unreadable rather than as an empty image), or one entry of a zip.
 */
export type BatchSource = { file: BlobLike; size: number } | { zip: BlobLike; entry: ZipEntryInfo };

/**
 * A batch item decoded in the worker: the full-resolution raster never leaves it. `modelInputs[i]` is the image
 * resized once to `sizes[i]` exactly as the model's preprocessing would (app/lib/imaging/preprocess.ts
 * resizeRaster), so the engines see the same tensor and only a few hundred KB cross to each model worker.
 */
export type BatchDecodeOutcome =
  | { ok: true; width: number; height: number; format: DecodedImage['format']; thumbnail: Raster; modelInputs: Raster[]; notes: string[] }
  | { ok: false; code: string; message: string };

export type ZipListOutcome = { ok: true; listing: ZipListing } | { ok: false; message: string };

/** The imaging worker's API (workers/imaging.worker.ts). */
export interface ImagingApi {
  /** Decode PNG/JPEG/DICOM bytes (transferred) into a display raster and a ≤ 96 px thumbnail. */
  decode(bytes: ArrayBuffer, req?: DecodeRequest): Promise<DecodeOutcome>;
  /** Read (Blob or zip entry, inflated here), decode and resize one batch item; thumbnail ≤ `thumbnail` px. */
  decodeForBatch(source: BatchSource, sizes: ModelInputSize[], thumbnail: number): Promise<BatchDecodeOutcome>;
  /** The readable entries of a zip and the skipped ones (only its central directory is read). */
  listZip(zip: BlobLike): Promise<ZipListOutcome>;
}
