/**
 * What the batch view shows beyond the table, computed from the rows by the store when they change (not in render):
 * threshold metrics and the ROC curve on the rows with ground truth, the nearest neighbours of the selected row, and
 * the 2-D PCA map of each embedding.
 */
import { knnQuery, pca2d } from '../embeddings';
import { metricsAt, rocAuc, rocCurve, type RocCurve, type ThresholdMetrics } from '../metrics';
import { predictAt, type BatchLabels, type BatchRow } from './rows';

export type EmbeddingKey = 'classifierEmbedding' | 'clipEmbedding';

/** Multi-class metrics at argmax over the rows whose ground truth is one of the labels. */
export interface MulticlassMetrics {
  labels: string[];
  /** confusion[i][j]: rows of true label i predicted as label j. */
  confusion: number[][];
  accuracy: number;
  perClass: { label: string; precision: number; recall: number; f1: number; support: number }[];
  macroF1: number;
}

export interface BatchMetrics {
  /** Rows with a ground truth among the classifier's labels and a classifier result. */
  n: number;
  labels: BatchLabels;
  /** Binary models: metrics at the threshold on P(positive). */
  at: ThresholdMetrics | null;
  /** Null unless binary with both classes present. */
  roc: { curve: RocCurve; auc: number } | null;
  /** Models with more than two labels. */
  multiclass: MulticlassMetrics | null;
}

const ratio = (a: number, b: number) => (b > 0 ? a / b : 0);

/** Confusion matrix, accuracy and per-class precision/recall/F1 of label indices (−1 = unknown, skipped). */
export function multiclassMetrics(labels: string[], truth: number[], pred: number[]): MulticlassMetrics {
  const K = labels.length;
  const confusion = labels.map(() => new Array<number>(K).fill(0));
  let n = 0;
  let right = 0;
  truth.forEach((t, i) => {
    if (t < 0 || pred[i] < 0) return;
    confusion[t][pred[i]]++;
    n++;
    if (t === pred[i]) right++;
  });
  const perClass = labels.map((label, k) => {
    const tp = confusion[k][k];
    const support = confusion[k].reduce((a, b) => a + b, 0);
    const predicted = confusion.reduce((a, row) => a + row[k], 0);
    const precision = ratio(tp, predicted);
    const recall = ratio(tp, support);
    return { label, precision, recall, f1: ratio(2 * precision * recall, precision + recall), support };
  });
  return { labels, confusion, accuracy: ratio(right, n), perClass, macroF1: perClass.reduce((a, c) => a + c.f1, 0) / (K || 1) };
}

/**
 * Metrics over the finished rows whose ground truth is one of the classifier's labels: binary models at `threshold`
 * on P(positive) with the ROC curve; multi-class models at argmax. Null when no row qualifies.
 */
export function batchMetrics(rows: BatchRow[], threshold: number, lab: BatchLabels, roc?: BatchMetrics['roc']): BatchMetrics | null {
  if (lab.positive != null) {
    const known = rows.filter((r) => r.status === 'done' && r.classifierProbability != null && (r.groundTruth === lab.positive || r.groundTruth === lab.negative));
    if (!known.length) return null;
    const y = known.map((r) => (r.groundTruth === lab.positive ? 1 : 0));
    const p = known.map((r) => r.classifierProbability!);
    const curve = roc !== undefined ? roc : new Set(y).size === 2 ? { curve: rocCurve(y, p), auc: rocAuc(y, p) } : null;
    return { n: known.length, labels: lab, at: metricsAt(y, p, threshold), roc: curve, multiclass: null };
  }
  const known = rows.filter((r) => r.status === 'done' && r.classifierProbabilities?.length === lab.labels.length && r.groundTruth != null && lab.labels.includes(r.groundTruth));
  if (!known.length) return null;
  const truth = known.map((r) => lab.labels.indexOf(r.groundTruth!));
  const pred = known.map((r) => lab.labels.indexOf(predictAt(r, threshold, lab)!));
  return { n: known.length, labels: lab, at: null, roc: null, multiclass: multiclassMetrics(lab.labels, truth, pred) };
}

export interface SimilarList {
  title: string;
  /** The 5 nearest rows by cosine similarity, most similar first. */
  items: { index: number; similarity: number }[];
}

/** The 5 nearest neighbours of row `index` by each embedding it has (self excluded). */
export function similarCases(rows: BatchRow[], index: number, k = 5): SimilarList[] {
  const row = rows.find((r) => r.index === index);
  if (!row) return [];
  const out: SimilarList[] = [];
  for (const [title, key] of [
    ['classifier embedding', 'classifierEmbedding'],
    ['CLIP embedding', 'clipEmbedding'],
  ] as const) {
    const q = row[key];
    if (!q?.length) continue;
    const pool = rows.filter((r) => r[key]?.length === q.length && r.index !== row.index);
    if (!pool.length) continue;
    const D = q.length;
    const M = new Float32Array(pool.length * D);
    pool.forEach((r, i) => M.set(r[key]!, i * D));
    out.push({ title, items: knnQuery(M, D, q, k).map((n) => ({ index: pool[n.index].index, similarity: n.similarity })) });
  }
  return out;
}

export interface MapPoint {
  index: number;
  /** Both in [0, 1] (the map's extent). */
  x: number;
  y: number;
}

/** The rows with embedding `key` projected on its first two principal components; null with fewer than 3. */
export function pcaMap(rows: BatchRow[], key: EmbeddingKey): MapPoint[] | null {
  const with_ = rows.filter((r) => r[key]?.length);
  if (with_.length < 3) return null;
  const D = with_[0][key]!.length;
  const same = with_.filter((r) => r[key]!.length === D);
  if (same.length < 3) return null;
  const M = new Float32Array(same.length * D);
  same.forEach((r, i) => M.set(r[key]!, i * D));
  const { coords } = pca2d(M, D);
  let minX = Infinity, maxX = -Infinity, minY = Infinity, maxY = -Infinity;
  for (let i = 0; i < same.length; i++) {
    minX = Math.min(minX, coords[2 * i]);
    maxX = Math.max(maxX, coords[2 * i]);
    minY = Math.min(minY, coords[2 * i + 1]);
    maxY = Math.max(maxY, coords[2 * i + 1]);
  }
  return same.map((r, i) => ({
    index: r.index,
    x: (coords[2 * i] - minX) / (maxX - minX || 1),
    y: (coords[2 * i + 1] - minY) / (maxY - minY || 1),
  }));
}
