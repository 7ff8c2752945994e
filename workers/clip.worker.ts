/**
 * CLIP worker (zero-shot labels, image embeddings): a thin adapter like classifier.worker.ts. One lazily created pair
 * of sessions (image + text encoder) per model+variant; tokenization and zero-shot maths come from app/lib/clip.
 * Model bytes are read from the model cache (see modelCacheReader in ort-runtime.ts).
 */
import * as Comlink from 'comlink';
import type { ModelEntry } from '../app/lib/models/manifest-types';
import type { ModelSource } from '../app/lib/models/sources';
import type { Raster } from '../app/lib/imaging/raster';
import { toModelInputBatch } from '../app/lib/imaging/preprocess';
import type { BackendOverride, RuntimeReport } from '../app/lib/runtime';
import { loadClipTokenizer, zeroShot, type ClipTokenizer, type LabelPrompts, type ZeroShotResult } from '../app/lib/clip';
import { createSessions, errorMessage, loadOrt, modelCacheReader, type Session } from './ort-runtime';

export interface ClipLoadRequest {
  entry: ModelEntry;
  override: BackendOverride;
  source: ModelSource;
}

export interface PromptSet {
  label: string;
  prompts: string[];
}

export interface ZeroShotOutput extends ZeroShotResult {
  imageEmbedding: Float32Array;
  inferenceMs: number;
}

export type Outcome<T> = { ok: true; value: T } | { ok: false; message: string };

interface Loaded {
  entry: ModelEntry;
  image: Session;
  text: Session;
  tokenizer: ClipTokenizer;
  report: RuntimeReport;
  /** Text embeddings by prompt: prompts change rarely, images often. */
  textCache: Map<string, Float32Array>;
}

const loaded = new Map<string, Promise<Loaded>>();

function keyOf(req: ClipLoadRequest): string {
  return `${req.entry.id}|${req.override}|${JSON.stringify(req.source)}`;
}

function cfgNumber(entry: ModelEntry, key: string, fallback?: number): number {
  const v = entry.config?.[key];
  if (typeof v === 'number') return v;
  if (fallback !== undefined) return fallback;
  throw new Error(`${entry.name}: config.${key} is missing from the manifest`);
}

async function getLoaded(req: ClipLoadRequest, onProgress?: (msg: string) => void): Promise<Loaded> {
  const key = keyOf(req);
  let p = loaded.get(key);
  if (!p) {
    p = (async () => {
      const reader = modelCacheReader(req.source);
      const { sessions, report } = await createSessions(req.entry, ['image_encoder', 'text_encoder'], req.override, reader, (s) => onProgress?.(s));
      const variant = req.entry.variants[report.dtype]!;
      const tokFile = variant.files.find((f) => f.role === 'tokenizer') ?? Object.values(req.entry.variants).flatMap((v) => v?.files ?? []).find((f) => f.role === 'tokenizer');
      if (!tokFile) throw new Error(`${req.entry.name}: no tokenizer file in the manifest`);
      const tokenizer = loadClipTokenizer(await reader(tokFile), {
        context_length: cfgNumber(req.entry, 'context_length'),
        pad_token_id: cfgNumber(req.entry, 'pad_token_id', 0),
      });
      return { entry: req.entry, image: sessions.image_encoder, text: sessions.text_encoder, tokenizer, report, textCache: new Map() };
    })();
    loaded.set(key, p);
    p.catch(() => loaded.delete(key));
  }
  return p;
}

async function embedImages(l: Loaded, rasters: Raster[]): Promise<Float32Array[]> {
  const ort = await loadOrt();
  const pre = l.entry.preprocessing;
  if (!pre) throw new Error(`${l.entry.name}: the manifest has no preprocessing`);
  const [h, w] = pre.size;
  const input = new ort.Tensor('float32', toModelInputBatch(rasters, pre), [rasters.length, 3, h, w]);
  const out = await l.image.run({ [l.image.inputNames[0] ?? 'pixel_values']: input });
  const t = out.image_embeds ?? out[l.image.outputNames[0]];
  const D = Number(t.dims[1]);
  const data = t.data as Float32Array;
  const res = rasters.map((_, i) => data.slice(i * D, (i + 1) * D));
  for (const x of Object.values(out)) x.dispose?.();
  return res;
}

async function embedTexts(l: Loaded, prompts: string[]): Promise<Float32Array[]> {
  const missing = [...new Set(prompts.filter((p) => !l.textCache.has(p)))];
  if (missing.length) {
    const ort = await loadOrt();
    const batch = l.tokenizer.encodeBatch(missing);
    const feeds: Record<string, InstanceType<typeof ort.Tensor>> = {
      [l.text.inputNames.includes('input_ids') ? 'input_ids' : l.text.inputNames[0]]: new ort.Tensor('int64', batch.ids, batch.dims),
    };
    if (l.text.inputNames.includes('attention_mask')) {
      feeds.attention_mask = new ort.Tensor('int64', BigInt64Array.from(batch.attentionMask, (v) => BigInt(v)), batch.dims);
    }
    const out = await l.text.run(feeds);
    const t = out.text_embeds ?? out[l.text.outputNames[0]];
    const D = Number(t.dims[1]);
    const data = t.data as Float32Array;
    missing.forEach((p, i) => l.textCache.set(p, data.slice(i * D, (i + 1) * D)));
    for (const x of Object.values(out)) x.dispose?.();
  }
  return prompts.map((p) => l.textCache.get(p)!);
}

const api = {
  async load(req: ClipLoadRequest, onProgress?: (msg: string) => void): Promise<Outcome<RuntimeReport>> {
    try {
      const l = await getLoaded(req, onProgress);
      return { ok: true, value: { ...l.report } };
    } catch (e) {
      return { ok: false, message: `Could not load ${req.entry.name}: ${errorMessage(e)}` };
    }
  },

  /** Zero-shot labels for each raster from prompt sets (one or more prompts per label). */
  async zeroShot(req: ClipLoadRequest, rasters: Raster[], sets: PromptSet[]): Promise<Outcome<{ results: ZeroShotOutput[]; report: RuntimeReport }>> {
    try {
      const l = await getLoaded(req);
      const usable = sets.map((s) => ({ label: s.label.trim(), prompts: s.prompts.map((p) => p.trim()).filter(Boolean) })).filter((s) => s.label && s.prompts.length);
      if (usable.length < 2) throw new Error('zero-shot needs at least two labels with a prompt each');
      const labelPrompts: LabelPrompts[] = [];
      for (const s of usable) labelPrompts.push({ label: s.label, embeds: await embedTexts(l, s.prompts) });
      const t0 = performance.now();
      const images = await embedImages(l, rasters);
      const ms = performance.now() - t0;
      l.report.lastInferenceMs = Math.round(ms * 10) / 10;
      const scale = cfgNumber(l.entry, 'logit_scale', 100);
      const results = images.map((img) => ({
        ...zeroShot(img, labelPrompts, scale)[0],
        imageEmbedding: img,
        inferenceMs: ms / rasters.length,
      }));
      return { ok: true, value: { results, report: { ...l.report } } };
    } catch (e) {
      return { ok: false, message: `Zero-shot labelling failed: ${errorMessage(e)}` };
    }
  },

  async reset(): Promise<void> {
    const all = [...loaded.values()];
    loaded.clear();
    await Promise.all(all.map((p) => p.then((l) => Promise.all([l.image.release(), l.text.release()])).catch(() => undefined)));
  },
};

export type ClipApi = typeof api;
Comlink.expose(api);
