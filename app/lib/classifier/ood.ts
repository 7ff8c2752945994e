/**
 * Out-of-distribution score of a classifier prediction: a Mahalanobis distance to the nearest training class under a
 * covariance shared by the classes (Lee et al., "A Simple Unified Framework for Detecting Out-of-Distribution
 * Samples and Adversarial Attacks", NeurIPS 2018, eq. 2), on features of the attention maps the classifier graph
 * already returns for rollout (output `attentions` [b, L, H, T, T]):
 *
 *   ent[l, t]  = mean over heads of the entropy of token t's attention row in layer l
 *   recv[l, t] = log(1e-6 + mean over heads and queries of the attention token t receives in layer l)
 *   f = [ent, recv] (layer-major),   score = min_c ‖U (f − μ_c)‖ with P = Σ⁻¹ = UᵀU,   flagged when score > threshold.
 *
 * The statistics and the threshold are fitted by export-scripts (`cxr-export ood`, export-scripts/cxr_export/ood.py,
 * which also says why attention features and not the final embedding) and shipped per model variant as `ood.json`
 * (manifest file role 'ood').
 */

export interface OodStats {
  /** The model variant these statistics were fitted on (its embedding differs between fp32 and int8). */
  model: string;
  dtype: string;
  classes: string[];
  dim: number;
  /** Layers L and tokens T of the attention maps the features come from (dim = 2·L·T). */
  layers: number;
  tokens: number;
  entropyEps: number;
  receivedEps: number;
  /** Class means μ_c, classes × dim. */
  means: Float64Array[];
  /** Upper-triangular Cholesky factor U of the precision (P = UᵀU), rows packed from the diagonal: row i = U[i, i..dim). */
  cholesky: Float64Array;
  threshold: number;
  /** What the UI says when an image is flagged. */
  badge: string;
  /** Where the statistics and the threshold came from, for the UI's tooltip. */
  fittedOn: string;
  thresholdRule: string;
}

export interface OodResult {
  /** min over classes of the Mahalanobis distance (unitless: standard deviations of the training embedding). */
  score: number;
  /** score > threshold. */
  ood: boolean;
  threshold: number;
  /** Class whose mean is nearest. */
  nearestClass: string;
}

export class OodStatsError extends Error {
  constructor(message: string) {
    super(`Invalid ood.json: ${message}`);
    this.name = 'OodStatsError';
  }
}

function base64ToBytes(b64: string): Uint8Array {
  const bin = atob(b64);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

/** Validate the JSON of an ood.json (format 'cxr-studio ood v1', method 'mahalanobis-tied'); throws OodStatsError. */
export function parseOodStats(json: unknown): OodStats {
  if (typeof json !== 'object' || json === null) throw new OodStatsError('not an object');
  const o = json as Record<string, unknown>;
  if (o.method !== 'mahalanobis-tied') throw new OodStatsError(`method must be 'mahalanobis-tied' (got ${JSON.stringify(o.method)})`);
  const dim = o.dim;
  if (typeof dim !== 'number' || !Number.isInteger(dim) || dim < 1) throw new OodStatsError(`dim must be a positive integer (got ${JSON.stringify(dim)})`);
  if (!Array.isArray(o.classes) || o.classes.length < 1) throw new OodStatsError('classes must be a non-empty array');
  if (!Array.isArray(o.means) || o.means.length !== o.classes.length) throw new OodStatsError('means must have one row per class');
  const means = o.means.map((row, i) => {
    if (!Array.isArray(row) || row.length !== dim || !row.every((v) => typeof v === 'number' && Number.isFinite(v))) {
      throw new OodStatsError(`means[${i}] must be ${dim} finite numbers`);
    }
    return Float64Array.from(row as number[]);
  });
  const f = o.features as Record<string, unknown> | undefined;
  if (!f || f.kind !== 'attention-entropy+received') throw new OodStatsError(`features.kind must be 'attention-entropy+received'`);
  const layers = Number(f.layers);
  const tokens = Number(f.tokens);
  if (!Number.isInteger(layers) || !Number.isInteger(tokens) || 2 * layers * tokens !== dim) {
    throw new OodStatsError(`features: 2 × layers (${f.layers}) × tokens (${f.tokens}) must equal dim ${dim}`);
  }
  const c = o.cholesky as Record<string, unknown> | undefined;
  if (!c || c.dtype !== 'float32' || c.layout !== 'upper-triangular-rows' || c.dim !== dim || typeof c.base64 !== 'string') {
    throw new OodStatsError(`cholesky must be {dtype: 'float32', layout: 'upper-triangular-rows', dim: ${dim}, base64}`);
  }
  const n = (dim * (dim + 1)) / 2;
  const bytes = base64ToBytes(c.base64);
  if (bytes.byteLength !== n * 4) throw new OodStatsError(`cholesky holds ${bytes.byteLength} bytes, expected ${n * 4}`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const cholesky = new Float64Array(n);
  for (let i = 0; i < n; i++) cholesky[i] = view.getFloat32(i * 4, true);
  if (typeof o.threshold !== 'number' || !Number.isFinite(o.threshold)) throw new OodStatsError('threshold must be a finite number');
  return {
    model: String(o.model ?? ''),
    dtype: String(o.dtype ?? ''),
    classes: (o.classes as unknown[]).map(String),
    dim,
    layers,
    tokens,
    entropyEps: typeof f.entropy_eps === 'number' ? f.entropy_eps : 1e-9,
    receivedEps: typeof f.received_eps === 'number' ? f.received_eps : 1e-6,
    means,
    cholesky,
    threshold: o.threshold,
    badge: typeof o.badge === 'string' && o.badge ? o.badge : "outside this model's training data",
    fittedOn: String(o.fitted_on ?? ''),
    thresholdRule: String(o.threshold_rule ?? ''),
  };
}

/**
 * Features of one image's attention maps (see the file comment): `attentions` is [b, L, H, T, T] row-major (`dims`),
 * `batchIndex` picks the image. Returns [2·L·T] float64.
 */
export function attentionFeatures(attentions: ArrayLike<number>, dims: readonly number[], batchIndex = 0, entropyEps = 1e-9, receivedEps = 1e-6): Float64Array {
  if (dims.length !== 5 || dims[3] !== dims[4]) throw new RangeError(`ood: attentions must be [b, L, H, T, T], got [${dims}]`);
  const [b, L, H, T] = dims;
  if (batchIndex < 0 || batchIndex >= b) throw new RangeError(`ood: batchIndex ${batchIndex} out of range ${b}`);
  const TT = T * T;
  const base = batchIndex * L * H * TT;
  if (attentions.length < base + L * H * TT) throw new RangeError('ood: attentions buffer shorter than dims');
  const out = new Float64Array(2 * L * T);
  for (let l = 0; l < L; l++) {
    for (let h = 0; h < H; h++) {
      const o = base + (l * H + h) * TT;
      for (let q = 0; q < T; q++) {
        let e = 0;
        for (let k = 0; k < T; k++) {
          const a = attentions[o + q * T + k];
          e -= a * Math.log(a + entropyEps);
          out[L * T + l * T + k] += a; // received mass, summed over queries and heads
        }
        out[l * T + q] += e / H;
      }
    }
    for (let k = 0; k < T; k++) out[L * T + l * T + k] = Math.log(out[L * T + l * T + k] / (H * T) + receivedEps);
  }
  return out;
}

/** OOD score of one feature vector [dim] (attentionFeatures). Throws RangeError when the length differs from dim. */
export function oodScoreOfFeatures(features: ArrayLike<number>, stats: OodStats): OodResult {
  const D = stats.dim;
  if (features.length !== D) throw new RangeError(`ood: ${features.length} features, the statistics expect ${D}`);
  const d = new Float64Array(D);
  const U = stats.cholesky;
  let best = Infinity;
  let bestC = 0;
  stats.means.forEach((mu, c) => {
    for (let i = 0; i < D; i++) d[i] = features[i] - mu[i];
    let m2 = 0;
    let k = 0;
    for (let i = 0; i < D; i++) {
      let s = 0;
      for (let j = i; j < D; j++) s += U[k++] * d[j];
      m2 += s * s;
    }
    const dist = Math.sqrt(m2);
    if (dist < best) {
      best = dist;
      bestC = c;
    }
  });
  return { score: best, ood: best > stats.threshold, threshold: stats.threshold, nearestClass: stats.classes[bestC] };
}

/** OOD results of every image of a batch, from the classifier's `attentions` output [b, L, H, T, T]. */
export function oodFromAttentions(attentions: ArrayLike<number>, dims: readonly number[], stats: OodStats): OodResult[] {
  if (dims[1] !== stats.layers || dims[3] !== stats.tokens) {
    throw new RangeError(`ood: attentions [${dims}] do not match the statistics (${stats.layers} layers, ${stats.tokens} tokens)`);
  }
  const out: OodResult[] = [];
  for (let b = 0; b < dims[0]; b++) out.push(oodScoreOfFeatures(attentionFeatures(attentions, dims, b, stats.entropyEps, stats.receivedEps), stats));
  return out;
}
