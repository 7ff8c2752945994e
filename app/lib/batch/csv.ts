/**
 * The labeled-dataset export (labeled_dataset.csv and its sidecar), written through the one CSV module
 * (app/lib/util/csv.ts: RFC 4180 quoting and CSV-injection neutralisation), re-exported here for the batch's readers.
 */
import { csvLine, toCsv } from '../util/csv';

export { csvCell, csvCell as csvField, csvLine, csvText, neutraliseFormula, parseCsv, toCsv } from '../util/csv';

/** The exact column order of labeled_dataset.csv. */
export const LABELED_DATASET_COLUMNS = [
  'image_id',
  'auto_label',
  'ground_truth',
  'confidence_score',
  'classifier_prediction',
  'classifier_probability',
  'ood_score',
  'ood',
] as const;

export interface LabeledRow {
  /** path relative to the batch root (or file name) */
  image_id: string;
  /** zero-shot CLIP label, or the classifier's prediction when no CLIP model is used */
  auto_label: string;
  /** from folder names or a CSV; '' when unknown */
  ground_truth?: string | null;
  /** confidence of auto_label (probability of the chosen label) */
  confidence_score: number;
  classifier_prediction: string;
  /** classifier P(positive class), e.g. P(PNEUMONIA) */
  classifier_probability: number;
  /** out-of-distribution score of the classifier (app/lib/classifier/ood.ts); empty when the model ships no statistics */
  ood_score?: number | null;
  /** ood_score above the model's threshold: the image is outside what the model was trained on */
  ood?: boolean | null;
  /** Zero-shot probability per prompt label (the zs_<LABEL> columns); absent without a CLIP model. */
  zero_shot?: Record<string, number>;
}

/** One zero-shot probability column per prompt label: `zs_<LABEL>`. */
export function zeroShotColumn(label: string): string {
  return `zs_${label}`;
}

/** The header of labeled_dataset.csv: the fixed columns, then zs_<LABEL> for each zero-shot label (in order). */
export function labeledDatasetColumns(zeroShotLabels: readonly string[] = []): string[] {
  return [...LABELED_DATASET_COLUMNS, ...zeroShotLabels.map(zeroShotColumn)];
}

/** One row's cells in labeledDatasetColumns(zeroShotLabels) order. */
export function labeledDatasetCells(r: LabeledRow, zeroShotLabels: readonly string[] = []): unknown[] {
  return [
    r.image_id,
    r.auto_label,
    r.ground_truth ?? '',
    r.confidence_score,
    r.classifier_prediction,
    r.classifier_probability,
    r.ood_score ?? '',
    r.ood == null ? '' : r.ood ? 'true' : 'false',
    ...zeroShotLabels.map((l) => r.zero_shot?.[l] ?? ''),
  ];
}

/** The header line of labeled_dataset.csv (no line ending): for writers that append rows as they finish. */
export function labeledDatasetHeaderLine(zeroShotLabels: readonly string[] = []): string {
  return csvLine(labeledDatasetColumns(zeroShotLabels));
}

/** One data line of labeled_dataset.csv (no line ending). */
export function labeledDatasetLine(r: LabeledRow, zeroShotLabels: readonly string[] = []): string {
  return csvLine(labeledDatasetCells(r, zeroShotLabels));
}

/** labeled_dataset.csv: header and rows, CRLF line endings, text cells neutralised against CSV injection. */
export function toLabeledDatasetCsv(rows: LabeledRow[], zeroShotLabels: readonly string[] = []): string {
  return toCsv([labeledDatasetColumns(zeroShotLabels), ...rows.map((r) => labeledDatasetCells(r, zeroShotLabels))]);
}

/**
 * The sidecar of labeled_dataset.csv (written next to it as `<name>.meta.json`): the ONE threshold every
 * classifier-derived column of that file was computed at, where it came from, and the models and labels.
 */
export interface LabeledDatasetMetadata {
  file: string;
  columns: readonly string[];
  /** The zero-shot labels of the zs_<LABEL> columns (empty without a CLIP model). */
  zero_shot_labels: string[];
  /** Threshold on P(positive_label) of classifier_prediction (and of auto_label/confidence_score when those come from the classifier). */
  threshold: number | null;
  threshold_source: 'model card' | 'user (slider)' | 'command line' | 'default 0.5' | 'argmax (multi-class)';
  positive_label: string | null;
  labels: string[];
  classifier: { id: string; weights: string; dtype?: string } | null;
  auto_label_source: string;
  n_rows: number;
  created: string;
}

export function labeledDatasetMetadata(m: Omit<LabeledDatasetMetadata, 'columns' | 'created' | 'zero_shot_labels'> & { created?: string; zero_shot_labels?: string[] }): LabeledDatasetMetadata {
  const zs = m.zero_shot_labels ?? [];
  return { ...m, zero_shot_labels: zs, columns: labeledDatasetColumns(zs), created: m.created ?? new Date().toISOString() };
}

/** `labeled_dataset.csv` -> `labeled_dataset.meta.json`. */
export function metadataFileName(csvName: string): string {
  return csvName.replace(/\.csv$/i, '') + '.meta.json';
}
