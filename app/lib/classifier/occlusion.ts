/**
 * Occlusion sensitivity (Zeiler & Fergus, "Visualizing and Understanding Convolutional Networks", ECCV 2014, sec. 4.2):
 * slide a grey square over the model input and record how much the probability of the target class drops. It
 * needs nothing but forward passes of the classifier graph itself, so it runs on any ONNX Runtime backend (Grad-CAM
 * would need gradients, which onnxruntime-web's inference builds do not compute).
 *
 * Pure logic: the model run is injected (`OcclusionRunner`), so the worker, the CLI and the tests share it.
 * Reference: export-scripts/cxr_export/heatmaps.py computes the same map with the PyTorch module (tests/goldens/
 * pneumonia-vit/heatmaps.json).
 */

/** Runs the classifier on a batch [b, 3, H, W] and returns its probabilities [b, C] (row-major). */
export type OcclusionRunner = (data: Float32Array, dims: [number, number, number, number]) => Promise<ArrayLike<number>>;

export interface OcclusionOptions {
  /** Side of the occluding square in model-input pixels. Default: the ViT patch size (or H / 7). */
  window?: number;
  /** Step between squares in model-input pixels. Default: window (non-overlapping). */
  stride?: number;
  /**
   * Value written into the occluded pixels, in the model's normalised input space. Default 0: with the ViT mean/std
   * of 0.5 that is mid-grey (pixel 0.5), the "uninformative" grey of Zeiler & Fergus.
   */
  fill?: number;
  /** Class whose probability is watched. Default: the class the unoccluded image is predicted as (argmax). */
  targetClass?: number;
  /** Occluded copies per model run (memory vs. overhead). Default 16. */
  batchSize?: number;
  /** Called after every run with (done, total) occluded copies. */
  onProgress?: (done: number, total: number) => void;
}

export interface OcclusionResult {
  /** gridH × gridW row-major: positive part of the drop, normalised to max 1 (all 0 when nothing lowers it). */
  grid: Float32Array;
  /** gridH × gridW: p_target(image) − p_target(image with that square occluded), unnormalised, signed. */
  drop: Float32Array;
  gridW: number;
  gridH: number;
  targetClass: number;
  /** p_target of the unoccluded image. */
  baseProbability: number;
  /** Forward passes made (runs of the injected runner). */
  runs: number;
}

/** Top-left corners of the occluding squares along one axis: 0, stride, ... while the square fits (last one flush). */
export function occlusionOffsets(size: number, window: number, stride: number): number[] {
  if (!(window >= 1 && window <= size)) throw new RangeError(`occlusion: window ${window} must be in [1, ${size}]`);
  if (!(stride >= 1)) throw new RangeError(`occlusion: stride ${stride} must be ≥ 1`);
  const out: number[] = [];
  for (let o = 0; o + window <= size; o += stride) out.push(o);
  if (out[out.length - 1] + window < size) out.push(size - window); // cover the border too
  return out;
}

/**
 * Occlusion map of one image. `input` is one model input [3, H, W] (as prepareClassifierBatch writes it), `dims` its
 * [1, 3, H, W]. Cost: 1 + gridW·gridH forward passes, in runs of batchSize.
 */
export async function occlusionSensitivity(
  run: OcclusionRunner,
  input: Float32Array,
  dims: [number, number, number, number],
  opts: OcclusionOptions = {},
): Promise<OcclusionResult> {
  const [b, c, H, W] = dims;
  if (b !== 1) throw new RangeError(`occlusion: one image at a time (got batch ${b})`);
  if (input.length !== c * H * W) throw new RangeError(`occlusion: input has ${input.length} values, dims say ${c * H * W}`);
  const window = opts.window ?? Math.max(1, Math.round(H / 7));
  const stride = opts.stride ?? window;
  const fill = opts.fill ?? 0;
  const batchSize = Math.max(1, Math.floor(opts.batchSize ?? 16));
  const ys = occlusionOffsets(H, window, stride);
  const xs = occlusionOffsets(W, window, stride);
  const total = ys.length * xs.length;

  const base = await run(input, dims);
  const C = base.length;
  let target = opts.targetClass ?? -1;
  if (target < 0) {
    target = 0;
    for (let k = 1; k < C; k++) if (base[k] > base[target]) target = k;
  }
  if (target >= C) throw new RangeError(`occlusion: target class ${target} but the model has ${C} classes`);
  const p0 = Number(base[target]);

  const drop = new Float32Array(total);
  const plane = H * W;
  let runs = 1;
  for (let start = 0; start < total; start += batchSize) {
    const n = Math.min(batchSize, total - start);
    const batch = new Float32Array(n * input.length);
    for (let i = 0; i < n; i++) {
      const cell = start + i;
      const y0 = ys[Math.floor(cell / xs.length)];
      const x0 = xs[cell % xs.length];
      const off = i * input.length;
      batch.set(input, off);
      for (let ch = 0; ch < c; ch++) {
        for (let y = y0; y < y0 + window; y++) batch.fill(fill, off + ch * plane + y * W + x0, off + ch * plane + y * W + x0 + window);
      }
    }
    const probs = await run(batch, [n, c, H, W]);
    runs++;
    if (probs.length !== n * C) throw new RangeError(`occlusion: runner returned ${probs.length} values for ${n}×${C}`);
    for (let i = 0; i < n; i++) drop[start + i] = p0 - Number(probs[i * C + target]);
    opts.onProgress?.(start + n, total);
  }
  let max = 0;
  for (const d of drop) max = Math.max(max, d);
  const grid = new Float32Array(total);
  if (max > 0) for (let i = 0; i < total; i++) grid[i] = Math.max(0, drop[i]) / max;
  return { grid, drop, gridW: xs.length, gridH: ys.length, targetClass: target, baseProbability: p0, runs };
}
