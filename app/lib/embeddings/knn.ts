/**
 * Similar-case search over image embeddings: cosine k-nearest neighbours (brute force; exact and fast enough for
 * thousands of ≤1024-d vectors) and precision@k of label agreement.
 */

export interface Neighbor {
  index: number;
  similarity: number;
}

/** Row-normalized copy of a row-major [n, dim] matrix. */
export function normalizeRows(m: ArrayLike<number>, dim: number): Float32Array {
  if (m.length % dim !== 0) throw new RangeError(`embeddings length ${m.length} is not a multiple of dim ${dim}`);
  const out = Float32Array.from(m as ArrayLike<number>);
  for (let r = 0; r < out.length; r += dim) {
    let s = 0;
    for (let i = 0; i < dim; i++) s += out[r + i] * out[r + i];
    const n = Math.sqrt(s);
    if (n > 0) for (let i = 0; i < dim; i++) out[r + i] /= n;
  }
  return out;
}

/** Top-k by cosine similarity to `query` among rows of `embeds`; `exclude` (e.g. the query's own index) is skipped. */
export function knnQuery(embeds: ArrayLike<number>, dim: number, query: ArrayLike<number>, k: number, exclude?: number, normalized = false): Neighbor[] {
  const E = normalized ? (embeds as Float32Array) : normalizeRows(embeds, dim);
  const q = normalizeRows(query, dim);
  const n = E.length / dim;
  const best: Neighbor[] = [];
  for (let r = 0; r < n; r++) {
    if (r === exclude) continue;
    let s = 0;
    const o = r * dim;
    for (let i = 0; i < dim; i++) s += E[o + i] * q[i];
    if (best.length < k || s > best[best.length - 1].similarity) {
      // insertion into a small sorted list (descending; ties keep lower index first)
      let j = best.length;
      while (j > 0 && best[j - 1].similarity < s) j--;
      best.splice(j, 0, { index: r, similarity: s });
      if (best.length > k) best.pop();
    }
  }
  return best;
}

/** k nearest neighbours of every row, excluding itself. */
export function knnAll(embeds: ArrayLike<number>, dim: number, k: number): Neighbor[][] {
  const E = normalizeRows(embeds, dim);
  const n = E.length / dim;
  return Array.from({ length: n }, (_, i) => knnQuery(E, dim, E.subarray(i * dim, (i + 1) * dim), k, i, true));
}

/**
 * Mean over rows of the fraction of its k nearest neighbours (self excluded) that share its label.
 */
export function precisionAtK(embeds: ArrayLike<number>, dim: number, labels: ArrayLike<string | number>, k: number): number {
  const nn = knnAll(embeds, dim, k);
  if (nn.length === 0) return NaN;
  let total = 0;
  nn.forEach((list, i) => {
    if (list.length === 0) return;
    let agree = 0;
    for (const nb of list) if (labels[nb.index] === labels[i]) agree++;
    total += agree / list.length;
  });
  return total / nn.length;
}
