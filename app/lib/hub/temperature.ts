/**
 * How a Hub CLIP-family model turns cosine similarities into probabilities, as its architecture does in transformers:
 *   CLIPModel   logits = exp(logit_scale) · cos(image, text); probabilities = softmax over the labels (sum to 1)
 *               (transformers CLIPModel.forward: logits_per_image; transformers.js zero-shot pipeline: softmax)
 *   SiglipModel logits = exp(logit_scale) · cos + logit_bias; probabilities = sigmoid per label, independent, they do
 *               not sum to 1 (SiglipModel.forward; the SigLIP paper's pairwise sigmoid loss; transformers.js: sigmoid)
 * logit_scale and logit_bias are learned: they live in the weights (model.safetensors), not in config.json, which at
 * most holds CLIP's initial value (logit_scale_init_value = 2.6592, exp 14.3; openai/clip-vit-base-patch32 learned
 * exp 100). Without the learned values the scores use the config's (or transformers' initial) values, which keep the
 * ranking (both maps are monotonic in the cosine) but not the probabilities: the entry then carries a note saying so.
 */

import type { ZeroShotScoring } from '../clip/zero-shot';

export type { ZeroShotScoring };

/** The learned temperature read from the weights: exp(logit_scale), and logit_bias for SigLIP. */
export interface LearnedTemperature {
  logitScale: number;
  logitBias?: number;
}

/** What reading the weights gave: the learned values, or why there are none (shown in the fallback note). */
export type TemperatureLookup = { learned: LearnedTemperature; from: string } | { unavailable: string };

/** The note shown next to scores computed without the learned temperature (UI, CLI sidecar). */
export const TEMPERATURE_FALLBACK_NOTE = 'temperature from config.json (learned logit_scale not available in this repo): ranking exact, probabilities approximate';

/** The scoring rule of an architecture (config.architectures[0]): SigLIP's are per-label sigmoids. */
export function zeroShotScoring(architecture: string): ZeroShotScoring {
  return /^Siglip/.test(architecture) ? 'sigmoid' : 'softmax';
}

/** The scoring keys of a Hub CLIP-family entry's config (read by app/lib/clip/engine.ts). */
export interface ClipScoringConfig {
  scoring: ZeroShotScoring;
  /** exp(logit_scale): logits = logit_scale · cosine (+ logit_bias). */
  logit_scale: number;
  logit_bias: number;
  /** Where logit_scale came from: 'weights' (model.safetensors) or 'config' (config.json / transformers' init). */
  logit_scale_source: 'weights' | 'config';
  /** Set when the learned values were not available: TEMPERATURE_FALLBACK_NOTE and the reason. */
  temperature_note?: string;
}

/**
 * The scoring config of a CLIP-family architecture from config.json and what the weights gave. Without learned
 * values: CLIP uses exp(config.logit_scale_init_value) (transformers' CLIPConfig default 2.6592 when absent); SigLIP
 * has no such key (SiglipConfig), so transformers' initial values are used (logit_scale 0 → 1, logit_bias 0).
 */
export function clipScoringConfig(architecture: string, config: Record<string, unknown>, found: TemperatureLookup): ClipScoringConfig {
  const scoring = zeroShotScoring(architecture);
  if ('learned' in found) {
    return { scoring, logit_scale: found.learned.logitScale, logit_bias: scoring === 'sigmoid' ? found.learned.logitBias ?? 0 : 0, logit_scale_source: 'weights' };
  }
  const init = typeof config.logit_scale_init_value === 'number' && Number.isFinite(config.logit_scale_init_value) ? config.logit_scale_init_value : scoring === 'sigmoid' ? 0 : 2.6592;
  return {
    scoring,
    logit_scale: Math.exp(init),
    logit_bias: 0,
    logit_scale_source: 'config',
    temperature_note: `${TEMPERATURE_FALLBACK_NOTE}${scoring === 'sigmoid' ? '; SigLIP: logit_scale and logit_bias at their initial values (1, 0)' : ''} (${found.unavailable})`,
  };
}
