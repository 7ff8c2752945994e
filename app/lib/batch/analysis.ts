/**
 * What the batch view shows beyond the table, computed from the rows by the store when they change (not in render):
 * threshold metrics and the ROC curve on the rows with ground truth, the nearest neighbours of the selected row, and
 * the 2-D PCA map of each embedding.
 */
import { knnQuery, pca2d } from '../embeddings';
import { metricsAt, rocAuc, rocCurve, type RocCurve, type ThresholdMetrics } from '../metrics';
import type { BatchRow } from './rows';

export type EmbeddingKey = 'classifierEmbedding' | 'clipEmbedding';

export interface BatchMetrics {
  /** Rows with a NORMAL/PNEUMONIA ground truth and a classifier probability. */
  n: number;
  at: ThresholdMetrics;
  /** Null unless both classes are present. */
  roc: { curve: RocCurve; auc: number } | null;
}

/** Metrics at `threshold` on P(PNEUMONIA) over the finished rows with ground truth; null when there are none. */
export function batchMetrics(rows: BatchRow[], threshold: number, roc?: BatchMetrics['roc']): BatchMetrics | null {
  const known = rows.filter((r) => r.status === 'done' && r.classifierProbability != null && (r.groundTruth === 'NORMAL' || r.groundTruth === 'PNEUMONIA'));
  if (!known.length) return null;
  const y = known.map((r) => (r.groundTruth === 'PNEUMONIA' ? 1 : 0));
  const p = known.map((r) => r.classifierProbability!);
  const curve = roc !== undefined ? roc : new Set(y).size === 2 ? { curve: rocCurve(y, p), auc: rocAuc(y, p) } : null;
  return { n: known.length, at: metricsAt(y, p, threshold), roc: curve };
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
