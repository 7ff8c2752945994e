import 'fake-indexeddb/auto';
import { describe, expect, it } from 'vitest';
import { createStore } from 'idb-keyval';
import { ModelDownloader, ModelFileError, type DownloadProgress } from '../../../app/lib/models/downloader';
import { MemoryModelStore, summarizeByModel } from '../../../app/lib/models/model-cache';
import { CacheStorageModelStore } from '../../../app/platform/browser/model-cache';
import { sha256Hex } from '../../../app/lib/models/hashing';
import type { FetchLike } from '../../../app/lib/models/sources';
import { bytesOf } from '../helpers/bytes';

const SRC = { kind: 'app' as const, baseUrl: 'https://models.test/' };

interface ServerOpts {
  files: Record<string, Uint8Array>;
  chunk?: number;
  /** Break the stream after this many bytes on the first N requests of a URL. */
  breakAfter?: number;
  breakTimes?: number;
  supportsRange?: boolean;
  status?: Record<string, number>;
  /** Delay (ms) per chunk, to overlap concurrent requests. */
  delayMs?: number;
}

function fakeServer(o: ServerOpts) {
  const calls: { url: string; range: string | null }[] = [];
  const broken = new Map<string, number>();
  const fetchImpl: FetchLike = async (url, init) => {
    const range = init?.headers ? new Headers(init.headers).get('Range') : null;
    calls.push({ url, range });
    const name = url.replace('https://models.test/', '');
    if (o.status?.[name]) return new Response('nope', { status: o.status[name] });
    const data = o.files[name];
    if (!data) return new Response('not found', { status: 404 });
    let start = 0;
    let status = 200;
    if (range && o.supportsRange) {
      start = Number(/bytes=(\d+)-/.exec(range)![1]);
      status = 206;
    }
    const body = data.subarray(start);
    const chunk = o.chunk ?? 1000;
    const breaksSoFar = broken.get(url) ?? 0;
    const shouldBreak = o.breakAfter !== undefined && breaksSoFar < (o.breakTimes ?? 1);
    if (shouldBreak) broken.set(url, breaksSoFar + 1);
    let pos = 0;
    const stream = new ReadableStream<Uint8Array>({
      async pull(ctrl) {
        if (o.delayMs) await new Promise((r) => setTimeout(r, o.delayMs));
        if (shouldBreak && pos >= o.breakAfter!) {
          ctrl.error(new TypeError('network error: connection reset'));
          return;
        }
        if (pos >= body.length) {
          ctrl.close();
          return;
        }
        const end = Math.min(body.length, pos + chunk, shouldBreak ? o.breakAfter! : Infinity);
        ctrl.enqueue(body.slice(pos, end));
        pos = end;
      },
    });
    return new Response(stream, { status, headers: { 'Content-Length': String(body.length) } });
  };
  return { fetchImpl, calls };
}

async function spec(path: string, data: Uint8Array) {
  return { path, bytes: data.length, sha256: await sha256Hex(data) };
}

describe('ModelDownloader', () => {
  it('downloads several files with one aggregate progress stream, verifies and caches them', async () => {
    const a = bytesOf(5000, 1), b = bytesOf(3000, 2);
    const { fetchImpl, calls } = fakeServer({ files: { 'm/a.onnx': a, 'm/b.bin': b } });
    const store = new MemoryModelStore();
    let t = 0;
    const dl = new ModelDownloader({ store, fetch: fetchImpl, now: () => (t += 100) });
    const events: DownloadProgress[] = [];
    const out = await dl.download({ source: SRC, files: [await spec('m/a.onnx', a), await spec('m/b.bin', b)], modelId: 'm', dtype: 'fp32', onProgress: (p) => events.push(p) });
    expect(out.get('m/a.onnx')).toEqual(a);
    expect(out.get('m/b.bin')).toEqual(b);
    expect(events[0].loadedBytes).toBe(0);
    expect(events.at(-1)).toMatchObject({ loadedBytes: 8000, totalBytes: 8000, percent: 100, etaSeconds: 0, filesDone: 2 });
    for (let i = 1; i < events.length; i++) expect(events[i].loadedBytes).toBeGreaterThanOrEqual(events[i - 1].loadedBytes);
    expect(events.some((e) => e.etaSeconds !== null && e.etaSeconds > 0)).toBe(true);
    expect(new Set(events.map((e) => e.file))).toEqual(new Set(['m/a.onnx', 'm/b.bin']));
    expect(calls.length).toBe(2);
    const listed = await store.list();
    expect(listed.map((f) => f.path).sort()).toEqual(['m/a.onnx', 'm/b.bin']);
    expect(summarizeByModel(listed)).toEqual([{ modelId: 'm', bytes: 8000, files: 2, dtypes: ['fp32'] }]);

    // second time: from cache, no network
    const ev2: DownloadProgress[] = [];
    await dl.download({ source: SRC, files: [await spec('m/a.onnx', a), await spec('m/b.bin', b)], modelId: 'm', dtype: 'fp32', onProgress: (p) => ev2.push(p) });
    expect(calls.length).toBe(2);
    expect(ev2.at(-1)).toMatchObject({ cachedBytes: 8000, percent: 100 });
  });

  it('hash mismatch → ModelFileError hash-mismatch naming the file; nothing cached', async () => {
    const a = bytesOf(2000);
    const { fetchImpl } = fakeServer({ files: { 'm/a.onnx': a } });
    const store = new MemoryModelStore();
    const dl = new ModelDownloader({ store, fetch: fetchImpl });
    const err = await dl.download({ source: SRC, files: [{ path: 'm/a.onnx', bytes: 2000, sha256: 'b'.repeat(64) }], modelId: 'm', dtype: 'fp32' }).catch((e) => e);
    expect(err).toBeInstanceOf(ModelFileError);
    expect(err.code).toBe('hash-mismatch');
    expect(err.file).toBe('m/a.onnx');
    expect(err.message).toContain('m/a.onnx');
    expect(await store.list()).toEqual([]);
  });

  it('byte-count mismatch → size-mismatch', async () => {
    const a = bytesOf(2000);
    const { fetchImpl } = fakeServer({ files: { 'm/a.onnx': a } });
    const dl = new ModelDownloader({ store: new MemoryModelStore(), fetch: fetchImpl, retries: 0 });
    const err = await dl.download({ source: SRC, files: [{ path: 'm/a.onnx', bytes: 1500, sha256: await sha256Hex(a) }], modelId: 'm', dtype: 'fp32' }).catch((e) => e);
    expect(err.code).toBe('size-mismatch');
    // shorter than the manifest says: retried, then size-mismatch
    const dl2 = new ModelDownloader({ store: new MemoryModelStore(), fetch: fetchImpl, retries: 1, retryDelayMs: () => 0 });
    const err2 = await dl2.download({ source: SRC, files: [{ path: 'm/a.onnx', bytes: 2500, sha256: await sha256Hex(a) }], modelId: 'm', dtype: 'fp32' }).catch((e) => e);
    expect(err2.code).toBe('size-mismatch');
    expect(err2.message).toContain('m/a.onnx');
  });

  it('404 → missing; maxBytes → too-large before any request', async () => {
    const { fetchImpl, calls } = fakeServer({ files: {} });
    const dl = new ModelDownloader({ store: new MemoryModelStore(), fetch: fetchImpl });
    const e1 = await dl.download({ source: SRC, files: [{ path: 'm/x.onnx', bytes: 10, sha256: 'c'.repeat(64) }], modelId: 'm', dtype: 'fp32' }).catch((e) => e);
    expect(e1.code).toBe('missing');
    expect(e1.message).toContain('m/x.onnx');
    const n = calls.length;
    const e2 = await dl.download({ source: SRC, files: [{ path: 'm/big.onnx', bytes: 5e9, sha256: 'c'.repeat(64) }], modelId: 'big', dtype: 'fp32', maxBytes: 1e9 }).catch((e) => e);
    expect(e2.code).toBe('too-large');
    expect(calls.length).toBe(n);
  });

  it('a broken stream is retried, resuming with Range when supported', async () => {
    const a = bytesOf(10_000, 7);
    const { fetchImpl, calls } = fakeServer({ files: { 'm/a.onnx': a }, breakAfter: 4000, supportsRange: true });
    const store = new MemoryModelStore();
    const dl = new ModelDownloader({ store, fetch: fetchImpl, retryDelayMs: () => 0 });
    const out = await dl.download({ source: SRC, files: [await spec('m/a.onnx', a)], modelId: 'm', dtype: 'fp32' });
    expect(out.get('m/a.onnx')).toEqual(a);
    expect(calls.map((c) => c.range)).toEqual([null, 'bytes=4000-']);
  });

  it('a broken stream is restarted from scratch when the server ignores Range', async () => {
    const a = bytesOf(10_000, 9);
    const { fetchImpl, calls } = fakeServer({ files: { 'm/a.onnx': a }, breakAfter: 3000, breakTimes: 2, supportsRange: false });
    const dl = new ModelDownloader({ store: new MemoryModelStore(), fetch: fetchImpl, retryDelayMs: () => 0 });
    const events: DownloadProgress[] = [];
    const out = await dl.download({ source: SRC, files: [await spec('m/a.onnx', a)], modelId: 'm', dtype: 'fp32', onProgress: (p) => events.push(p) });
    expect(out.get('m/a.onnx')).toEqual(a);
    expect(calls.length).toBe(3);
    expect(events.at(-1)!.loadedBytes).toBe(10_000);
  });

  it('gives up after the retries with a network error', async () => {
    const a = bytesOf(5000);
    const { fetchImpl, calls } = fakeServer({ files: { 'm/a.onnx': a }, breakAfter: 1000, breakTimes: 99 });
    const dl = new ModelDownloader({ store: new MemoryModelStore(), fetch: fetchImpl, retries: 2, retryDelayMs: () => 0 });
    const e = await dl.download({ source: SRC, files: [await spec('m/a.onnx', a)], modelId: 'm', dtype: 'fp32' }).catch((x) => x);
    expect(e.code).toBe('network');
    expect(calls.length).toBe(3);
  });

  it('two concurrent requests for the same URL share one download', async () => {
    const a = bytesOf(6000, 3);
    const { fetchImpl, calls } = fakeServer({ files: { 'm/a.onnx': a }, delayMs: 2 });
    const dl = new ModelDownloader({ store: new MemoryModelStore(), fetch: fetchImpl });
    const s = await spec('m/a.onnx', a);
    const p1: DownloadProgress[] = [], p2: DownloadProgress[] = [];
    const [r1, r2] = await Promise.all([
      dl.download({ source: SRC, files: [s], modelId: 'm', dtype: 'fp32', onProgress: (p) => p1.push(p) }),
      dl.download({ source: SRC, files: [s], modelId: 'm', dtype: 'fp32', onProgress: (p) => p2.push(p) }),
    ]);
    expect(calls.length).toBe(1);
    expect(r1.get('m/a.onnx')).toEqual(a);
    expect(r2.get('m/a.onnx')).toBe(r1.get('m/a.onnx'));
    expect(p1.at(-1)!.percent).toBe(100);
    expect(p2.at(-1)!.percent).toBe(100);
    expect(dl.inflightCount).toBe(0);
  });

  // Two kinds of response: one whose body ignores the signal (a Blob-backed local-folder Response does), and one
  // that errors its body on abort (what fetch does). Either way the download must reject as 'aborted', stop reading,
  // and store nothing; if the abort were ignored the download would resolve with the full file and these fail.
  for (const honoursSignal of [false, true]) {
    it(`abort → aborted, nothing stored, reading stops (body ${honoursSignal ? 'errors on abort' : 'ignores the signal'})`, async () => {
      const a = bytesOf(50_000);
      const { fetchImpl: serve } = fakeServer({ files: { 'm/a.onnx': a }, delayMs: 2 });
      const fetchImpl: FetchLike = async (url, init) => {
        const res = await serve(url, init);
        const signal = init?.signal;
        if (!honoursSignal || !signal || !res.body) return res;
        const reader = res.body.getReader();
        const body = new ReadableStream<Uint8Array>({
          async pull(ctrl) {
            if (signal.aborted) return ctrl.error(signal.reason);
            const { done, value } = await reader.read();
            if (done) ctrl.close();
            else ctrl.enqueue(value);
          },
        });
        return new Response(body, { status: res.status, headers: res.headers });
      };
      const store = new MemoryModelStore();
      const dl = new ModelDownloader({ store, fetch: fetchImpl });
      const ac = new AbortController();
      let maxLoaded = 0;
      const p = dl.download({
        source: SRC, files: [await spec('m/a.onnx', a)], modelId: 'm', dtype: 'fp32', signal: ac.signal,
        onProgress: (e) => {
          maxLoaded = Math.max(maxLoaded, e.loadedBytes);
          if (e.loadedBytes > 2000) ac.abort(new DOMException('cancelled by the user', 'AbortError'));
        },
      });
      const e = await p.then(() => null, (x: unknown) => x);
      expect(e, 'the download resolved: abort was ignored').toBeInstanceOf(ModelFileError);
      expect((e as ModelFileError).code).toBe('aborted');
      expect((e as ModelFileError).file).toBe('m/a.onnx');
      expect(maxLoaded).toBeLessThan(a.length);
      expect(await store.list()).toEqual([]);
      expect(dl.inflightCount).toBe(0);
    });
  }
});

/** Minimal in-memory Cache Storage (the browser API shape) for Node. */
class FakeCacheStorage {
  caches = new Map<string, Map<string, Response>>();
  async open(name: string) {
    let m = this.caches.get(name);
    if (!m) this.caches.set(name, (m = new Map()));
    const store = m;
    return {
      async match(url: string) { const r = store.get(url); return r ? r.clone() : undefined; },
      async put(url: string, res: Response) { store.set(url, new Response(await res.arrayBuffer(), { headers: res.headers })); },
      async delete(url: string) { return store.delete(url); },
    };
  }
}

describe('CacheStorageModelStore (Cache Storage + idb-keyval, faked in Node)', () => {
  it('put / has / get / list / delete / estimateQuota', async () => {
    const store = new CacheStorageModelStore({
      caches: new FakeCacheStorage() as unknown as CacheStorage,
      idbStore: createStore('cxr-models-test', 'files'),
      storageManager: { estimate: async () => ({ usage: 123, quota: 4567 }) },
    });
    const a = bytesOf(300);
    const sha = await sha256Hex(a);
    const meta = { url: 'https://m/a.onnx', path: 'x/a.onnx', modelId: 'x', dtype: 'fp32', bytes: 300, sha256: sha, storedAt: 1 };
    expect(await store.has(meta.url, sha)).toBe(false);
    await store.put(a, meta);
    await store.put(bytesOf(10), { ...meta, url: 'https://m/b', path: 'y/b', modelId: 'y', bytes: 10 });
    expect(await store.has(meta.url, sha)).toBe(true);
    expect(await store.has(meta.url, 'f'.repeat(64))).toBe(false);
    expect(await store.get(meta.url)).toEqual(a);
    expect((await store.list()).length).toBe(2);
    expect(await store.delete('x')).toBe(1);
    expect(await store.get(meta.url)).toBeNull();
    expect((await store.list()).map((m) => m.modelId)).toEqual(['y']);
    expect(await store.estimateQuota()).toEqual({ usage: 123, quota: 4567 });
  });

  it('works as the downloader store end to end', async () => {
    const a = bytesOf(4000, 11);
    const { fetchImpl, calls } = fakeServer({ files: { 'm/a.onnx': a } });
    const store = new CacheStorageModelStore({ caches: new FakeCacheStorage() as unknown as CacheStorage, idbStore: createStore('cxr-models-test2', 'files') });
    const dl = new ModelDownloader({ store, fetch: fetchImpl });
    const s = await spec('m/a.onnx', a);
    await dl.download({ source: SRC, files: [s], modelId: 'm', dtype: 'fp32' });
    const again = await new ModelDownloader({ store, fetch: fetchImpl }).download({ source: SRC, files: [s], modelId: 'm', dtype: 'fp32' });
    expect(again.get('m/a.onnx')).toEqual(a);
    expect(calls.length).toBe(1);
  });
});

describe('Verify (rehash): the cached bytes themselves are re-hashed', () => {
  it('a cached file damaged after it was stored (same length, same recorded sha256) is found and downloaded again', async () => {
    const good = bytesOf(5000, 7);
    const sha = await sha256Hex(good);
    const store = new MemoryModelStore();
    const damaged = good.slice();
    damaged[1234] ^= 0xff;
    // what a bit flip in Cache Storage leaves: the metadata still says the good sha256
    await store.put(damaged, { url: 'https://models.test/m/model.onnx', path: 'm/model.onnx', modelId: 'm', dtype: 'fp32', bytes: 5000, sha256: sha, storedAt: 0 });
    const server = fakeServer({ files: { 'm/model.onnx': good } });
    const d = new ModelDownloader({ store, fetch: server.fetchImpl, retryDelayMs: () => 0 });
    const files = [{ path: 'm/model.onnx', bytes: 5000, sha256: sha }];
    // without rehash (a plain download request) the damaged cache entry is served as it is
    const plain = await d.download({ source: SRC, files, modelId: 'm', dtype: 'fp32' });
    expect(await sha256Hex(plain.get('m/model.onnx')!)).not.toBe(sha);
    expect(server.calls).toHaveLength(0);
    const results: [string, string][] = [];
    const out = await d.download({ source: SRC, files, modelId: 'm', dtype: 'fp32', rehash: true, onVerified: (p, r) => results.push([p, r]) });
    expect(results).toEqual([['m/model.onnx', 'repaired']]);
    expect(server.calls).toHaveLength(1);
    expect(await sha256Hex(out.get('m/model.onnx')!)).toBe(sha);
    expect(await sha256Hex((await store.get('https://models.test/m/model.onnx'))!)).toBe(sha);
    const again: string[] = [];
    await d.download({ source: SRC, files, modelId: 'm', dtype: 'fp32', rehash: true, onVerified: (_p, r) => again.push(r) });
    expect(again).toEqual(['ok']);
    expect(server.calls).toHaveLength(1);
  });
});
