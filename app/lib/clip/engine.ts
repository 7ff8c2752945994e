/**
 * The CLIP engine (zero-shot labels, image embeddings): one lazily created pair of sessions (image + text encoder)
 * and the tokenizer per model request; text embeddings cached by prompt (prompts change rarely, images often).
 * Runtime-agnostic like classify/engine.ts: workers/clip.worker.ts exposes it, the CLI runs it in-process.
 */
import { batchCoupled } from '../models/manifest';
import type { ModelEntry } from '../models/manifest-types';
import type { Raster } from '../imaging/raster';
import { toModelInputBatch } from '../imaging/preprocess';
import type { RuntimeReport } from '../runtime/report';
import { outcome, type Batch, type FamilyEngine, type ModelRequest, type Outcome, type Progress } from '../runtime/outcome';
import { createSessionFactory, nowMs, requestKey, SessionPool, type OrtHost, type OrtTensor, type Session } from '../runtime/sessions';
import { serialSession } from '../runtime/run-queue';
import { usablePromptSets } from './prompts';
import { loadClipTokenizer, type ClipTokenizer } from './tokenize';
import { loadTransformers } from '../runtime/transformers';
import type { PromptSet, ZeroShotOutput } from './types';
import { zeroShot, type LabelPrompts, type ZeroShotScoring } from './zero-shot';

export interface ClipEngine extends FamilyEngine {
  /** Zero-shot labels for each raster from prompt sets (≥ 2 labels with a prompt each), with image embeddings. */
  zeroShot(req: ModelRequest, rasters: Raster[], sets: PromptSet[]): Promise<Outcome<Batch<ZeroShotOutput>>>;
}

interface Loaded {
  image: Session;
  text: Session;
  tokenizer: ClipTokenizer;
  report: RuntimeReport;
  textCache: Map<string, Float32Array>;
  /**
   * The variant scales activations over the whole batch (dynamic int8, models/manifest.ts batchCoupled): images and
   * prompts then go one per call, so an embedding does not depend on what else was in the batch (or, for prompts,
   * on which prompts happened to miss the cache together).
   */
  coupled: boolean;
  release(): Promise<unknown>;
}

/** A number from the entry's config; `fallback` when absent, an error naming the key when there is none. */
export function cfgNumber(entry: ModelEntry, key: string, fallback?: number): number {
  const v = entry.config?.[key];
  if (typeof v === 'number') return v;
  if (fallback !== undefined) return fallback;
  throw new Error(`${entry.name}: config.${key} is missing from the manifest`);
}

/**
 * The entry's scoring rule (config.scoring 'softmax' | 'sigmoid', default softmax), exp(logit_scale) (default 100,
 * CLIP's trained value) and logit_bias (default 0). Hub entries set them from the architecture and the weights
 * (app/lib/hub/temperature.ts).
 */
export function zeroShotRule(entry: ModelEntry): { scale: number; scoring: ZeroShotScoring; logitBias: number } {
  const s = entry.config?.scoring;
  if (s !== undefined && s !== 'softmax' && s !== 'sigmoid') throw new Error(`${entry.name}: config.scoring is ${JSON.stringify(s)}; expected "softmax" or "sigmoid"`);
  return { scale: cfgNumber(entry, 'logit_scale', 100), scoring: s ?? 'softmax', logitBias: cfgNumber(entry, 'logit_bias', 0) };
}

export function createClipEngine(host: OrtHost): ClipEngine {
  const factory = createSessionFactory(host);
  const pool = new SessionPool<Loaded>();

  const getLoaded = (req: ModelRequest, onProgress?: Progress) =>
    pool.get(requestKey(req), req.entry.id, async () => {
      const reader = host.reader(req.source);
      const { sessions, report } = await factory.create(req.entry, ['image_encoder', 'text_encoder'], req.override, req.source, onProgress);
      const variant = req.entry.variants[report.dtype]!;
      const tokFile =
        variant.files.find((f) => f.role === 'tokenizer') ??
        Object.values(req.entry.variants).flatMap((v) => v?.files ?? []).find((f) => f.role === 'tokenizer');
      // One run at a time per session; release waits for the runs in flight (app/lib/runtime/run-queue.ts).
      const image = serialSession(sessions.image_encoder);
      const text = serialSession(sessions.text_encoder);
      const release = () => Promise.all([image.release(), text.release()]);
      try {
        if (!tokFile) throw new Error(`${req.entry.name}: no tokenizer file in the manifest`);
        const tokenizer = loadClipTokenizer(await loadTransformers(await host.ort()), await reader(tokFile), {
          context_length: cfgNumber(req.entry, 'context_length'),
          pad_token_id: cfgNumber(req.entry, 'pad_token_id', 0),
        });
        return { image, text, tokenizer, report, textCache: new Map(), coupled: batchCoupled(variant), release };
      } catch (e) {
        await release().catch(() => undefined);
        throw e;
      }
    });

  async function embedImages(entry: ModelEntry, l: Loaded, rasters: Raster[]): Promise<Float32Array[]> {
    if (l.coupled && rasters.length > 1) {
      const out: Float32Array[] = [];
      for (const r of rasters) out.push(...(await embedImages(entry, l, [r])));
      return out;
    }
    const ort = await host.ort();
    const pre = entry.preprocessing;
    if (!pre) throw new Error(`${entry.name}: the manifest has no preprocessing`);
    const [h, w] = pre.size;
    const input = new ort.Tensor('float32', toModelInputBatch(rasters, pre), [rasters.length, 3, h, w]);
    const out = await l.image.run({ [l.image.inputNames[0] ?? 'pixel_values']: input });
    // CLIP towers give image_embeds / text_embeds; SigLIP's (transformers.js layout) give pooler_output.
    const t = out.image_embeds ?? out.pooler_output ?? out[l.image.outputNames[0]];
    const D = Number(t.dims[1]);
    const data = t.data as Float32Array;
    const res = rasters.map((_, i) => data.slice(i * D, (i + 1) * D));
    for (const x of Object.values(out)) x.dispose?.();
    return res;
  }

  async function embedTexts(l: Loaded, prompts: string[]): Promise<Float32Array[]> {
    const missing = [...new Set(prompts.filter((p) => !l.textCache.has(p)))];
    if (l.coupled && missing.length > 1) {
      for (const p of missing) await embedTexts(l, [p]);
    } else if (missing.length) {
      const ort = await host.ort();
      const batch = l.tokenizer.encodeBatch(missing);
      const feeds: Record<string, OrtTensor> = {
        [l.text.inputNames.includes('input_ids') ? 'input_ids' : l.text.inputNames[0]]: new ort.Tensor('int64', batch.ids, batch.dims),
      };
      if (l.text.inputNames.includes('attention_mask')) {
        feeds.attention_mask = new ort.Tensor('int64', BigInt64Array.from(batch.attentionMask, (v) => BigInt(v)), batch.dims);
      }
      const out = await l.text.run(feeds);
      const t = out.text_embeds ?? out.pooler_output ?? out[l.text.outputNames[0]];
      const D = Number(t.dims[1]);
      const data = t.data as Float32Array;
      missing.forEach((p, i) => l.textCache.set(p, data.slice(i * D, (i + 1) * D)));
      for (const x of Object.values(out)) x.dispose?.();
    }
    return prompts.map((p) => l.textCache.get(p)!);
  }

  return {
    load: (req, onProgress) => outcome(`Could not load ${req.entry.name}`, async () => ({ ...(await getLoaded(req, onProgress)).report })),
    zeroShot: (req, rasters, sets) =>
      outcome('Zero-shot labelling failed', async () => {
        const l = await getLoaded(req);
        const usable = usablePromptSets(sets);
        if (usable.length < 2) throw new Error('zero-shot needs at least two labels with a prompt each');
        const labelPrompts: LabelPrompts[] = [];
        for (const s of usable) labelPrompts.push({ label: s.label, embeds: await embedTexts(l, s.prompts) });
        const t0 = nowMs();
        const images = await embedImages(req.entry, l, rasters);
        const ms = nowMs() - t0;
        l.report.lastInferenceMs = Math.round(ms * 10) / 10;
        const { scale, ...rule } = zeroShotRule(req.entry);
        const note = req.entry.config?.temperature_note;
        const results = images.map((img) => ({
          ...zeroShot(img, labelPrompts, scale, rule)[0],
          imageEmbedding: img,
          inferenceMs: ms / rasters.length,
          ...(typeof note === 'string' ? { temperatureNote: note } : {}),
        }));
        return { results, report: { ...l.report } };
      }),
    release: (modelId) => pool.release(modelId),
    reset: () => pool.release(),
  };
}
