import { describe, expect, it } from 'vitest';
import { batchMetrics, pcaMap, similarCases } from '../../../app/lib/batch/analysis';
import { batchImagesPerSecond, batchLabeledRows, batchLabels, confidenceAt, predictAt, type BatchRow } from '../../../app/lib/batch/rows';

const LAB = batchLabels(['NORMAL', 'PNEUMONIA']);

const row = (index: number, groundTruth: string | undefined, p: number | undefined, emb?: number[], status: BatchRow['status'] = 'done'): BatchRow => ({
  index,
  imageId: `img${index}`,
  groundTruth,
  status,
  classifierProbability: p,
  classifierPrediction: p == null ? undefined : p >= 0.5 ? 'PNEUMONIA' : 'NORMAL',
  classifierEmbedding: emb ? Float32Array.from(emb) : undefined,
});

describe('batch analysis (what the batch view shows, derived by the store)', () => {
  const rows = [
    row(0, 'NORMAL', 0.1, [1, 0, 0]),
    row(1, 'NORMAL', 0.6, [0.9, 0.1, 0]),
    row(2, 'PNEUMONIA', 0.7, [0, 1, 0]),
    row(3, 'PNEUMONIA', 0.4, [0, 0.9, 0.3]),
    row(4, 'PNEUMONIA', 0.9, [0, 0, 1]),
    row(5, undefined, 0.8, [0.5, 0.5, 0]), // no ground truth: not in the metrics
    row(6, 'NORMAL', undefined, undefined, 'error'),
  ];

  it('metrics at a threshold count the confusion matrix by hand', () => {
    const m = batchMetrics(rows, 0.5, LAB)!;
    expect(m.n).toBe(5);
    // t=0.5: NORMAL 0.1 TN, NORMAL 0.6 FP, PNEU 0.7 TP, PNEU 0.4 FN, PNEU 0.9 TP
    expect(m.at!.confusion).toMatchObject({ tp: 2, fp: 1, tn: 1, fn: 1 });
    expect(m.at!.accuracy).toBeCloseTo(3 / 5, 12);
    // AUC by pairs: positives {0.7,0.4,0.9} vs negatives {0.1,0.6}: 5 of 6 pairs ordered right
    expect(m.roc!.auc).toBeCloseTo(5 / 6, 12);
    // Moving only the threshold keeps the ROC curve it is given (no recomputation).
    const again = batchMetrics(rows, 0.95, LAB, m.roc)!;
    expect(again.roc).toBe(m.roc);
    expect(again.at!.confusion).toMatchObject({ tp: 0, fp: 0, tn: 2, fn: 3 });
    expect(batchMetrics([row(0, 'NORMAL', 0.2)], 0.5, LAB)!.roc).toBeNull();
    expect(batchMetrics([row(0, undefined, 0.2)], 0.5, LAB)).toBeNull();
  });

  it('similar cases are the cosine-nearest rows, self excluded, most similar first', () => {
    const [l] = similarCases(rows, 0, 2);
    expect(l.title).toBe('classifier embedding');
    expect(l.items.map((x) => x.index)).toEqual([1, 5]);
    expect(l.items[0].similarity).toBeCloseTo(0.9 / Math.hypot(0.9, 0.1), 6);
    expect(similarCases(rows, 6)).toEqual([]);
    expect(similarCases(rows, 99)).toEqual([]);
  });

  it('the PCA map spans [0, 1] on both axes and needs three embedded rows', () => {
    const pts = pcaMap(rows, 'classifierEmbedding')!;
    expect(pts.map((p) => p.index)).toEqual([0, 1, 2, 3, 4, 5]);
    for (const axis of ['x', 'y'] as const) {
      expect(Math.min(...pts.map((p) => p[axis]))).toBeCloseTo(0, 12);
      expect(Math.max(...pts.map((p) => p[axis]))).toBeCloseTo(1, 12);
    }
    expect(pcaMap(rows.slice(0, 2), 'classifierEmbedding')).toBeNull();
    expect(pcaMap(rows, 'clipEmbedding')).toBeNull();
  });

  it('rows to labeled_dataset rows, confidence, threshold predictions, throughput', () => {
    expect(predictAt({ classifierProbability: 0.5 }, 0.5, LAB)).toBe('PNEUMONIA');
    expect(predictAt({ classifierProbability: 0.49 }, 0.5, LAB)).toBe('NORMAL');
    expect(predictAt({}, 0.5, LAB)).toBeUndefined();
    expect(confidenceAt(rows[0], 0.5, LAB)).toBeCloseTo(0.9, 12);
    const labeled = batchLabeledRows(rows, 0.5, LAB);
    expect(labeled).toHaveLength(6);
    expect(labeled[0]).toMatchObject({ image_id: 'img0', auto_label: 'NORMAL', ground_truth: 'NORMAL', classifier_probability: 0.1 });
    // running time only (the summed runs, pauses excluded)
    expect(batchImagesPerSecond(rows, 2000)).toBeCloseTo(7 / 2, 12);
    expect(batchImagesPerSecond(rows, 0)).toBeUndefined();
  });
});
