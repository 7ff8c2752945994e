/**
 * The batch's export: labeled_dataset.csv of the finished rows, its sidecar labeled_dataset.meta.json (the
 * threshold, its source, the models and labels) and the metrics report, all made by the batch service
 * (app/services/batch.ts), the same functions `npm run label` writes its files with. The view triggers the download.
 */
import type { LabeledDatasetMetadata } from '../lib/batch';
import { batchCsv, batchCsvMetadata, batchMetricsReport, type BatchExportContext } from '../services/batch';
import { withZeroShotScoring } from '../services/clip';
import type { AppState, SliceCreator } from './state';

export interface BatchExportSlice {
  /** labeled_dataset.csv of the finished rows, every classifier column at the one current threshold. */
  batchCsv(): string;
  /** The CSV's sidecar (labeled_dataset.meta.json): that threshold, its source, the models and labels, the zero-shot scoring. */
  batchCsvMetadata(): LabeledDatasetMetadata;
  /** The metrics report of the rows (the JSON `npm run label` prints last). */
  batchMetricsReport(): ReturnType<typeof batchMetricsReport>;
}

function exportContext(s: AppState): BatchExportContext {
  const b = s.batch;
  const cls = s.manifest?.models.find((m) => m.id === b.classifierId);
  const clip = s.manifest?.models.find((m) => m.id === b.clipId);
  return {
    threshold: b.threshold,
    thresholdSource: b.labels.positive != null ? b.thresholdSource : 'argmax (multi-class)',
    labels: b.labels,
    classifier: cls ? { id: cls.id, weights: cls.weights, dtype: b.classifierDtype } : undefined,
    clip: clip ? { id: clip.id } : undefined,
    zeroShotLabels: b.zeroShotLabels,
  };
}

export const createBatchExportSlice: SliceCreator<BatchExportSlice> = (_set, get) => ({
  batchCsv() {
    return batchCsv(get().batch.rows, exportContext(get()));
  },

  batchCsvMetadata() {
    const s = get();
    // With the zero-shot scoring rule and temperature, as `npm run label` writes it (services/clip.ts).
    return withZeroShotScoring(batchCsvMetadata(s.batch.rows, exportContext(s)), s.manifest?.models.find((m) => m.id === s.batch.clipId));
  },

  batchMetricsReport() {
    return batchMetricsReport(get().batch.rows, exportContext(get()));
  },
});
