/**
 * `npm run label`'s inputs: the files of a folder (recursively, symlinks followed) or the entries of a zip, read
 * one at a time when their chunk runs, and decoded for the batch exactly as the app's imaging worker does
 * (workers/imaging.worker.ts decodeForBatch): decode, then resize once to each model input size.
 */
import fs from 'node:fs';
import path from 'node:path';
import { blobSource, isJunkEntry, listZip, readZipEntry } from '../lib/batch/zip';
import { isImageDecodeError, sniffFormat } from '../lib/imaging';
import type { ModelInputSize } from '../lib/imaging/decode-outcome';
import { resizeRaster } from '../lib/imaging/preprocess';
import { decodeImageFileNode } from '../platform/node/decode';
import { readInputFile, walkFiles } from '../platform/node/read-input';
import type { BatchDecoded } from '../services/batch';

export interface LabelInput {
  /** Path relative to DIR (or the zip's entry path), '/'-separated: the image_id. */
  rel: string;
  read(): Promise<Uint8Array>;
}

/**
 * The inputs of DIR or FILE.zip, junk entries (__MACOSX, .DS_Store) left out, and the zip entries that cannot be
 * read (with the reason). Only a zip's central directory is read here.
 */
export async function listLabelInputs(dir: string): Promise<{ inputs: LabelInput[]; skipped: { file: string; reason: string }[]; renamed: { file: string; storedPath: string; reason: string }[] }> {
  const skipped: { file: string; reason: string }[] = [];
  // zip entries with unsafe stored names (.., absolute, drive letters) are labelled under a sanitised name: say so
  const renamed: { file: string; storedPath: string; reason: string }[] = [];
  let inputs: LabelInput[];
  if (/\.zip$/i.test(dir) && fs.statSync(dir).isFile()) {
    const src = blobSource(await fs.openAsBlob(dir));
    const listing = await listZip(src);
    for (const s of listing.skipped) skipped.push({ file: s.path, reason: s.reason });
    for (const r of listing.renamed) renamed.push({ file: r.path, storedPath: r.storedPath, reason: r.reason });
    inputs = listing.entries.map((e) => ({ rel: e.path, read: () => readZipEntry(src, e) }));
  } else {
    inputs = walkFiles(dir).map((f) => ({ rel: path.relative(dir, f).split(path.sep).join('/'), read: async () => readInputFile(f) }));
  }
  return { inputs: inputs.filter((f) => !isJunkEntry(f.rel)), skipped, renamed };
}

/** Read and decode one input, resized once per size (the imaging worker's decodeForBatch, in-process). */
export async function decodeForBatchNode(input: LabelInput, sizes: ModelInputSize[]): Promise<BatchDecoded> {
  let bytes: Uint8Array;
  try {
    bytes = await input.read();
  } catch (e) {
    return { ok: false, message: `unreadable: ${e instanceof Error ? e.message : String(e)}` };
  }
  if (!sniffFormat(bytes)) return { ok: false, message: 'not an image (neither PNG, JPEG nor DICOM)' };
  try {
    const d = await decodeImageFileNode(bytes);
    return { ok: true, modelInputs: sizes.map((s) => resizeRaster(d.raster, s.width, s.height, s.resize)) };
  } catch (e) {
    return { ok: false, message: isImageDecodeError(e) ? `${e.code}: ${e.message}` : e instanceof Error ? e.message : String(e) };
  }
}
