/**
 * diffusers' LCMScheduler (Latent Consistency Models, Luo et al. 2023, arXiv:2310.04378) as pure math:
 * setTimesteps() and step() follow diffusers/schedulers/scheduling_lcm.py (diffusers 0.42) line for line, with the
 * config read from the model's scheduler_config.json. Tested against diffusers in tests/unit/sd/lcm-scheduler.test.ts
 * (goldens: tests/unit/fixtures/gen_lcm_goldens.py).
 *
 * Arithmetic: the beta schedule and alphas_cumprod are float32 as in PyTorch (cumprod accumulates in float64 like
 * ATen's CPU kernel); step() works per element in float64 and stores float32, so it agrees with PyTorch's float32
 * ops to a few ulps.
 */
import { TorchGenerator } from './torch-random';

export type PredictionType = 'epsilon' | 'sample' | 'v_prediction';
export type BetaSchedule = 'linear' | 'scaled_linear' | 'squaredcos_cap_v2';

/** The keys of diffusers' LCMScheduler config (scheduler_config.json) this implementation reads. */
export interface LcmSchedulerConfig {
  num_train_timesteps: number;
  beta_start: number;
  beta_end: number;
  beta_schedule: BetaSchedule;
  trained_betas: number[] | null;
  original_inference_steps: number;
  clip_sample: boolean;
  clip_sample_range: number;
  set_alpha_to_one: boolean;
  steps_offset: number;
  prediction_type: PredictionType;
  thresholding: boolean;
  dynamic_thresholding_ratio: number;
  sample_max_value: number;
  /** Stored by diffusers but not read by LCMScheduler.set_timesteps (its schedule is always LCM's own). */
  timestep_spacing: string;
  timestep_scaling: number;
  rescale_betas_zero_snr: boolean;
}

/** LCMScheduler's __init__ defaults (diffusers 0.42). */
export const LCM_DEFAULTS: LcmSchedulerConfig = {
  num_train_timesteps: 1000,
  beta_start: 0.00085,
  beta_end: 0.012,
  beta_schedule: 'scaled_linear',
  trained_betas: null,
  original_inference_steps: 50,
  clip_sample: false,
  clip_sample_range: 1.0,
  set_alpha_to_one: true,
  steps_offset: 0,
  prediction_type: 'epsilon',
  thresholding: false,
  dynamic_thresholding_ratio: 0.995,
  sample_max_value: 1.0,
  timestep_spacing: 'leading',
  timestep_scaling: 10.0,
  rescale_betas_zero_snr: false,
};

/**
 * Read a scheduler_config.json object (diffusers layout; `_class_name`, `_diffusers_version` ignored) into a full
 * config with LCMScheduler's defaults. Throws on values this scheduler does not implement, naming the key.
 */
export function parseLcmSchedulerConfig(json: unknown): LcmSchedulerConfig {
  if (!json || typeof json !== 'object') throw new Error('scheduler_config.json: not a JSON object');
  const raw = json as Record<string, unknown>;
  const cls = raw._class_name;
  if (cls !== undefined && cls !== 'LCMScheduler') {
    // diffusers' from_config does the same when an SD scheduler config is loaded into LCMScheduler
    // (LCM-LoRA pipelines): only the shared keys matter. We accept it but say nothing: keys are validated below.
  }
  const cfg: LcmSchedulerConfig = { ...LCM_DEFAULTS };
  for (const k of Object.keys(LCM_DEFAULTS) as (keyof LcmSchedulerConfig)[]) {
    if (raw[k] !== undefined && raw[k] !== null) (cfg as unknown as Record<string, unknown>)[k] = raw[k];
  }
  if (raw.trained_betas === null) cfg.trained_betas = null;
  const intKeys = ['num_train_timesteps', 'original_inference_steps', 'steps_offset'] as const;
  for (const k of intKeys) if (!Number.isInteger(cfg[k]) || cfg[k] < 0) throw new Error(`scheduler_config.json: ${k} must be a non-negative integer, got ${cfg[k]}`);
  if (cfg.num_train_timesteps < 1) throw new Error('scheduler_config.json: num_train_timesteps must be >= 1');
  if (!['linear', 'scaled_linear', 'squaredcos_cap_v2'].includes(cfg.beta_schedule) && !cfg.trained_betas) {
    throw new Error(`scheduler_config.json: beta_schedule '${cfg.beta_schedule}' is not implemented by LCMScheduler`);
  }
  if (!['epsilon', 'sample', 'v_prediction'].includes(cfg.prediction_type)) {
    throw new Error(`scheduler_config.json: prediction_type '${cfg.prediction_type}' must be one of epsilon, sample, v_prediction`);
  }
  if (cfg.trained_betas && cfg.trained_betas.length !== cfg.num_train_timesteps) {
    throw new Error(`scheduler_config.json: trained_betas has ${cfg.trained_betas.length} values, num_train_timesteps is ${cfg.num_train_timesteps}`);
  }
  return cfg;
}

const f = Math.fround;

/** torch.linspace(start, end, steps, dtype=float32) on CPU: float32 step, first half from start, second from end. */
export function linspaceF32(start: number, end: number, steps: number): Float32Array {
  const out = new Float32Array(steps);
  if (steps === 1) {
    out[0] = start;
    return out;
  }
  const s0 = f(start);
  const s1 = f(end);
  const step = f((s1 - s0) / (steps - 1));
  const half = Math.floor(steps / 2);
  for (let i = 0; i < steps; i++) out[i] = i < half ? f(s0 + f(step * i)) : f(s1 - f(step * (steps - i - 1)));
  return out;
}

function betasForAlphaBarCosine(n: number, maxBeta = 0.999): Float32Array {
  const abar = (t: number) => Math.cos(((t + 0.008) / 1.008) * Math.PI / 2) ** 2;
  const b = new Float32Array(n);
  for (let i = 0; i < n; i++) b[i] = Math.min(1 - abar((i + 1) / n) / abar(i / n), maxBeta);
  return b;
}

/** diffusers' rescale_zero_terminal_snr (Lin et al. 2023, arXiv:2305.08891, Algorithm 1), float32. */
function rescaleZeroTerminalSnr(betas: Float32Array): Float32Array {
  const n = betas.length;
  const acp = cumprodF32(betas.map((b) => f(1 - b)));
  const sq = acp.map((a) => f(Math.sqrt(a)));
  const a0 = sq[0];
  const aT = sq[n - 1];
  for (let i = 0; i < n; i++) sq[i] = f(sq[i] - aT);
  const scale = f(a0 / f(a0 - aT));
  for (let i = 0; i < n; i++) sq[i] = f(sq[i] * scale);
  const abar = sq.map((x) => f(x * x));
  const out = new Float32Array(n);
  out[0] = f(1 - abar[0]);
  for (let i = 1; i < n; i++) out[i] = f(1 - f(abar[i] / abar[i - 1]));
  return out;
}

/** torch.cumprod on a float32 CPU tensor: accumulates in float64 (ATen's acc_type), stores float32. */
function cumprodF32(a: Float32Array): Float32Array {
  const out = new Float32Array(a.length);
  let acc = 1;
  for (let i = 0; i < a.length; i++) {
    acc *= a[i];
    out[i] = acc;
  }
  return out;
}

/** The scalars of one LCM step, shared by the TypeScript step() and the GPU step graph (lcm-step-graph.ts). */
export interface LcmStepCoefficients {
  timestep: number;
  prevTimestep: number;
  /** alpha_prod_t, alpha_prod_t_prev (cumulative products of 1 - beta). */
  alphaProdT: number;
  alphaProdTPrev: number;
  cSkip: number;
  cOut: number;
  /**
   * x0 = (xA · sample - xB · model_output) / xC, the same float32 operations as diffusers for each
   * prediction_type (epsilon: 1, √(1-ᾱ), √ᾱ; sample: 0, -1, 1; v_prediction: √ᾱ, √(1-ᾱ), 1).
   */
  xA: number;
  xB: number;
  xC: number;
  /** prev_sample = sqrtAlphaPrev * denoised + sqrtBetaPrev * noise on every step but the last. */
  sqrtAlphaPrev: number;
  sqrtBetaPrev: number;
  /** Last step of the schedule: no noise, prev_sample = denoised. */
  isLast: boolean;
}

export interface LcmStepOutput {
  prevSample: Float32Array;
  denoised: Float32Array;
}

export class LCMScheduler {
  readonly config: LcmSchedulerConfig;
  readonly betas: Float32Array;
  readonly alphasCumprod: Float32Array;
  readonly finalAlphaCumprod: number;
  /** LCMScheduler.init_noise_sigma: the initial latents are plain N(0, I). */
  readonly initNoiseSigma = 1.0;
  timesteps: number[] = [];
  numInferenceSteps: number | null = null;
  private stepIndex: number | null = null;

  constructor(config: Partial<LcmSchedulerConfig> | unknown = {}) {
    this.config = parseLcmSchedulerConfig(config ?? {});
    const c = this.config;
    let betas: Float32Array;
    if (c.trained_betas) betas = Float32Array.from(c.trained_betas);
    else if (c.beta_schedule === 'linear') betas = linspaceF32(c.beta_start, c.beta_end, c.num_train_timesteps);
    else if (c.beta_schedule === 'scaled_linear') betas = linspaceF32(Math.sqrt(c.beta_start), Math.sqrt(c.beta_end), c.num_train_timesteps).map((b) => f(b * b));
    else betas = betasForAlphaBarCosine(c.num_train_timesteps);
    if (c.rescale_betas_zero_snr) betas = rescaleZeroTerminalSnr(betas);
    this.betas = betas;
    this.alphasCumprod = cumprodF32(betas.map((b) => f(1 - b)));
    this.finalAlphaCumprod = c.set_alpha_to_one ? 1 : this.alphasCumprod[0];
    this.timesteps = Array.from({ length: c.num_train_timesteps }, (_, i) => c.num_train_timesteps - 1 - i);
  }

  /**
   * LCMScheduler.set_timesteps(num_inference_steps, original_inference_steps, strength): the LCM training schedule
   * k·[1..original_steps·strength] - 1 (k = num_train_timesteps // original_steps), reversed, sampled at
   * floor(linspace(0, len, num_inference_steps, endpoint=False)). Throws with diffusers' conditions.
   */
  setTimesteps(numInferenceSteps: number, originalInferenceSteps?: number, strength = 1.0): number[] {
    const c = this.config;
    const originalSteps = originalInferenceSteps ?? c.original_inference_steps;
    if (!Number.isInteger(numInferenceSteps) || numInferenceSteps < 1) throw new RangeError(`num_inference_steps must be a positive integer, got ${numInferenceSteps}`);
    if (originalSteps > c.num_train_timesteps) throw new RangeError(`original_steps ${originalSteps} cannot be larger than num_train_timesteps ${c.num_train_timesteps}`);
    if (numInferenceSteps > c.num_train_timesteps) throw new RangeError(`num_inference_steps ${numInferenceSteps} cannot be larger than num_train_timesteps ${c.num_train_timesteps}`);
    const k = Math.floor(c.num_train_timesteps / originalSteps);
    const count = Math.floor(originalSteps * strength);
    const origin: number[] = [];
    for (let i = 1; i <= count; i++) origin.push(i * k - 1);
    const skipping = Math.floor(origin.length / numInferenceSteps);
    if (skipping < 1) throw new RangeError(`original_steps x strength (${originalSteps} x ${strength}) is smaller than num_inference_steps ${numInferenceSteps}`);
    if (numInferenceSteps > originalSteps) throw new RangeError(`num_inference_steps ${numInferenceSteps} cannot be larger than original_inference_steps ${originalSteps}`);
    origin.reverse();
    const stepSize = origin.length / numInferenceSteps; // numpy linspace(0, len, n, endpoint=False): i * (len / n)
    this.timesteps = Array.from({ length: numInferenceSteps }, (_, i) => origin[Math.floor(i * stepSize)]);
    this.numInferenceSteps = numInferenceSteps;
    this.stepIndex = null;
    return [...this.timesteps];
  }

  /** get_scalings_for_boundary_condition_discrete(t): c_skip = σ²/((t·s)² + σ²), c_out = t·s/√((t·s)² + σ²), σ = 0.5. */
  boundaryScalings(timestep: number): { cSkip: number; cOut: number } {
    const sigmaData = 0.5;
    const s = timestep * this.config.timestep_scaling;
    return { cSkip: sigmaData ** 2 / (s ** 2 + sigmaData ** 2), cOut: s / Math.sqrt(s ** 2 + sigmaData ** 2) };
  }

  /** scale_model_input: the identity for LCM. */
  scaleModelInput(sample: Float32Array): Float32Array {
    return sample;
  }

  /** The scalars of the step at schedule index `index` (timestep this.timesteps[index]). */
  coefficients(index: number): LcmStepCoefficients {
    if (this.numInferenceSteps === null) throw new Error("LCMScheduler: call setTimesteps() before step()");
    if (index < 0 || index >= this.timesteps.length) throw new RangeError(`step index ${index} outside the ${this.timesteps.length}-step schedule`);
    const t = this.timesteps[index];
    const isLast = index + 1 >= this.timesteps.length;
    const prevT = isLast ? t : this.timesteps[index + 1];
    const aT = this.alphasCumprod[t];
    const aPrev = prevT >= 0 ? this.alphasCumprod[prevT] : this.finalAlphaCumprod;
    const sa = f(Math.sqrt(aT));
    const sb = f(Math.sqrt(f(1 - aT)));
    const { cSkip, cOut } = this.boundaryScalings(t);
    const [xA, xB, xC] = this.config.prediction_type === 'epsilon' ? [1, sb, sa] : this.config.prediction_type === 'sample' ? [0, -1, 1] : [sa, sb, 1];
    return {
      timestep: t,
      prevTimestep: prevT,
      alphaProdT: aT,
      alphaProdTPrev: aPrev,
      // PyTorch multiplies a float32 tensor by a Python float in float32
      cSkip: f(cSkip),
      cOut: f(cOut),
      xA,
      xB,
      xC,
      sqrtAlphaPrev: f(Math.sqrt(aPrev)),
      sqrtBetaPrev: f(Math.sqrt(f(1 - aPrev))),
      isLast,
    };
  }

  /** Index of `timestep` in the schedule (diffusers' index_for_timestep: the first match; the second if repeated). */
  indexForTimestep(timestep: number): number {
    const hits = this.timesteps.flatMap((t, i) => (t === timestep ? [i] : []));
    if (hits.length === 0) throw new RangeError(`timestep ${timestep} is not in the schedule [${this.timesteps.join(', ')}]`);
    return hits.length > 1 ? hits[1] : hits[0];
  }

  /**
   * LCMScheduler.step(model_output, timestep, sample, generator): x0 from the model output (prediction_type),
   * clip_sample if configured, denoised = c_out·x0 + c_skip·sample, and on every step but the last
   * prev_sample = √ᾱ_prev·denoised + √(1-ᾱ_prev)·z with z ~ N(0, I) drawn from `noise` (a TorchGenerator, drawn
   * like diffusers' randn_tensor(model_output.shape, generator), or the values themselves).
   * Arrays are NCHW float32 of equal length. The step index advances as in diffusers.
   */
  step(modelOutput: Float32Array, timestep: number, sample: Float32Array, noise?: TorchGenerator | Float32Array): LcmStepOutput {
    if (this.numInferenceSteps === null) throw new Error("LCMScheduler: call setTimesteps() before step()");
    if (modelOutput.length !== sample.length) throw new RangeError(`model_output has ${modelOutput.length} values, sample ${sample.length}`);
    if (this.config.thresholding) throw new Error('LCMScheduler: thresholding=true (dynamic thresholding) is not implemented; SD latents never use it');
    if (this.stepIndex === null) this.stepIndex = this.indexForTimestep(timestep);
    const c = this.coefficients(this.stepIndex);
    const out = applyLcmStep(c, modelOutput, sample, this.config.clip_sample ? this.config.clip_sample_range : null, noise);
    this.stepIndex++;
    return out;
  }
}

/** The step's element-wise math for given coefficients (see LCMScheduler.step). */
export function applyLcmStep(
  c: LcmStepCoefficients,
  modelOutput: Float32Array,
  sample: Float32Array,
  clipRange: number | null,
  noise?: TorchGenerator | Float32Array,
): LcmStepOutput {
  const n = sample.length;
  const denoised = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    let x0 = f(f(f(c.xA * sample[i]) - f(c.xB * modelOutput[i])) / c.xC);
    if (clipRange !== null) x0 = Math.min(clipRange, Math.max(-clipRange, x0));
    denoised[i] = f(c.cOut * x0) + f(c.cSkip * sample[i]);
  }
  if (c.isLast) return { prevSample: denoised, denoised };
  let z: Float32Array;
  if (noise instanceof Float32Array) {
    if (noise.length !== n) throw new RangeError(`noise has ${noise.length} values, sample ${n}`);
    z = noise;
  } else if (noise) z = noise.randn(n);
  else throw new Error('LCMScheduler.step: a non-final step needs noise (a TorchGenerator or the values)');
  const prev = new Float32Array(n);
  for (let i = 0; i < n; i++) prev[i] = f(c.sqrtAlphaPrev * denoised[i]) + f(c.sqrtBetaPrev * z[i]);
  return { prevSample: prev, denoised };
}
