/**
 * The segment engine: owns the SAM sessions (one pair per model+variant, created lazily), the image embeddings
 * (encoded once per image+model+variant, cached in IndexedDB by the host and kept resident in memory for the
 * images in use) and runs one decode per interaction. Runtime-agnostic: ORT, session creation and the embedding
 * store are injected (workers/sam.worker.ts in the browser; app/platform/node/engines.ts for `npm run segment-eval`).
 */
import type { ModelFile } from '../models/manifest-types';
import type { RuntimeReport } from '../runtime/report';
import type { Raster } from '../imaging/raster';
import { sha256Hex } from '../models/hashing';
import { outcome, type FamilyEngine, type ModelRequest, type Outcome, type Progress } from '../runtime/outcome';
import { RunQueue } from '../runtime/run-queue';
import { createSessionFactory, requestKey, SessionPool, type OrtHost, type Session } from '../runtime/sessions';
import { embeddingCacheKey, type CachedEmbedding } from './cache-key';
import { SamPipeline, samSettings, type Decoded, type MaskDecodeOptions, type Embedding, type TensorFactory, type TensorLike } from './pipeline';
import type { SamLayout, SamPrompt } from './layouts';
import { paintMaskOverlay } from './overlay';

export interface EmbeddingStore {
  get(key: string): Promise<CachedEmbedding | undefined>;
  set(key: string, value: CachedEmbedding): Promise<void>;
}

export interface SamModelInfo {
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
  /** Where the decoder reads the embedding from: a GPU buffer (WebGPU, uploaded once) or CPU memory. */
  resident: 'gpu' | 'cpu';
}

export interface SamEngine extends FamilyEngine {
  /** The loaded model's interface (layout, box / mask-input support) and runtime report. */
  info(req: ModelRequest, onProgress?: Progress): Promise<Outcome<SamModelInfo>>;
  /** Embedding of `raster` for this model: memory, then the cache, else the encoder (and store it). */
  encode(req: ModelRequest, raster: Raster): Promise<Outcome<EncodeInfo>>;
  decode(req: ModelRequest, key: string, prompt: SamPrompt, opts?: MaskDecodeOptions): Promise<Outcome<Decoded>>;
  /**
   * The hover preview: one decode of `prompt`, its best mask painted here (in the worker, off the page's thread) as
   * RGBA at the image's size in `style`'s colour and alpha (app/lib/sam/overlay.ts); the page only blits it.
   */
  previewDecode(req: ModelRequest, key: string, prompt: SamPrompt, style: { color: readonly [number, number, number]; alpha: number }): Promise<Outcome<PreviewImage>>;
  /**
   * Load the sessions (as info) and warm the ENCODER too: one encode of a blank S×S image, dropped. Meant for when
   * the model is cached and no image is open yet (the Segment tab was opened): ORT's first encoder run is about
   * twice a later one (0.7 s more for lung-sam on WASM here), paid before the user has chosen an image. The decoder
   * is warmed at every load (SamPipeline.warmDecoder). Resolves with the encoder warm-up's ms (0 when skipped).
   */
  prewarm(req: ModelRequest): Promise<Outcome<{ warmEncodeMs: number }>>;
  /** Counters for the runtime panel and tests. */
  stats(): Promise<{ encodes: number; decodes: number; cacheHits: number }>;
}

/** A painted hover preview: RGBA, width·height·4. */
export interface PreviewImage {
  width: number;
  height: number;
  rgba: Uint8ClampedArray;
}

interface Loaded {
  pipe: SamPipeline;
  report: RuntimeReport;
  encoderSha: string;
  /** The encoder has run once (a real image or the prewarm's blank one). */
  encoderWarm: boolean;
  /** ms of the last real encode (0 before one): a cache read may take twice that before it is given up. */
  lastEncodeMs: number;
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

/**
 * How long an embedding-cache read may take before the image is encoded instead (at least; twice the model's last
 * encode when that is longer). An IndexedDB read of lung-sam's 1 MB embedding takes ~10 ms idle; reads that waited
 * minutes were seen under load (bench-perceived, 2026-12-08), where an encode costs about a second.
 */
export const CACHE_READ_BUDGET_MS = 3000;

/** `p`'s value, or undefined when it rejects or has not settled within `ms` (it is then left to finish unheard). */
function withinBudget<T>(p: Promise<T>, ms: number): Promise<T | undefined> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(undefined), ms);
    p.then(
      (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      () => {
        clearTimeout(timer);
        resolve(undefined);
      },
    );
  });
}

/**
 * The engine over an ORT host and an optional embedding store. `opts.cacheReadBudgetMs`: how long a cache read may
 * take before the image is encoded instead (default CACHE_READ_BUDGET_MS).
 */
export function createSamEngine(host: OrtHost, embeddings?: EmbeddingStore, opts: { cacheReadBudgetMs?: number } = {}): SamEngine {
  const readBudget = opts.cacheReadBudgetMs ?? CACHE_READ_BUDGET_MS;
  const factory = createSessionFactory(host);
  const pool = new SessionPool<Loaded>();
  /** Embeddings in use, most recent last, with their feature tensors created once (reused by every decode). */
  const resident = new Map<string, { emb: Embedding; tensors: Record<string, TensorLike>; where: 'gpu' | 'cpu' }>();
  /** Encodes in flight by embedding key: a second request for the same image waits for the first (resolves, never rejects). */
  const encoding = new Map<string, Promise<void>>();
  const counts = { encodes: 0, decodes: 0, cacheHits: 0 };
  // One session run at a time: ORT's WebGPU backend refuses a run while another is in flight ("Session already
  // started"), and a hover decode may overlap a click's. WASM queues anyway, so this costs nothing there.
  const queue = new RunQueue();
  const serial = <T>(fn: () => Promise<T>): Promise<T> => queue.run(fn);
  // Calls in flight (load, info, encode, decode): a release or reset waits for those started before it, so a session
  // is never released under a running encode or decode.
  const inflight = new Set<Promise<unknown>>();
  const tracked = <T>(p: Promise<T>): Promise<T> => {
    inflight.add(p);
    void p.finally(() => inflight.delete(p)).catch(() => undefined);
    return p;
  };
  const settled = () => Promise.allSettled([...inflight]);
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
        // the decoder's first-run costs are paid at load, not at the user's first click (issue 21.1)
        onProgress?.('warming the prompt decoder up');
        await serial(() => pipe.warmDecoder());
        return { pipe, report, encoderSha: enc?.sha256 ?? 'unknown', encoderWarm: false, lastEncodeMs: 0, release };
      } catch (e) {
        await release();
        throw e;
      }
    });

  /**
   * On WebGPU the embedding is uploaded once into GPU buffers of ORT's own device and handed to every decode as
   * GPU tensors (Tensor.fromGpuBuffer), so an interaction uploads only its prompt. Anywhere else, or if that fails,
   * CPU tensors created once.
   */
  async function gpuTensors(emb: Embedding): Promise<Record<string, TensorLike> | null> {
    try {
      const ort = await host.ort();
      const device = (await (ort.env.webgpu as unknown as { device?: unknown }).device) as
        | { createBuffer(d: { size: number; usage: number }): { destroy(): void }; queue: { writeBuffer(b: unknown, o: number, d: Float32Array): void } }
        | undefined;
      if (!device) return null;
      const out: Record<string, TensorLike> = {};
      for (const [n, f] of Object.entries(emb.features)) {
        // GPUBufferUsage.STORAGE | COPY_SRC | COPY_DST
        const buffer = device.createBuffer({ size: f.data.byteLength, usage: 0x80 | 0x04 | 0x08 });
        device.queue.writeBuffer(buffer, 0, f.data);
        out[n] = (ort.Tensor as unknown as { fromGpuBuffer(b: unknown, o: { dataType: 'float32'; dims: number[]; dispose(): void }): TensorLike }).fromGpuBuffer(buffer, {
          dataType: 'float32',
          dims: f.dims,
          dispose: () => buffer.destroy(),
        });
      }
      return out;
    } catch {
      return null;
    }
  }

  async function keep(key: string, emb: Embedding, t: TensorFactory, backend: string): Promise<'gpu' | 'cpu'> {
    resident.delete(key);
    let tensors = backend === 'webgpu' ? await gpuTensors(emb) : null;
    const where = tensors ? 'gpu' : 'cpu';
    if (!tensors) {
      tensors = {};
      for (const [n, f] of Object.entries(emb.features)) tensors[n] = t('float32', f.data, f.dims);
    }
    resident.set(key, { emb, tensors, where });
    while (resident.size > RESIDENT) {
      const [old, v] = resident.entries().next().value as [string, { tensors: Record<string, TensorLike> }];
      for (const x of Object.values(v.tensors)) x.dispose?.();
      resident.delete(old);
    }
    return where;
  }

  const infoOf = (l: Loaded): SamModelInfo => ({
    report: { ...l.report },
    layout: l.pipe.itf.layout,
    supportsBox: l.pipe.itf.supportsBox,
    supportsMaskInput: l.pipe.itf.supportsMaskInput,
    imageSize: l.pipe.settings.pre.size,
  });

  return {
    load: (req, onProgress) => tracked(outcome(`Could not load ${req.entry.name}`, async () => ({ ...(await get(req, onProgress)).report }))),

    info: (req, onProgress) => tracked(outcome(`Could not load ${req.entry.name}`, async () => infoOf(await get(req, onProgress)))),

    encode: (req, raster) =>
      tracked(outcome('Image encoding failed', async () => {
        const l = await get(req);
        const key = embeddingCacheKey({ imageSha256: await rasterSha256(raster), modelId: req.entry.id, variant: l.report.dtype, encoderSha256: l.encoderSha, backend: l.report.backend });
        // The same image asked for again while its encode runs (a box drawn before the embedding was ready): wait
        // for that encode and use its result, not a second encode and IndexedDB round trip queued behind it.
        await encoding.get(key);
        const r = resident.get(key);
        if (r) {
          resident.delete(key);
          resident.set(key, r);
          return { key, from: 'memory' as const, encodeMs: r.emb.encodeMs, geometry: r.emb.geometry, resident: r.where };
        }
        let done!: () => void;
        const mine = new Promise<void>((res) => (done = res));
        encoding.set(key, mine);
        try {
          const t = await tensor();
          // a cache read that does not answer within the budget (IndexedDB stalled under load) is not waited for
          const cached = embeddings ? await withinBudget(embeddings.get(key), Math.max(readBudget, 2 * l.lastEncodeMs)) : undefined;
          if (cached) {
            counts.cacheHits++;
            const where = await keep(key, { features: cached.features, geometry: cached.geometry, encodeMs: cached.encodeMs }, t, l.report.backend);
            return { key, from: 'indexeddb' as const, encodeMs: cached.encodeMs, geometry: cached.geometry, resident: where };
          }
          const emb = await serial(() => l.pipe.encode(raster));
          l.encoderWarm = true;
          l.lastEncodeMs = emb.encodeMs;
          counts.encodes++;
          l.report.lastInferenceMs = Math.round(emb.encodeMs * 10) / 10;
          const where = await keep(key, emb, t, l.report.backend);
          // Stored, not awaited: the image is segmentable now (the write's IndexedDB transaction took 0.1-several s
          // under load before the first box could be decoded). A release or reset still waits for it (tracked); a
          // failing store (quota, private mode) costs a re-encode next time, nothing else.
          if (embeddings) void tracked(embeddings.set(key, { features: emb.features, geometry: emb.geometry, encodeMs: emb.encodeMs, createdAt: Date.now() }).catch(() => undefined));
          return { key, from: 'encoder' as const, encodeMs: emb.encodeMs, geometry: emb.geometry, resident: where };
        } finally {
          done();
          if (encoding.get(key) === mine) encoding.delete(key);
        }
      })),

    decode: (req, key, prompt, opts) =>
      tracked(outcome('Segmentation failed', async () => {
        const l = await get(req);
        const r = resident.get(key);
        if (!r) throw new Error('the image embedding is not loaded (encode the image first)');
        const d = await serial(() => l.pipe.decode(r.emb, prompt, opts, r.tensors));
        counts.decodes++;
        return d;
      })),

    previewDecode: (req, key, prompt, style) =>
      tracked(
        outcome('Segmentation failed', async () => {
          const l = await get(req);
          const r = resident.get(key);
          if (!r) throw new Error('the image embedding is not loaded (encode the image first)');
          const d = await serial(() => l.pipe.decode(r.emb, prompt, { masks: 'best' }, r.tensors));
          counts.decodes++;
          const { origW: width, origH: height } = r.emb.geometry;
          const rgba = paintMaskOverlay(new Uint8ClampedArray(width * height * 4), width, height, [{ mask: d.masks[d.best], color: style.color, alpha: style.alpha }]);
          return { width, height, rgba };
        }),
      ),

    prewarm: (req) =>
      tracked(outcome(`Could not load ${req.entry.name}`, async () => {
        const l = await get(req);
        if (l.encoderWarm) return { warmEncodeMs: 0 };
        l.encoderWarm = true;
        const S = l.pipe.settings.pre.size;
        const emb = await serial(() => l.pipe.encode({ width: S, height: S, data: new Uint8ClampedArray(S * S * 4) }));
        return { warmEncodeMs: Math.round(emb.encodeMs) };
      })),

    stats: async () => ({ ...counts }),

    async release(modelId) {
      await settled();
      await pool.release(modelId);
      for (const [k, v] of [...resident.entries()]) {
        if (!k.includes(`|${modelId}|`)) continue;
        for (const x of Object.values(v.tensors)) x.dispose?.();
        resident.delete(k);
      }
    },

    async reset() {
      await settled();
      for (const v of resident.values()) for (const x of Object.values(v.tensors)) x.dispose?.();
      resident.clear();
      await pool.release();
    },
  };
}
