import type { DecodedImage } from './index';
import type { Raster } from './raster';

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
    }
  | { ok: false; code: string; message: string };

export interface DecodeRequest {
  /** 0-based frame of a multi-frame DICOM (default 0). */
  frame?: number;
}

/** The imaging worker's API (workers/imaging.worker.ts). */
export interface ImagingApi {
  /** Decode PNG/JPEG/DICOM bytes (transferred) into a display raster and a ≤ 96 px thumbnail. */
  decode(bytes: ArrayBuffer, req?: DecodeRequest): Promise<DecodeOutcome>;
}
