/**
 * Which app family a Hub repo is, and which of its files the app needs, from config.json and the file list alone
 * (nothing large is downloaded first). The layout is Optimum's ONNX export as transformers.js reads it
 * (src/models.js, src/utils/dtypes.js): graphs under onnx/, one file per dtype with a suffix:
 *   fp32 `NAME.onnx`, fp16 `NAME_fp16.onnx`, int8 `NAME_quantized.onnx` (dynamic activation quantization).
 * Graph names per family (transformers.js model classes):
 *   clip        CLIPModel / SiglipModel: onnx/vision_model + onnx/text_model (CLIPVisionModelWithProjection /
 *               CLIPTextModelWithProjection; SigLIP's vision/text towers), tokenizer.json, preprocessor_config.json
 *   sam         SamModel (SAM, SlimSAM): onnx/vision_encoder + onnx/prompt_encoder_mask_decoder, preprocessor_config.json
 *   classifier  *ForImageClassification (ViT, DeiT, BEiT, Swin, ConvNeXt, …): onnx/model, preprocessor_config.json,
 *               id2label in config.json
 * q4 / bnb4 / uint8 variants are not offered: the app's execution plan knows fp32, fp16 and int8.
 */
import type { Dtype, ModelFamily } from '../models/manifest-types';

/** One entry of the file list ({base}/api/models/{id}/tree/{rev}: `lfs.oid` is the sha256 of an LFS file). */
export interface HubFileInfo {
  path: string;
  /** Bytes of the file itself (an LFS file's `lfs.size`). */
  size: number;
  /** Lowercase hex SHA-256 when the source gives one (LFS oid). */
  sha256?: string;
}

export const DTYPE_SUFFIX: Record<Dtype, string> = { fp32: '', fp16: '_fp16', int8: '_quantized' };

export interface FamilyLayout {
  family: ModelFamily;
  /** The app's graph role -> the graph's base name under onnx/. */
  graphs: Record<string, string>;
  /** Files every variant needs besides the graphs (role -> path). */
  extra: Record<string, string>;
  /** Optional files read when present (role -> path). */
  optional: Record<string, string>;
}

const CLIP_ARCHS = ['CLIPModel', 'SiglipModel'];
const SAM_ARCHS = ['SamModel'];

/** The architectures the app runs, in words, for messages. */
export const SUPPORTED_ARCHITECTURES = `${[...CLIP_ARCHS, ...SAM_ARCHS].join(', ')}, *ForImageClassification`;

export class HubLayoutError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'HubLayoutError';
  }
}

/**
 * The family and graph layout of `config.architectures` (transformers' config.json). Throws HubLayoutError naming the
 * architecture and the ones the app runs.
 */
export function familyLayout(config: Record<string, unknown>, repo: string): FamilyLayout {
  const archs = Array.isArray(config.architectures) ? (config.architectures as unknown[]).filter((a): a is string => typeof a === 'string') : [];
  if (!archs.length) throw new HubLayoutError(`${repo}: config.json names no architectures (the app runs ${SUPPORTED_ARCHITECTURES})`);
  const arch = archs[0];
  if (CLIP_ARCHS.includes(arch)) {
    return {
      family: 'clip',
      graphs: { image_encoder: 'vision_model', text_encoder: 'text_model' },
      extra: { tokenizer: 'tokenizer.json', preprocessor: 'preprocessor_config.json' },
      optional: { tokenizer_config: 'tokenizer_config.json' },
    };
  }
  if (SAM_ARCHS.includes(arch)) {
    return { family: 'sam', graphs: { image_encoder: 'vision_encoder', prompt_decoder: 'prompt_encoder_mask_decoder' }, extra: { preprocessor: 'preprocessor_config.json' }, optional: {} };
  }
  if (/ForImageClassification$/.test(arch)) {
    return { family: 'classifier', graphs: { model: 'model' }, extra: { preprocessor: 'preprocessor_config.json' }, optional: {} };
  }
  throw new HubLayoutError(`${repo}: architecture ${arch} is not one the app runs (${SUPPORTED_ARCHITECTURES})`);
}

export interface PlannedVariant {
  dtype: Dtype;
  /** role -> file, graphs and the shared extra files. */
  files: Record<string, HubFileInfo>;
}

export interface HubPlan {
  layout: FamilyLayout;
  variants: PlannedVariant[];
  /** Optional files present in the repo (role -> file). */
  optional: Record<string, HubFileInfo>;
}

/**
 * The variants the repo offers in full (every graph of the family in that dtype, plus the extra files). Throws
 * HubLayoutError naming the missing files when none is complete (the fp32 names are listed, with the dtypes tried).
 */
export function planHubFiles(layout: FamilyLayout, files: HubFileInfo[], repo: string): HubPlan {
  const byPath = new Map(files.map((f) => [f.path, f]));
  const missingExtra = Object.values(layout.extra).filter((p) => !byPath.has(p));
  const variants: PlannedVariant[] = [];
  for (const dtype of ['fp32', 'fp16', 'int8'] as Dtype[]) {
    const chosen: Record<string, HubFileInfo> = {};
    let complete = true;
    for (const [role, name] of Object.entries(layout.graphs)) {
      const f = byPath.get(`onnx/${name}${DTYPE_SUFFIX[dtype]}.onnx`);
      if (!f) complete = false;
      else chosen[role] = f;
    }
    if (complete && !missingExtra.length) {
      for (const [role, p] of Object.entries(layout.extra)) chosen[role] = byPath.get(p)!;
      variants.push({ dtype, files: chosen });
    }
  }
  if (!variants.length) {
    const graphs = Object.values(layout.graphs);
    const missingGraphs = graphs.filter((g) => !(['fp32', 'fp16', 'int8'] as Dtype[]).some((d) => byPath.has(`onnx/${g}${DTYPE_SUFFIX[d]}.onnx`)));
    const graphsComplete = (['fp32', 'fp16', 'int8'] as Dtype[]).some((d) => graphs.every((g) => byPath.has(`onnx/${g}${DTYPE_SUFFIX[d]}.onnx`)));
    const parts: string[] = [];
    if (missingGraphs.length) parts.push(missingGraphs.map((g) => `onnx/${g}.onnx`).join(', '));
    else if (!graphsComplete) parts.push(`one dtype with all of ${graphs.map((g) => `onnx/${g}{,_fp16,_quantized}.onnx`).join(' and ')}`);
    if (missingExtra.length) parts.push(missingExtra.join(', '));
    throw new HubLayoutError(`${repo} (${layout.family}) lacks ${parts.join('; ')} (in any of fp32, fp16, int8: ${Object.values(DTYPE_SUFFIX).map((s) => `NAME${s}.onnx`).join(', ')})`);
  }
  const optional: Record<string, HubFileInfo> = {};
  for (const [role, p] of Object.entries(layout.optional)) if (byPath.has(p)) optional[role] = byPath.get(p)!;
  return { layout, variants, optional };
}

/** Parse the Hub API's tree listing; directories are dropped. Throws HubLayoutError on a shape it does not know. */
export function parseHubTree(json: unknown, repo: string): HubFileInfo[] {
  if (!Array.isArray(json)) throw new HubLayoutError(`${repo}: the file list is not a JSON array`);
  const out: HubFileInfo[] = [];
  for (const e of json as Record<string, unknown>[]) {
    if (!e || typeof e !== 'object' || e.type === 'directory') continue;
    const path = typeof e.path === 'string' ? e.path : typeof e.rfilename === 'string' ? e.rfilename : null;
    if (!path) throw new HubLayoutError(`${repo}: a file list entry has no path`);
    const lfs = e.lfs as { oid?: unknown; size?: unknown; sha256?: unknown } | undefined;
    const size = Number(lfs?.size ?? e.size);
    if (!Number.isFinite(size) || size < 0) throw new HubLayoutError(`${repo}: ${path} has no size in the file list`);
    const oid = typeof lfs?.oid === 'string' ? lfs.oid.replace(/^sha256:/, '') : typeof lfs?.sha256 === 'string' ? lfs.sha256 : undefined;
    out.push({ path, size, sha256: oid && /^[0-9a-f]{64}$/.test(oid) ? oid : undefined });
  }
  return out;
}
