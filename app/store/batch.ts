/**
 * Batch mode: many files (folder, multi-select or zip) → one row per image, filled as the workers finish chunks.
 * Full rasters are decoded chunk by chunk and dropped after inference (only thumbnails and embeddings stay), so a
 * folder of hundreds of images does not hold hundreds of RGBA copies.
 */
import type { StoreApi } from 'zustand';
import { labelFromPath, looksLikeImagePath, readZip, toLabeledDatasetCsv, type LabeledRow } from '../lib/batch';
import { precisionAtK } from '../lib/embeddings';
import type { Raster } from '../lib/imaging/raster';
import { Comlink, classifierWorker, clipWorker, imagingWorker } from './workers';
import { workerSource } from './model-service';
import { currentPromptSets, type AppState } from './app-store';

export interface BatchInput {
  name: string;
  /** Relative path (folder or zip), used as image_id and for ground truth from NORMAL/ PNEUMONIA/ folders. */
  path: string;
  blob: Blob;
}

export interface BatchRow {
  index: number;
  imageId: string;
  groundTruth?: string;
  status: 'pending' | 'done' | 'error';
  error?: string;
  thumbnail?: Raster;
  autoLabel?: string;
  autoConfidence?: number;
  zeroShotProbabilities?: Record<string, number>;
  classifierPrediction?: string;
  /** P(positive class), e.g. P(PNEUMONIA). */
  classifierProbability?: number;
  classifierEmbedding?: Float32Array;
  clipEmbedding?: Float32Array;
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

/** Inputs live outside the store: Blobs are not state to render. */
let inputs: BatchInput[] = [];
const CHUNK = 8;

export function batchLabeledRows(b: BatchState): LabeledRow[] {
  return b.rows
    .filter((r) => r.status === 'done')
    .map((r) => ({
      image_id: r.imageId,
      auto_label: r.autoLabel ?? r.classifierPrediction ?? '',
      ground_truth: r.groundTruth ?? '',
      confidence_score: r.autoConfidence ?? (r.classifierProbability != null && r.classifierPrediction ? confidenceOf(r) : 0),
      classifier_prediction: r.classifierPrediction ?? '',
      classifier_probability: r.classifierProbability ?? NaN,
    }));
}

/**
 * precision@5 of label agreement: over the finished rows with ground truth and a classifier embedding, the mean
 * fraction of each row's 5 nearest neighbours (cosine, self excluded) sharing its ground truth. Needs ≥ 2 such rows.
 */
export function batchPrecisionAt5(rows: BatchRow[]): number | undefined {
  const withEmb = rows.filter((r) => r.status === 'done' && r.groundTruth && r.classifierEmbedding?.length);
  if (withEmb.length < 2) return undefined;
  const D = withEmb[0].classifierEmbedding!.length;
  const known = withEmb.filter((r) => r.classifierEmbedding!.length === D);
  const M = new Float32Array(known.length * D);
  known.forEach((r, i) => M.set(r.classifierEmbedding!, i * D));
  const v = precisionAtK(M, D, known.map((r) => r.groundTruth!), 5);
  return Number.isFinite(v) ? v : undefined;
}

/** Throughput of a finished batch: processed rows (done or failed) per second between startedAt and finishedAt. */
export function batchImagesPerSecond(b: BatchState): number | undefined {
  if (b.startedAt == null || b.finishedAt == null || !(b.finishedAt > b.startedAt)) return undefined;
  return b.rows.filter((r) => r.status !== 'pending').length / ((b.finishedAt - b.startedAt) / 1000);
}

/** Probability of the classifier's predicted label. */
export function confidenceOf(r: BatchRow): number {
  const p = r.classifierProbability ?? 0;
  return r.classifierPrediction === 'PNEUMONIA' ? p : 1 - p;
}

export function predictAt(p: number | undefined, threshold: number): string | undefined {
  if (p == null || Number.isNaN(p)) return undefined;
  return p >= threshold ? 'PNEUMONIA' : 'NORMAL';
}

export function createBatchSlice(set: StoreApi<AppState>['setState'], get: () => AppState): BatchSlice {
  const patchRows = (updates: Map<number, Partial<BatchRow>>) =>
    set((s) => ({ batch: { ...s.batch, rows: s.batch.rows.map((r) => (updates.has(r.index) ? { ...r, ...updates.get(r.index) } : r)) } }));

  return {
    batch: { rows: [], running: false, cancelRequested: false, threshold: 0.5 },

    async batchAdd(files) {
      const expanded: BatchInput[] = [];
      for (const f of files) {
        if (/\.zip$/i.test(f.name)) {
          try {
            const entries = readZip(new Uint8Array(await f.blob.arrayBuffer()));
            for (const e of entries) {
              if (!looksLikeImagePath(e.path)) continue;
              expanded.push({ name: e.path.split('/').pop()!, path: e.path, blob: new Blob([e.bytes as BlobPart]) });
            }
          } catch (e) {
            get().alert(`${f.name}: ${(e as Error).message}`);
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
    },

    async batchRun() {
      if (get().batch.running) return;
      const s0 = get();
      const cls = s0.manifest?.models.find((m) => m.id === s0.classifierId);
      const clip = s0.manifest?.models.find((m) => m.id === s0.clipId);
      if (!cls && !clip) {
        get().alert('No model to run the batch with: the manifest has no classifier or CLIP model');
        return;
      }
      set((s) => ({ batch: { ...s.batch, running: true, cancelRequested: false, startedAt: s.batch.startedAt ?? Date.now(), finishedAt: undefined, classifierId: cls?.id, clipId: clip?.id } }));
      set((s) => ({ batch: { ...s.batch, precisionAt5: undefined, imagesPerSecond: undefined } }));
      try {
        const clsOk = cls ? !!(await get().ensureModelLoaded(cls.id)) : false;
        const clipOk = clip ? !!(await get().ensureModelLoaded(clip.id)) : false;
        if (!clsOk && !clipOk) return;
        const prompts = currentPromptSets(get());
        for (;;) {
          if (get().batch.cancelRequested) break;
          // Resume: always the first rows still pending.
          const pending = get().batch.rows.filter((r) => r.status === 'pending').slice(0, CHUNK);
          if (!pending.length) break;
          const updates = new Map<number, Partial<BatchRow>>();
          const decoded: { row: BatchRow; raster: Raster }[] = [];
          for (const row of pending) {
            const input = inputs[row.index];
            const buf = await input.blob.arrayBuffer();
            const out = await imagingWorker().decode(Comlink.transfer(buf, [buf]));
            if (!out.ok) updates.set(row.index, { status: 'error', error: out.message });
            else {
              decoded.push({ row, raster: out.image.raster });
              updates.set(row.index, { thumbnail: out.thumbnail });
            }
          }
          if (decoded.length) {
            const rasters = decoded.map((d) => d.raster);
            const st = get();
            const [c, z] = await Promise.all([
              clsOk && cls ? classifierWorker().classify({ entry: cls, override: st.settings.backend, source: workerSource(st.source) }, rasters, false) : null,
              clipOk && clip ? clipWorker().zeroShot({ entry: clip, override: st.settings.backend, source: workerSource(st.source) }, rasters, prompts) : null,
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
                error: cr || zr ? undefined : (c && !c.ok ? c.message : z && !z.ok ? z.message : 'no model output'),
                classifierPrediction: cr?.predicted,
                classifierProbability: cr?.positiveProbability ?? cr?.probabilities[1],
                classifierEmbedding: cr?.embedding,
                autoLabel: zr?.autoLabel,
                autoConfidence: zr?.confidence,
                zeroShotProbabilities: zr?.probabilities,
                clipEmbedding: zr?.imageEmbedding,
              });
            });
            if (c?.ok) set((s) => ({ models: { ...s.models, [cls!.id]: { status: 'ready', report: c.value.report } } }));
            if (z?.ok) set((s) => ({ models: { ...s.models, [clip!.id]: { status: 'ready', report: z.value.report } } }));
          }
          patchRows(updates);
        }
      } finally {
        set((s) => ({ batch: { ...s.batch, running: false, finishedAt: s.batch.rows.every((r) => r.status !== 'pending') ? Date.now() : undefined } }));
        set((s) => ({ batch: { ...s.batch, precisionAt5: batchPrecisionAt5(s.batch.rows), imagesPerSecond: batchImagesPerSecond(s.batch) } }));
      }
    },

    batchCancel() {
      set((s) => ({ batch: { ...s.batch, cancelRequested: true } }));
    },

    batchClear() {
      inputs = [];
      set((s) => ({ batch: { rows: [], running: false, cancelRequested: s.batch.running, threshold: s.batch.threshold } }));
    },

    batchSetThreshold(threshold) {
      set((s) => ({ batch: { ...s.batch, threshold } }));
    },

    batchSelect(selected) {
      set((s) => ({ batch: { ...s.batch, selected } }));
    },

    batchCsv() {
      const b = get().batch;
      // Predictions follow the threshold the user settled on.
      const rows = batchLabeledRows(b).map((r) => ({ ...r, classifier_prediction: predictAt(r.classifier_probability, b.threshold) ?? r.classifier_prediction }));
      return toLabeledDatasetCsv(rows);
    },
  };
}
