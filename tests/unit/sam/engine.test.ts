/**
 * The segment engine with Node's ORT host: encode once per image+model, later encodes from memory, a new engine
 * (a reload) from the embedding store; decodes reuse the embedding; a graph with another interface is refused with
 * the missing names and the engine keeps working for the others.
 */
import { describe, expect, it } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { createSamEngine, type EmbeddingStore } from '../../../app/lib/sam/engine';
import type { CachedEmbedding } from '../../../app/lib/sam/cache-key';
import { parseManifest, findModel } from '../../../app/lib/models/manifest';
import { nodeOrtHost } from '../../../app/platform/node/ort';
import { decodePngNode } from '../../../app/platform/node/decode';
import { REPO_ROOT, readBytes } from '../helpers/shared';

const MODELS = path.join(REPO_ROOT, 'public/models');
const manifest = parseManifest(JSON.parse(fs.readFileSync(path.join(MODELS, 'manifest.json'), 'utf8')));
const image = decodePngNode(readBytes(path.join(REPO_ROOT, 'tests/segment-goldens/image.png')));
const host = nodeOrtHost({ modelsDir: MODELS, threads: 1 });
const req = (id: string) => ({ entry: findModel(manifest, id)!, override: 'wasm' as const, source: { kind: 'app' as const } });

function mapStore(): EmbeddingStore & { size: number } {
  const m = new Map<string, CachedEmbedding>();
  return {
    get: async (k) => m.get(k),
    set: async (k, v) => void m.set(k, structuredClone(v)),
    get size() {
      return m.size;
    },
  };
}

describe('segment engine (Node host)', () => {
  it('encodes once, then memory, then the store after a "reload"; same masks from the cached embedding', async () => {
    const store = mapStore();
    const e1 = createSamEngine(host, store);
    const a = await e1.encode(req('tiny-sam'), image);
    expect(a.ok && a.value.from).toBe('encoder');
    const b = await e1.encode(req('tiny-sam'), image);
    expect(b.ok && b.value.from).toBe('memory');
    expect(store.size).toBe(1);
    const prompt = { points: [{ x: 20, y: 30, label: 1 as const }] };
    const d1 = await e1.decode(req('tiny-sam'), a.ok ? a.value.key : '', prompt);
    const e2 = createSamEngine(host, store);
    const c = await e2.encode(req('tiny-sam'), image);
    expect(c.ok && c.value.from).toBe('indexeddb');
    const d2 = await e2.decode(req('tiny-sam'), c.ok ? c.value.key : '', prompt);
    expect(d1.ok && d2.ok).toBe(true);
    if (d1.ok && d2.ok) {
      expect(d2.value.iou).toEqual(d1.value.iou);
      expect(Array.from(d2.value.masks[0])).toEqual(Array.from(d1.value.masks[0]));
    }
    expect((await e2.stats()).encodes).toBe(0);
    // masks: 'best' upscales only the best candidate, identically
    const d3 = await e2.decode(req('tiny-sam'), c.ok ? c.value.key : '', prompt, { masks: 'best' });
    if (d2.ok && d3.ok) {
      expect(d3.value.best).toBe(d2.value.best);
      expect(Array.from(d3.value.masks[d3.value.best])).toEqual(Array.from(d2.value.masks[d2.value.best]));
      expect(d3.value.masks.filter((m) => m.length === 0).length).toBe(d3.value.masks.length - 1);
    }
    // other models key their own embeddings
    const o = await e2.encode(req('tiny-sam-onnx'), image);
    expect(o.ok && o.value.from).toBe('encoder');
    const info = await e2.info(req('tiny-sam-hf'));
    expect(info.ok && info.value.layout).toBe('transformers.js');
  });

  it('the hover preview is the best mask painted in the engine: yellow at the alpha asked, nothing elsewhere', async () => {
    const e = createSamEngine(host);
    const enc = await e.encode(req('tiny-sam'), image);
    if (!enc.ok) throw new Error(enc.message);
    const prompt = { points: [{ x: 20, y: 30, label: 1 as const }] };
    const d = await e.decode(req('tiny-sam'), enc.value.key, prompt, { masks: 'best' });
    const p = await e.previewDecode(req('tiny-sam'), enc.value.key, prompt, { color: [250, 204, 21], alpha: 0.5 });
    if (!d.ok || !p.ok) throw new Error('decode failed');
    expect([p.value.width, p.value.height]).toEqual([image.width, image.height]);
    const mask = d.value.masks[d.value.best];
    let inside = 0, wrong = 0;
    for (let i = 0; i < mask.length; i++) {
      const px = Array.from(p.value.rgba.subarray(i * 4, i * 4 + 4));
      if (mask[i]) inside++;
      if (mask[i] ? px.join() !== '250,204,21,128' : px.join() !== '0,0,0,0') wrong++;
    }
    expect(inside).toBeGreaterThan(0);
    expect(wrong).toBe(0);
  });

  it('a release asked for while an encode and a decode run waits for them (no session released under a run)', async () => {
    const e = createSamEngine(host);
    const first = await e.encode(req('tiny-sam'), image);
    expect(first.ok).toBe(true);
    if (!first.ok) return;
    const other = { ...image, data: image.data.map((v, i) => (i % 4 === 3 ? v : 255 - v)) }; // not in memory yet
    const enc = e.encode(req('tiny-sam'), other);
    const dec = e.decode(req('tiny-sam'), first.value.key, { points: [{ x: 20, y: 30, label: 1 as const }] });
    const rel = e.release('tiny-sam');
    const [a, b] = await Promise.all([enc, dec, rel]);
    // without the wait, the release frees the sessions (and the resident embedding) before these runs start
    expect(a.ok ? 'ok' : a.message).toBe('ok');
    expect(b.ok ? 'ok' : b.message).toBe('ok');
    expect((await e.encode(req('tiny-sam'), image)).ok).toBe(true); // loads again after the release
  });

  it('a decoder with another interface is refused with the missing names; the engine keeps working', async () => {
    const sam = findModel(manifest, 'tiny-sam')!;
    const cls = findModel(manifest, 'tiny-vit-classifier')!;
    const broken = {
      ...sam,
      id: 'broken-sam',
      variants: { fp32: { dtype: 'fp32' as const, files: [sam.variants.fp32!.files[0], { ...cls.variants.fp32!.files.find((f) => f.role === 'model')!, role: 'prompt_decoder' }] } },
    };
    const e = createSamEngine(host);
    const out = await e.info({ entry: broken, override: 'wasm', source: { kind: 'app' } });
    expect(out.ok).toBe(false);
    if (!out.ok) expect(out.message).toMatch(/no SAM decoder interface.*Missing input image_embeddings, input point_coords/);
    const ok = await e.encode(req('tiny-sam'), image);
    expect(ok.ok).toBe(true);
  });
  it('warms the decoder at load and the encoder on prewarm: the same masks as a cold engine, and the warm-up is not counted', async () => {
    for (const id of ['tiny-sam', 'tiny-sam-hf', 'lung-sam']) {
      const cold = createSamEngine(host);
      const warm = createSamEngine(host);
      const p = await warm.prewarm(req(id));
      // the blank-image encode ran (ms > 0), once: a second prewarm has nothing left to warm
      expect(p.ok && p.value.warmEncodeMs).toBeGreaterThan(0);
      const p2 = await warm.prewarm(req(id));
      expect(p2.ok && p2.value.warmEncodeMs).toBe(0);
      expect(await warm.stats()).toEqual({ encodes: 0, decodes: 0, cacheHits: 0 });
      const prompt = { points: [{ x: 20, y: 30, label: 1 as const }, { x: 40, y: 12, label: 0 as const }] };
      const out = [];
      for (const e of [cold, warm]) {
        const enc = await e.encode(req(id), image);
        expect(enc.ok && enc.value.from).toBe('encoder');
        const d = await e.decode(req(id), enc.ok ? enc.value.key : '', prompt);
        expect(d.ok ? 'ok' : `${id}: ${d.message}`).toBe('ok');
        out.push(d.ok ? d.value : null);
      }
      expect(out[1]!.iou).toEqual(out[0]!.iou);
      expect(Array.from(out[1]!.lowRes[0])).toEqual(Array.from(out[0]!.lowRes[0]));
      expect(Array.from(out[1]!.masks[out[1]!.best])).toEqual(Array.from(out[0]!.masks[out[0]!.best]));
      await cold.reset();
      await warm.reset();
    }
  }, 180_000);
  it('the same image asked for twice while it encodes (a box drawn before the embedding was ready) is encoded once', async () => {
    const store = mapStore();
    const e = createSamEngine(host, store);
    const [a, b] = await Promise.all([e.encode(req('tiny-sam'), image), e.encode(req('tiny-sam'), image)]);
    expect(a.ok && b.ok && a.value.key === b.value.key).toBe(true);
    expect([a.ok && a.value.from, b.ok && b.value.from].sort()).toEqual(['encoder', 'memory']);
    expect((await e.stats()).encodes).toBe(1);
    expect(store.size).toBe(1);
    await e.reset();
  }, 120_000);

  it('the embedding write is not awaited: the encode resolves while the store still writes, the write lands, a reset waits for it', async () => {
    const m = new Map<string, CachedEmbedding>();
    let open!: () => void;
    const gate = new Promise<void>((r) => (open = r));
    let writes = 0;
    const slow: EmbeddingStore = {
      get: async (k) => m.get(k),
      set: async (k, v) => {
        writes++;
        await gate; // an IndexedDB transaction still committing
        m.set(k, structuredClone(v));
      },
    };
    const e = createSamEngine(host, slow);
    const enc = await e.encode(req('tiny-sam'), image);
    expect(enc.ok && enc.value.from).toBe('encoder');
    // resolved with the write started and not finished; the image is segmentable already
    expect([writes, m.size]).toEqual([1, 0]);
    const d = await e.decode(req('tiny-sam'), enc.ok ? enc.value.key : '', { points: [{ x: 20, y: 30, label: 1 as const }] });
    expect(d.ok).toBe(true);
    let resetDone = false;
    const reset = e.reset().then(() => (resetDone = true));
    await new Promise((r) => setTimeout(r, 50));
    expect(resetDone).toBe(false); // waits for the write in flight
    open();
    await reset;
    expect(m.size).toBe(1);
    const again = await createSamEngine(host, slow).encode(req('tiny-sam'), image);
    expect(again.ok && again.value.from).toBe('indexeddb');
  }, 120_000);

  it('a cache read that does not answer within its budget is not waited for: the image is encoded', async () => {
    const stalled: EmbeddingStore = { get: () => new Promise(() => undefined), set: async () => undefined };
    const e = createSamEngine(host, stalled, { cacheReadBudgetMs: 200 });
    const t0 = Date.now();
    const enc = await e.encode(req('tiny-sam'), image);
    expect(enc.ok && enc.value.from).toBe('encoder');
    expect(Date.now() - t0).toBeLessThan(60_000);
    await e.reset();
  }, 120_000);
});

