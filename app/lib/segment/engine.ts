/**
 * The segment engine: owns the SAM sessions (one pair per model+variant, created lazily), the image embeddings
 * (encoded once per image+model+variant, cached in IndexedDB by the host and kept resident in memory for the
 * images in use) and runs one decode per interaction. Runtime-agnostic: ORT, session creation and the embedding
 * store are injected (workers/segment.worker.ts in the browser; app/cli/segment-eval.ts in Node).
 */
import type { ModelFile } from '../models/manifest-types';
import type { RuntimeReport } from '../runtime/report';
import type { Raster } from '../imaging/raster';
import { sha256Hex } from '../models/hashing';
import { outcome, type FamilyEngine, type ModelRequest, type Outcome, type Progress } from '../runtime/outcome';
import { createSessionFactory, requestKey, SessionPool, type OrtHost, type Session } from '../runtime/sessions';
import { embeddingCacheKey, type CachedEmbedding } from './cache-key';
import { SamPipeline, samSettings, type Decoded, type DecodeOptions, type Embedding, type TensorFactory, type TensorLike } from './pipeline';
import type { SamLayout, SamPrompt } from './layouts';

export interface EmbeddingStore {
  get(key: string): Promise<CachedEmbedding | undefined>;
  set(key: string, value: CachedEmbedding): Promise<void>;
}

export interface SegmentModelInfo {
  report: RuntimeReport;
  layout: SamLayout;
  supportsBox: boolean;
  supportsMaskInput: boolean;
  imageSize: number;
}

export interface EncodeInfo {
  key: string;
  /** Where the embedding came from this time. */
  from: 'memory' | 'indexeddb' | 'encoder';
  /** Encoder time when it was computed (also for cached ones: the original encode). */
  encodeMs: number;
  geometry: Embedding['geometry'];
}

export interface SegmentEngine extends FamilyEngine {
  /** The loaded model's interface (layout, box / mask-input support) and runtime report. */
  info(req: ModelRequest, onProgress?: Progress): Promise<Outcome<SegmentModelInfo>>;
  /** Embedding of `raster` for this model: memory, then the cache, else the encoder (and store it). */
  encode(req: ModelRequest, raster: Raster): Promise<Outcome<EncodeInfo>>;
  decode(req: ModelRequest, key: string, prompt: SamPrompt, opts?: DecodeOptions): Promise<Outcome<Decoded>>;
  /** Counters for the runtime panel and tests. */
  stats(): Promise<{ encodes: number; decodes: number; cacheHits: number }>;
}

interface Loaded {
  pipe: SamPipeline;
  report: RuntimeReport;
  encoderSha: string;
  release(): Promise<void>;
}

/** sha256 of an image's decoded pixels and size: the same picture gives the same key whatever its file name. */
export async function rasterSha256(r: Raster): Promise<string> {
  const head = Uint8Array.from(`${r.width}x${r.height}:`, (c) => c.charCodeAt(0));
  const buf = new Uint8Array(head.length + r.data.length);
  buf.set(head);
  buf.set(r.data, head.length);
  return sha256Hex(buf);
}

const RESIDENT = 4;

export function createSegmentEngine(host: OrtHost, embeddings?: EmbeddingStore): SegmentEngine {
  const factory = createSessionFactory(host);
  const pool = new SessionPool<Loaded>();
  /** Embeddings in use, most recent last, with their feature tensors created once (reused by every decode). */
  const resident = new Map<string, { emb: Embedding; tensors: Record<string, TensorLike> }>();
  const counts = { encodes: 0, decodes: 0, cacheHits: 0 };
  let tensorFactory: TensorFactory | null = null;
  const tensor = async (): Promise<TensorFactory> => {
    if (!tensorFactory) {
      const ort = await host.ort();
      tensorFactory = (type, data, dims) => new ort.Tensor(type, data as Float32Array, dims as number[]);
    }
    return tensorFactory;
  };

  const get = (req: ModelRequest, onProgress?: Progress) =>
    pool.get(requestKey(req), req.entry.id, async () => {
      const { sessions, report } = await factory.create(req.entry, ['image_encoder', 'prompt_decoder'], req.override, req.source, onProgress);
      const release = async () => {
        await Promise.all(Object.values(sessions).map((s: Session) => s.release().catch(() => undefined)));
      };
      try {
        const pipe = new SamPipeline(await tensor(), sessions.image_encoder, sessions.prompt_decoder, samSettings(req.entry));
        const enc = req.entry.variants[report.dtype]?.files.find((f: ModelFile) => f.role === 'image_encoder');
        return { pipe, report, encoderSha: enc?.sha256 ?? 'unknown', release };
      } catch (e) {
        await release();
        throw e;
      }
    });

  function keep(key: string, emb: Embedding, t: TensorFactory) {
    resident.delete(key);
    const tensors: Record<string, TensorLike> = {};
    for (const [n, f] of Object.entries(emb.features)) tensors[n] = t('float32', f.data, f.dims);
    resident.set(key, { emb, tensors });
    while (resident.size > RESIDENT) {
      const [old, v] = resident.entries().next().value as [string, { tensors: Record<string, TensorLike> }];
      for (const x of Object.values(v.tensors)) x.dispose?.();
      resident.delete(old);
    }
  }

  const infoOf = (l: Loaded): SegmentModelInfo => ({
    report: { ...l.report },
    layout: l.pipe.itf.layout,
    supportsBox: l.pipe.itf.supportsBox,
    supportsMaskInput: l.pipe.itf.supportsMaskInput,
    imageSize: l.pipe.settings.pre.size,
  });

  return {
    load: (req, onProgress) => outcome(`Could not load ${req.entry.name}`, async () => ({ ...(await get(req, onProgress)).report })),

    info: (req, onProgress) => outcome(`Could not load ${req.entry.name}`, async () => infoOf(await get(req, onProgress))),

    encode: (req, raster) =>
      outcome('Image encoding failed', async () => {
        const l = await get(req);
        const key = embeddingCacheKey({ imageSha256: await rasterSha256(raster), modelId: req.entry.id, variant: l.report.dtype, encoderSha256: l.encoderSha, backend: l.report.backend });
        const r = resident.get(key);
        if (r) {
          resident.delete(key);
          resident.set(key, r);
          return { key, from: 'memory' as const, encodeMs: r.emb.encodeMs, geometry: r.emb.geometry };
        }
        const t = await tensor();
        const cached = await embeddings?.get(key).catch(() => undefined);
        if (cached) {
          counts.cacheHits++;
          keep(key, { features: cached.features, geometry: cached.geometry, encodeMs: cached.encodeMs }, t);
          return { key, from: 'indexeddb' as const, encodeMs: cached.encodeMs, geometry: cached.geometry };
        }
        const emb = await l.pipe.encode(raster);
        counts.encodes++;
        l.report.lastInferenceMs = Math.round(emb.encodeMs * 10) / 10;
        keep(key, emb, t);
        // a failing store (quota, private mode) costs a re-encode next time, nothing else
        await embeddings?.set(key, { features: emb.features, geometry: emb.geometry, encodeMs: emb.encodeMs, createdAt: Date.now() }).catch(() => undefined);
        return { key, from: 'encoder' as const, encodeMs: emb.encodeMs, geometry: emb.geometry };
      }),

    decode: (req, key, prompt, opts) =>
      outcome('Segmentation failed', async () => {
        const l = await get(req);
        const r = resident.get(key);
        if (!r) throw new Error('the image embedding is not loaded (encode the image first)');
        const d = await l.pipe.decode(r.emb, prompt, opts, r.tensors);
        counts.decodes++;
        return d;
      }),

    stats: async () => ({ ...counts }),

    async release(modelId) {
      await pool.release(modelId);
      for (const k of [...resident.keys()]) if (k.includes(`|${modelId}|`)) resident.delete(k);
    },

    async reset() {
      resident.clear();
      await pool.release();
    },
  };
}
