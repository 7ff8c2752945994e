/**
 * Text-to-image with a Latent Consistency Model, composed like diffusers' LatentConsistencyModelPipeline /
 * StableDiffusionPipeline with an LCMScheduler (diffusers 0.42):
 *   tokenizer (CLIP BPE, 77 tokens) -> text_encoder -> prompt_embeds [b, 77, D] ([negative; prompt] with CFG)
 *   latents ~ N(0, I) [b, 4, H/8, W/8] from a TorchGenerator(seed) (or given)
 *   for t in LCMScheduler.setTimesteps(steps): eps = unet(x, t, prompt_embeds[, timestep_cond][, lora_scale]);
 *       (eps, CFG) -> LCMScheduler.step -> x, denoised
 *   image = clamp(vae_decoder(denoised / scaling_factor) / 2 + 0.5, 0, 1)   (VaeImageProcessor.postprocess)
 * Pure of the DOM: ONNX Runtime is passed in (onnxruntime-web in browsers and in Node), so the app's worker, the CLI
 * and the tests run this same code. The per-step work goes either through JS (CPU tensors: lcm-scheduler.ts) or,
 * when `stepSession` is given (the worker does this on WebGPU), through the step graph (step-graph.ts) so that the
 * UNet's gpu-buffer outputs are fed back without a read-back until the VAE decoder's image.
 */
import type * as Ort from 'onnxruntime-web';
import { LCMScheduler, applyLcmStep, type LcmStepCoefficients } from './lcm-scheduler';
import { TorchGenerator, numel } from './torch-random';
import { combineCfg, guidanceMode, guidanceScaleEmbedding, type GuidanceMode } from './guidance';
import { stepGraphScalarInputs, type StepGraphOptions } from './step-graph';
import type { ClipTokenizer } from '../clip/tokenize';

export type OrtLike = Pick<typeof Ort, 'Tensor'>;
export type Session = Ort.InferenceSession;
export type Tensor = Ort.Tensor;

/** Which UNet graphs a model ships: 'two-graph' (unet + unet_lora), 'scaled' (unet_scaled with a lora_scale input). */
export type UnetLayout = 'two-graph' | 'scaled';
export type Side = 'base' | 'lora';

/** The manifest's `config` of an 'sd' model (written by export-scripts/cxr_export/sd.py). */
export interface SdConfig {
  latent_channels: number;
  latent_size: number;
  vae_scale_factor: number;
  image_size: number;
  scaling_factor: number;
  context_length: number;
  hidden_size: number;
  time_cond_proj_dim: number | null;
  num_inference_steps: number;
  guidance_scale: number;
  pad_token_id: number;
}

/** Read and check the SD config of a manifest entry; throws naming the bad key. */
export function parseSdConfig(config: Record<string, unknown> | undefined, modelName = 'model'): SdConfig {
  const c = (config ?? {}) as Record<string, unknown>;
  const num = (k: string, dflt?: number): number => {
    const v = c[k] ?? dflt;
    if (typeof v !== 'number' || !Number.isFinite(v)) throw new Error(`${modelName}: manifest config.${k} is missing or not a number`);
    return v;
  };
  const tc = c.time_cond_proj_dim;
  return {
    latent_channels: num('latent_channels'),
    latent_size: num('latent_size'),
    vae_scale_factor: num('vae_scale_factor'),
    image_size: num('image_size'),
    scaling_factor: num('scaling_factor'),
    context_length: num('context_length', 77),
    hidden_size: num('hidden_size'),
    time_cond_proj_dim: typeof tc === 'number' && tc > 0 ? tc : null,
    num_inference_steps: num('num_inference_steps', 4),
    guidance_scale: num('guidance_scale', 1),
    pad_token_id: num('pad_token_id'),
  };
}

export interface UnetGraph {
  session: Session;
  /** lora_scale value for the side (scaled layout), or null (two-graph layout: one graph per side). */
  loraScale: number | null;
}

export interface GenerateOptions {
  prompt: string;
  /** Negative prompt for CFG (diffusers' default: ''). */
  negativePrompt?: string;
  numInferenceSteps: number;
  guidanceScale: number;
  /** Seed of the TorchGenerator that draws the initial latents (unless given) and each step's noise. */
  seed: number;
  /** Initial latents [1, C, h, w] (float32, N(0, I)); drawn from the seed when absent. */
  latents?: Float32Array;
  /** Latent height/width (default: the model's latent_size). */
  latentSize?: number;
  /**
   * The noise z of each non-final step (each [1, C, h, w]), instead of drawing it from the seed: to replay a
   * reference that recorded its noise.
   */
  noises?: Float32Array[];
  /** original_inference_steps override (default: the scheduler config's). */
  originalInferenceSteps?: number;
}

export interface StepProgress {
  step: number;
  total: number;
  timestep: number;
  ms: number;
}

export interface GenerateHooks {
  onStep?: (p: StepProgress) => void;
  /**
   * Awaited before each UNet step: a host yields to its event loop here (a macrotask), so that a cancel message
   * sent while the loop runs is delivered before isCancelled() is read.
   */
  beforeStep?: () => Promise<void>;
  /** Checked before each UNet step; when it returns true the generation stops with GenerationCancelled. */
  isCancelled?: () => boolean;
  /** After the first step: the denoised latents, when the caller asked to check them (fp16 NaN check). */
  checkFirstStep?: (denoised: Float32Array) => void;
}

export class GenerationCancelled extends Error {
  constructor(step: number, total: number) {
    super(`generation cancelled before step ${step + 1} of ${total}`);
    this.name = 'GenerationCancelled';
  }
}

export interface GenerateResult {
  /** float32 [1, 3, H, W] in [0, 1] (diffusers output_type='np' is this transposed to NHWC). */
  image: Float32Array;
  width: number;
  height: number;
  timesteps: number[];
  /** The initial latents used (to reproduce the image elsewhere). */
  latents: Float32Array;
  guidance: GuidanceMode;
  timings: { textMs: number; stepMs: number[]; vaeMs: number; totalMs: number };
}

export interface PromptEmbeds {
  /** [b, 77, D]: [prompt] or, with CFG, [negative; prompt]. */
  tensor: Tensor;
  cfg: boolean;
  key: string;
}

const now = (): number => {
  const p = (globalThis as { performance?: { now(): number } }).performance;
  return p ? p.now() : Date.now();
};

/** Tokenize and encode the prompt ([negative; prompt] when `cfg`); the returned tensor stays where the session puts it. */
export async function encodePrompt(ort: OrtLike, tokenizer: ClipTokenizer, textEncoder: Session, prompt: string, cfg: boolean, negativePrompt = ''): Promise<PromptEmbeds> {
  const texts = cfg ? [negativePrompt, prompt] : [prompt];
  const batch = tokenizer.encodeBatch(texts);
  const input = textEncoder.inputNames[0] ?? 'input_ids';
  const out = await textEncoder.run({ [input]: new ort.Tensor('int64', batch.ids, batch.dims) });
  const name = textEncoder.outputNames.includes('last_hidden_state') ? 'last_hidden_state' : textEncoder.outputNames[0];
  for (const [k, t] of Object.entries(out)) if (k !== name) t.dispose();
  return { tensor: out[name], cfg, key: JSON.stringify([prompt, cfg ? negativePrompt : null]) };
}

/** VaeImageProcessor.postprocess(do_denormalize=True): clamp(x / 2 + 0.5, 0, 1), float32. */
export function denormalizeImage(x: Float32Array): Float32Array {
  const out = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = Math.min(1, Math.max(0, Math.fround(Math.fround(x[i] / 2) + 0.5)));
  return out;
}

/**
 * NCHW [1, 3, H, W] in [0, 1] -> RGBA bytes (diffusers numpy_to_pil: round(x · 255)). Grey (1-channel) images are
 * replicated.
 */
export function imageToRgba(image: Float32Array, width: number, height: number): Uint8ClampedArray {
  const hw = width * height;
  const channels = image.length / hw;
  const rgba = new Uint8ClampedArray(hw * 4);
  for (let p = 0; p < hw; p++) {
    for (let c = 0; c < 3; c++) rgba[p * 4 + c] = Math.round(image[(channels === 1 ? 0 : c) * hw + p] * 255);
    rgba[p * 4 + 3] = 255;
  }
  return rgba;
}

function scalar(ort: OrtLike, v: number): Tensor {
  return new ort.Tensor('float32', Float32Array.of(v), [1]);
}

async function tensorData(t: Tensor): Promise<Float32Array> {
  return (t.location === 'cpu' ? t.data : await t.getData()) as Float32Array;
}

/**
 * Run one LCM generation. `embeds` from encodePrompt with cfg = (guidance mode is 'cfg'); `unet` the graph of the
 * side. `stepSession`: the step graph created for StepGraphOptions {cfg, clip: config.clip_sample} on the same
 * backend as the UNet (GPU-resident loop); absent: the step runs in JS on CPU data.
 * Throws GenerationCancelled when hooks.isCancelled() turns true between steps.
 */
export async function generateLatentConsistency(
  ort: OrtLike,
  parts: { scheduler: LCMScheduler; unet: UnetGraph; vaeDecoder: Session; stepSession?: Session },
  config: SdConfig,
  embeds: PromptEmbeds,
  opts: GenerateOptions,
  hooks: GenerateHooks = {},
): Promise<GenerateResult> {
  const t0 = now();
  const { scheduler, unet, vaeDecoder, stepSession } = parts;
  const mode = guidanceMode(opts.guidanceScale, config.time_cond_proj_dim);
  const cfg = mode.kind === 'cfg';
  if (cfg !== embeds.cfg) throw new Error(`prompt embeddings were encoded ${embeds.cfg ? 'with' : 'without'} CFG, guidance needs ${cfg ? 'it' : 'none'}`);
  const s = opts.latentSize ?? config.latent_size;
  const shape = [1, config.latent_channels, s, s];
  const n = numel(shape);
  const generator = new TorchGenerator(opts.seed);
  let latents: Float32Array;
  if (opts.latents) {
    if (opts.latents.length !== n) throw new RangeError(`latents have ${opts.latents.length} values, expected ${n} ([${shape}])`);
    latents = opts.latents;
  } else {
    latents = generator.randn(n); // prepare_latents: randn_tensor(shape, generator) · init_noise_sigma (1)
  }
  const timesteps = scheduler.setTimesteps(opts.numInferenceSteps, opts.originalInferenceSteps);
  const unetBatch = cfg ? 2 : 1;
  const timestepCond =
    mode.kind === 'embedding' ? new ort.Tensor('float32', guidanceScaleEmbedding(Array(unetBatch).fill(mode.scale - 1), mode.dim), [unetBatch, mode.dim]) : null;
  const loraScale = unet.loraScale === null ? null : new ort.Tensor('float32', new Float32Array(unetBatch).fill(unet.loraScale), [unetBatch]);
  const clipRange = scheduler.config.clip_sample ? scheduler.config.clip_sample_range : null;
  const graphOpts: StepGraphOptions = { cfg, clip: clipRange !== null };
  if (stepSession) {
    const want = stepGraphScalarInputs(graphOpts);
    if (!want.every((w) => stepSession.inputNames.includes(w))) throw new Error('step session does not match the guidance / clipping of this generation');
  }

  const cpuLatents = new ort.Tensor('float32', latents, shape);
  // x: the current latents [1, ...]; unetIn: the UNet's sample ([x; x] with CFG)
  let x: Tensor = cpuLatents;
  let unetIn: Tensor = cfg ? new ort.Tensor('float32', concat2(latents), [2, ...shape.slice(1)]) : cpuLatents;
  let vaeIn: Tensor | null = null;
  let denoisedCpu: Float32Array | null = null;
  const stepMs: number[] = [];
  const owned = new Set<Tensor>(); // tensors this function created on the device and must dispose
  const drop = (t: Tensor | null) => {
    if (t && owned.has(t)) {
      owned.delete(t);
      t.dispose();
    }
  };
  try {
    for (let i = 0; i < timesteps.length; i++) {
      await hooks.beforeStep?.();
      if (hooks.isCancelled?.()) throw new GenerationCancelled(i, timesteps.length);
      const ts = now();
      const t = timesteps[i];
      const feeds: Record<string, Tensor> = {
        sample: unetIn,
        timestep: new ort.Tensor('float32', new Float32Array(unetBatch).fill(t), [unetBatch]),
        encoder_hidden_states: embeds.tensor,
      };
      if (unet.session.inputNames.includes('timestep_cond')) {
        if (!timestepCond) throw new Error('this UNet takes timestep_cond but the model config has no time_cond_proj_dim');
        feeds.timestep_cond = timestepCond;
      }
      if (unet.session.inputNames.includes('lora_scale')) {
        feeds.lora_scale = loraScale ?? new ort.Tensor('float32', new Float32Array(unetBatch), [unetBatch]);
      }
      const out = await unet.session.run(feeds);
      const eps = out.out_sample ?? out[unet.session.outputNames[0]];
      owned.add(eps);
      const c = scheduler.coefficients(i);
      const noise = c.isLast ? new Float32Array(n) : opts.noises ? checkedNoise(opts.noises[i], n, i) : generator.randn(n);
      if (stepSession) {
        const sf: Record<string, Tensor> = { sample: x, model_output: eps, noise: new ort.Tensor('float32', noise, shape) };
        for (const [k, v] of Object.entries(stepScalars(c, opts.guidanceScale, config.scaling_factor, clipRange))) {
          if (stepSession.inputNames.includes(k)) sf[k] = scalar(ort, v);
        }
        const so = await stepSession.run(sf);
        for (const t2 of Object.values(so)) owned.add(t2);
        drop(eps);
        if (unetIn !== x) drop(unetIn);
        drop(x);
        drop(vaeIn);
        x = so.prev_sample;
        unetIn = cfg ? so.unet_sample : x;
        vaeIn = so.vae_latents;
        drop(so.denoised); // the VAE takes vae_latents (= denoised / scaling_factor)
        if (i === 0 && hooks.checkFirstStep) hooks.checkFirstStep(await tensorData(vaeIn));
      } else {
        const epsData = await tensorData(eps);
        drop(eps);
        const guided = cfg ? combineCfg(epsData, opts.guidanceScale) : epsData;
        const xData = await tensorData(x);
        const r = applyLcmStep(c, guided, xData, clipRange, noise);
        denoisedCpu = r.denoised;
        x = new ort.Tensor('float32', r.prevSample, shape);
        unetIn = cfg ? new ort.Tensor('float32', concat2(r.prevSample), [2, ...shape.slice(1)]) : x;
        if (i === 0 && hooks.checkFirstStep) hooks.checkFirstStep(r.denoised);
      }
      stepMs.push(now() - ts);
      hooks.onStep?.({ step: i + 1, total: timesteps.length, timestep: t, ms: stepMs[i] });
    }
    const tv = now();
    let vaeFeed: Tensor;
    if (vaeIn) vaeFeed = vaeIn;
    else {
      const sf = Math.fround(config.scaling_factor);
      vaeFeed = new ort.Tensor('float32', denoisedCpu!.map((v) => v / sf), shape);
    }
    const vout = await vaeDecoder.run({ [vaeDecoder.inputNames[0] ?? 'latent_sample']: vaeFeed });
    const imgT = vout.sample ?? vout[vaeDecoder.outputNames[0]];
    const raw = await tensorData(imgT);
    const dims = imgT.dims.map(Number);
    const image = denormalizeImage(raw);
    imgT.dispose();
    const vaeMs = now() - tv;
    return {
      image,
      width: dims[3],
      height: dims[2],
      timesteps,
      latents,
      guidance: mode,
      timings: { textMs: 0, stepMs, vaeMs, totalMs: now() - t0 },
    };
  } finally {
    for (const t of owned) t.dispose();
    owned.clear();
  }
}

/** The step graph's scalar feeds for one step (see step-graph.ts). */
export function stepScalars(c: LcmStepCoefficients, guidanceScale: number, scalingFactor: number, clipRange: number | null): Record<string, number> {
  return {
    xA: c.xA,
    xB: c.xB,
    xC: c.xC,
    c_out: c.cOut,
    c_skip: c.cSkip,
    sqrt_alpha_prev: c.isLast ? 1 : c.sqrtAlphaPrev,
    sqrt_beta_prev: c.isLast ? 0 : c.sqrtBetaPrev,
    guidance: guidanceScale,
    scaling_factor: scalingFactor,
    clip_lo: clipRange === null ? -Infinity : -clipRange,
    clip_hi: clipRange === null ? Infinity : clipRange,
  };
}

function checkedNoise(z: Float32Array | undefined, n: number, i: number): Float32Array {
  if (!z || z.length !== n) throw new RangeError(`noise for step ${i + 1}: expected ${n} values, got ${z?.length ?? 'none'}`);
  return z;
}

function concat2(a: Float32Array): Float32Array {
  const out = new Float32Array(a.length * 2);
  out.set(a, 0);
  out.set(a, a.length);
  return out;
}
