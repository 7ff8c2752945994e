/**
 * Batch mode: many files (folder, multi-select or zip) → one row per image, filled as the workers finish chunks.
 * Full rasters are decoded chunk by chunk and dropped after inference (only thumbnails and embeddings stay), so a
 * folder of hundreds of images does not hold hundreds of RGBA copies. Metrics, similar cases and the PCA map are
 * derived here (app/lib/batch/analysis.ts) when rows, threshold or selection change, not while rendering. The CSV
 * export is batch-export.ts.
 */
import {
  batchImagesPerSecond,
  batchLabeledCells,
  batchMetrics,
  batchRowCounts,
  batchPrecisionAt5,
  batchLabels,
  labelFromPath,
  looksLikeImagePath,
  pcaMap,
  similarCases,
  type BatchLabels,
  type BatchMetrics,
  type BatchRowCounts,
  type BatchRow,
  type LabeledRow,
  type ZipEntryInfo,
  type MapPoint,
  type SimilarList,
} from '../lib/batch';
import { clearBatchSpans, timed, timedSync } from '../lib/batch/timing';
import { errorMessage } from '../lib/runtime/outcome';
import { browserBatchJournal, type BatchJournalRun } from '../platform/browser/batch-journal';
import { batchDecodeSizes, decodeBatchChunk, inferBatchChunk, pipelineBatchChunks, zeroShotLabels, type BatchModels, type DecodedChunk } from '../services/batch';
import { guarded } from './alerts';
import { chosenModel, currentPromptSets } from './selectors';
import type { SliceCreator } from './state';

export type { BatchRow };

export interface BatchInput {
  name: string;
  /** Relative path (folder or zip), used as image_id and for ground truth from NORMAL/ PNEUMONIA/ folders. */
  path: string;
  /** The file (a File reference: read by the imaging worker when its chunk runs). */
  blob?: Blob;
  /** Its size when it was chosen (set by batchAdd): reading fewer bytes later means it changed or vanished. */
  size?: number;
  /** Or one entry of a zip, read and inflated on demand in the imaging worker. */
  zip?: { file: Blob; entry: ZipEntryInfo };
}

/** Derived from the rows by the slice (see the module comment). */
export interface BatchDerived {
  /**
   * The table's cells of each finished row (by BatchRow.index): the labeled_dataset.csv row the export writes for it
   * (batchLabeledCells, the same code), derived per chunk for its rows and on a threshold change, never while rendering.
   */
  cells: Record<number, LabeledRow>;
  counts: BatchRowCounts;
  metrics: BatchMetrics | null;
  similar: SimilarList[];
  pca: { classifierEmbedding: MapPoint[] | null; clipEmbedding: MapPoint[] | null };
}

export interface BatchState {
  rows: BatchRow[];
  running: boolean;
  cancelRequested: boolean;
  /** Threshold on classifier P(positive) for predictions and metrics (slider). */
  threshold: number;
  startedAt?: number;
  finishedAt?: number;
  selected?: number;
  /** Models the rows were computed with (shown next to every result). */
  classifierId?: string;
  clipId?: string;
  /** The variant (dtype) the classifier ran as (for the export's sidecar and the metrics report). */
  classifierDtype?: string;
  /** precision@5 of ground-truth label agreement by classifier embedding; set when a run stops (batchPrecisionAt5). */
  precisionAt5?: number;
  /** Images processed per second of running time (pauses excluded); set when a run stops (batchImagesPerSecond). */
  imagesPerSecond?: number;
  /** Summed duration of the runs so far (start/resume -> stop), in ms; the pauses in between are not counted. */
  activeMs: number;
  /** When the current run started (undefined while paused or finished). */
  runStartedAt?: number;
  /** The classifier's labels (manifest) the rows, metrics and export use. */
  labels: BatchLabels;
  /** Where `threshold` came from: the model card, or the user moving the slider. */
  thresholdSource: 'model card' | 'user (slider)' | 'default 0.5';
  /** The prompt labels of the run's zero-shot columns (zs_<LABEL>), fixed when the run starts. */
  zeroShotLabels: string[];
  /**
   * Rows restored from the journal after a reload or crash whose files must be chosen again before they can run
   * (a page cannot keep File references across a reload); 0 when nothing waits.
   */
  awaitingFiles: number;
  derived: BatchDerived;
}

export interface BatchSlice {
  batch: BatchState;
  batchAdd(files: BatchInput[]): Promise<void>;
  batchRun(): Promise<void>;
  batchCancel(): void;
  batchClear(): void;
  batchSetThreshold(t: number): void;
  batchSelect(index: number | undefined): void;
  /** Show the batch the journal kept (after a reload or crash): finished rows as they were, the rest pending. */
  batchRestore(): Promise<void>;
}

/** Images per model run: BATCH_CHUNK first (the first rows and a Cancel come soon), doubling up to BATCH_CHUNK_MAX, chosen
 * with `npm run bench:browser` (README "Batch throughput": 64 vs 16 gave 43.6 vs 37.2 images/s): per-run costs amortise. */
export const BATCH_CHUNK = 16;
export const BATCH_CHUNK_MAX = 64;
/** While a batch runs, the aggregates (metrics, PCA map, similar cases) are recomputed at most this often (ms), and
 * at most a tenth of the time (DERIVE_SHARE): they are O(rows) each time, O(rows²) over a run, on the main thread,
 * and under load one took 0.7 s. New rows' cells are not throttled. */
const DERIVE_EVERY_MS = 1000;
const DERIVE_SHARE = 0.1;
/** Batch thumbnails (table 28 px, similar cases 72 px): 64 px keeps 3,000 rows at ~50 MB. */
const BATCH_THUMB = 64;
const NOTHING: BatchDerived = { cells: {}, counts: { processed: 0, failed: 0 }, metrics: null, similar: [], pca: { classifierEmbedding: null, clipEmbedding: null } };
const EMPTY = { rows: [], running: false, cancelRequested: false, threshold: 0.5, activeMs: 0, labels: batchLabels(undefined), thresholdSource: 'default 0.5' as const, zeroShotLabels: [] as string[], awaitingFiles: 0, derived: NOTHING };
export const createBatchSlice: SliceCreator<BatchSlice> = (set, get) => {
  /** Inputs stay out of the rendered state: Blobs are not state to render. Indexed by BatchRow.index. */
  let inputs: BatchInput[] = [];

  /** Every chunk's rows go to IndexedDB as they finish (platform/browser/batch-journal.ts): nothing finished is lost. */
  const journal = browserBatchJournal();
  let journalFailed = false;
  const journaled = async (what: string, fn: () => Promise<void>) => {
    try {
      await fn();
    } catch (e) {
      if (!journalFailed) get().alert(`The batch could not be saved in this browser (${what}): ${errorMessage(e)}; a reload would lose its rows`, 'info');
      journalFailed = true;
    }
  };
  const saveRun = () => {
    const b = get().batch;
    const run: BatchJournalRun = {
      classifierId: b.classifierId, clipId: b.clipId, classifierDtype: b.classifierDtype, labels: b.labels, threshold: b.threshold,
      thresholdSource: b.thresholdSource, zeroShotLabels: b.zeroShotLabels, activeMs: b.activeMs, startedAt: b.startedAt,
      inputs: inputs.map((f) => ({ path: f.path || f.name, name: f.name, size: f.size })),
    };
    return journaled('run', () => journal.saveRun(run));
  };
  const hasFile = (i: number) => !!(inputs[i]?.blob || inputs[i]?.zip);

  /** Recompute what the view derives; `what` says which parts can have changed. */
  const derive = (what: { rows?: boolean; threshold?: boolean; selection?: boolean }) =>
    set((s) => {
      const b = s.batch;
      const d = b.derived;
      return {
        batch: {
          ...b,
          derived: {
            cells: what.rows || what.threshold ? batchLabeledCells(b.rows, b.threshold, b.labels) : d.cells,
            counts: what.rows ? batchRowCounts(b.rows) : d.counts,
            metrics: what.rows || what.threshold ? batchMetrics(b.rows, b.threshold, b.labels, what.rows ? undefined : d.metrics?.roc) : d.metrics,
            similar: what.rows || what.selection ? (b.selected != null ? similarCases(b.rows, b.selected) : []) : d.similar,
            pca: what.rows ? { classifierEmbedding: pcaMap(b.rows, 'classifierEmbedding'), clipEmbedding: pcaMap(b.rows, 'clipEmbedding') } : d.pca,
          },
        },
      };
    });

  let lastDerive = 0;
  let deriveMs = 0;
  /** Row updates into the state: counts and the new rows' own cells at once, the aggregates throttled while running. */
  const patchRows = (updates: Map<number, Partial<BatchRow>>, throttle = false) => {
    const now = Date.now();
    const all = !throttle || now - lastDerive >= Math.max(DERIVE_EVERY_MS, deriveMs / DERIVE_SHARE);
    // One state update (one render) per chunk; untouched rows and cells keep their objects (the table's rows are memoised).
    set((s) => {
      const b = s.batch;
      const rows = b.rows.map((r) => (updates.has(r.index) ? { ...r, ...updates.get(r.index) } : r));
      if (all) return { batch: { ...b, rows } };
      // a row shown as done always shows its CSV cells (cells are per row)
      const cells = { ...b.derived.cells, ...batchLabeledCells(rows.filter((r) => updates.has(r.index)), b.threshold, b.labels) };
      return { batch: { ...b, rows, derived: { ...b.derived, cells, counts: batchRowCounts(rows) } } };
    });
    if (all) {
      derive({ rows: true });
      lastDerive = Date.now();
      deriveMs = lastDerive - now;
    }
  };

  /**
   * Decode one chunk of pending rows (app/services/batch.ts decodeBatchChunk, the same code as `npm run label`) in the
   * pool of imaging workers: each reads its file (or zip entry) itself and returns only a thumbnail and the image
   * resized once to each model's input size, so the full-resolution raster never reaches this thread or the model
   * workers.
   */
  function decodeChunk(pending: BatchRow[], models: BatchModels): Promise<DecodedChunk> {
    const { sizes } = batchDecodeSizes(models);
    const byIndex = new Map(pending.map((r) => [r.index, r]));
    const w = get().workers; // a registry without a pool (tests' in-process one) decodes through its imaging()
    const decoders = typeof w.batchImaging === 'function' ? w.batchImaging() : w.imaging();
    return decodeBatchChunk(pending.map((r) => r.index), async (i) => {
      const input = inputs[i];
      const source = input.zip ? { zip: input.zip.file, entry: input.zip.entry } : { file: input.blob!, size: input.size ?? input.blob!.size };
      try {
        const out = await decoders.decodeForBatch(source, sizes, BATCH_THUMB);
        return out.ok ? { ok: true, modelInputs: out.modelInputs, thumbnail: out.thumbnail } : { ok: false, message: out.message };
      } catch (e) {
        return { ok: false, message: `${byIndex.get(i)?.imageId}: ${errorMessage(e)}` };
      }
    });
  }

  /** A decoded chunk through the models (inferBatchChunk), into the journal, then into the rows. */
  async function finishChunk(chunk: DecodedChunk, models: BatchModels) {
    const { updates, reports, failures } = await inferBatchChunk(get().inference, models, chunk);
    for (const f of failures) get().alert(f);
    if (reports.classifier && get().batch.classifierDtype !== reports.classifier.dtype) set((s) => ({ batch: { ...s.batch, classifierDtype: reports.classifier!.dtype } }));
    if (reports.classifier && models.classifier) get().modelRan(models.classifier.entry.id, reports.classifier);
    if (reports.clip && models.clip) get().modelRan(models.clip.entry.id, reports.clip);
    const saved = get().batch.rows.filter((r) => updates.has(r.index)).map((r) => ({ ...r, ...updates.get(r.index) }));
    await timed('journal', () => journaled('rows', () => journal.saveRows(saved)));
    timedSync('rows', () => patchRows(updates, true));
  }

  return {
    batch: EMPTY,

    batchAdd: guarded(get, 'Adding files to the batch failed', async (files: BatchInput[]) => {
      const expanded: BatchInput[] = [];
      for (const f of files) {
        if (/\.zip$/i.test(f.name) && f.blob) {
          // Only the central directory is read (in the imaging worker); entries are inflated there when their chunk runs.
          const out = await get().workers.imaging().listZip(f.blob);
          if (!out.ok) {
            get().alert(`${f.name}: ${out.message}`);
            continue;
          }
          const { entries, skipped, renamed } = out.listing;
          if (skipped.length) get().alert(`${f.name}: ${skipped.length} of ${skipped.length + entries.length} entries skipped: ${skipped.slice(0, 20).map((x) => `${x.path} (${x.reason})`).join('; ')}${skipped.length > 20 ? '; …' : ''}`, 'info');
          // Unsafe stored names (.., absolute, drive letters) are labelled under a sanitised name: the user sees both.
          if (renamed.length) get().alert(`${f.name}: ${renamed.length} entries with unsafe names labelled under safe names: ${renamed.slice(0, 20).map((x) => `${JSON.stringify(x.storedPath)} → ${x.path} (${x.reason})`).join('; ')}${renamed.length > 20 ? '; …' : ''}`, 'info');
          for (const entry of entries) {
            if (!looksLikeImagePath(entry.path)) continue;
            expanded.push({ name: entry.path.split('/').pop()!, path: entry.path, zip: { file: f.blob, entry } });
          }
        } else expanded.push({ ...f, size: f.blob?.size });
      }
      if (get().batch.awaitingFiles > 0) {
        // A restored batch: the files chosen again are matched to its pending rows by path; only those run.
        const byPath = new Map(get().batch.rows.filter((r) => r.status === 'pending' && !hasFile(r.index)).map((r) => [r.imageId, r.index]));
        let matched = 0;
        for (const f of expanded) {
          const i = byPath.get(f.path || f.name);
          if (i === undefined) continue;
          inputs[i] = f;
          matched++;
        }
        const awaitingFiles = get().batch.rows.filter((r) => r.status === 'pending' && !hasFile(r.index)).length;
        set((s) => ({ batch: { ...s.batch, awaitingFiles } }));
        get().alert(`${matched} of the stopped batch's files found again${expanded.length > matched ? `; ${expanded.length - matched} other files ignored (not part of it)` : ''}${awaitingFiles ? `; ${awaitingFiles} still missing` : ''}`, 'info');
        await get().batchRun();
        return;
      }
      const start = inputs.length;
      inputs = [...inputs, ...expanded];
      const entry = chosenModel(get(), 'classifier');
      const threshold = entry?.card.threshold;
      const fresh = get().batch.rows.length === 0;
      const labels = fresh ? batchLabels(entry?.labels) : get().batch.labels;
      set((s) => ({
        batch: {
          ...s.batch,
          labels,
          threshold: fresh && threshold != null ? threshold : s.batch.threshold,
          thresholdSource: fresh ? (threshold != null ? 'model card' : 'default 0.5') : s.batch.thresholdSource,
          rows: [
            ...s.batch.rows,
            ...expanded.map((f, i) => ({
              index: start + i,
              imageId: f.path || f.name,
              groundTruth: labelFromPath(f.path || f.name, labels.labels) ?? undefined,
              status: 'pending' as const,
            })),
          ],
        },
      }));
      await saveRun();
      await get().batchRun();
    }),

    batchRun: guarded(get, 'The batch failed', async () => {
      if (get().batch.running) return;
      clearBatchSpans();
      const s0 = get();
      const cls = chosenModel(s0, 'classifier');
      const clip = chosenModel(s0, 'clip');
      if (!cls && !clip) {
        get().alert('No model to run the batch with: the manifest has no classifier or CLIP model');
        return;
      }
      set((s) => ({
        batch: { ...s.batch, running: true, cancelRequested: false, startedAt: s.batch.startedAt ?? Date.now(), runStartedAt: Date.now(), finishedAt: undefined, classifierId: cls?.id, clipId: clip?.id, precisionAt5: undefined, imagesPerSecond: undefined },
      }));
      try {
        const clsOk = cls ? !!(await get().ensureModelLoaded(cls.id)) : false;
        const clipOk = clip ? !!(await get().ensureModelLoaded(clip.id)) : false;
        if (!clsOk && !clipOk) return;
        const st = get();
        const models: BatchModels = {
          classifier: clsOk && cls ? st.modelRequest(cls) : undefined,
          clip: clipOk && clip ? st.modelRequest(clip) : undefined,
          prompts: currentPromptSets(st),
        };
        set((s) => ({ batch: { ...s.batch, zeroShotLabels: zeroShotLabels(models) } }));
        await saveRun();
        // Resume: always the first rows still pending (pipelineBatchChunks keeps the ones in flight out).
        const byIndex = (i: number) => get().batch.rows.find((r) => r.index === i)!;
        let size = BATCH_CHUNK / 2;
        await pipelineBatchChunks(
          (inFlight) => get().batch.rows.filter((r) => r.status === 'pending' && hasFile(r.index) && !inFlight.has(r.index)).slice(0, (size = Math.min(BATCH_CHUNK_MAX, size * 2))).map((r) => r.index),
          (rows) => decodeChunk(rows.map(byIndex), models),
          (chunk) => finishChunk(chunk, models),
          () => get().batch.cancelRequested,
        );
      } finally {
        derive({ rows: true });
        set((s) => {
          const now = Date.now();
          const finishedAt = s.batch.rows.every((r) => r.status !== 'pending') ? now : undefined;
          const activeMs = s.batch.activeMs + (s.batch.runStartedAt != null ? now - s.batch.runStartedAt : 0);
          return {
            batch: {
              ...s.batch,
              running: false,
              finishedAt,
              activeMs,
              runStartedAt: undefined,
              precisionAt5: batchPrecisionAt5(s.batch.rows),
              imagesPerSecond: batchImagesPerSecond(s.batch.rows, activeMs),
            },
          };
        });
      }
    }),

    batchCancel() {
      set((s) => ({ batch: { ...s.batch, cancelRequested: true } }));
    },

    batchClear() {
      inputs = [];
      void journaled('clear', () => journal.clear());
      set((s) => ({ batch: { ...EMPTY, cancelRequested: s.batch.running, threshold: s.batch.threshold } }));
    },

    batchSetThreshold(threshold) {
      set((s) => ({ batch: { ...s.batch, threshold, thresholdSource: 'user (slider)' } }));
      derive({ threshold: true });
      void saveRun();
    },

    batchRestore: guarded(get, 'Restoring the saved batch failed', async () => {
      if (get().batch.rows.length || get().batch.running) return;
      const saved = await journal.load<BatchRow>();
      if (!saved || !saved.run.inputs.length || get().batch.rows.length) return;
      const { run } = saved;
      const stored = new Map(saved.rows.map((r) => [r.index, r]));
      inputs = run.inputs.map((f) => ({ name: f.name, path: f.path, size: f.size }));
      const rows: BatchRow[] = run.inputs.map((f, index) => stored.get(index) ?? { index, imageId: f.path, groundTruth: labelFromPath(f.path, run.labels.labels) ?? undefined, status: 'pending' });
      const awaitingFiles = rows.filter((r) => r.status === 'pending').length;
      set(() => ({
        batch: {
          ...EMPTY,
          rows,
          labels: run.labels,
          threshold: run.threshold,
          thresholdSource: run.thresholdSource,
          zeroShotLabels: run.zeroShotLabels,
          classifierId: run.classifierId,
          clipId: run.clipId,
          classifierDtype: run.classifierDtype,
          activeMs: run.activeMs,
          startedAt: run.startedAt,
          finishedAt: awaitingFiles ? undefined : Date.now(),
          awaitingFiles,
          precisionAt5: batchPrecisionAt5(rows),
          imagesPerSecond: batchImagesPerSecond(rows, run.activeMs),
        },
      }));
      derive({ rows: true });
    }),

    batchSelect(selected) {
      set((s) => ({ batch: { ...s.batch, selected } }));
      derive({ selection: true });
    },
  };
};
