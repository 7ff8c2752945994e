/**
 * The batch's export: labeled_dataset.csv of the finished rows and its sidecar labeled_dataset.meta.json (the
 * threshold, its source, the models and labels). Reads the batch slice's rows; the view triggers the download.
 */
import { batchLabeledRows, labeledDatasetMetadata, toLabeledDatasetCsv, type LabeledDatasetMetadata } from '../lib/batch';
import type { SliceCreator } from './state';

export interface BatchExportSlice {
  /** labeled_dataset.csv of the finished rows, every classifier column at the one current threshold. */
  batchCsv(): string;
  /** The CSV's sidecar (labeled_dataset.meta.json): that threshold, its source, the models and labels. */
  batchCsvMetadata(): LabeledDatasetMetadata;
}

export const createBatchExportSlice: SliceCreator<BatchExportSlice> = (_set, get) => ({
  batchCsv() {
    const b = get().batch;
    return toLabeledDatasetCsv(batchLabeledRows(b.rows, b.threshold, b.labels));
  },

  batchCsvMetadata() {
    const b = get().batch;
    const cls = get().manifest?.models.find((m) => m.id === b.classifierId);
    const clip = get().manifest?.models.find((m) => m.id === b.clipId);
    const binary = b.labels.positive != null;
    return labeledDatasetMetadata({
      file: 'labeled_dataset.csv',
      threshold: binary ? b.threshold : null,
      threshold_source: binary ? b.thresholdSource : 'argmax (multi-class)',
      positive_label: b.labels.positive ?? null,
      labels: b.labels.labels,
      classifier: cls ? { id: cls.id, weights: cls.weights, dtype: get().models[cls.id]?.report?.dtype } : null,
      auto_label_source: clip && b.rows.some((r) => r.autoLabel != null) ? `zero-shot ${clip.id}` : cls ? `classifier ${cls.id} at the threshold` : 'none',
      n_rows: b.rows.filter((r) => r.status === 'done').length,
    });
  },
});
