/**
 * Segment operations, written once for the app's store (app/store/sam*.ts) and `npm run segment-eval`:
 * encode an image, decode a prompt against its embedding, segment one image, and evaluate one image against its
 * true mask (Dice / IoU per lung, app/lib/sam/eval.ts). Free of React and the DOM: the engine is the segment
 * engine (app/lib/sam/engine.ts), in a comlink worker in the app and in-process in Node, always reached through
 * the inference service so its files are downloaded / sha256-verified and its variant is the plan's choice.
 *
 * Errors: a failed Outcome of the engine becomes a thrown Error with the engine's message (it names the cause).
 */
import type { Raster } from '../lib/imaging/raster';
import { rasterToGray } from '../lib/imaging/raster';
import type { ModelRequest, Outcome } from '../lib/runtime/outcome';
import { unwrap } from '../lib/runtime/outcome';
import type { EncodeInfo, SamEngine } from '../lib/sam/engine';
import type { Decoded, MaskDecodeOptions } from '../lib/sam/pipeline';
import type { SamPrompt } from '../lib/sam/layouts';
import { rememberMaskBounds } from '../lib/sam/mask-upscale';
import { imageName, LUNGS, lungPrompt, scoreLung, splitLungs, type Box, type EvalPrompt, type EvalRow, type Lung } from '../lib/sam/eval';
import type { InferenceService } from './inference';

/** What the segment operations need of the engine (the worker's comlink proxy or the engine itself). */
export type SamEngineLike = Pick<SamEngine, 'encode' | 'decode' | 'info'>;

/**
 * The identity of a per-image segment result: which image (and frame), which model and variant/backend/source.
 * A result is shown only while its key equals the current one (a frame or model change never shows another's).
 */
export interface SegmentResultKey {
  imageId: string;
  /** DICOM frame index (0 for single-frame images). */
  frame: number;
  /** requestKey-like tag of the model request: model id | backend setting | source. */
  model: string;
}

export function sameSegmentKey(a: SegmentResultKey | undefined, b: SegmentResultKey | undefined): boolean {
  return !!a && !!b && a.imageId === b.imageId && a.frame === b.frame && a.model === b.model;
}

/** The sessions of `req` exist (downloaded and verified first): the engine's interface for this model. */
export async function loadSegmentModel(inference: InferenceService, req: ModelRequest, onProgress?: (m: string) => void) {
  await inference.ensureSession(req, onProgress);
  return unwrap(await inference.engine<SamEngine>('sam').info(req));
}

/** The image's embedding for this model (memory, the embedding cache, else the encoder). */
export async function encodeImage(engine: SamEngineLike, req: ModelRequest, raster: Raster): Promise<EncodeInfo> {
  return unwrap(await engine.encode(req, raster));
}

/**
 * One decode of `prompt` against an encoded image (`key` from encodeImage). The masks' bounds computed by the engine
 * are remembered for the masks received (a worker's arrive as copies), so the overlay paint and the lung side read
 * only those rectangles (app/lib/sam/mask-upscale.ts).
 */
export async function decodePrompt(engine: SamEngineLike, req: ModelRequest, key: string, prompt: SamPrompt, opts?: MaskDecodeOptions): Promise<Decoded> {
  const d = unwrap(await (engine.decode(req, key, prompt, opts) as Promise<Outcome<Decoded>>));
  d.masks.forEach((m, k) => m.length && d.bounds?.[k] !== undefined && rememberMaskBounds(m, d.bounds[k]));
  return d;
}

/** Segment one image from one prompt: encode (or reuse the embedding), then decode; the best mask is `masks[best]`. */
export async function segmentImage(engine: SamEngineLike, req: ModelRequest, raster: Raster, prompt: SamPrompt, opts: MaskDecodeOptions = { masks: 'best' }): Promise<Decoded & { encode: EncodeInfo }> {
  const enc = await encodeImage(engine, req, raster);
  return { ...(await decodePrompt(engine, req, enc.key, prompt, opts)), encode: enc };
}

export interface EvaluatedImage {
  row: EvalRow;
  /** Predicted and true masks per lung (w·h, 1 = lung), for the worst-case view. */
  pred: Record<Lung, Uint8Array>;
  truth: Record<Lung, Uint8Array>;
}

/**
 * Evaluate one image against its mask: per-lung truth (splitLungs), one prompt per lung (its box or a click at the
 * box centre), the best mask scored (ignore pixels excluded). Throws when the mask's size is not the image's.
 */
export async function evaluateImage(
  engine: SamEngineLike,
  req: ModelRequest,
  a: { name: string; image: Raster; mask: Raster; boxes: Record<Lung, Box>; prompt: EvalPrompt },
): Promise<EvaluatedImage> {
  const { width: w, height: h } = a.image;
  if (a.mask.width !== w || a.mask.height !== h) throw new Error(`mask is ${a.mask.width}×${a.mask.height}, image ${w}×${h}`);
  const truthAll = splitLungs(rasterToGray(a.mask), w, h, a.boxes);
  const enc = await encodeImage(engine, req, a.image);
  const row: EvalRow = { image: a.name, width: w, height: h, lungs: {} as EvalRow['lungs'] };
  const pred = {} as Record<Lung, Uint8Array>;
  for (const lung of LUNGS) {
    const d = await decodePrompt(engine, req, enc.key, lungPrompt(a.prompt, a.boxes[lung]), { masks: 'best' });
    pred[lung] = d.masks[d.best];
    row.lungs[lung] = { ...scoreLung(pred[lung], truthAll[lung], truthAll.ignore), predictedIou: d.iou[d.best] };
  }
  return { row, pred, truth: { right_lung: truthAll.right_lung, left_lung: truthAll.left_lung } };
}

/**
 * Which images of an evaluation folder are scored: those with both lung boxes and a mask; the others are listed
 * as skipped (by name, sorted). `images` are paths or file names under images/; `masks` the names that have a
 * masks/<name>_mask.png.
 */
export function evalFolderPlan<F extends string | { path: string }>(images: F[], boxes: Record<string, unknown>, masks: Set<string>, boxSkipped: string[] = []): { todo: F[]; skipped: string[] } {
  const nameOf = (f: F) => imageName(typeof f === 'string' ? f : f.path);
  const todo = images.filter((f) => boxes[nameOf(f)] !== undefined && masks.has(nameOf(f)));
  const skipped = [...new Set([...boxSkipped, ...images.filter((f) => !todo.includes(f)).map(nameOf)])];
  return { todo, skipped };
}
