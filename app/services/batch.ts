/**
 * Batch labelling, written once: one chunk of images -> decoded inputs -> classifier and zero-shot results -> batch
 * rows (app/lib/batch/rows.ts), and rows -> labeled_dataset.csv, its sidecar and the metrics report. The app's
 * batch slice (app/store/batch.ts, decoding in the imaging worker) and `npm run label` (app/cli/label.ts, decoding
 * in-process) both call these, so the same folder gives the same CSV and metrics through either (tests/unit/batch/
 * app-cli-parity.test.ts proves it).
 */
import { batchInputSizes, batchRowOutcome } from '../lib/batch/chunk';
import { labeledDatasetMetadata, toLabeledDatasetCsv, type LabeledDatasetMetadata } from '../lib/batch/csv';
import { batchLabeledRows, type BatchLabels, type BatchRow } from '../lib/batch/rows';
import { batchReport, type BatchReport } from '../lib/batch/summary';
import { timed } from '../lib/batch/timing';
import type { ClassifierEngine } from '../lib/classifier/engine';
import type { ClassifierResult } from '../lib/classifier/types';
import type { ClipEngine } from '../lib/clip/engine';
import { usablePromptSets } from '../lib/clip/prompts';
import type { PromptSet, ZeroShotOutput } from '../lib/clip/types';
import type { ModelInputSize } from '../lib/imaging/decode-outcome';
import type { Raster } from '../lib/imaging/raster';
import type { ModelEntry } from '../lib/models/manifest-types';
import { errorMessage, type ModelRequest } from '../lib/runtime/outcome';
import type { RuntimeReport } from '../lib/runtime/report';
import type { InferenceService } from './inference';

/** The models of a batch run: a classifier and/or a CLIP model with its prompt sets. */
export interface BatchModels {
  classifier?: ModelRequest;
  clip?: ModelRequest;
  /** The CLIP model's prompt sets (ignored without one). */
  prompts: PromptSet[];
}

/** One image of a chunk decoded for the batch: its inputs resized once per size of batchDecodeSizes, in order. */
export type BatchDecoded = { ok: true; modelInputs: Raster[]; thumbnail?: Raster } | { ok: false; message: string };

/** How a chunk's images are read and decoded (imaging worker in the app, in-process in the CLI). */
export type BatchDecoder = (index: number) => Promise<BatchDecoded>;

export interface BatchChunkResult {
  /** Row fields by BatchRow.index: 'done' with the models' outputs, or 'error' with the cause. */
  updates: Map<number, Partial<BatchRow>>;
  /** Runtime report of each model that ran. */
  reports: { classifier?: RuntimeReport; clip?: RuntimeReport };
  /** A model's failure for the whole chunk (each failed row carries it too). */
  failures: string[];
}

/** The distinct input sizes to decode a batch's images to (one resize per size) and which one each model reads. */
export function batchDecodeSizes(models: Pick<BatchModels, 'classifier' | 'clip'>): { sizes: ModelInputSize[]; index(e: ModelEntry | undefined): number } {
  return batchInputSizes([models.classifier?.entry, models.clip?.entry]);
}

/** The prompt labels of the zs_<LABEL> columns: the usable prompt sets' labels (none without a CLIP model). */
export function zeroShotLabels(models: Pick<BatchModels, 'clip' | 'prompts'>): string[] {
  return models.clip ? usablePromptSets(models.prompts).map((s) => s.label) : [];
}

const attempt = <R>(p: Promise<R>) => p.then((value) => ({ ok: true as const, value }), (e) => ({ ok: false as const, message: errorMessage(e) }));

/** A chunk's images after decoding: the rows' fields so far (thumbnail, or the decode error) and the model inputs. */
export interface DecodedChunk {
  updates: Map<number, Partial<BatchRow>>;
  decoded: { row: number; inputs: Raster[] }[];
}

/**
 * Decode one chunk of rows, all of its images at once (the app spreads them over its pool of imaging workers; the
 * CLI interleaves the reads); a decode error lands in that image's row. Never throws for a bad image.
 */
export async function decodeBatchChunk(indices: number[], decode: BatchDecoder): Promise<DecodedChunk> {
  const updates = new Map<number, Partial<BatchRow>>();
  const outs = await timed('decode', () => Promise.all(indices.map((i) => decode(i).catch((e: unknown): BatchDecoded => ({ ok: false, message: errorMessage(e) })))), () => ({ images: indices.length }));
  const decoded: DecodedChunk['decoded'] = [];
  indices.forEach((i, k) => {
    const out = outs[k];
    if (!out.ok) updates.set(i, { status: 'error', error: out.message });
    else {
      decoded.push({ row: i, inputs: out.modelInputs });
      updates.set(i, out.thumbnail ? { thumbnail: out.thumbnail } : {});
    }
  });
  return { updates, decoded };
}

/**
 * Classify and zero-shot label a decoded chunk, the classifier then the CLIP model (one model at a time on all the
 * WASM threads: measured faster than both at once, see below); a model's error lands in the rows it could not label.
 * Never throws for a failed model run.
 */
export async function inferBatchChunk(inference: InferenceService, models: BatchModels, chunk: DecodedChunk): Promise<BatchChunkResult> {
  const { decoded } = chunk;
  const updates = new Map(chunk.updates);
  const { index } = batchDecodeSizes(models);
  const reports: BatchChunkResult['reports'] = {};
  const failures: string[] = [];
  if (!decoded.length) return { updates, reports, failures };
  const { classifier: clsReq, clip: clipReq } = models;
  const clsRasters = decoded.map((d) => d.inputs[index(clsReq?.entry)]);
  const clipRasters = decoded.map((d) => d.inputs[index(clipReq?.entry)]);
  // Each model's call is a user-timing span (lib/batch/timing.ts) with its ORT run time: where a chunk's time goes.
  const ortMs = (r: { ok: boolean; value?: { report: RuntimeReport } }) => ({ images: decoded.length, ortMs: (r.ok && r.value?.report.lastInferenceMs) || 0 });
  // One model at a time, each on all of ORT's WASM threads: in the app each model has its own worker and its own
  // ORT thread pool, and running both at once put 2 x 2 spinning threads on 2 cores (1.44x slower, README "Batch
  // throughput"); in the CLI the two sessions share one ORT instance, which runs one at a time anyway.
  const c = clsReq ? await timed('classifier', () => attempt(inference.run(clsReq, (e: ClassifierEngine) => e.classify(clsReq, clsRasters, { heatmap: false }))), ortMs) : null;
  const z = clipReq ? await timed('clip', () => attempt(inference.run(clipReq, (e: ClipEngine) => e.zeroShot(clipReq, clipRasters, models.prompts))), ortMs) : null;
  if (c && !c.ok) failures.push(c.message);
  if (z && !z.ok) failures.push(z.message);
  if (c?.ok) reports.classifier = c.value.report;
  if (z?.ok) reports.clip = z.value.report;
  decoded.forEach(({ row }, k) => {
    const cr: ClassifierResult | undefined = c?.ok ? c.value.results[k] : undefined;
    const zr: ZeroShotOutput | undefined = z?.ok ? z.value.results[k] : undefined;
    updates.set(row, { ...updates.get(row), ...batchRowOutcome(cr, zr, failures[0]) });
  });
  return { updates, reports, failures };
}

/**
 * Decode, then classify and zero-shot label one chunk of rows (decodeBatchChunk, then inferBatchChunk); every
 * failure lands in its own row. Never throws for a bad image or a failed model run: the batch goes on with the next
 * chunk.
 */
export async function runBatchChunk(inference: InferenceService, models: BatchModels, indices: number[], decode: BatchDecoder): Promise<BatchChunkResult> {
  return inferBatchChunk(inference, models, await decodeBatchChunk(indices, decode));
}

/**
 * The batch loop with one chunk of look-ahead: chunk k+1 decodes (imaging workers) while chunk k runs through the
 * models (model workers, one after the other) and into the rows. `next(inFlight)` picks the next chunk's rows among those not in flight
 * (null: nothing left); after each decode `cancelled()` is asked, and a cancelled run leaves the decoded chunk's rows
 * pending for Resume.
 */
export async function pipelineBatchChunks<D>(next: (inFlight: Set<number>) => number[] | null, decode: (rows: number[]) => Promise<D>, finish: (chunk: D) => Promise<void>, cancelled: () => boolean): Promise<void> {
  const inFlight = new Set<number>();
  const start = () => {
    if (cancelled()) return null;
    const rows = next(inFlight);
    if (!rows?.length) return null;
    for (const r of rows) inFlight.add(r);
    return { rows, decoding: decode(rows) };
  };
  let cur = start();
  while (cur) {
    const chunk = await cur.decoding;
    // A macrotask between chunks: a Cancel (a click, a timer) gets in even when the next chunk is already decoded.
    await new Promise((r) => setTimeout(r, 0));
    if (cancelled()) return;
    const done = cur.rows;
    cur = start();
    try {
      await finish(chunk);
    } finally {
      for (const r of done) inFlight.delete(r);
    }
  }
}

/** What labeled_dataset.csv's sidecar says about how its columns were computed. */
export interface BatchExportContext {
  threshold: number;
  thresholdSource: LabeledDatasetMetadata['threshold_source'];
  labels: BatchLabels;
  classifier?: { id: string; weights: string; dtype?: string };
  clip?: { id: string };
  zeroShotLabels: string[];
  /** File name of the CSV (the sidecar's `file`). */
  file?: string;
  created?: string;
}

/** labeled_dataset.csv of the finished rows: every classifier column at ctx.threshold, zs_<LABEL> columns last. */
export function batchCsv(rows: BatchRow[], ctx: Pick<BatchExportContext, 'threshold' | 'labels' | 'zeroShotLabels'>): string {
  return toLabeledDatasetCsv(batchLabeledRows(rows, ctx.threshold, ctx.labels), ctx.zeroShotLabels);
}

/** The CSV's sidecar (labeled_dataset.meta.json): the threshold and its source, the models, the labels. */
export function batchCsvMetadata(rows: BatchRow[], ctx: BatchExportContext): LabeledDatasetMetadata {
  const binary = ctx.labels.positive != null;
  const zeroShot = !!ctx.clip && rows.some((r) => r.autoLabel != null);
  return labeledDatasetMetadata({
    file: ctx.file ?? 'labeled_dataset.csv',
    threshold: binary ? ctx.threshold : null,
    threshold_source: binary ? ctx.thresholdSource : 'argmax (multi-class)',
    positive_label: ctx.labels.positive ?? null,
    labels: ctx.labels.labels,
    classifier: ctx.classifier ? { id: ctx.classifier.id, weights: ctx.classifier.weights, dtype: ctx.classifier.dtype } : null,
    auto_label_source: zeroShot ? `zero-shot ${ctx.clip!.id}` : ctx.classifier ? `classifier ${ctx.classifier.id} at the threshold` : 'none',
    n_rows: rows.filter((r) => r.status === 'done').length,
    zero_shot_labels: zeroShot ? ctx.zeroShotLabels : [],
    created: ctx.created,
  });
}

/** The metrics report of the rows (app/lib/batch/summary.ts), with the models that made them. */
export function batchMetricsReport(rows: BatchRow[], ctx: BatchExportContext): BatchReport & { model: string | null; dtype: string | null; weights: string | null; auto_label_source: string; skipped: number } {
  const zeroShot = !!ctx.clip && rows.some((r) => r.autoLabel != null);
  return {
    model: ctx.classifier?.id ?? null,
    dtype: ctx.classifier?.dtype ?? null,
    weights: ctx.classifier?.weights ?? null,
    ...batchReport(rows, ctx.threshold, ctx.labels, zeroShot ? ctx.zeroShotLabels : []),
    auto_label_source: zeroShot ? ctx.clip!.id : 'classifier',
    skipped: rows.filter((r) => r.status === 'error').length,
  };
}
