import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { zipSync, strToU8 } from 'fflate';
import {
  groundTruthFromCsv, labelFromPath, LABELED_DATASET_COLUMNS, parseCsv, readZipAll, batchReport, batchLabels, toLabeledDatasetCsv, ZipReadError,
} from '../../../app/lib/batch';
import { hasPython, PYTHON } from '../helpers/shared';

describe('ground truth', () => {
  it('from folder names, case-insensitive, nearest segment wins', () => {
    expect(labelFromPath('test/NORMAL/IM-1.jpeg')).toBe('NORMAL');
    expect(labelFromPath('x/pneumonia/a.png')).toBe('PNEUMONIA');
    expect(labelFromPath('NORMAL/sub/Pneumonia/a.png')).toBe('PNEUMONIA');
    expect(labelFromPath('NORMAL.jpeg')).toBeNull();
    expect(labelFromPath('a/b/c.dcm')).toBeNull();
    expect(labelFromPath('data/Effusion/x.png', ['Effusion', 'No Finding'])).toBe('Effusion');
  });
  it('from CSV: path or basename matches, label canonicalized, numeric labels', () => {
    const gt = groundTruthFromCsv('path,split,label\r\ntest/NORMAL/a.jpeg,test,normal\r\n"dir, with comma/b.png",test,PNEUMONIA\r\nc.dcm,test,1\r\n');
    expect(gt.size).toBe(3);
    expect(gt.lookup('test/NORMAL/a.jpeg')).toBe('NORMAL');
    expect(gt.lookup('/abs/root/test/NORMAL/a.jpeg')).toBe('NORMAL');
    expect(gt.lookup('elsewhere/b.png')).toBe('PNEUMONIA');
    expect(gt.lookup('c.dcm')).toBe('PNEUMONIA');
    expect(gt.lookup('zzz.png')).toBeNull();
    expect(() => groundTruthFromCsv('foo,bar\n1,2')).toThrow(/image column/);
  });
});

describe('CSV', () => {
  const rows = [
    { image_id: 'NORMAL/a.jpeg', auto_label: 'NORMAL', ground_truth: 'NORMAL', confidence_score: 0.912345678, classifier_prediction: 'NORMAL', classifier_probability: 0.087654321, ood_score: 36.873456789, ood: true },
    { image_id: 'odd, "name"\nx.png', auto_label: 'PNEUMONIA', ground_truth: null, confidence_score: 0.5, classifier_prediction: 'PNEUMONIA', classifier_probability: 0.5 },
  ];
  it('columns exactly in order, RFC 4180 quoting, round-trips', () => {
    const csv = toLabeledDatasetCsv(rows);
    expect(csv.split('\r\n')[0]).toBe('image_id,auto_label,ground_truth,confidence_score,classifier_prediction,classifier_probability,ood_score,ood');
    expect(LABELED_DATASET_COLUMNS.join(',')).toBe('image_id,auto_label,ground_truth,confidence_score,classifier_prediction,classifier_probability,ood_score,ood');
    expect(csv).toContain('"odd, ""name""\nx.png"');
    const back = parseCsv(csv);
    expect(back.length).toBe(3);
    expect(back[2][0]).toBe('odd, "name"\nx.png');
    expect(back[2][2]).toBe('');
    expect(back[1][3]).toBe('0.912346');
    expect(back[1].slice(6)).toEqual(['36.873457', 'true']);
    expect(back[2].slice(6)).toEqual(['', '']); // no OOD statistics: empty, not false
  });
  it.skipIf(!hasPython)("Python's csv module reads it identically", () => {
    const csv = toLabeledDatasetCsv(rows);
    const py = JSON.parse(execFileSync(PYTHON, ['-c', 'import csv,io,json,sys; print(json.dumps(list(csv.reader(io.StringIO(sys.stdin.read(), newline="")))))'], { input: csv }).toString());
    expect(py).toEqual(parseCsv(csv));
  });
});

describe('zip', () => {
  it('reads entries, skips junk, guards size', async () => {
    const z = zipSync({ 'NORMAL/a.jpeg': strToU8('aaa'), 'PNEUMONIA/b.png': strToU8('bb'), '__MACOSX/._a.jpeg': strToU8('x'), '.DS_Store': strToU8('x'), 'empty/': new Uint8Array(0) });
    const { entries: e, skipped } = await readZipAll(z);
    expect(e.map((x) => x.path)).toEqual(['NORMAL/a.jpeg', 'PNEUMONIA/b.png']);
    expect(skipped).toEqual([]);
    expect(new TextDecoder().decode(e[0].bytes)).toBe('aaa');
    await expect(readZipAll(z, { maxTotalBytes: 4 })).rejects.toThrow(ZipReadError);
    await expect(readZipAll(strToU8('not a zip at all'))).rejects.toThrow(ZipReadError);
  });
});

describe('batchReport', () => {
  const done = (index: number, p: number, gt: string | undefined, extra = {}) => ({ index, imageId: `i${index}`, status: 'done' as const, groundTruth: gt, classifierProbability: p, classifierProbabilities: [1 - p, p], ...extra });
  it('binary metrics over the finished rows with ground truth; auto_label accuracy', () => {
    const s = batchReport([done(0, 0.1, 'NORMAL'), done(1, 0.8, 'PNEUMONIA'), done(2, 0.2, undefined), { index: 3, imageId: 'x', status: 'error' as const }], 0.5, batchLabels(['NORMAL', 'PNEUMONIA']));
    expect(s).toMatchObject({ n: 3, n_with_ground_truth: 2, auto_label_accuracy: 1, accuracy: 1, auc: 1, positive_label: 'PNEUMONIA', threshold: 0.5 });
    expect(s.confusion).toEqual({ tp: 1, fp: 0, tn: 1, fn: 0 });
  });
  it('zero-shot accuracy and AUC on the prompt labels (hand-computed)', () => {
    const zs = (pPn: number) => ({ autoLabel: pPn >= 0.5 ? 'PNEUMONIA' : 'NORMAL', zeroShotProbabilities: { NORMAL: 1 - pPn, PNEUMONIA: pPn } });
    const rows = [done(0, 0.1, 'NORMAL', zs(0.3)), done(1, 0.8, 'PNEUMONIA', zs(0.6)), done(2, 0.2, 'NORMAL', zs(0.7)), done(3, 0.9, 'PNEUMONIA', zs(0.4))];
    const s = batchReport(rows, 0.5, batchLabels(['NORMAL', 'PNEUMONIA']), ['NORMAL', 'PNEUMONIA']);
    expect(s.zero_shot_accuracy).toBe(0.5);
    // pairs (pos, neg): (0.6,0.3) ok, (0.6,0.7) no, (0.4,0.3) ok, (0.4,0.7) no -> 2/4
    expect(s.zero_shot_auc).toBe(0.5);
    expect(s.auto_label_accuracy).toBe(0.5);
  });
  it('multi-class: accuracy, macro F1 and the confusion matrix at argmax', () => {
    const m = (index: number, ps: number[], gt: string) => ({ index, imageId: `m${index}`, status: 'done' as const, groundTruth: gt, classifierProbabilities: ps });
    const s = batchReport([m(0, [0.7, 0.2, 0.1], 'A'), m(1, [0.1, 0.6, 0.3], 'B'), m(2, [0.1, 0.6, 0.3], 'C')], 0.5, batchLabels(['A', 'B', 'C']));
    expect(s.accuracy).toBeCloseTo(2 / 3, 12);
    expect(s.confusion).toEqual([[1, 0, 0], [0, 1, 0], [0, 1, 0]]);
    expect(s.threshold).toBeNull();
  });
});
