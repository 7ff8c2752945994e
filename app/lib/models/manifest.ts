/**
 * Parsing and validation of public/models/manifest.json (shape: manifest-types.ts), and variant choice.
 */
import type { Dtype, Manifest, ModelEntry, ModelFamily, ModelFile, ModelVariant, Preprocessing, WeightsKind } from './manifest-types';
import { unsafePathReason } from './safe-path';

export type * from './manifest-types';

export class ManifestError extends Error {
  /** JSON path of the offending field, e.g. 'models[0].variants.fp32.files[1].sha256'. */
  readonly field: string;
  constructor(field: string, problem: string) {
    super(`Invalid model manifest: ${field} ${problem}`);
    this.name = 'ManifestError';
    this.field = field;
  }
}

const FAMILIES: ModelFamily[] = ['classifier', 'clip', 'sam', 'sd'];
const DTYPES: Dtype[] = ['fp32', 'fp16', 'int8'];
const WEIGHTS: WeightsKind[] = ['trained', 'random-fixture', 'pretrained'];

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
function obj(v: unknown, at: string): Obj {
  if (!isObj(v)) throw new ManifestError(at, `must be an object (got ${v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v})`);
  return v;
}
function str(v: unknown, at: string, { nonEmpty = true } = {}): string {
  if (typeof v !== 'string') throw new ManifestError(at, `must be a string (got ${typeof v})`);
  if (nonEmpty && v.length === 0) throw new ManifestError(at, 'must not be empty');
  return v;
}
function optStr(v: unknown, at: string): string | undefined {
  return v === undefined ? undefined : str(v, at, { nonEmpty: false });
}
function num(v: unknown, at: string, { int = false, min }: { int?: boolean; min?: number } = {}): number {
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new ManifestError(at, `must be a finite number (got ${JSON.stringify(v)})`);
  if (int && !Number.isInteger(v)) throw new ManifestError(at, `must be an integer (got ${v})`);
  if (min !== undefined && v < min) throw new ManifestError(at, `must be ≥ ${min} (got ${v})`);
  return v;
}
function oneOf<T extends string>(v: unknown, allowed: readonly T[], at: string): T {
  if (typeof v !== 'string' || !(allowed as readonly string[]).includes(v)) {
    throw new ManifestError(at, `must be one of ${allowed.map((a) => `'${a}'`).join(', ')} (got ${JSON.stringify(v)})`);
  }
  return v as T;
}
function arr(v: unknown, at: string): unknown[] {
  if (!Array.isArray(v)) throw new ManifestError(at, `must be an array (got ${typeof v})`);
  return v;
}
function sha(v: unknown, at: string): string {
  const s = str(v, at);
  if (!/^[0-9a-f]{64}$/.test(s)) throw new ManifestError(at, `must be a lowercase hex sha256 (64 characters), got '${s.slice(0, 80)}'`);
  return s;
}
function relPath(v: unknown, at: string): string {
  const s = str(v, at);
  // The path becomes the model cache's key: see safe-path.ts for what a hostile pack could otherwise overwrite.
  const why = unsafePathReason(s);
  if (why) throw new ManifestError(at, `must be a relative path inside the model source (got '${s}': ${why})`);
  return s;
}

function parseFile(v: unknown, at: string): ModelFile {
  const o = obj(v, at);
  const f: ModelFile = {
    role: str(o.role, `${at}.role`),
    path: relPath(o.path, `${at}.path`),
    bytes: num(o.bytes, `${at}.bytes`, { int: true, min: 0 }),
    sha256: sha(o.sha256, `${at}.sha256`),
  };
  if (o.external_data !== undefined) {
    f.external_data = arr(o.external_data, `${at}.external_data`).map((e, i) => {
      const eo = obj(e, `${at}.external_data[${i}]`);
      return {
        path: relPath(eo.path, `${at}.external_data[${i}].path`),
        bytes: num(eo.bytes, `${at}.external_data[${i}].bytes`, { int: true, min: 0 }),
        sha256: sha(eo.sha256, `${at}.external_data[${i}].sha256`),
      };
    });
  }
  return f;
}

function parseVariant(v: unknown, at: string, key: string): ModelVariant {
  const o = obj(v, at);
  const dtype = oneOf(o.dtype, DTYPES, `${at}.dtype`);
  if (dtype !== key) throw new ManifestError(`${at}.dtype`, `must equal its key '${key}' (got '${dtype}')`);
  const files = arr(o.files, `${at}.files`).map((f, i) => parseFile(f, `${at}.files[${i}]`));
  if (files.length === 0) throw new ManifestError(`${at}.files`, 'must list at least one file');
  const out: ModelVariant = { dtype, files };
  if (o.parity !== undefined) {
    const p = obj(o.parity, `${at}.parity`);
    out.parity = { max_abs_diff: num(p.max_abs_diff, `${at}.parity.max_abs_diff`), reference: str(p.reference, `${at}.parity.reference`, { nonEmpty: false }), checked_at: str(p.checked_at, `${at}.parity.checked_at`, { nonEmpty: false }) };
  }
  if (o.activation_quantization !== undefined) out.activation_quantization = oneOf(o.activation_quantization, ['dynamic', 'static'] as const, `${at}.activation_quantization`);
  return out;
}

function triple(v: unknown, at: string, positive = false): [number, number, number] {
  const a = arr(v, at);
  if (a.length !== 3) throw new ManifestError(at, `must have 3 values (got ${a.length})`);
  return a.map((x, i) => {
    const n = num(x, `${at}[${i}]`);
    if (positive && n <= 0) throw new ManifestError(`${at}[${i}]`, `must be > 0 (got ${n})`);
    return n;
  }) as [number, number, number];
}

export function parsePreprocessing(v: unknown, at = 'preprocessing'): Preprocessing {
  const o = obj(v, at);
  const size = arr(o.size, `${at}.size`);
  if (size.length !== 2) throw new ManifestError(`${at}.size`, `must be [height, width] (got ${size.length} values)`);
  return {
    size: [num(size[0], `${at}.size[0]`, { int: true, min: 1 }), num(size[1], `${at}.size[1]`, { int: true, min: 1 })],
    resize: oneOf(o.resize, ['bilinear', 'bicubic'] as const, `${at}.resize`),
    mean: triple(o.mean, `${at}.mean`),
    std: triple(o.std, `${at}.std`, true),
    layout: o.layout === undefined ? 'NCHW' : oneOf(o.layout, ['NCHW'] as const, `${at}.layout`),
  };
}

function parseEntry(v: unknown, at: string): ModelEntry {
  const o = obj(v, at);
  const family = oneOf(o.family, FAMILIES, `${at}.family`);
  const variantsObj = obj(o.variants, `${at}.variants`);
  const variants: Partial<Record<Dtype, ModelVariant>> = {};
  for (const [k, val] of Object.entries(variantsObj)) {
    const key = oneOf(k, DTYPES, `${at}.variants key`);
    variants[key] = parseVariant(val, `${at}.variants.${k}`, k);
  }
  if (Object.keys(variants).length === 0) throw new ManifestError(`${at}.variants`, 'must contain at least one dtype');
  const cardObj = obj(o.card, `${at}.card`);
  const entry: ModelEntry = {
    id: str(o.id, `${at}.id`),
    name: str(o.name, `${at}.name`),
    family,
    task: str(o.task, `${at}.task`, { nonEmpty: false }),
    weights: oneOf(o.weights, WEIGHTS, `${at}.weights`),
    license: str(o.license, `${at}.license`, { nonEmpty: false }),
    source: str(o.source, `${at}.source`, { nonEmpty: false }),
    variants,
    card: {
      ...(cardObj as object),
      summary: str(cardObj.summary ?? '', `${at}.card.summary`, { nonEmpty: false }),
    } as ModelEntry['card'],
  };
  if (!/^[a-z0-9][a-z0-9._-]*$/i.test(entry.id)) throw new ManifestError(`${at}.id`, `must be a simple identifier (got '${entry.id}')`);
  if (cardObj.threshold !== undefined) {
    const t = num(cardObj.threshold, `${at}.card.threshold`);
    if (t < 0 || t > 1) throw new ManifestError(`${at}.card.threshold`, `must be in [0, 1] (got ${t})`);
    entry.card.threshold = t;
  }
  if (cardObj.metrics !== undefined) obj(cardObj.metrics, `${at}.card.metrics`);
  if (o.preprocessing !== undefined) entry.preprocessing = parsePreprocessing(o.preprocessing, `${at}.preprocessing`);
  if (o.labels !== undefined) entry.labels = arr(o.labels, `${at}.labels`).map((l, i) => str(l, `${at}.labels[${i}]`));
  if (o.io !== undefined) {
    const io = obj(o.io, `${at}.io`);
    entry.io = {};
    for (const [role, spec] of Object.entries(io)) {
      const s = obj(spec, `${at}.io.${role}`);
      entry.io[role] = {
        inputs: arr(s.inputs, `${at}.io.${role}.inputs`).map((x, i) => str(x, `${at}.io.${role}.inputs[${i}]`)),
        outputs: arr(s.outputs, `${at}.io.${role}.outputs`).map((x, i) => str(x, `${at}.io.${role}.outputs[${i}]`)),
      };
    }
  }
  if (o.config !== undefined) entry.config = obj(o.config, `${at}.config`);
  optStr(o.task, `${at}.task`);
  if (family === 'classifier') {
    if (!entry.preprocessing) throw new ManifestError(`${at}.preprocessing`, 'is required for a classifier');
    if (!entry.labels || entry.labels.length < 2) throw new ManifestError(`${at}.labels`, 'must list at least two class labels for a classifier');
  }
  if (family === 'clip') {
    const c = entry.config ?? {};
    if (c.logit_scale !== undefined) num(c.logit_scale, `${at}.config.logit_scale`, { min: 0 });
    if (c.context_length !== undefined) num(c.context_length, `${at}.config.context_length`, { int: true, min: 1 });
  }
  return entry;
}

/** Validate untrusted JSON as a Manifest; throws ManifestError naming the bad field. */
export function parseManifest(json: unknown): Manifest {
  const o = obj(json, 'manifest');
  if (o.version !== 1) throw new ManifestError('version', `must be 1 (got ${JSON.stringify(o.version)})`);
  const models = arr(o.models, 'models').map((m, i) => parseEntry(m, `models[${i}]`));
  const seen = new Set<string>();
  models.forEach((m, i) => {
    if (seen.has(m.id)) throw new ManifestError(`models[${i}].id`, `duplicates another model's id '${m.id}'`);
    seen.add(m.id);
  });
  return { version: 1, models };
}

/**
 * A model's name for menus: a random-weights fixture is marked '(random weights)' unless its manifest name already
 * says so (the fixtures' names do: "Tiny ViT classifier (random weights)"), so the mark is never doubled.
 */
export function modelDisplayName(entry: Pick<ModelEntry, 'name' | 'weights'>): string {
  if (entry.weights !== 'random-fixture' || /random weights/i.test(entry.name)) return entry.name;
  return `${entry.name} (random weights)`;
}

export function findModel(manifest: Manifest, id: string): ModelEntry | undefined {
  return manifest.models.find((m) => m.id === id);
}

export interface VariantContext {
  backend: 'webgpu' | 'wasm';
  /** Whether the WebGPU adapter has the 'shader-f16' feature. */
  shaderF16: boolean;
  /** Ask for a dtype; honoured when available and allowed (fp16 still requires webgpu + shader-f16). */
  prefer?: Dtype;
}

/**
 * Pick the variant to run: fp16 only on WebGPU with shader-f16; int8 only when explicitly preferred (on wasm it is
 * fast; on WebGPU it is usually slower); otherwise fp32. Falls back to whatever exists, fp32 first. Returns null when
 * the entry has no usable variant (e.g. only fp16 but no shader-f16).
 */
export function chooseVariant(entry: ModelEntry, ctx: VariantContext): ModelVariant | null {
  const v = entry.variants;
  const fp16ok = ctx.backend === 'webgpu' && ctx.shaderF16;
  if (ctx.prefer === 'fp16' && fp16ok && v.fp16) return v.fp16;
  if (ctx.prefer === 'int8' && v.int8) return v.int8;
  if (ctx.prefer === 'fp32' && v.fp32) return v.fp32;
  if (fp16ok && v.fp16) return v.fp16;
  if (v.fp32) return v.fp32;
  if (v.int8) return v.int8;
  return null;
}

/** Bytes to download for a variant, external data included. */
export function totalBytes(variant: ModelVariant): number {
  let n = 0;
  for (const f of variant.files) {
    n += f.bytes;
    for (const e of f.external_data ?? []) n += e.bytes;
  }
  return n;
}

/** Every file (graphs and external data) of a variant, flattened. */
export function variantFiles(variant: ModelVariant): { path: string; bytes: number; sha256: string; role: string }[] {
  const out: { path: string; bytes: number; sha256: string; role: string }[] = [];
  for (const f of variant.files) {
    out.push({ path: f.path, bytes: f.bytes, sha256: f.sha256, role: f.role });
    for (const e of f.external_data ?? []) out.push({ path: e.path, bytes: e.bytes, sha256: e.sha256, role: `${f.role}:external_data` });
  }
  return out;
}

export function fileByRole(variant: ModelVariant, role: string): ModelFile | undefined {
  return variant.files.find((f) => f.role === role);
}

/**
 * The card metrics worth showing at a glance for a model, by family: a classifier's clinical metrics, a segmenter's
 * Dice per lung with box prompts and a single centre click, a generator's fraction of images the project's classifier
 * calls PNEUMONIA (base vs LoRA, 4 LCM steps). Only numeric keys the card actually has are returned, in this order;
 * every other card metric is still listed in full by the Models view.
 */
export function headlineMetrics(entry: ModelEntry): string[] {
  const byFamily: Record<string, string[]> = {
    classifier: ['accuracy', 'precision', 'recall', 'specificity', 'f1', 'auc', 'threshold'],
    clip: ['accuracy', 'auc'],
    sam: ['box_right_lung_dice_mean', 'box_left_lung_dice_mean', 'centre-click_right_lung_dice_mean', 'centre-click_left_lung_dice_mean'],
    sd: ['lcm4_lora_frac_pneumonia', 'lcm4_base_frac_pneumonia', 'lcm2_lora_frac_pneumonia', 'lcm8_lora_frac_pneumonia'],
  };
  const metrics = entry.card.metrics ?? {};
  return (byFamily[entry.family] ?? []).filter((k) => typeof metrics[k] === 'number');
}

/** True when a variant's outputs for one image depend on the other images of its batch (see activation_quantization). */
export function batchCoupled(v: ModelVariant | undefined): boolean {
  return v?.dtype === 'int8' && v.activation_quantization !== 'static';
}
