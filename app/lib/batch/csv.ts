/**
 * RFC 4180 CSV reading and writing, and the labeled-dataset export.
 */

/** Quote a field when it contains a comma, a double quote, CR or LF (quotes doubled). */
export function csvField(v: unknown): string {
  if (v === null || v === undefined) return '';
  const s = typeof v === 'number' ? formatNumber(v) : String(v);
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

function formatNumber(x: number): string {
  if (!Number.isFinite(x)) return '';
  return String(Math.round(x * 1e6) / 1e6);
}

/** Rows of fields → CSV text, CRLF line endings, trailing CRLF. */
export function toCsv(rows: unknown[][]): string {
  return rows.map((r) => r.map(csvField).join(',')).join('\r\n') + '\r\n';
}

/** Parse RFC 4180 CSV (quoted fields, doubled quotes, CRLF or LF, BOM tolerated). Blank lines are dropped. */
export function parseCsv(text: string): string[][] {
  const s = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let inQuotes = false;
  let i = 0;
  const endRow = () => {
    row.push(field);
    field = '';
    if (!(row.length === 1 && row[0] === '')) rows.push(row);
    row = [];
  };
  while (i < s.length) {
    const c = s[i];
    if (inQuotes) {
      if (c === '"') {
        if (s[i + 1] === '"') {
          field += '"';
          i += 2;
          continue;
        }
        inQuotes = false;
        i++;
        continue;
      }
      field += c;
      i++;
      continue;
    }
    if (c === '"' && field === '') {
      inQuotes = true;
      i++;
    } else if (c === ',') {
      row.push(field);
      field = '';
      i++;
    } else if (c === '\r' || c === '\n') {
      endRow();
      i += c === '\r' && s[i + 1] === '\n' ? 2 : 1;
    } else {
      field += c;
      i++;
    }
  }
  if (field !== '' || row.length > 0) endRow();
  return rows;
}

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
  /** out-of-distribution score of the classifier (app/lib/classify/ood.ts); empty when the model ships no statistics */
  ood_score?: number | null;
  /** ood_score above the model's threshold: the image is outside what the model was trained on */
  ood?: boolean | null;
}

export function toLabeledDatasetCsv(rows: LabeledRow[]): string {
  return toCsv([
    [...LABELED_DATASET_COLUMNS],
    ...rows.map((r) => [
      r.image_id,
      r.auto_label,
      r.ground_truth ?? '',
      r.confidence_score,
      r.classifier_prediction,
      r.classifier_probability,
      r.ood_score ?? '',
      r.ood == null ? '' : r.ood ? 'true' : 'false',
    ]),
  ]);
}

/**
 * The sidecar of labeled_dataset.csv (written next to it as `<name>.meta.json`): the ONE threshold every
 * classifier-derived column of that file was computed at, where it came from, and the models and labels.
 */
export interface LabeledDatasetMetadata {
  file: string;
  columns: readonly string[];
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

export function labeledDatasetMetadata(m: Omit<LabeledDatasetMetadata, 'columns' | 'created'> & { created?: string }): LabeledDatasetMetadata {
  return { ...m, columns: LABELED_DATASET_COLUMNS, created: m.created ?? new Date().toISOString() };
}

/** `labeled_dataset.csv` -> `labeled_dataset.meta.json`. */
export function metadataFileName(csvName: string): string {
  return csvName.replace(/\.csv$/i, '') + '.meta.json';
}
