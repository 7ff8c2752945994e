/**
 * Classifier post-processing: softmax/argmax, thresholded binary decisions, attention rollout (Abnar & Zuidema 2020)
 * and heatmap rendering. Pure functions over typed arrays.
 */

/** Row-wise softmax of a [rows, cols] matrix (numerically stable). */
export function softmax(logits: ArrayLike<number>, cols = logits.length): Float32Array {
  if (cols <= 0 || logits.length % cols !== 0) throw new RangeError(`softmax: length ${logits.length} is not a multiple of ${cols}`);
  const out = new Float32Array(logits.length);
  for (let r = 0; r < logits.length; r += cols) {
    let m = -Infinity;
    for (let i = 0; i < cols; i++) m = Math.max(m, logits[r + i]);
    let s = 0;
    for (let i = 0; i < cols; i++) s += Math.exp(logits[r + i] - m);
    for (let i = 0; i < cols; i++) out[r + i] = Math.exp(logits[r + i] - m) / s;
  }
  return out;
}

/** Index of the largest value (first one on ties); -1 for an empty array. */
export function argmax(values: ArrayLike<number>, start = 0, end = values.length): number {
  let best = -1;
  let bv = -Infinity;
  for (let i = start; i < end; i++) {
    if (values[i] > bv) {
      bv = values[i];
      best = i - start;
    }
  }
  return best;
}

export interface ClassPrediction {
  /** Predicted label (for 2 classes: positive iff P(positive) ≥ threshold; otherwise argmax). */
  label: string;
  labelIndex: number;
  /** P(positive class) for binary models; max probability otherwise. */
  probability: number;
  probabilities: Record<string, number>;
  threshold?: number;
}

/** Name of the positive class: 'PNEUMONIA' when present, else the second label. */
export function positiveIndex(labels: string[]): number {
  const i = labels.findIndex((l) => l.toUpperCase() === 'PNEUMONIA');
  return i >= 0 ? i : Math.min(1, labels.length - 1);
}

/**
 * Turn a batch of probabilities [b, C] into predictions. With two classes and a threshold, the positive class is
 * predicted when its probability is ≥ threshold (the manifest's card.threshold); otherwise argmax.
 */
export function predictFromProbabilities(probs: ArrayLike<number>, labels: string[], threshold?: number): ClassPrediction[] {
  const C = labels.length;
  if (probs.length % C !== 0) throw new RangeError(`probabilities length ${probs.length} is not a multiple of ${C} labels`);
  const out: ClassPrediction[] = [];
  const pos = positiveIndex(labels);
  for (let r = 0; r < probs.length; r += C) {
    const probabilities: Record<string, number> = {};
    labels.forEach((l, i) => (probabilities[l] = probs[r + i]));
    if (C === 2 && threshold !== undefined) {
      const p = probs[r + pos];
      const idx = p >= threshold ? pos : 1 - pos;
      out.push({ label: labels[idx], labelIndex: idx, probability: p, probabilities, threshold });
    } else {
      const idx = argmax(probs, r, r + C);
      out.push({ label: labels[idx], labelIndex: idx, probability: C === 2 ? probs[r + pos] : probs[r + idx], probabilities });
    }
  }
  return out;
}

export interface RolloutOptions {
  /** Fraction of the lowest attention weights (per layer, after head fusion) set to 0; the CLS column is kept. Default 0. */
  discardRatio?: number;
  headFusion?: 'mean' | 'max' | 'min';
  /** Tokens before the patches (CLS, registers). Default 1. */
  prefixTokens?: number;
  /** When dims has 5 entries [b, L, H, T, T]: which image. Default 0. */
  batchIndex?: number;
}

export interface RolloutResult {
  /** gridH × gridW, row-major, normalized to max 1. */
  grid: Float32Array;
  gridW: number;
  gridH: number;
}

/**
 * Attention rollout: fuse heads, optionally drop the weakest weights, add the identity for the residual path
 * (A + I)/2, renormalize rows, multiply through the layers (R = Â_L ⋯ Â_1, the reference's R ← Â_l · R from I), and
 * read the CLS row over patch tokens. Only that row is computed: e₀ᵀ Â_L ⋯ Â_1, vector × matrix from the last layer
 * down (associativity), T² multiply-adds per layer instead of T³ (ViT-B/16: 39 k instead of 7.6 M), the same values
 * up to float64 rounding. `dims` is [L, H, T, T] or [b, L, H, T, T].
 */
export function attentionRollout(attentions: ArrayLike<number>, dims: number[], opts: RolloutOptions = {}): RolloutResult {
  let L: number, H: number, T: number, base = 0;
  if (dims.length === 5) {
    const [b, l, h, t, t2] = dims;
    if (t !== t2) throw new RangeError('attentionRollout: attention maps must be square');
    const bi = opts.batchIndex ?? 0;
    if (bi < 0 || bi >= b) throw new RangeError(`attentionRollout: batchIndex ${bi} out of range ${b}`);
    [L, H, T] = [l, h, t];
    base = bi * l * h * t * t;
  } else if (dims.length === 4) {
    [L, H, T] = dims;
    if (dims[3] !== T) throw new RangeError('attentionRollout: attention maps must be square');
  } else throw new RangeError(`attentionRollout: dims must be [L,H,T,T] or [b,L,H,T,T], got [${dims}]`);
  if (attentions.length < base + L * H * T * T) throw new RangeError('attentionRollout: buffer shorter than dims');
  const prefix = opts.prefixTokens ?? 1;
  const nPatches = T - prefix;
  const side = Math.round(Math.sqrt(nPatches));
  if (side * side !== nPatches) throw new RangeError(`attentionRollout: ${nPatches} patch tokens is not a square grid`);
  const fusion = opts.headFusion ?? 'mean';
  const discard = opts.discardRatio ?? 0;

  const TT = T * T;
  /** The CLS row of the product so far (e₀ᵀ Â_L ⋯ Â_l). */
  let row = new Float64Array(T);
  row[0] = 1;
  let next = new Float64Array(T);
  const a = new Float64Array(TT);

  for (let l = L - 1; l >= 0; l--) {
    const layerBase = base + l * H * TT;
    for (let k = 0; k < TT; k++) {
      let v = fusion === 'mean' ? 0 : attentions[layerBase + k];
      for (let h = 0; h < H; h++) {
        const x = attentions[layerBase + h * TT + k];
        if (fusion === 'mean') v += x;
        else if (fusion === 'max') v = Math.max(v, x);
        else v = Math.min(v, x);
      }
      a[k] = fusion === 'mean' ? v / H : v;
    }
    if (discard > 0) {
      const nDrop = Math.floor(TT * discard);
      if (nDrop > 0) {
        const order = Array.from({ length: TT }, (_, i) => i).sort((x, y) => a[x] - a[y]);
        for (let i = 0; i < nDrop; i++) if (order[i] !== 0) a[order[i]] = 0; // never drop CLS→CLS
      }
    }
    // next = row · Â_l, with Â_l's rows (a + I)/2 renormalized on the fly
    next.fill(0);
    for (let r = 0; r < T; r++) {
      const w = row[r];
      if (w === 0) continue;
      const rr = r * T;
      let s = 0;
      for (let c = 0; c < T; c++) s += (a[rr + c] + (r === c ? 1 : 0)) / 2;
      if (!(s > 0)) continue;
      for (let c = 0; c < T; c++) next[c] += (w * ((a[rr + c] + (r === c ? 1 : 0)) / 2)) / s;
    }
    [row, next] = [next, row];
  }
  const grid = new Float32Array(nPatches);
  let max = 0;
  for (let p = 0; p < nPatches; p++) {
    grid[p] = row[prefix + p];
    max = Math.max(max, grid[p]);
  }
  if (max > 0) for (let p = 0; p < nPatches; p++) grid[p] /= max;
  return { grid, gridW: side, gridH: side };
}

export type Colormap = 'jet' | 'inferno' | 'viridis' | 'gray';

const STOPS: Record<'inferno' | 'viridis', [number, number, number][]> = {
  inferno: [[0, 0, 4], [40, 11, 84], [101, 21, 110], [159, 42, 99], [212, 72, 66], [245, 125, 21], [250, 193, 39], [252, 255, 164]],
  viridis: [[68, 1, 84], [70, 50, 127], [54, 92, 141], [39, 127, 142], [31, 161, 135], [74, 194, 109], [159, 218, 58], [253, 231, 37]],
};

/** Colour of v ∈ [0,1] under a colormap, as [r, g, b] 0–255. */
export function colormapRGB(v: number, cmap: Colormap = 'jet'): [number, number, number] {
  const x = Math.min(1, Math.max(0, Number.isFinite(v) ? v : 0));
  if (cmap === 'gray') return [x * 255, x * 255, x * 255];
  if (cmap === 'jet') {
    const r = Math.min(1, Math.max(0, 1.5 - Math.abs(4 * x - 3)));
    const g = Math.min(1, Math.max(0, 1.5 - Math.abs(4 * x - 2)));
    const b = Math.min(1, Math.max(0, 1.5 - Math.abs(4 * x - 1)));
    return [r * 255, g * 255, b * 255];
  }
  const s = STOPS[cmap];
  const f = x * (s.length - 1);
  const i = Math.min(s.length - 2, Math.floor(f));
  const t = f - i;
  return [0, 1, 2].map((c) => s[i][c] + (s[i + 1][c] - s[i][c]) * t) as [number, number, number];
}

/** Bilinear upsampling of a grid to w × h (pixel centres aligned, align_corners = false). */
export function upsampleBilinear(grid: ArrayLike<number>, gw: number, gh: number, w: number, h: number): Float32Array {
  const out = new Float32Array(w * h);
  for (let y = 0; y < h; y++) {
    const sy = Math.min(gh - 1, Math.max(0, ((y + 0.5) * gh) / h - 0.5));
    const y0 = Math.floor(sy), y1 = Math.min(gh - 1, y0 + 1), ty = sy - y0;
    for (let x = 0; x < w; x++) {
      const sx = Math.min(gw - 1, Math.max(0, ((x + 0.5) * gw) / w - 0.5));
      const x0 = Math.floor(sx), x1 = Math.min(gw - 1, x0 + 1), tx = sx - x0;
      const top = grid[y0 * gw + x0] * (1 - tx) + grid[y0 * gw + x1] * tx;
      const bot = grid[y1 * gw + x0] * (1 - tx) + grid[y1 * gw + x1] * tx;
      out[y * w + x] = top * (1 - ty) + bot * ty;
    }
  }
  return out;
}

export interface HeatmapOptions {
  colormap?: Colormap;
  /** Maximum alpha 0–1 (default 0.6). */
  opacity?: number;
  /** 'value': alpha grows with the value (low attention stays transparent); 'constant': uniform alpha. Default 'value'. */
  alphaMode?: 'value' | 'constant';
}

/** A [0,1] grid → w × h RGBA overlay (bilinear upsampling), ready for putImageData over the image. */
export function heatmapToRGBA(grid: ArrayLike<number>, gridW: number, gridH: number, w: number, h: number, opts: HeatmapOptions = {}): Uint8ClampedArray {
  const up = upsampleBilinear(grid, gridW, gridH, w, h);
  const cmap = opts.colormap ?? 'jet';
  const opacity = opts.opacity ?? 0.6;
  const out = new Uint8ClampedArray(w * h * 4);
  // A 256-entry LUT keeps this fast on large images.
  const lut = Array.from({ length: 256 }, (_, i) => colormapRGB(i / 255, cmap));
  for (let i = 0; i < w * h; i++) {
    const v = Math.min(1, Math.max(0, up[i]));
    const c = lut[Math.round(v * 255)];
    out[i * 4] = c[0];
    out[i * 4 + 1] = c[1];
    out[i * 4 + 2] = c[2];
    out[i * 4 + 3] = 255 * opacity * (opts.alphaMode === 'constant' ? 1 : v);
  }
  return out;
}
