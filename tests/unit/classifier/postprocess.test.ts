import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import {
  argmax, attentionRollout, colormapRGB, heatmapToRGBA, predictFromProbabilities, softmax, upsampleBilinear,
} from '../../../app/lib/classifier/postprocess';
import { hasPython, PYTHON } from '../helpers/shared';

describe('softmax / argmax / predictions', () => {
  it('row-wise softmax is stable and sums to 1', () => {
    const p = softmax([1000, 1001, 0, 0], 2);
    expect(p[0] + p[1]).toBeCloseTo(1, 6);
    expect(p[1]).toBeCloseTo(1 / (1 + Math.exp(-1)), 6);
    expect(Array.from(p.subarray(2))).toEqual([0.5, 0.5]);
    expect(argmax([0.1, 0.7, 0.7])).toBe(1);
  });
  it('binary decision uses the threshold on P(PNEUMONIA)', () => {
    const preds = predictFromProbabilities([0.7, 0.3, 0.4, 0.6], ['NORMAL', 'PNEUMONIA'], 0.35);
    expect(preds.map((p) => p.label)).toEqual(['NORMAL', 'PNEUMONIA']);
    expect(preds[0].probability).toBeCloseTo(0.3, 6);
    expect(predictFromProbabilities([0.7, 0.3], ['NORMAL', 'PNEUMONIA'], 0.25)[0].label).toBe('PNEUMONIA');
    expect(predictFromProbabilities([0.2, 0.5, 0.3], ['a', 'b', 'c'])[0].label).toBe('b');
  });
});

function randomAttn(L: number, H: number, T: number, seed = 1): Float32Array {
  const a = new Float32Array(L * H * T * T);
  let s = seed;
  for (let i = 0; i < a.length; i++) a[i] = ((s = (s * 1664525 + 1013904223) >>> 0) / 2 ** 32) + 1e-3;
  for (let r = 0; r < L * H * T; r++) {
    let sum = 0;
    for (let c = 0; c < T; c++) sum += a[r * T + c];
    for (let c = 0; c < T; c++) a[r * T + c] /= sum;
  }
  return a;
}

describe('attentionRollout', () => {
  it('identity attention → uniform grid... and CLS-only attention stays at CLS', () => {
    const T = 5, L = 2, H = 1;
    const a = new Float32Array(L * H * T * T);
    for (let l = 0; l < L; l++) for (let i = 0; i < T; i++) a[l * T * T + i * T + i] = 1;
    const r = attentionRollout(a, [L, H, T, T]);
    expect([r.gridW, r.gridH]).toEqual([2, 2]);
    expect(Array.from(r.grid)).toEqual([0, 0, 0, 0]); // CLS attends only to itself
  });

  it('CLS attending to one patch highlights it', () => {
    const T = 5;
    const a = new Float32Array(T * T);
    for (let i = 0; i < T; i++) a[i * T + i] = 1;
    a[0] = 0;
    a[3] = 1; // CLS → patch 2
    const r = attentionRollout(a, [1, 1, T, T]);
    expect(Array.from(r.grid)).toEqual([0, 0, 1, 0]);
  });

  it('batched dims [b,L,H,T,T] select the image', () => {
    const one = randomAttn(2, 2, 10, 3), two = randomAttn(2, 2, 10, 4);
    const both = new Float32Array([...one, ...two]);
    const r = attentionRollout(both, [2, 2, 2, 10, 10], { batchIndex: 1, prefixTokens: 1 });
    expect(Array.from(r.grid)).toEqual(Array.from(attentionRollout(two, [2, 2, 10, 10]).grid));
  });

  it.skipIf(!hasPython)('matches a numpy port of the reference (vit-explain) implementation', () => {
    const L = 3, H = 2, T = 17;
    const a = randomAttn(L, H, T, 11);
    const code = `
import json,sys,numpy as np
d=json.load(sys.stdin); L,H,T=d['dims']; A=np.array(d['a'],dtype=np.float64).reshape(L,H,T,T)
out={}
for ratio in (0.0,0.5):
  res=np.eye(T)
  for l in range(L):
    f=A[l].mean(0); flat=f.reshape(-1).copy()
    n=int(flat.size*ratio)
    if n>0:
      idx=np.argsort(flat)[:n]; idx=idx[idx!=0]; flat[idx]=0
    f=flat.reshape(T,T)
    a=(f+np.eye(T))/2; a=a/a.sum(-1,keepdims=True); res=a@res
  m=res[0,1:]; m=m/m.max(); out[str(ratio)]=m.tolist()
print(json.dumps(out))`;
    const ref = JSON.parse(execFileSync(PYTHON, ['-c', code], { input: JSON.stringify({ dims: [L, H, T], a: Array.from(a) }) }).toString());
    for (const ratio of [0, 0.5]) {
      const r = attentionRollout(a, [L, H, T, T], { discardRatio: ratio });
      const exp = ref[ratio === 0 ? '0.0' : '0.5'] as number[];
      exp.forEach((v, i) => expect(r.grid[i]).toBeCloseTo(v, 5));
    }
  });
});

describe('heatmaps', () => {
  it('bilinear upsampling preserves constants and interpolates', () => {
    expect(Array.from(upsampleBilinear([2, 2, 2, 2], 2, 2, 3, 3))).toEqual(new Array(9).fill(2));
    const u = upsampleBilinear([0, 1], 2, 1, 4, 1);
    expect(Array.from(u)).toEqual([0, 0.25, 0.75, 1]);
  });
  it('RGBA overlay with value-scaled alpha', () => {
    const rgba = heatmapToRGBA([0, 1, 0, 1], 2, 2, 4, 4, { colormap: 'jet', opacity: 0.5 });
    expect(rgba.length).toBe(64);
    expect(rgba[3]).toBe(0); // top-left: value 0 → transparent
    expect(rgba[4 * 3 + 3]).toBe(128); // top-right: value 1 → 0.5·255
    expect(colormapRGB(1, 'jet')[0]).toBeGreaterThan(100);
    expect(colormapRGB(0, 'viridis')).toEqual([68, 1, 84]);
  });
});
