/**
 * Storage you can see (issue 19.4): half-written model cache entries are found and removed, and the SAM embedding
 * cache is capped with least-recently-used eviction, counted and clearable. Runs on IndexedDB (fake-indexeddb)
 * through idb-keyval, the same code the browser runs; Cache Storage is an in-memory stand-in that normalises keys
 * with the WHATWG URL parser, as browsers do.
 */
import 'fake-indexeddb/auto';
import { createStore } from 'idb-keyval';
import { describe, expect, it } from 'vitest';
import { sha256Hex } from '../../../app/lib/models/hashing';
import { LocalKeyModelStore } from '../../../app/lib/models/cache-keys';
import { CacheStorageModelStore } from '../../../app/platform/browser/model-cache';
import { idbEmbeddingStore } from '../../../app/platform/browser/embedding-store';
import { embeddingBytes, lruEvictions, LruEmbeddingCache, type KeyValueStore } from '../../../app/lib/sam/embedding-cache';
import type { CachedEmbedding } from '../../../app/lib/sam/cache-key';

class UrlKeyedCacheStorage {
  caches = new Map<string, Map<string, Response>>();
  async open(name: string) {
    let m = this.caches.get(name);
    if (!m) this.caches.set(name, (m = new Map()));
    const store = m;
    // A page resolves relative keys against its own URL (here: http://localhost/).
    const key = (r: string | Request) => new URL(typeof r === 'string' ? r : r.url, 'http://localhost/').href;
    return {
      async match(r: string | Request) {
        const x = store.get(key(r));
        return x ? x.clone() : undefined;
      },
      async put(r: string | Request, res: Response) {
        store.set(key(r), new Response(await res.arrayBuffer(), { headers: res.headers }));
      },
      async delete(r: string | Request) {
        return store.delete(key(r));
      },
      async keys() {
        return [...store.keys()].map((u) => new Request(u));
      },
    };
  }
}

describe('model cache: half-written entries', () => {
  it('bytes without metadata (tab closed mid-write) and metadata without bytes are found and removed; complete entries stay', async () => {
    const caches = new UrlKeyedCacheStorage();
    const inner = new CacheStorageModelStore({ caches: caches as unknown as CacheStorage, idbStore: createStore('sweep-test', 'files') });
    const store = new LocalKeyModelStore(inner);
    const good = new Uint8Array(500).fill(7);
    const meta = { url: 'https://models.test/m/model name.onnx', path: 'm/model name.onnx', modelId: 'm', dtype: 'fp32', bytes: 500, sha256: await sha256Hex(good), storedAt: 0 };
    await store.put(good, meta);
    await store.put(good, { ...meta, url: 'local://pack/m/model.onnx', path: 'm/model.onnx' });
    // The app's own models are keyed origin-relative; Cache Storage lists them as absolute URLs.
    await store.put(good, { ...meta, url: '/models/m/own.onnx', path: 'm/own.onnx' });
    // A tab closed between the two writes of put(): the bytes are in Cache Storage, IndexedDB never heard of them.
    const c = await caches.open('cxr-models-v1');
    await c.put('https://models.test/m/half.onnx', new Response(new Uint8Array(1234), { headers: { 'Content-Length': '1234' } }));
    // And the other way round: metadata whose bytes were evicted.
    await store.put(good, { ...meta, url: 'https://models.test/m/gone.onnx', path: 'm/gone.onnx' });
    await c.delete('https://models.test/m/gone.onnx');

    const swept = await store.sweepOrphans();
    expect(swept.bytesWithoutMetadata).toEqual([{ url: 'https://models.test/m/half.onnx', bytes: 1234 }]);
    expect(swept.metadataWithoutBytes).toEqual(['https://models.test/m/gone.onnx']);
    // The URL with a space (key 'model name', cached as 'model%20name') and the local-folder key are not orphans.
    expect((await store.list()).map((f) => f.path).sort()).toEqual(['m/model name.onnx', 'm/model.onnx', 'm/own.onnx']);
    expect(await store.get('/models/m/own.onnx')).toEqual(good);
    expect(await store.get(meta.url)).toEqual(good);
    expect(await store.get('local://pack/m/model.onnx')).toEqual(good);
    expect(await c.match('https://models.test/m/half.onnx')).toBeUndefined();
    expect(await store.sweepOrphans()).toEqual({ bytesWithoutMetadata: [], metadataWithoutBytes: [] });
  });
});

function emb(floats: number, fill = 1): CachedEmbedding {
  return { features: { image_embeddings: { data: new Float32Array(floats).fill(fill), dims: [1, floats] } }, geometry: { origW: 8, origH: 8, resizedW: 8, resizedH: 8, size: 8 }, encodeMs: 5, createdAt: 0 };
}

function mapStore<V>(): KeyValueStore<V> & { m: Map<string, V> } {
  const m = new Map<string, V>();
  return {
    m,
    get: async (k) => m.get(k),
    set: async (k, v) => void m.set(k, v),
    del: async (k) => void m.delete(k),
    keys: async () => [...m.keys()],
    entries: async () => [...m.entries()],
    clear: async () => m.clear(),
  };
}

describe('SAM embedding cache: cap, LRU, stats, clear', () => {
  it('lruEvictions drops the least recently used until the total fits', () => {
    const e = (bytes: number, lastUsed: number) => ({ bytes, lastUsed });
    expect(lruEvictions([['a', e(10, 3)], ['b', e(10, 1)], ['c', e(10, 2)]], 20)).toEqual(['b']);
    expect(lruEvictions([['a', e(10, 3)], ['b', e(10, 1)], ['c', e(10, 2)]], 9)).toEqual(['b', 'c', 'a']);
    expect(lruEvictions([['a', e(10, 3)]], 10)).toEqual([]);
  });

  it('a get refreshes an entry, so the one not used is evicted first; the total never exceeds the cap', async () => {
    let t = 0;
    const one = embeddingBytes(emb(1000)); // 4000 floats bytes + overhead
    const cache = new LruEmbeddingCache(mapStore(), mapStore(), { maxBytes: 3 * one, now: () => ++t });
    await cache.set('a', emb(1000, 1));
    await cache.set('b', emb(1000, 2));
    await cache.set('c', emb(1000, 3));
    expect((await cache.get('a'))?.features.image_embeddings.data[0]).toBe(1); // a is now the most recent
    await cache.set('d', emb(1000, 4)); // over the cap: b (least recently used) goes
    expect(await cache.get('b')).toBeUndefined();
    for (const k of ['a', 'c', 'd']) expect(await cache.get(k), k).toBeDefined();
    const s = await cache.stats();
    expect(s).toEqual({ count: 3, bytes: 3 * one, maxBytes: 3 * one, repaired: 0 });
    // One embedding larger than the whole cap is not stored and evicts nothing.
    await cache.set('huge', emb(4000));
    expect(await cache.get('huge')).toBeUndefined();
    expect((await cache.stats()).count).toBe(3);
  });

  it('half-written entries are dropped by stats; clear empties both stores', async () => {
    const values = mapStore<CachedEmbedding>();
    const index = mapStore<{ bytes: number; lastUsed: number }>();
    const cache = new LruEmbeddingCache(values, index, { maxBytes: 1e9 });
    await cache.set('a', emb(10));
    index.m.set('torn', { bytes: 99, lastUsed: 1 }); // index written, tab closed before the value
    values.m.set('old', emb(10)); // a value an older version stored without an index
    const s = await cache.stats();
    expect(s.count).toBe(1);
    expect(s.repaired).toBe(2);
    expect([...values.m.keys()]).toEqual(['a']);
    expect([...index.m.keys()]).toEqual(['a']);
    await cache.clear();
    expect(await cache.stats()).toMatchObject({ count: 0, bytes: 0 });
  });

  it('runs on IndexedDB through idb-keyval (the browser adapter), and two handles see the same cache', async () => {
    const worker = idbEmbeddingStore(3 * embeddingBytes(emb(256)));
    const page = idbEmbeddingStore(3 * embeddingBytes(emb(256)));
    for (const k of ['k1', 'k2', 'k3', 'k4']) await worker.set(k, emb(256));
    const s = await page.stats();
    expect(s.count).toBe(3);
    expect(s.bytes).toBe(3 * embeddingBytes(emb(256)));
    expect(await worker.get('k1')).toBeUndefined();
    expect((await worker.get('k4'))?.features.image_embeddings.data).toEqual(new Float32Array(256).fill(1));
    await page.clear();
    expect((await worker.stats()).count).toBe(0);
  });
});
