/**
 * PCA to 2-D for embedding maps, by randomized subspace iteration (Halko, Martinsson & Tropp 2011 — the method behind
 * sklearn's randomized PCA): centre X (n×D), Y = X·Ω for a random D×l block, a few power iterations with
 * re-orthonormalization, then an exact eigen-decomposition of the small l×l matrix B·Bᵀ with B = Qᵀ·X.
 * Cost O(n·D·l·q) — ~50 ms for 624×768 — so it can run on the UI thread; exact when l ≥ min(n, D).
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
  /** Power iterations (default 7). */
  iterations?: number;
  /** Block size l = 2 + oversampling (default oversampling 10). */
  oversampling?: number;
  seed?: number;
}

/** In-place modified Gram–Schmidt on the l columns of a row-major [rows, l] matrix. */
function orthonormalizeColumns(M: Float64Array, rows: number, l: number): void {
  for (let j = 0; j < l; j++) {
    for (let k = 0; k < j; k++) {
      let d = 0;
      for (let r = 0; r < rows; r++) d += M[r * l + j] * M[r * l + k];
      for (let r = 0; r < rows; r++) M[r * l + j] -= d * M[r * l + k];
    }
    let nrm = 0;
    for (let r = 0; r < rows; r++) nrm += M[r * l + j] * M[r * l + j];
    nrm = Math.sqrt(nrm);
    if (nrm > 1e-300) for (let r = 0; r < rows; r++) M[r * l + j] /= nrm;
    else for (let r = 0; r < rows; r++) M[r * l + j] = 0;
  }
}

/** Y (n×l) = X (n×D) · Z (D×l) */
function mulXZ(X: Float64Array, n: number, D: number, Z: Float64Array, l: number): Float64Array {
  const Y = new Float64Array(n * l);
  for (let r = 0; r < n; r++) {
    const xo = r * D, yo = r * l;
    for (let i = 0; i < D; i++) {
      const x = X[xo + i];
      if (x === 0) continue;
      const zo = i * l;
      for (let j = 0; j < l; j++) Y[yo + j] += x * Z[zo + j];
    }
  }
  return Y;
}

/** Z (D×l) = Xᵀ (D×n) · Y (n×l) */
function mulXtY(X: Float64Array, n: number, D: number, Y: Float64Array, l: number): Float64Array {
  const Z = new Float64Array(D * l);
  for (let r = 0; r < n; r++) {
    const xo = r * D, yo = r * l;
    for (let i = 0; i < D; i++) {
      const x = X[xo + i];
      if (x === 0) continue;
      const zo = i * l;
      for (let j = 0; j < l; j++) Z[zo + j] += x * Y[yo + j];
    }
  }
  return Z;
}

/** Eigen-decomposition of a small symmetric matrix (cyclic Jacobi). Returns eigenvalues and column eigenvectors. */
export function symmetricEigen(A: Float64Array, m: number): { values: Float64Array; vectors: Float64Array } {
  const a = Float64Array.from(A);
  const v = new Float64Array(m * m);
  for (let i = 0; i < m; i++) v[i * m + i] = 1;
  for (let sweep = 0; sweep < 100; sweep++) {
    let off = 0;
    for (let p = 0; p < m; p++) for (let q = p + 1; q < m; q++) off += a[p * m + q] ** 2;
    if (off < 1e-30) break;
    for (let p = 0; p < m; p++) {
      for (let q = p + 1; q < m; q++) {
        const apq = a[p * m + q];
        if (Math.abs(apq) < 1e-300) continue;
        const theta = (a[q * m + q] - a[p * m + p]) / (2 * apq);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1), s = t * c;
        for (let k = 0; k < m; k++) {
          const akp = a[k * m + p], akq = a[k * m + q];
          a[k * m + p] = c * akp - s * akq;
          a[k * m + q] = s * akp + c * akq;
        }
        for (let k = 0; k < m; k++) {
          const apk = a[p * m + k], aqk = a[q * m + k];
          a[p * m + k] = c * apk - s * aqk;
          a[q * m + k] = s * apk + c * aqk;
        }
        for (let k = 0; k < m; k++) {
          const vkp = v[k * m + p], vkq = v[k * m + q];
          v[k * m + p] = c * vkp - s * vkq;
          v[k * m + q] = s * vkp + c * vkq;
        }
      }
    }
  }
  const values = new Float64Array(m);
  for (let i = 0; i < m; i++) values[i] = a[i * m + i];
  return { values, vectors: v };
}

export function pca2d(data: ArrayLike<number>, dim: number, opts: PcaOptions = {}): Pca2D {
  if (data.length % dim !== 0) throw new RangeError(`pca2d: length ${data.length} not a multiple of ${dim}`);
  const n = data.length / dim;
  const D = dim;
  const X = new Float64Array(data.length);
  const mean = new Float64Array(D);
  for (let r = 0; r < n; r++) for (let i = 0; i < D; i++) mean[i] += data[r * D + i] / n;
  let totalVar = 0;
  for (let r = 0; r < n; r++)
    for (let i = 0; i < D; i++) {
      const v = data[r * D + i] - mean[i];
      X[r * D + i] = v;
      totalVar += v * v;
    }
  const denom = Math.max(1, n - 1);
  totalVar /= denom;

  const l = Math.max(1, Math.min(2 + (opts.oversampling ?? 10), n, D));
  let seed = opts.seed ?? 12345;
  const rnd = () => ((seed = (seed * 1664525 + 1013904223) >>> 0) / 2 ** 32) - 0.5;
  const omega = new Float64Array(D * l).map(() => rnd());
  let Y = mulXZ(X, n, D, omega, l);
  const q = opts.iterations ?? 7;
  for (let it = 0; it < q; it++) {
    orthonormalizeColumns(Y, n, l);
    const Z = mulXtY(X, n, D, Y, l);
    orthonormalizeColumns(Z, D, l);
    Y = mulXZ(X, n, D, Z, l);
  }
  orthonormalizeColumns(Y, n, l); // Q
  // B = Qᵀ X (l×D), stored as Bt = Xᵀ Q (D×l)
  const Bt = mulXtY(X, n, D, Y, l);
  // S = B Bᵀ (l×l)
  const S = new Float64Array(l * l);
  for (let i = 0; i < D; i++)
    for (let a = 0; a < l; a++) {
      const x = Bt[i * l + a];
      if (x === 0) continue;
      for (let b = 0; b < l; b++) S[a * l + b] += x * Bt[i * l + b];
    }
  const { values, vectors } = symmetricEigen(S, l);
  const order = Array.from({ length: l }, (_, i) => i).sort((a, b) => values[b] - values[a]);

  const comps: Float64Array[] = [];
  const vars: number[] = [];
  for (let c = 0; c < 2; c++) {
    const v = new Float64Array(D);
    const k = order[c];
    if (k !== undefined && values[k] > 1e-300) {
      // v = Bᵀ u / σ, σ = sqrt(λ)
      const sigma = Math.sqrt(values[k]);
      for (let i = 0; i < D; i++) {
        let s = 0;
        for (let a = 0; a < l; a++) s += Bt[i * l + a] * vectors[a * l + k];
        v[i] = s / sigma;
      }
    }
    // deterministic sign: the largest-magnitude loading is positive
    let maxi = 0;
    for (let i = 1; i < D; i++) if (Math.abs(v[i]) > Math.abs(v[maxi])) maxi = i;
    if (v[maxi] < 0) for (let i = 0; i < D; i++) v[i] = -v[i];
    comps.push(v);
    vars.push(k !== undefined ? Math.max(0, values[k]) / denom : 0);
  }
  const coords = new Float32Array(n * 2);
  for (let r = 0; r < n; r++)
    for (let c = 0; c < 2; c++) {
      let s = 0;
      for (let i = 0; i < D; i++) s += X[r * D + i] * comps[c][i];
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
