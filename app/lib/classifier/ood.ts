/**
 * Out-of-distribution score of a classifier prediction: Mahalanobis distances to the nearest training class under a
 * covariance shared by the classes (Lee et al., "A Simple Unified Framework for Detecting Out-of-Distribution
 * Samples and Adversarial Attacks", NeurIPS 2018, eq. 2; their feature ensemble combines several feature sets), one
 * per component, each divided by its scale and combined by a p-norm (p = Infinity: the largest):
 *
 *   attention component, on the maps the classifier graph already returns for rollout ([b, L, H, T, T]):
 *     ent[l, t]  = mean over heads of the entropy of token t's attention row in layer l
 *     recv[l, t] = log(1e-6 + mean over heads and queries of the attention token t receives in layer l)
 *     f = [ent, recv] (layer-major)
 *   image component (ood-image.ts), on the model input tensor: grey-level layout, histogram and colour, class-agnostic
 *   s_k = min_c ‖U_k (f_k − μ_kc)‖ with P_k = Σ_k⁻¹ = U_kᵀU_k;  score = ‖(s_k / scale_k)_k‖_p;  flagged when score > threshold.
 *
 * The statistics and the threshold are fitted by export-scripts (`cxr-export ood`, export-scripts/cxr_export/ood.py,
 * which also says why these features) and shipped per model variant as `ood.json` (manifest file role 'ood').
 * Format v1 (method 'mahalanobis-tied': the attention component alone, scale 1) is still read.
 */
import { imageStatsDim, imageStatsFeatures } from './ood-image';

/** One Mahalanobis component of the score. */
export interface OodComponent {
  name: string;
  kind: 'attention-entropy+received' | 'image-stats';
  dim: number;
  /** Attention component: layers L and tokens T of the maps (dim = 2·L·T); eps of the entropy and received mass. */
  layers?: number;
  tokens?: number;
  entropyEps?: number;
  receivedEps?: number;
  /** Image component: grid and grey bins (dim = 2·grid² + bins + 3) and the input normalisation. */
  grid?: number;
  bins?: number;
  inputMean?: number[];
  inputStd?: number[];
  /** Class means μ_c (one row for a class-agnostic component), rows × dim. */
  means: Float64Array[];
  /** Upper-triangular Cholesky factor U of the precision (P = UᵀU), rows packed from the diagonal: row i = U[i, i..dim). */
  cholesky: Float64Array;
  /** The component's distance is divided by this before combining (its validation 95th percentile). */
  scale: number;
}

export interface OodStats {
  /** The model variant these statistics were fitted on (its attention maps differ between fp32 and int8). */
  model: string;
  dtype: string;
  classes: string[];
  components: OodComponent[];
  /** p of the p-norm that combines the scaled component distances (Infinity: their maximum). */
  combineP: number;
  threshold: number;
  /** What the UI says when an image is flagged. */
  badge: string;
  /** Where the statistics and the threshold came from, for the UI's tooltip. */
  fittedOn: string;
  thresholdRule: string;
}

export interface OodResult {
  /** The combined score (unitless: 1 ≈ the 95th percentile of validation images per component). */
  score: number;
  /** score > threshold. */
  ood: boolean;
  threshold: number;
  /** Class whose mean is nearest in the first class-conditional component. */
  nearestClass: string;
  /** Each component's distance divided by its scale, by component name. */
  parts: Record<string, number>;
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

function finitePositive(v: unknown): v is number {
  return typeof v === 'number' && Number.isFinite(v) && v > 0;
}

/** One component's JSON ({features, dim, means, cholesky, scale}) → OodComponent; `where` names it in errors. */
function parseComponent(o: Record<string, unknown>, where: string, nClasses: number): OodComponent {
  const dim = o.dim;
  if (typeof dim !== 'number' || !Number.isInteger(dim) || dim < 1) throw new OodStatsError(`${where}dim must be a positive integer (got ${JSON.stringify(dim)})`);
  if (!Array.isArray(o.means) || (o.means.length !== nClasses && o.means.length !== 1)) throw new OodStatsError(`${where}means must have one row per class (or one row)`);
  const means = o.means.map((row, i) => {
    if (!Array.isArray(row) || row.length !== dim || !row.every((v) => typeof v === 'number' && Number.isFinite(v))) {
      throw new OodStatsError(`${where}means[${i}] must be ${dim} finite numbers`);
    }
    return Float64Array.from(row as number[]);
  });
  const f = o.features as Record<string, unknown> | undefined;
  const c = o.cholesky as Record<string, unknown> | undefined;
  if (!c || c.dtype !== 'float32' || c.layout !== 'upper-triangular-rows' || c.dim !== dim || typeof c.base64 !== 'string') {
    throw new OodStatsError(`${where}cholesky must be {dtype: 'float32', layout: 'upper-triangular-rows', dim: ${dim}, base64}`);
  }
  const n = (dim * (dim + 1)) / 2;
  const bytes = base64ToBytes(c.base64);
  if (bytes.byteLength !== n * 4) throw new OodStatsError(`${where}cholesky holds ${bytes.byteLength} bytes, expected ${n * 4}`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const cholesky = new Float64Array(n);
  for (let i = 0; i < n; i++) cholesky[i] = view.getFloat32(i * 4, true);
  const scale = o.scale === undefined ? 1 : o.scale;
  if (!finitePositive(scale)) throw new OodStatsError(`${where}scale must be a positive number (got ${JSON.stringify(o.scale)})`);
  const name = typeof o.name === 'string' ? o.name : 'attention';
  if (f?.kind === 'attention-entropy+received') {
    const layers = Number(f.layers);
    const tokens = Number(f.tokens);
    if (!Number.isInteger(layers) || !Number.isInteger(tokens) || 2 * layers * tokens !== dim) {
      throw new OodStatsError(`${where}features: 2 × layers (${f.layers}) × tokens (${f.tokens}) must equal dim ${dim}`);
    }
    const entropyEps = typeof f.entropy_eps === 'number' ? f.entropy_eps : 1e-9;
    const receivedEps = typeof f.received_eps === 'number' ? f.received_eps : 1e-6;
    return { name, kind: f.kind, dim, layers, tokens, entropyEps, receivedEps, means, cholesky, scale };
  }
  if (f?.kind === 'image-stats') {
    const grid = Number(f.grid);
    const bins = Number(f.bins);
    const okVec = (v: unknown) => Array.isArray(v) && v.length === 3 && v.every((x) => typeof x === 'number' && Number.isFinite(x));
    if (!Number.isInteger(grid) || !Number.isInteger(bins) || grid < 1 || bins < 1 || imageStatsDim(grid, bins) !== dim) {
      throw new OodStatsError(`${where}features: 2 × grid² (${f.grid}) + bins (${f.bins}) + 3 must equal dim ${dim}`);
    }
    if (!okVec(f.input_mean) || !okVec(f.input_std) || !(f.input_std as number[]).every((v) => v > 0)) {
      throw new OodStatsError(`${where}features.input_mean and input_std must be 3 numbers (std > 0)`);
    }
    return { name, kind: f.kind, dim, grid, bins, inputMean: f.input_mean as number[], inputStd: f.input_std as number[], means, cholesky, scale };
  }
  throw new OodStatsError(`${where}features.kind must be 'attention-entropy+received' or 'image-stats' (got ${JSON.stringify(f?.kind)})`);
}

/**
 * Validate the JSON of an ood.json: format v2 (method 'mahalanobis-ensemble', `components`, `combine.p`) or v1
 * (method 'mahalanobis-tied', one attention component at the top level). Throws OodStatsError naming the field.
 */
export function parseOodStats(json: unknown): OodStats {
  if (typeof json !== 'object' || json === null) throw new OodStatsError('not an object');
  const o = json as Record<string, unknown>;
  if (!Array.isArray(o.classes) || o.classes.length < 1) throw new OodStatsError('classes must be a non-empty array');
  const nClasses = o.classes.length;
  let components: OodComponent[];
  let combineP = Infinity;
  if (o.method === 'mahalanobis-tied') {
    components = [parseComponent(o, '', nClasses)];
  } else if (o.method === 'mahalanobis-ensemble') {
    if (!Array.isArray(o.components) || o.components.length < 1) throw new OodStatsError('components must be a non-empty array');
    components = o.components.map((c, i) => {
      if (typeof c !== 'object' || c === null) throw new OodStatsError(`components[${i}] must be an object`);
      return parseComponent(c as Record<string, unknown>, `components[${i}].`, nClasses);
    });
    const comb = o.combine as Record<string, unknown> | undefined;
    const p = comb?.p === 'inf' ? Infinity : comb?.p;
    if (!(p === Infinity || finitePositive(p))) throw new OodStatsError(`combine.p must be a positive number or 'inf' (got ${JSON.stringify(comb?.p)})`);
    combineP = p as number;
  } else {
    throw new OodStatsError(`method must be 'mahalanobis-ensemble' or 'mahalanobis-tied' (got ${JSON.stringify(o.method)})`);
  }
  if (typeof o.threshold !== 'number' || !Number.isFinite(o.threshold)) throw new OodStatsError('threshold must be a finite number');
  return {
    model: String(o.model ?? ''),
    dtype: String(o.dtype ?? ''),
    classes: (o.classes as unknown[]).map(String),
    components,
    combineP,
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

/** min over the component's rows of ‖U (f − μ)‖, and the row index. Throws RangeError when the length differs from dim. */
export function mahalanobisDistance(features: ArrayLike<number>, c: OodComponent): { distance: number; row: number } {
  const D = c.dim;
  if (features.length !== D) throw new RangeError(`ood: ${features.length} ${c.name} features, the statistics expect ${D}`);
  const d = new Float64Array(D);
  const U = c.cholesky;
  let best = Infinity;
  let row = 0;
  c.means.forEach((mu, r) => {
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
      row = r;
    }
  });
  return { distance: best, row };
}

/** Combine scaled component distances by the p-norm of the statistics (p = Infinity: the largest). */
export function combineParts(parts: readonly number[], p: number): number {
  if (p === Infinity) return Math.max(...parts);
  return parts.reduce((a, v) => a + v ** p, 0) ** (1 / p);
}

/**
 * OOD result from each component's feature vector, in the order of stats.components (attentionFeatures,
 * imageStatsFeatures). Throws RangeError when a length differs from its component's dim.
 */
export function oodScoreOfFeatures(features: readonly ArrayLike<number>[], stats: OodStats): OodResult {
  if (features.length !== stats.components.length) throw new RangeError(`ood: ${features.length} feature vectors for ${stats.components.length} components`);
  const parts: Record<string, number> = {};
  const scaled: number[] = [];
  let nearest: string | undefined;
  stats.components.forEach((c, k) => {
    const { distance, row } = mahalanobisDistance(features[k], c);
    const v = distance / c.scale;
    parts[c.name] = v;
    scaled.push(v);
    if (nearest === undefined && c.means.length === stats.classes.length) nearest = stats.classes[row];
  });
  const score = combineParts(scaled, stats.combineP);
  return { score, ood: score > stats.threshold, threshold: stats.threshold, nearestClass: nearest ?? '', parts };
}

/** What the OOD score reads of one batch: the graph's `attentions` output and the model input tensor. */
export interface OodInputs {
  attentions?: { data: ArrayLike<number>; dims: readonly number[] };
  pixels?: { data: ArrayLike<number>; dims: readonly number[] };
}

/** Every component's features of image b of a batch. Throws RangeError when a component's input is missing or mismatched. */
export function oodFeatures(inputs: OodInputs, stats: OodStats, b: number): Float64Array[] {
  return stats.components.map((c) => {
    if (c.kind === 'attention-entropy+received') {
      const a = inputs.attentions;
      if (!a) throw new RangeError('ood: the statistics need the attentions output');
      if (a.dims[1] !== c.layers || a.dims[3] !== c.tokens) {
        throw new RangeError(`ood: attentions [${a.dims}] do not match the statistics (${c.layers} layers, ${c.tokens} tokens)`);
      }
      return attentionFeatures(a.data, a.dims, b, c.entropyEps, c.receivedEps);
    }
    const x = inputs.pixels;
    if (!x) throw new RangeError('ood: the statistics need the model input');
    return imageStatsFeatures(x.data, x.dims, { grid: c.grid!, bins: c.bins!, mean: c.inputMean!, std: c.inputStd! }, b);
  });
}

/** OOD results of every image of a batch, from the classifier's `attentions` output and its input tensor. */
export function oodOfBatch(inputs: OodInputs, stats: OodStats): OodResult[] {
  const b = (inputs.attentions ?? inputs.pixels)?.dims[0] ?? 0;
  const out: OodResult[] = [];
  for (let i = 0; i < b; i++) out.push(oodScoreOfFeatures(oodFeatures(inputs, stats, i), stats));
  return out;
}
