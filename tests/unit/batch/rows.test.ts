/**
 * Issue 8 item 6: the batch uses the manifest's labels (binary with any names, and multi-class), exports at ONE
 * threshold with a sidecar naming it, and counts throughput over running time only.
 */
import { describe, expect, it } from 'vitest';
import {
  batchImagesPerSecond,
  batchLabeledRows,
  batchLabels,
  batchMetrics,
  confidenceAt,
  labeledDatasetMetadata,
  metadataFileName,
  multiclassMetrics,
  predictAt,
  type BatchRow,
} from '../../../app/lib/batch';

const row = (index: number, p: number, groundTruth: string, extra: Partial<BatchRow> = {}): BatchRow => ({ index, imageId: `i${index}`, status: 'done', groundTruth, classifierProbability: p, classifierProbabilities: [1 - p, p], ...extra });

describe('manifest labels', () => {
  it('binary with other names: the second label is positive unless one is PNEUMONIA', () => {
    expect(batchLabels(['no_finding', 'opacity'])).toEqual({ labels: ['no_finding', 'opacity'], positive: 'opacity', negative: 'no_finding' });
    expect(batchLabels(['PNEUMONIA', 'NORMAL'])).toMatchObject({ positive: 'PNEUMONIA', negative: 'NORMAL' });
    const lab = batchLabels(['no_finding', 'opacity']);
    expect(predictAt(row(0, 0.4, ''), 0.3, lab)).toBe('opacity');
    expect(predictAt(row(0, 0.2, ''), 0.3, lab)).toBe('no_finding');
    expect(confidenceAt(row(0, 0.2, ''), 0.3, lab)).toBeCloseTo(0.8);
    const m = batchMetrics([row(0, 0.9, 'opacity'), row(1, 0.1, 'no_finding'), row(2, 0.6, 'no_finding'), row(3, 0.2, 'NORMAL')], 0.5, lab)!;
    expect(m.n).toBe(3); // NORMAL is not one of this model's labels
    expect(m.at!.confusion).toEqual({ tp: 1, fp: 1, tn: 1, fn: 0 });
    expect(m.roc!.auc).toBe(1);
  });

  it('multi-class: argmax predictions, K×K confusion, per-class recall/precision', () => {
    const lab = batchLabels(['normal', 'bacterial', 'viral']);
    expect(lab.positive).toBeUndefined();
    const r = (i: number, ps: number[], gt: string): BatchRow => ({ index: i, imageId: `m${i}`, status: 'done', groundTruth: gt, classifierProbabilities: ps });
    const rows = [r(0, [0.7, 0.2, 0.1], 'normal'), r(1, [0.1, 0.8, 0.1], 'bacterial'), r(2, [0.1, 0.5, 0.4], 'viral'), r(3, [0.2, 0.2, 0.6], 'viral')];
    expect(predictAt(rows[2], 0.5, lab)).toBe('bacterial');
    expect(confidenceAt(rows[2], 0.5, lab)).toBe(0.5);
    const m = batchMetrics(rows, 0.5, lab)!;
    expect(m.at).toBeNull();
    expect(m.multiclass!.confusion).toEqual([
      [1, 0, 0],
      [0, 1, 0],
      [0, 1, 1],
    ]);
    expect(m.multiclass!.accuracy).toBe(0.75);
    expect(m.multiclass!.perClass.map((c) => [c.label, c.recall, c.precision])).toEqual([
      ['normal', 1, 1],
      ['bacterial', 1, 0.5],
      ['viral', 0.5, 1],
    ]);
    expect(multiclassMetrics(['a', 'b'], [0, 1, -1], [0, 0, 1]).confusion).toEqual([[1, 0], [1, 0]]);
    // CSV: multi-class rows carry the argmax label and its probability
    const csv = batchLabeledRows(rows, 0.5, lab);
    expect(csv.map((x) => [x.classifier_prediction, x.auto_label, x.confidence_score])).toEqual([
      ['normal', 'normal', 0.7],
      ['bacterial', 'bacterial', 0.8],
      ['bacterial', 'bacterial', 0.5],
      ['viral', 'viral', 0.6],
    ]);
  });
});

describe('labeled_dataset.csv at one threshold', () => {
  it('classifier_prediction, auto_label and confidence_score all follow the export threshold (not the card one)', () => {
    const lab = batchLabels(['NORMAL', 'PNEUMONIA']);
    // the worker predicted at the card threshold 0.5; the user moved the slider to 0.3
    const rows = [row(0, 0.4, 'PNEUMONIA', { classifierPrediction: 'NORMAL' }), row(1, 0.2, 'NORMAL', { classifierPrediction: 'NORMAL' })];
    const out = batchLabeledRows(rows, 0.3, lab);
    expect(out[0]).toMatchObject({ classifier_prediction: 'PNEUMONIA', auto_label: 'PNEUMONIA', confidence_score: 0.4, classifier_probability: 0.4 });
    expect(out[1]).toMatchObject({ classifier_prediction: 'NORMAL', auto_label: 'NORMAL' });
    expect(out[1].confidence_score).toBeCloseTo(0.8);
    // a zero-shot auto_label stays the CLIP label with its own confidence
    const zs = batchLabeledRows([row(2, 0.4, 'NORMAL', { autoLabel: 'NORMAL', autoConfidence: 0.66 })], 0.3, lab)[0];
    expect(zs).toMatchObject({ auto_label: 'NORMAL', confidence_score: 0.66, classifier_prediction: 'PNEUMONIA' });
  });

  it('the sidecar names the threshold and its source', () => {
    const m = labeledDatasetMetadata({ file: 'labeled_dataset.csv', threshold: 0.3, threshold_source: 'user (slider)', positive_label: 'PNEUMONIA', labels: ['NORMAL', 'PNEUMONIA'], classifier: { id: 'x', weights: 'trained' }, auto_label_source: 'classifier x at the threshold', n_rows: 2, created: 't' });
    expect(m).toMatchObject({ threshold: 0.3, threshold_source: 'user (slider)', columns: ['image_id', 'auto_label', 'ground_truth', 'confidence_score', 'classifier_prediction', 'classifier_probability', 'ood_score', 'ood'] });
    expect(metadataFileName('labeled_dataset.csv')).toBe('labeled_dataset.meta.json');
  });
});

it('throughput is over running time: a pause between cancel and resume is not counted', () => {
  const rows = [row(0, 0.1, ''), row(1, 0.2, ''), { ...row(2, 0.3, ''), status: 'pending' as const }];
  expect(batchImagesPerSecond(rows, 1000)).toBe(2);
  expect(batchImagesPerSecond(rows, 0)).toBeUndefined();
});
