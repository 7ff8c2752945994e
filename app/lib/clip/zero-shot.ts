/**
 * CLIP zero-shot classification, open_clip style: L2-normalize embeddings; a label's text embedding is the mean of
 * its normalized prompt embeddings, renormalized; logits = logit_scale · cosine (+ logit_bias); probabilities =
 * softmax over labels (CLIP: they sum to 1) or a sigmoid per label (SigLIP: independent, transformers
 * SiglipModel.forward and the SigLIP paper's pairwise sigmoid loss; they do not sum to 1).
 */

/** How logits become probabilities: softmax over the labels (CLIP) or an independent sigmoid per label (SigLIP). */
export type ZeroShotScoring = 'softmax' | 'sigmoid';

/** Copy of v scaled to unit L2 norm (zero vector stays zero). */
export function l2Normalize(v: ArrayLike<number>): Float32Array {
  let s = 0;
  for (let i = 0; i < v.length; i++) s += v[i] * v[i];
  const n = Math.sqrt(s);
  const out = new Float32Array(v.length);
  if (n > 0) for (let i = 0; i < v.length; i++) out[i] = v[i] / n;
  return out;
}

/** Split a row-major [n, dim] buffer into rows (views). */
export function rows(m: Float32Array, dim: number): Float32Array[] {
  if (m.length % dim !== 0) throw new RangeError(`buffer of ${m.length} is not a multiple of dim ${dim}`);
  return Array.from({ length: m.length / dim }, (_, i) => m.subarray(i * dim, (i + 1) * dim));
}

export function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new RangeError(`dot: lengths ${a.length} and ${b.length} differ`);
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

export function cosineSimilarity(a: ArrayLike<number>, b: ArrayLike<number>): number {
  const na = Math.sqrt(dot(a, a)), nb = Math.sqrt(dot(b, b));
  return na === 0 || nb === 0 ? 0 : dot(a, b) / (na * nb);
}

export interface LabelPrompts {
  label: string;
  /** One embedding per prompt (not necessarily normalized). */
  embeds: ArrayLike<number>[];
}

/** open_clip's zero-shot classifier weights: mean of normalized prompt embeddings, renormalized. */
export function labelEmbedding(embeds: ArrayLike<number>[]): Float32Array {
  if (embeds.length === 0) throw new RangeError('labelEmbedding: no prompts');
  const D = embeds[0].length;
  const acc = new Float32Array(D);
  for (const e of embeds) {
    const n = l2Normalize(e);
    for (let i = 0; i < D; i++) acc[i] += n[i] / embeds.length;
  }
  return l2Normalize(acc);
}

function softmax(logits: number[]): number[] {
  const m = Math.max(...logits);
  const ex = logits.map((l) => Math.exp(l - m));
  const z = ex.reduce((a, b) => a + b, 0);
  return ex.map((e) => e / z);
}

export interface ZeroShotOptions {
  /** For two labels: predict `positiveLabel` when its probability ≥ threshold (a calibrated threshold). */
  positiveLabel?: string;
  threshold?: number;
  /** Default 'softmax'. */
  scoring?: ZeroShotScoring;
  /** Added to the logits (SigLIP's learned logit_bias); default 0. */
  logitBias?: number;
}

export interface ZeroShotResult {
  /** softmax over labels of logit_scale · cosine, or (scoring 'sigmoid') sigmoid(logit_scale · cosine + logit_bias) per label */
  probabilities: Record<string, number>;
  /** The rule that made `probabilities`: with 'sigmoid' they are independent and need not sum to 1. */
  scoring: ZeroShotScoring;
  similarities: Record<string, number>;
  autoLabel: string;
  /** probability of autoLabel */
  confidence: number;
}

/**
 * Zero-shot labels for one or more images. `imageEmbeds`: one vector, or row-major [n, D] with `dim` given.
 * `logitScale` is exp(logit_scale), the multiplier of the cosine. autoLabel = the most probable label (either rule).
 */
export function zeroShot(imageEmbeds: ArrayLike<number>, labels: LabelPrompts[], logitScale: number, opts: ZeroShotOptions & { dim?: number } = {}): ZeroShotResult[] {
  if (labels.length === 0) throw new RangeError('zeroShot: no labels');
  const scoring = opts.scoring ?? 'softmax';
  const classW = labels.map((l) => labelEmbedding(l.embeds));
  const D = opts.dim ?? classW[0].length;
  if (imageEmbeds.length % D !== 0) throw new RangeError(`zeroShot: image embeddings (${imageEmbeds.length}) are not a multiple of D=${D}`);
  const out: ZeroShotResult[] = [];
  const buf = Float32Array.from(imageEmbeds as ArrayLike<number>);
  for (const img of rows(buf, D)) {
    const x = l2Normalize(img);
    const sims = classW.map((w) => dot(x, w));
    const logits = sims.map((s) => logitScale * s + (opts.logitBias ?? 0));
    const probs = scoring === 'sigmoid' ? logits.map((l) => 1 / (1 + Math.exp(-l))) : softmax(logits);
    const probabilities: Record<string, number> = {};
    const similarities: Record<string, number> = {};
    labels.forEach((l, i) => {
      probabilities[l.label] = probs[i];
      similarities[l.label] = sims[i];
    });
    let idx = probs.indexOf(Math.max(...probs));
    if (labels.length === 2 && opts.positiveLabel !== undefined && opts.threshold !== undefined) {
      const pi = labels.findIndex((l) => l.label === opts.positiveLabel);
      if (pi < 0) throw new RangeError(`zeroShot: positiveLabel ${opts.positiveLabel} is not a label`);
      idx = probs[pi] >= opts.threshold ? pi : 1 - pi;
    }
    out.push({ probabilities, similarities, autoLabel: labels[idx].label, confidence: probs[idx], scoring });
  }
  return out;
}
