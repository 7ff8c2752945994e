/**
 * PCA to 2-D for embedding maps: centre, then power iteration on XᵀX without forming the D×D covariance
 * (O(n·D) per iteration), with Gram–Schmidt deflation for the second component.
 */

export interface Pca2D {
  /** row-major [n, 2] projections onto the two components */
  coords: Float32Array;
  components: [Float32Array, Float32Array];
  mean: Float32Array;
  /** variance along each component (eigenvalues of the sample covariance, divided by n − 1) */
  explainedVariance: [number, number];
  /** share of total variance */
  explainedVarianceRatio: [number, number];
}

export interface PcaOptions {
  iterations?: number;
  tolerance?: number;
  seed?: number;
}

export function pca2d(data: ArrayLike<number>, dim: number, opts: PcaOptions = {}): Pca2D {
  if (data.length % dim !== 0) throw new RangeError(`pca2d: length ${data.length} not a multiple of ${dim}`);
  const n = data.length / dim;
  const X = new Float64Array(data.length);
  const mean = new Float64Array(dim);
  for (let r = 0; r < n; r++) for (let i = 0; i < dim; i++) mean[i] += data[r * dim + i] / n;
  let totalVar = 0;
  for (let r = 0; r < n; r++)
    for (let i = 0; i < dim; i++) {
      const v = data[r * dim + i] - mean[i];
      X[r * dim + i] = v;
      totalVar += v * v;
    }
  const denom = Math.max(1, n - 1);
  totalVar /= denom;
  const iters = opts.iterations ?? 500;
  const tol = opts.tolerance ?? 1e-10;
  let seed = opts.seed ?? 12345;
  const rnd = () => ((seed = (seed * 1664525 + 1013904223) >>> 0) / 2 ** 32) - 0.5;

  const comps: Float64Array[] = [];
  const vars: number[] = [];
  const Xv = new Float64Array(n);
  for (let c = 0; c < 2; c++) {
    let v = new Float64Array(dim).map(() => rnd());
    let lambda = 0;
    for (let it = 0; it < iters; it++) {
      // w = Xᵀ (X v)
      for (let r = 0; r < n; r++) {
        let s = 0;
        for (let i = 0; i < dim; i++) s += X[r * dim + i] * v[i];
        Xv[r] = s;
      }
      const w = new Float64Array(dim);
      for (let r = 0; r < n; r++) {
        const s = Xv[r];
        if (s === 0) continue;
        for (let i = 0; i < dim; i++) w[i] += X[r * dim + i] * s;
      }
      for (const p of comps) {
        let d = 0;
        for (let i = 0; i < dim; i++) d += w[i] * p[i];
        for (let i = 0; i < dim; i++) w[i] -= d * p[i];
      }
      let norm = 0;
      for (let i = 0; i < dim; i++) norm += w[i] * w[i];
      norm = Math.sqrt(norm);
      if (norm === 0) break;
      let diff = 0;
      for (let i = 0; i < dim; i++) {
        w[i] /= norm;
        diff += Math.abs(w[i] - v[i]);
      }
      v = w;
      lambda = norm;
      if (diff < tol) break;
    }
    // deterministic sign: the largest-magnitude loading is positive
    let maxi = 0;
    for (let i = 1; i < dim; i++) if (Math.abs(v[i]) > Math.abs(v[maxi])) maxi = i;
    if (v[maxi] < 0) for (let i = 0; i < dim; i++) v[i] = -v[i];
    comps.push(v);
    vars.push(lambda / denom);
  }
  const coords = new Float32Array(n * 2);
  for (let r = 0; r < n; r++)
    for (let c = 0; c < 2; c++) {
      let s = 0;
      for (let i = 0; i < dim; i++) s += X[r * dim + i] * comps[c][i];
      coords[r * 2 + c] = s;
    }
  return {
    coords,
    components: [Float32Array.from(comps[0]), Float32Array.from(comps[1])],
    mean: Float32Array.from(mean),
    explainedVariance: [vars[0], vars[1]],
    explainedVarianceRatio: [totalVar > 0 ? vars[0] / totalVar : 0, totalVar > 0 ? vars[1] / totalVar : 0],
  };
}
