/**
 * A Hub repo as the app's ModelEntry (lib/models/manifest-types.ts), so the existing download, cache, Verify, delete,
 * engines and views run it: graphs and extra files per dtype with their sha256, preprocessing from
 * preprocessor_config.json, labels from config.json's id2label, and each family's config keys.
 */
import type { Dtype, ModelEntry, ModelFile, ModelVariant, Preprocessing } from '../models/manifest-types';
import type { HubFileInfo, HubPlan } from './layout';
import { HubLayoutError } from './layout';
import { formatHubRef, hubRepoUrl, type HubRef } from './ref';
import { clipScoringConfig, type TemperatureLookup } from './temperature';

type Json = Record<string, unknown>;

/** Where a Hub model came from, kept with its entry (the engines read files through the 'hf' model source). */
export interface HubOrigin {
  /** The Hub's base URL. */
  base: string;
  repo: string;
  /** The revision the user asked for ('main', a tag, …). */
  requested: string;
  /** The commit its files are read at (the API's sha), or the requested revision when the source gives none. */
  revision: string;
  /** config.architectures[0]. */
  architecture: string;
}

export type HubModelEntry = ModelEntry & { hub: HubOrigin };

/** The sha256 a file is pinned to: the source's LFS oid, else the hash of the bytes read when the model was added. */
export type PinnedHashes = Record<string, string>;

const TASK = { clip: 'zero-shot-classification', sam: 'promptable-segmentation', classifier: 'image-classification', sd: 'text-to-image' } as const;

function num(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}

/** [height, width] of a transformers `size` / `crop_size` ({height,width} | {shortest_edge} | {longest_edge} | number). */
function sizeOf(v: unknown): [number, number] | undefined {
  if (typeof v === 'number') return [v, v];
  if (v && typeof v === 'object') {
    const o = v as Json;
    if (num(o.height) && num(o.width)) return [o.height as number, o.width as number];
    const e = num(o.shortest_edge) ?? num(o.longest_edge);
    if (e) return [e, e];
  }
  return undefined;
}

/**
 * Preprocessing of an image processor config (transformers' BaseImageProcessor keys): the tensor size is crop_size
 * when do_center_crop, else size; PIL resample 2 = bilinear, 3 = bicubic (others are refused); mean/std only when
 * do_normalize. The app resizes straight to that size (no aspect-preserving resize + crop): identical for square
 * images, which is what the fixtures and X-rays mostly are (README, "Models from the Hub").
 */
export function preprocessingFromConfig(pp: Json, repo: string): Preprocessing {
  const crop = pp.do_center_crop === true ? sizeOf(pp.crop_size) : undefined;
  const size = crop ?? sizeOf(pp.size);
  if (!size) throw new HubLayoutError(`${repo}: preprocessor_config.json gives no image size (size / crop_size)`);
  const resample = pp.resample ?? 2;
  if (resample !== 2 && resample !== 3) throw new HubLayoutError(`${repo}: preprocessor_config.json asks for PIL resample ${String(resample)}; the app resizes bilinear (2) or bicubic (3)`);
  const rescale = num(pp.rescale_factor) ?? 1 / 255;
  if (pp.do_rescale !== false && Math.abs(rescale - 1 / 255) > 1e-9) throw new HubLayoutError(`${repo}: preprocessor_config.json rescales by ${rescale}; the app scales pixels by 1/255`);
  const normalize = pp.do_normalize !== false;
  const triple = (v: unknown, d: number): [number, number, number] => (Array.isArray(v) && v.length === 3 ? (v.map(Number) as [number, number, number]) : [d, d, d]);
  return {
    size,
    resize: resample === 3 ? 'bicubic' : 'bilinear',
    mean: normalize ? triple(pp.image_mean, 0) : [0, 0, 0],
    std: normalize ? triple(pp.image_std, 1) : [1, 1, 1],
    layout: 'NCHW',
  };
}

/** The id of a token (a string or {content}) in tokenizer.json's added_tokens or model vocab. */
export function tokenId(tokenizerJson: Json, token: unknown): number | undefined {
  const content = typeof token === 'string' ? token : token && typeof token === 'object' ? (token as Json).content : undefined;
  if (typeof content !== 'string') return undefined;
  const added = (tokenizerJson.added_tokens as { id: number; content: string }[] | undefined)?.find((t) => t.content === content);
  if (added) return added.id;
  const vocab = (tokenizerJson.model as Json | undefined)?.vocab;
  if (vocab && !Array.isArray(vocab) && typeof vocab === 'object') return num((vocab as Json)[content]);
  return undefined;
}

export interface HubJsonFiles {
  config: Json;
  preprocessor: Json;
  tokenizer?: Json;
  tokenizerConfig?: Json;
  /** CLIP family: the learned logit_scale / logit_bias read from model.safetensors, or why not (services/hub.ts). */
  temperature?: TemperatureLookup;
}

function familyConfig(plan: HubPlan, j: HubJsonFiles, pre: Preprocessing, repo: string): { config: Json; labels?: string[] } {
  const { config } = j;
  const arch = (config.architectures as string[])[0];
  if (plan.layout.family === 'clip') {
    const text = (config.text_config ?? {}) as Json;
    const context = num(text.max_position_embeddings) ?? (arch === 'SiglipModel' ? 64 : 77);
    const pad = (j.tokenizer && j.tokenizerConfig && tokenId(j.tokenizer, j.tokenizerConfig.pad_token)) ?? num(text.pad_token_id) ?? 0;
    // The learned logit scale (and SigLIP's bias) live in the weights, not in the towers' graphs nor in config.json.
    const scoring = clipScoringConfig(arch, config, j.temperature ?? { unavailable: 'no model.safetensors in this repo' });
    return { config: { context_length: context, pad_token_id: pad, ...scoring, architecture: arch } };
  }
  if (plan.layout.family === 'sam') {
    const pe = (config.prompt_encoder_config ?? {}) as Json;
    const emb = num(pe.image_embedding_size) ?? 64;
    const maskSize = 4 * emb;
    return {
      config: { layout: 'transformers.js', image_size: pre.size[0], embedding_size: emb, mask_size: maskSize, resize: 'longest-side', pad: 'bottom-right', multimask_output: true, num_masks: 3, append_padding_point: 'always' },
    };
  }
  const id2label = config.id2label as Record<string, string> | undefined;
  if (!id2label || !Object.keys(id2label).length) throw new HubLayoutError(`${repo}: config.json has no id2label (the classifier's class names)`);
  const labels = Object.entries(id2label)
    .sort(([a], [b]) => Number(a) - Number(b))
    .map(([, v]) => String(v));
  const vision = (config.vision_config ?? config) as Json;
  return { config: { patch_size: num(vision.patch_size), architecture: arch }, labels };
}

/**
 * The ModelEntry of a planned Hub repo. `pinned` gives the sha256 of files the source did not hash (no LFS oid);
 * a file with neither is refused (HubLayoutError naming it). `license` comes from the repo card when known.
 */
export function hubModelEntry(ref: HubRef, origin: HubOrigin, plan: HubPlan, json: HubJsonFiles, pinned: PinnedHashes, license?: string): HubModelEntry {
  const pre = preprocessingFromConfig(json.preprocessor, ref.repo);
  const fileOf = (role: string, f: HubFileInfo): ModelFile => {
    const sha256 = f.sha256 ?? pinned[f.path];
    if (!sha256) throw new HubLayoutError(`${ref.repo}: no sha256 for ${f.path} (the source gives no LFS oid and it was not read when the model was added)`);
    return { role, path: f.path, bytes: f.size, sha256 };
  };
  const variants: Partial<Record<Dtype, ModelVariant>> = {};
  for (const v of plan.variants) {
    const files = Object.entries(v.files).map(([role, f]) => fileOf(role, f));
    for (const [role, f] of Object.entries(plan.optional)) files.push(fileOf(role, f));
    variants[v.dtype] = { dtype: v.dtype, files, ...(v.dtype === 'int8' ? { activation_quantization: 'dynamic' as const } : {}) };
  }
  const { config, labels } = familyConfig(plan, json, pre, ref.repo);
  const url = hubRepoUrl(ref);
  return {
    id: formatHubRef({ repo: ref.repo, revision: origin.requested }),
    name: `${ref.repo}${origin.requested === 'main' ? '' : `@${origin.requested}`}`,
    family: plan.layout.family,
    task: TASK[plan.layout.family],
    weights: 'external',
    license: license ?? 'unknown: see the repo card',
    source: `${url} (commit ${origin.revision})`,
    variants,
    preprocessing: pre,
    ...(labels ? { labels } : {}),
    config,
    card: {
      summary: `External model ${ref.repo} (${origin.architecture}) from ${ref.base}: weights not checked by this project.`,
      limitations: 'Not evaluated by this project on chest X-rays; check its licence, training data and intended use on the repo card.',
    },
    hub: origin,
  };
}
