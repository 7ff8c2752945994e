import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import {
  binaryReport, bestThreshold, confusionAt, expectedCalibrationError, metricsAt, reliabilityBins, rocAuc, rocCurve, thresholdSweep, trapezoidAuc,
} from '../../../app/lib/metrics/binary';
import { hasPython, PYTHON } from '../helpers/shared';

describe('hand-computed cases', () => {
  const y = [0, 0, 1, 1, 1, 0, 1, 0];
  const p = [0.1, 0.6, 0.7, 0.4, 0.9, 0.2, 0.8, 0.3];
  it('confusion and ratios at 0.5', () => {
    expect(confusionAt(y, p, 0.5)).toEqual({ tp: 3, fp: 1, tn: 3, fn: 1 });
    const m = metricsAt(y, p, 0.5);
    expect(m.accuracy).toBe(0.75);
    expect(m.precision).toBe(0.75);
    expect(m.recall).toBe(0.75);
    expect(m.specificity).toBe(0.75);
    expect(m.f1).toBe(0.75);
  });
  it('threshold is inclusive (score ≥ t is positive)', () => {
    expect(confusionAt([1], [0.5], 0.5).tp).toBe(1);
  });
  it('AUC: pairs counted by hand', () => {
    // positives 0.7,0.4,0.9,0.8 vs negatives 0.1,0.6,0.2,0.3: 0.4 loses to 0.6 only → 15/16
    expect(rocAuc(y, p)).toBe(15 / 16);
    expect(rocAuc([0, 1, 0, 1], [0.5, 0.5, 0.5, 0.5])).toBe(0.5); // all ties
    expect(rocAuc([0, 1, 1], [0.3, 0.3, 0.9])).toBe(0.75); // one tie = ½
    expect(rocAuc([1, 1], [0.2, 0.3])).toBeNaN();
  });
  it('ROC curve matches AUC by trapezoids', () => {
    const c = rocCurve(y, p);
    expect(c.thresholds[0]).toBe(Infinity);
    expect(c.fpr.at(-1)).toBe(1);
    expect(c.tpr.at(-1)).toBe(1);
    expect(trapezoidAuc(c.fpr, c.tpr)).toBeCloseTo(15 / 16, 12);
  });
  it('ECE: perfectly calibrated bins → 0; overconfident → gap', () => {
    expect(expectedCalibrationError([1, 1, 0, 0], [1, 1, 0, 0])).toBe(0);
    // all p = 0.9 with half positives: |0.5 − 0.9| = 0.4
    expect(expectedCalibrationError([1, 0, 1, 0], [0.9, 0.9, 0.9, 0.9])).toBeCloseTo(0.4, 12);
    const bins = reliabilityBins([1, 0], [0, 1], 15);
    expect(bins[0].count).toBe(1);
    expect(bins[14].count).toBe(1);
  });
  it('sweep and best threshold', () => {
    expect(thresholdSweep(y, p).length).toBe(101);
    const b = bestThreshold(y, p, 'youden');
    expect(b.recall + b.specificity - 1).toBeCloseTo(0.75, 12); // t=0.7: tp3 fn1, tn4 fp0
    const r = binaryReport(y, p, 0.5);
    expect(r).toMatchObject({ n: 8, positives: 4, auc: 15 / 16, accuracy: 0.75 });
  });
});

describe.skipIf(!hasPython)('against numpy on random data with ties', () => {
  it('AUC, confusion-derived metrics and 15-bin ECE agree', () => {
    const n = 400;
    const labels: number[] = [], probs: number[] = [];
    let s = 42;
    const rnd = () => ((s = (s * 1664525 + 1013904223) >>> 0) / 2 ** 32);
    for (let i = 0; i < n; i++) {
      const yv = rnd() < 0.6 ? 1 : 0;
      labels.push(yv);
      probs.push(Math.round(Math.min(1, Math.max(0, 0.35 * yv + 0.5 * rnd() + 0.1)) * 50) / 50); // quantized → ties
    }
    const code = `
import json,sys,numpy as np
d=json.load(sys.stdin); y=np.array(d['y']); p=np.array(d['p'])
pos=p[y==1]; neg=p[y==0]
auc=((pos[:,None]>neg[None,:]).sum()+0.5*(pos[:,None]==neg[None,:]).sum())/(len(pos)*len(neg))
pred=p>=0.5; tp=int((pred&(y==1)).sum()); fp=int((pred&(y==0)).sum()); tn=int((~pred&(y==0)).sum()); fn=int((~pred&(y==1)).sum())
k=np.clip(np.ceil(p*15).astype(int)-1,0,14); ece=0.0
for b in range(15):
  m=k==b
  if m.any(): ece+=m.mean()*abs(y[m].mean()-p[m].mean())
# top-label ECE exactly as export-scripts/cxr_export/train_classifier.py computes the cards' ece_15
pred=(p>=0.5).astype(int); conf=np.where(pred==1,p,1-p); cor=(pred==y).astype(float); edges=np.linspace(0,1,16); top=0.0
for k2 in range(15):
  lo,hi=edges[k2],edges[k2+1]; m=(conf>lo)&(conf<=hi) if k2>0 else (conf>=lo)&(conf<=hi)
  if m.any(): top+=m.mean()*abs(cor[m].mean()-conf[m].mean())
print(json.dumps(dict(auc=float(auc),tp=tp,fp=fp,tn=tn,fn=fn,ece=float(ece),top=float(top))))`;
    const ref = JSON.parse(execFileSync(PYTHON, ['-c', code], { input: JSON.stringify({ y: labels, p: probs }) }).toString());
    const r = binaryReport(labels, probs, 0.5);
    expect(r.auc).toBeCloseTo(ref.auc, 12);
    expect(r.confusion).toEqual({ tp: ref.tp, fp: ref.fp, tn: ref.tn, fn: ref.fn });
    expect(r.ece).toBeCloseTo(ref.ece, 12);
    expect(r.eceTopLabel).toBeCloseTo(ref.top, 12);
  });
});
