import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { zipSync, strToU8 } from 'fflate';
import {
  groundTruthFromCsv, labelFromPath, LABELED_DATASET_COLUMNS, parseCsv, readZipAll, summarizeBatch, toLabeledDatasetCsv, ZipReadError,
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

describe('summarizeBatch', () => {
  it('metrics over rows with ground truth', () => {
    const s = summarizeBatch([
      { image_id: 'a', auto_label: 'NORMAL', ground_truth: 'NORMAL', confidence_score: 0.9, classifier_prediction: 'NORMAL', classifier_probability: 0.1 },
      { image_id: 'b', auto_label: 'PNEUMONIA', ground_truth: 'PNEUMONIA', confidence_score: 0.8, classifier_prediction: 'PNEUMONIA', classifier_probability: 0.8 },
      { image_id: 'c', auto_label: 'NORMAL', ground_truth: '', confidence_score: 0.8, classifier_prediction: 'NORMAL', classifier_probability: 0.2 },
    ]);
    expect(s).toMatchObject({ n: 3, nWithTruth: 2, autoLabelAccuracy: 1 });
    expect(s.classifier).toMatchObject({ accuracy: 1, auc: 1 });
  });
});
