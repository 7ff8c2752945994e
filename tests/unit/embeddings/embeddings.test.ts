import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { knnAll, knnQuery, pca2d, precisionAtK } from '../../../app/lib/embeddings';
import { hasPython, PYTHON } from '../helpers/shared';

function randn(n: number, seed: number): Float32Array {
  let s = seed;
  const u = () => ((s = (s * 1664525 + 1013904223) >>> 0) + 1) / 2 ** 32;
  return Float32Array.from({ length: n }, () => Math.sqrt(-2 * Math.log(u())) * Math.cos(2 * Math.PI * u()));
}

describe('kNN', () => {
  const E = new Float32Array([1, 0, 0.9, 0.1, 0, 1, 0.1, 0.9, -1, 0]);
  it('top-k by cosine, self excluded', () => {
    const nn = knnAll(E, 2, 2);
    expect(nn[0].map((x) => x.index)).toEqual([1, 3]);
    expect(nn[2][0].index).toBe(3);
    expect(nn.every((l, i) => l.every((x) => x.index !== i))).toBe(true);
    expect(knnQuery(E, 2, [0, 5], 1)[0]).toMatchObject({ index: 2, similarity: 1 });
  });
  it('precision@k of label agreement', () => {
    expect(precisionAtK(E.subarray(0, 8), 2, ['a', 'a', 'b', 'b'], 1)).toBe(1);
    // k=2: each point has one same-label neighbour of 2 → 0.5
    expect(precisionAtK(E.subarray(0, 8), 2, ['a', 'a', 'b', 'b'], 2)).toBe(0.5);
  });
});

describe('PCA', () => {
  it('recovers the dominant axes of anisotropic data', () => {
    const n = 300, D = 3;
    const z = randn(n * D, 5);
    const X = new Float32Array(n * D);
    for (let r = 0; r < n; r++) {
      X[r * 3] = 10 * z[r * 3] + 5;
      X[r * 3 + 1] = 3 * z[r * 3 + 1];
      X[r * 3 + 2] = 0.1 * z[r * 3 + 2];
    }
    const p = pca2d(X, D);
    expect(Math.abs(p.components[0][0])).toBeCloseTo(1, 3);
    expect(Math.abs(p.components[1][1])).toBeCloseTo(1, 3);
    expect(p.explainedVarianceRatio[0]).toBeGreaterThan(0.85);
  });

  it('randomized default recovers planted directions in high dimension', () => {
    const n = 400, D = 256;
    const z = randn(n * D, 21), a = randn(n, 22), b = randn(n, 23);
    const X = new Float32Array(n * D);
    for (let r = 0; r < n; r++) for (let i = 0; i < D; i++) X[r * D + i] = 0.1 * z[r * D + i] + (i === 7 ? 5 * a[r] : 0) + (i === 100 ? 3 * b[r] : 0);
    const p = pca2d(X, D);
    expect(Math.abs(p.components[0][7])).toBeGreaterThan(0.999);
    expect(Math.abs(p.components[1][100])).toBeGreaterThan(0.999);
  });

  it.skipIf(!hasPython)('matches numpy SVD projections up to sign', () => {
    const n = 120, D = 32;
    const X = randn(n * D, 9);
    for (let r = 0; r < n; r++) X[r * D] += 4 * X[r * D + 1]; // correlated dims
    const ref = JSON.parse(execFileSync(PYTHON, ['-c', `
import json,sys,numpy as np
d=json.load(sys.stdin); X=np.array(d['x']).reshape(d['n'],d['D']); Xc=X-X.mean(0)
U,S,Vt=np.linalg.svd(Xc,full_matrices=False); P=Xc@Vt[:2].T
print(json.dumps(dict(p=P.tolist(), var=(S[:2]**2/(len(X)-1)).tolist())))`], { input: JSON.stringify({ x: Array.from(X), n, D }) }).toString());
    const p = pca2d(X, D, { oversampling: 30 }); // l = 32 = D: the subspace is exact
    for (let c = 0; c < 2; c++) {
      expect(p.explainedVariance[c]).toBeCloseTo(ref.var[c], 3);
      const sign = Math.sign(p.coords[c]) === Math.sign(ref.p[0][c]) ? 1 : -1;
      for (let r = 0; r < n; r++) expect(sign * p.coords[r * 2 + c]).toBeCloseTo(ref.p[r][c], 2);
    }
  });
});
