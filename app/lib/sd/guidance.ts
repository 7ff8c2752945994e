/**
 * Guidance for LCM generation, as diffusers' StableDiffusionPipeline / LatentConsistencyModelPipeline do it:
 * - a UNet distilled with a guidance-scale embedding (its config has time_cond_proj_dim, e.g. LCM-Dreamshaper: 256)
 *   gets timestep_cond = get_guidance_scale_embedding((guidance_scale - 1) · 1000) and runs once per step, no CFG;
 * - otherwise (SD 1.5 + LCM-LoRA) classifier-free guidance when guidance_scale > 1: the UNet runs on
 *   [unconditional, conditional] and eps = eps_u + g · (eps_c - eps_u) (Ho & Salimans 2022, Imagen's formulation).
 */

export type GuidanceMode = { kind: 'none' } | { kind: 'cfg'; scale: number } | { kind: 'embedding'; scale: number; dim: number };

/**
 * Which guidance a UNet gets (diffusers: do_classifier_free_guidance = guidance_scale > 1 and
 * unet.config.time_cond_proj_dim is None). guidanceScale: diffusers' guidance_scale (1 = off).
 */
export function guidanceMode(guidanceScale: number, timeCondProjDim: number | null | undefined): GuidanceMode {
  if (!Number.isFinite(guidanceScale) || guidanceScale < 0) throw new RangeError(`guidance scale must be a finite number >= 0, got ${guidanceScale}`);
  if (timeCondProjDim) return { kind: 'embedding', scale: guidanceScale, dim: timeCondProjDim };
  return guidanceScale > 1 ? { kind: 'cfg', scale: guidanceScale } : { kind: 'none' };
}

/**
 * diffusers get_guidance_scale_embedding(w, embedding_dim) (from VDM, Kingma et al. 2021): for each w,
 * [sin(1000·w·e_k), cos(1000·w·e_k)], e_k = exp(-k·ln(10000)/(half-1)), k < half = dim // 2, zero-padded to an odd
 * dim. Returns float32 [w.length, dim], row-major. In diffusers w = guidance_scale - 1.
 */
export function guidanceScaleEmbedding(w: number[], dim: number): Float32Array {
  if (!Number.isInteger(dim) || dim < 4) throw new RangeError(`embedding dim must be an integer >= 4, got ${dim}`);
  const half = Math.floor(dim / 2);
  const f = Math.fround;
  const lnStep = f(f(Math.log(10000)) / (half - 1));
  const freqs = Array.from({ length: half }, (_, k) => f(Math.exp(f(k * -lnStep))));
  const out = new Float32Array(w.length * dim);
  w.forEach((wi, b) => {
    const x = f(wi * 1000);
    for (let k = 0; k < half; k++) {
      const a = f(x * freqs[k]);
      out[b * dim + k] = Math.sin(a);
      out[b * dim + half + k] = Math.cos(a);
    }
  });
  return out;
}

/** eps = eps_u + scale · (eps_c - eps_u) for a model output laid out [uncond batch; cond batch] (length 2n). */
export function combineCfg(modelOutput: Float32Array, scale: number): Float32Array {
  const n = modelOutput.length / 2;
  if (!Number.isInteger(n)) throw new RangeError('CFG model output must hold the unconditional and conditional halves');
  const out = new Float32Array(n);
  const f = Math.fround;
  for (let i = 0; i < n; i++) {
    const u = modelOutput[i];
    out[i] = f(u + f(scale * f(modelOutput[n + i] - u)));
  }
  return out;
}
