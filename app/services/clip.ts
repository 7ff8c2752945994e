/**
 * Zero-shot labelling of one image by a CLIP-family model from prompt sets (app/lib/clip/engine.ts), the operation
 * behind the Viewer's zero-shot panel (app/store/clip.ts) and the batch's auto_label, and the reader of a
 * prompts file in the manifest's default_prompts format (`npm run label -- --prompts FILE.json`).
 */
import { zeroShotRule, type ClipEngine } from '../lib/clip/engine';
import type { ModelEntry } from '../lib/models/manifest-types';
import type { PromptSet, ZeroShotOutput } from '../lib/clip/types';
import type { Raster } from '../lib/imaging/raster';
import type { RuntimeReport } from '../lib/runtime/report';
import type { ModelRequest } from '../lib/runtime/outcome';
import type { InferenceService } from './inference';

/** Zero-shot labels of one raster from `sets` (≥ 2 labels with a prompt each). Throws an Error naming the cause. */
export async function zeroShotImage(inference: InferenceService, req: ModelRequest, raster: Raster, sets: PromptSet[]): Promise<{ result: ZeroShotOutput; report: RuntimeReport }> {
  const out = await inference.run(req, (e: ClipEngine) => e.zeroShot(req, [raster], sets));
  return { result: out.results[0], report: out.report };
}

/**
 * Prompt sets from the text of a prompts file: a JSON object `{LABEL: [prompt, ...]}` (the manifest's
 * config.default_prompts format), at least two labels, each a non-empty name with at least one non-empty prompt
 * string. Throws an Error saying what is wrong and where (`label "X": prompt 2 is a number, not a string`).
 */
export function parsePromptSets(text: string, source = 'the prompts file'): PromptSet[] {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (e) {
    throw new Error(`${source} is not valid JSON (${e instanceof Error ? e.message : String(e)}); expected {"LABEL": ["prompt", ...], ...}`);
  }
  if (!data || typeof data !== 'object' || Array.isArray(data)) {
    throw new Error(`${source} must be a JSON object {"LABEL": ["prompt", ...], ...}, not ${Array.isArray(data) ? 'an array' : data === null ? 'null' : `a ${typeof data}`}`);
  }
  const sets: PromptSet[] = [];
  for (const [label, prompts] of Object.entries(data as Record<string, unknown>)) {
    if (!label.trim()) throw new Error(`${source}: a label is empty; every key must name a label`);
    if (!Array.isArray(prompts)) throw new Error(`${source}: label "${label}" must map to a list of prompt strings, not ${prompts === null ? 'null' : `a ${typeof prompts}`}`);
    if (!prompts.length) throw new Error(`${source}: label "${label}" has no prompts`);
    prompts.forEach((p, i) => {
      if (typeof p !== 'string') throw new Error(`${source}: label "${label}": prompt ${i + 1} is ${p === null ? 'null' : `a ${typeof p}`}, not a string`);
      if (!p.trim()) throw new Error(`${source}: label "${label}": prompt ${i + 1} is empty`);
    });
    if (sets.some((s) => s.label.trim() === label.trim())) throw new Error(`${source}: label "${label.trim()}" appears twice`);
    sets.push({ label: label.trim(), prompts: prompts.map((p: string) => p.trim()) });
  }
  if (sets.length < 2) throw new Error(`${source} has ${sets.length} label${sets.length === 1 ? '' : 's'}; zero-shot labelling needs at least two`);
  return sets;
}

/** How a CLIP-family model's zero-shot probabilities were made, for a results sidecar (labeled_dataset.meta.json). */
export interface ZeroShotScoringMeta {
  /** 'softmax' over the labels (they sum to 1) or 'sigmoid' per label (SigLIP: independent, no sum to 1). */
  zero_shot_scoring: 'softmax' | 'sigmoid';
  /** exp(logit_scale), the multiplier of the cosine. */
  zero_shot_logit_scale: number;
  zero_shot_logit_bias: number;
  /** 'weights' (learned, from model.safetensors), 'config' (config.json's initial value) or 'manifest' (built-in). */
  zero_shot_temperature_source: string;
  /** Set when the learned temperature was not available: ranking exact, probabilities approximate. */
  zero_shot_temperature_note?: string;
}

/** The scoring rule and temperature of `entry` (app/lib/clip/engine.ts zeroShotRule, app/lib/hub/temperature.ts). */
export function zeroShotScoringMeta(entry: ModelEntry): ZeroShotScoringMeta {
  const { scale, scoring, logitBias } = zeroShotRule(entry);
  const note = entry.config?.temperature_note;
  const source = entry.config?.logit_scale_source;
  return {
    zero_shot_scoring: scoring,
    zero_shot_logit_scale: scale,
    zero_shot_logit_bias: logitBias,
    zero_shot_temperature_source: typeof source === 'string' ? source : 'manifest',
    ...(typeof note === 'string' ? { zero_shot_temperature_note: note } : {}),
  };
}

/**
 * A labeled_dataset.meta.json with the zero-shot scoring of `clip` added when the CSV holds zero-shot columns
 * (meta.zero_shot_labels non-empty): the app's batch export and `npm run label` both write it through here.
 */
export function withZeroShotScoring<M extends { zero_shot_labels: string[] }>(meta: M, clip: ModelEntry | undefined): M & Partial<ZeroShotScoringMeta> {
  return clip && meta.zero_shot_labels.length ? { ...meta, ...zeroShotScoringMeta(clip) } : meta;
}
