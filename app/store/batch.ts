/**
 * Batch mode: many files (folder, multi-select or zip) → one row per image, filled as the workers finish chunks.
 * Full rasters are decoded chunk by chunk and dropped after inference (only thumbnails and embeddings stay), so a
 * folder of hundreds of images does not hold hundreds of RGBA copies. Metrics, similar cases and the PCA map are
 * derived here (app/lib/batch/analysis.ts) when rows, threshold or selection change, not while rendering.
 */
import {
  batchImagesPerSecond,
  batchLabeledRows,
  batchMetrics,
  batchPrecisionAt5,
  labelFromPath,
  looksLikeImagePath,
  pcaMap,
  predictAt,
  readZipAll,
  similarCases,
  toLabeledDatasetCsv,
  type BatchMetrics,
  type BatchRow,
  type MapPoint,
  type SimilarList,
} from '../lib/batch';
import type { ClassifierEngine } from '../lib/classify/engine';
import type { ClipEngine } from '../lib/clip/engine';
import type { Raster } from '../lib/imaging/raster';
import { errorMessage } from '../lib/runtime/outcome';
import { transfer } from '../platform/browser/workers';
import { guarded } from './alerts';
import { currentPromptSets } from './selectors';
import type { SliceCreator } from './state';

export type { BatchRow };

export interface BatchInput {
  name: string;
  /** Relative path (folder or zip), used as image_id and for ground truth from NORMAL/ PNEUMONIA/ folders. */
  path: string;
  blob: Blob;
}

/** Derived from the rows by the slice (see the module comment). */
export interface BatchDerived {
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
  /** precision@5 of ground-truth label agreement by classifier embedding; set when a run stops (batchPrecisionAt5). */
  precisionAt5?: number;
  /** Images processed per second from startedAt to finishedAt; set when the batch finishes (batchImagesPerSecond). */
  imagesPerSecond?: number;
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
  /** labeled_dataset.csv of the finished rows. */
  batchCsv(): string;
}

const CHUNK = 8;
const NOTHING: BatchDerived = { metrics: null, similar: [], pca: { classifierEmbedding: null, clipEmbedding: null } };

export const createBatchSlice: SliceCreator<BatchSlice> = (set, get) => {
  /** Inputs stay out of the rendered state: Blobs are not state to render. Indexed by BatchRow.index. */
  let inputs: BatchInput[] = [];

  /** Recompute what the view derives; `what` says which parts can have changed. */
  const derive = (what: { rows?: boolean; threshold?: boolean; selection?: boolean }) =>
    set((s) => {
      const b = s.batch;
      const d = b.derived;
      return {
        batch: {
          ...b,
          derived: {
            metrics: what.rows || what.threshold ? batchMetrics(b.rows, b.threshold, what.rows ? undefined : d.metrics?.roc) : d.metrics,
            similar: what.rows || what.selection ? (b.selected != null ? similarCases(b.rows, b.selected) : []) : d.similar,
            pca: what.rows ? { classifierEmbedding: pcaMap(b.rows, 'classifierEmbedding'), clipEmbedding: pcaMap(b.rows, 'clipEmbedding') } : d.pca,
          },
        },
      };
    });

  const patchRows = (updates: Map<number, Partial<BatchRow>>) => {
    set((s) => ({ batch: { ...s.batch, rows: s.batch.rows.map((r) => (updates.has(r.index) ? { ...r, ...updates.get(r.index) } : r)) } }));
    derive({ rows: true });
  };

  /** Decode, then classify and zero-shot label one chunk of pending rows; every failure lands in its rows. */
  async function runChunk(pending: BatchRow[], cls: { id: string } | undefined, clip: { id: string } | undefined) {
    const updates = new Map<number, Partial<BatchRow>>();
    const decoded: { row: BatchRow; raster: Raster }[] = [];
    for (const row of pending) {
      try {
        const buf = await inputs[row.index].blob.arrayBuffer();
        const out = await get().workers.imaging().decode(transfer(buf, [buf]));
        if (!out.ok) updates.set(row.index, { status: 'error', error: out.message });
        else {
          decoded.push({ row, raster: out.image.raster });
          updates.set(row.index, { thumbnail: out.thumbnail });
        }
      } catch (e) {
        updates.set(row.index, { status: 'error', error: `${row.imageId}: ${errorMessage(e)}` });
      }
    }
    if (decoded.length) {
      const rasters = decoded.map((d) => d.raster);
      const st = get();
      const clsEntry = cls && st.manifest?.models.find((m) => m.id === cls.id);
      const clipEntry = clip && st.manifest?.models.find((m) => m.id === clip.id);
      const attempt = <R>(p: Promise<R>) => p.then((value) => ({ ok: true as const, value }), (e) => ({ ok: false as const, message: errorMessage(e) }));
      const clsReq = clsEntry && st.modelRequest(clsEntry);
      const clipReq = clipEntry && st.modelRequest(clipEntry);
      const prompts = currentPromptSets(st);
      const [c, z] = await Promise.all([
        clsReq ? attempt(st.inference.run(clsReq, (e: ClassifierEngine) => e.classify(clsReq, rasters, { heatmap: false }))) : null,
        clipReq ? attempt(st.inference.run(clipReq, (e: ClipEngine) => e.zeroShot(clipReq, rasters, prompts))) : null,
      ]);
      if (c && !c.ok) get().alert(c.message);
      if (z && !z.ok) get().alert(z.message);
      decoded.forEach(({ row }, i) => {
        const u = updates.get(row.index) ?? {};
        const cr = c?.ok ? c.value.results[i] : undefined;
        const zr = z?.ok ? z.value.results[i] : undefined;
        updates.set(row.index, {
          ...u,
          status: cr || zr ? 'done' : 'error',
          error: cr || zr ? undefined : c && !c.ok ? c.message : z && !z.ok ? z.message : 'no model output',
          classifierPrediction: cr?.predicted,
          classifierProbability: cr?.positiveProbability ?? cr?.probabilities[1],
          classifierEmbedding: cr?.embedding,
          autoLabel: zr?.autoLabel,
          autoConfidence: zr?.confidence,
          zeroShotProbabilities: zr?.probabilities,
          clipEmbedding: zr?.imageEmbedding,
        });
      });
      if (c?.ok && cls) get().modelRan(cls.id, c.value.report);
      if (z?.ok && clip) get().modelRan(clip.id, z.value.report);
    }
    patchRows(updates);
  }

  return {
    batch: { rows: [], running: false, cancelRequested: false, threshold: 0.5, derived: NOTHING },

    batchAdd: guarded(get, 'Adding files to the batch failed', async (files: BatchInput[]) => {
      const expanded: BatchInput[] = [];
      for (const f of files) {
        if (/\.zip$/i.test(f.name)) {
          try {
            const { entries, skipped } = await readZipAll(new Uint8Array(await f.blob.arrayBuffer()));
            if (skipped.length) get().alert(`${f.name}: ${skipped.length} of ${skipped.length + entries.length} entries skipped: ${skipped.map((s) => `${s.path} (${s.reason})`).join('; ')}`, 'info');
            for (const e of entries) {
              if (!looksLikeImagePath(e.path)) continue;
              expanded.push({ name: e.path.split('/').pop()!, path: e.path, blob: new Blob([e.bytes as BlobPart]) });
            }
          } catch (e) {
            get().alert(`${f.name}: ${errorMessage(e)}`);
          }
        } else expanded.push(f);
      }
      const start = inputs.length;
      inputs = [...inputs, ...expanded];
      const threshold = get().manifest?.models.find((m) => m.id === get().classifierId)?.card.threshold;
      set((s) => ({
        batch: {
          ...s.batch,
          threshold: s.batch.rows.length === 0 && threshold != null ? threshold : s.batch.threshold,
          rows: [
            ...s.batch.rows,
            ...expanded.map((f, i) => ({
              index: start + i,
              imageId: f.path || f.name,
              groundTruth: labelFromPath(f.path || f.name) ?? undefined,
              status: 'pending' as const,
            })),
          ],
        },
      }));
      await get().batchRun();
    }),

    batchRun: guarded(get, 'The batch failed', async () => {
      if (get().batch.running) return;
      const s0 = get();
      const cls = s0.manifest?.models.find((m) => m.id === s0.classifierId);
      const clip = s0.manifest?.models.find((m) => m.id === s0.clipId);
      if (!cls && !clip) {
        get().alert('No model to run the batch with: the manifest has no classifier or CLIP model');
        return;
      }
      set((s) => ({
        batch: { ...s.batch, running: true, cancelRequested: false, startedAt: s.batch.startedAt ?? Date.now(), finishedAt: undefined, classifierId: cls?.id, clipId: clip?.id, precisionAt5: undefined, imagesPerSecond: undefined },
      }));
      try {
        const clsOk = cls ? !!(await get().ensureModelLoaded(cls.id)) : false;
        const clipOk = clip ? !!(await get().ensureModelLoaded(clip.id)) : false;
        if (!clsOk && !clipOk) return;
        for (;;) {
          if (get().batch.cancelRequested) break;
          // Resume: always the first rows still pending.
          const pending = get().batch.rows.filter((r) => r.status === 'pending').slice(0, CHUNK);
          if (!pending.length) break;
          await runChunk(pending, clsOk ? cls : undefined, clipOk ? clip : undefined);
        }
      } finally {
        set((s) => {
          const finishedAt = s.batch.rows.every((r) => r.status !== 'pending') ? Date.now() : undefined;
          return {
            batch: {
              ...s.batch,
              running: false,
              finishedAt,
              precisionAt5: batchPrecisionAt5(s.batch.rows),
              imagesPerSecond: batchImagesPerSecond(s.batch.rows, s.batch.startedAt, finishedAt),
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
      set((s) => ({ batch: { rows: [], running: false, cancelRequested: s.batch.running, threshold: s.batch.threshold, derived: NOTHING } }));
    },

    batchSetThreshold(threshold) {
      set((s) => ({ batch: { ...s.batch, threshold } }));
      derive({ threshold: true });
    },

    batchSelect(selected) {
      set((s) => ({ batch: { ...s.batch, selected } }));
      derive({ selection: true });
    },

    batchCsv() {
      const b = get().batch;
      // Predictions follow the threshold the user settled on.
      const rows = batchLabeledRows(b.rows).map((r) => ({ ...r, classifier_prediction: predictAt(r.classifier_probability, b.threshold) ?? r.classifier_prediction }));
      return toLabeledDatasetCsv(rows);
    },
  };
};
