/**
 * The SAM pipeline over any ONNX Runtime build (onnxruntime-web in the worker, in Node for the CLI and tests):
 * encode once (preprocess → encoder → features), decode per prompt (feeds → decoder → masks at the original size).
 * The runtime is injected (a Tensor constructor and two sessions), so this module imports no ORT.
 */
import type { ModelEntry } from '../models/manifest-types';
import type { Raster } from '../imaging/raster';
import type { FrameGeometry } from './geometry';
import { prepareSamInput, type SamPreprocessing } from './preprocess';
import {
  decoderFetches,
  decoderPromptFeeds,
  detectSamInterface,
  readDecoderOutputs,
  SamInterfaceError,
  type FeedTensor,
  type SamInterface,
  type SamPrompt,
} from './layouts';
import { bestMaskIndex, thresholdLogits, upscaleMaskLogits } from './postprocess';
import { maskBounds, upscaleMask, type MaskBounds } from './mask-upscale';

export interface TensorLike {
  data: unknown;
  dims: readonly number[];
  dispose?: () => void;
}
export type TensorFactory = (type: 'float32' | 'int64', data: Float32Array | BigInt64Array, dims: readonly number[]) => TensorLike;
export interface SessionLike {
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  /** ORT >= 1.22: each input's declared shape (symbolic dims as strings); used only to warm the decoder up. */
  readonly inputMetadata?: readonly { name: string; isTensor?: boolean; shape?: readonly (number | string)[] }[];
  run(feeds: Record<string, TensorLike>, fetches: string[]): Promise<Record<string, TensorLike>>;
}

export interface SamModelSettings {
  pre: SamPreprocessing;
  maskSize: number;
  paddingPoint: 'when-no-box' | 'always';
}

/** Image size, mask size, normalisation and padding-point rule of a 'sam' manifest entry. */
export function samSettings(entry: ModelEntry): SamModelSettings {
  const c = (entry.config ?? {}) as Record<string, unknown>;
  const size = Number(c.image_size ?? entry.preprocessing?.size?.[0]);
  const maskSize = Number(c.mask_size ?? 4 * Number(c.embedding_size));
  if (!(size > 0) || !(maskSize > 0)) throw new SamInterfaceError(`${entry.name}: the manifest gives no config.image_size / config.mask_size`);
  const pre = entry.preprocessing;
  return {
    pre: { size, mean: pre?.mean ?? [0.485, 0.456, 0.406], std: pre?.std ?? [0.229, 0.224, 0.225] },
    maskSize,
    paddingPoint: c.append_padding_point === 'always' ? 'always' : 'when-no-box',
  };
}

export interface Embedding {
  features: Record<string, { data: Float32Array; dims: number[] }>;
  geometry: FrameGeometry;
  encodeMs: number;
}

/** Options of a SAM mask decode (prompt -> masks); not image-file decoding, which is lib/imaging DecodeOptions. */
export interface MaskDecodeOptions {
  multimask?: boolean;
  /** Also return the logits at the original size (parity checks); masks are always returned. */
  logits?: boolean;
  /**
   * 'best' upscales only the mask with the highest predicted IoU (an interaction shows that one; the others are
   * upscaled from their low-res logits if the user picks them); 'all' (default) every mask.
   */
  masks?: 'all' | 'best';
}

export interface Decoded {
  /** Binary masks at the original size (origW×origH each), in output order; empty (length 0) for the masks not
   * upscaled with `masks: 'best'`. */
  masks: Uint8Array[];
  /** Tight bounds of each mask in `masks` (null: empty or not upscaled): the paint and the lung side read only these. */
  bounds: (MaskBounds | null)[];
  iou: number[];
  best: number;
  /** Low-res logits (m×m) per mask: the next interaction's mask_input. */
  lowRes: Float32Array[];
  maskSize: number;
  logits?: Float32Array[];
  decodeMs: number;
}

/** Monotonic milliseconds where there is a clock (page, worker, Node), else wall time. */
function nowMs(): number {
  return (globalThis as { performance?: { now(): number } }).performance?.now() ?? Date.now();
}

export class SamPipeline {
  readonly itf: SamInterface;

  constructor(
    private readonly tensor: TensorFactory,
    private readonly encoder: SessionLike,
    private readonly decoder: SessionLike,
    readonly settings: SamModelSettings,
  ) {
    this.itf = detectSamInterface(
      { inputs: encoder.inputNames, outputs: encoder.outputNames },
      { inputs: decoder.inputNames, outputs: decoder.outputNames },
      settings.paddingPoint,
    );
  }

  async encode(raster: Raster): Promise<Embedding> {
    const x = prepareSamInput(raster, this.settings.pre);
    const t0 = nowMs();
    const input = this.tensor('float32', x.data, x.dims);
    const out = await this.encoder.run({ [this.itf.encoderInput]: input }, this.itf.features);
    const encodeMs = nowMs() - t0;
    const features: Embedding['features'] = {};
    for (const name of this.itf.features) {
      const t = out[name];
      if (!t) throw new SamInterfaceError(`the image encoder gave no ${name}`);
      // a copy: GPU-downloaded / WASM-heap views must not be shared with IndexedDB or other threads
      features[name] = { data: Float32Array.from(t.data as Float32Array), dims: t.dims.map(Number) };
      t.dispose?.();
    }
    input.dispose?.();
    return { features, geometry: x.geometry, encodeMs };
  }

  /**
   * Warm the decoder up: one decode of a centre click on an all-zero embedding (S×S frame), result dropped. ORT's
   * first run of a session pays for its memory arena and kernel preparation (0.1-1 s for lung-sam's decoder on
   * WASM here, later runs 0.1-0.2 s; scripts/bench-perceived.mjs): paid now, while the user opens an image, and
   * not at the first click. The feature shapes come from the decoder's input metadata (a leading symbolic batch
   * dim counts as 1); without static shapes nothing runs and it returns false. Never throws: a failure here is
   * reported by the first real decode.
   */
  async warmDecoder(): Promise<boolean> {
    try {
      const meta = new Map((this.decoder.inputMetadata ?? []).map((m) => [m.name, m.shape]));
      const features: Embedding['features'] = {};
      for (const name of this.itf.features) {
        const shape = meta.get(name);
        if (!shape) return false;
        const dims = shape.map((d, i) => (typeof d === 'number' && d > 0 ? d : i === 0 ? 1 : NaN));
        if (dims.some((d) => !Number.isFinite(d))) return false;
        features[name] = { data: new Float32Array(dims.reduce((a, b) => a * b, 1)), dims };
      }
      const S = this.settings.pre.size;
      const emb: Embedding = { features, geometry: { origW: S, origH: S, resizedW: S, resizedH: S, size: S }, encodeMs: 0 };
      await this.decode(emb, { points: [{ x: S / 2, y: S / 2, label: 1 }] }, { masks: 'best' });
      return true;
    } catch {
      return false;
    }
  }

  /** Decoder feeds for a prompt (exposed for tests and the benchmark). */
  feeds(emb: Embedding, prompt: SamPrompt, featureTensors?: Record<string, TensorLike>): Record<string, TensorLike> {
    const prompts = decoderPromptFeeds(this.itf, prompt, emb.geometry, this.settings.maskSize);
    const feeds: Record<string, TensorLike> = {};
    for (const [k, v] of Object.entries(prompts) as [string, FeedTensor][]) feeds[k] = this.tensor(v.type, v.data, v.dims);
    for (const name of this.itf.features) feeds[name] = featureTensors?.[name] ?? this.tensor('float32', emb.features[name].data, emb.features[name].dims);
    return feeds;
  }

  /**
   * One interaction. `featureTensors`: resident feature tensors (e.g. on the GPU) to use instead of uploading the
   * cached embedding again.
   */
  async decode(emb: Embedding, prompt: SamPrompt, opts: MaskDecodeOptions = {}, featureTensors?: Record<string, TensorLike>): Promise<Decoded> {
    const feeds = this.feeds(emb, prompt, featureTensors);
    const t0 = nowMs();
    const out = await this.decoder.run(feeds, decoderFetches(this.itf));
    const decodeMs = nowMs() - t0;
    const asOut: Record<string, { data: Float32Array; dims: readonly number[] }> = {};
    for (const [k, t] of Object.entries(out)) asOut[k] = { data: t.data as Float32Array, dims: t.dims };
    const r = readDecoderOutputs(this.itf, asOut, opts.multimask ?? true);
    const m = r.maskSize;
    const g = emb.geometry;
    const M = r.iou.length;
    const lowRes: Float32Array[] = [];
    const logits: Float32Array[] = [];
    const masks: Uint8Array[] = [];
    const bounds: (MaskBounds | null)[] = [];
    const plane = g.origW * g.origH;
    const best = bestMaskIndex(r.iou);
    for (let k = 0; k < M; k++) {
      const low = r.lowRes.slice(k * m * m, (k + 1) * m * m);
      lowRes.push(low);
      if (opts.masks === 'best' && k !== best && !opts.logits) {
        masks.push(new Uint8Array(0));
        bounds.push(null);
        continue;
      }
      if (!r.fullRes && !opts.logits) {
        // only the rectangle the positive logits reach is upscaled: the same pixels (mask-upscale.ts)
        const u = upscaleMask(low, m, g);
        masks.push(u.mask);
        bounds.push(u.bounds);
        continue;
      }
      const full = r.fullRes ? r.fullRes.subarray(k * plane, (k + 1) * plane) : upscaleMaskLogits(low, m, g);
      if (opts.logits) logits.push(Float32Array.from(full));
      const mask = thresholdLogits(full);
      masks.push(mask);
      bounds.push(maskBounds(mask, g.origW, g.origH));
    }
    for (const [k, t] of Object.entries(out)) if (!this.itf.features.includes(k)) t.dispose?.();
    for (const [k, t] of Object.entries(feeds)) if (!featureTensors?.[k]) t.dispose?.();
    return { masks, bounds, iou: r.iou, best, lowRes, maskSize: m, logits: opts.logits ? logits : undefined, decodeMs };
  }
}
