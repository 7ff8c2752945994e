/**
 * The browser's persistent model store: bytes in Cache Storage ('cxr-models-v1'), metadata in IndexedDB via
 * idb-keyval. Both are injectable so Node tests can run it against fakes. Wrapped in LocalKeyModelStore
 * (app/lib/models/cache-keys.ts) so local-folder URLs can be cache keys.
 */
import { createStore, del, entries, get, set, type UseStore } from 'idb-keyval';
import type { ModelStore, OrphanSweep, StoredModelFile } from '../../lib/models/model-cache';
import { LocalKeyModelStore } from '../../lib/models/cache-keys';

export const MODEL_CACHE_NAME = 'cxr-models-v1';

export interface CacheStorageModelStoreOptions {
  caches?: CacheStorage;
  cacheName?: string;
  /** idb-keyval store for metadata; default createStore('cxr-models', 'files'). */
  idbStore?: UseStore;
  storageManager?: { estimate(): Promise<StorageEstimate> };
}

/** Browser store: Cache Storage for bytes, IndexedDB (idb-keyval) for metadata. */
export class CacheStorageModelStore implements ModelStore {
  private readonly cachesApi: CacheStorage;
  private readonly cacheName: string;
  private readonly idb: UseStore;
  private readonly storage?: { estimate(): Promise<StorageEstimate> };

  constructor(opts: CacheStorageModelStoreOptions = {}) {
    const c = opts.caches ?? (globalThis as { caches?: CacheStorage }).caches;
    if (!c) throw new Error('Cache Storage is not available (needs a secure context)');
    this.cachesApi = c;
    this.cacheName = opts.cacheName ?? MODEL_CACHE_NAME;
    this.idb = opts.idbStore ?? createStore('cxr-models', 'files');
    this.storage = opts.storageManager ?? (globalThis as { navigator?: { storage?: { estimate(): Promise<StorageEstimate> } } }).navigator?.storage;
  }

  private open() {
    return this.cachesApi.open(this.cacheName);
  }

  async has(url: string, sha256: string) {
    const meta = await get<StoredModelFile>(url, this.idb);
    if (!meta || meta.sha256 !== sha256) return false;
    const cache = await this.open();
    return (await cache.match(url)) !== undefined;
  }

  async get(url: string) {
    const cache = await this.open();
    const res = await cache.match(url);
    if (!res) return null;
    return new Uint8Array(await res.arrayBuffer());
  }

  async put(bytes: Uint8Array, meta: StoredModelFile) {
    await withCacheLock(() => this.putNow(bytes, meta));
  }

  private async putNow(bytes: Uint8Array, meta: StoredModelFile) {
    const cache = await this.open();
    const body = new Blob([bytes as Uint8Array<ArrayBuffer>]);
    await cache.put(meta.url, new Response(body, { headers: { 'Content-Type': 'application/octet-stream', 'Content-Length': String(bytes.byteLength), 'X-Sha256': meta.sha256 } }));
    await set(meta.url, { ...meta }, this.idb);
  }

  async list() {
    const all = await entries<string, StoredModelFile>(this.idb);
    return all.map(([, v]) => v);
  }

  async delete(modelId: string) {
    const cache = await this.open();
    let n = 0;
    for (const m of await this.list()) {
      if (m.modelId !== modelId) continue;
      await cache.delete(m.url);
      await del(m.url, this.idb);
      n++;
    }
    return n;
  }

  async deleteUrl(url: string) {
    const cache = await this.open();
    await cache.delete(url);
    await del(url, this.idb);
  }

  /**
   * `put` writes the bytes (Cache Storage) and then the metadata (IndexedDB): the two stores have no shared
   * transaction, so a tab closed in between leaves bytes no listing shows, holding quota forever. Matching is on the
   * parsed URL (Cache Storage normalises keys, IndexedDB keeps the string as given).
   */
  sweepOrphans(): Promise<OrphanSweep> {
    return withCacheLock(() => this.sweepNow());
  }

  private async sweepNow(): Promise<OrphanSweep> {
    const cache = await this.open();
    const metaKeys = (await entries<string, StoredModelFile>(this.idb)).map(([k]) => k);
    const metaByHref = new Map(metaKeys.map((k) => [hrefOf(k), k]));
    const cachedHrefs = new Set<string>();
    const bytesWithoutMetadata: OrphanSweep['bytesWithoutMetadata'] = [];
    for (const req of await cache.keys()) {
      const href = hrefOf(req.url);
      cachedHrefs.add(href);
      if (metaByHref.has(href)) continue;
      const res = await cache.match(req);
      const bytes = Number(res?.headers.get('Content-Length') ?? 0) || 0;
      await cache.delete(req);
      bytesWithoutMetadata.push({ url: req.url, bytes });
    }
    const metadataWithoutBytes: string[] = [];
    for (const [href, key] of metaByHref) {
      if (cachedHrefs.has(href)) continue;
      await del(key, this.idb);
      metadataWithoutBytes.push(key);
    }
    return { bytesWithoutMetadata, metadataWithoutBytes };
  }

  async estimateQuota() {
    if (!this.storage?.estimate) return null;
    const e = await this.storage.estimate();
    return { usage: e.usage ?? 0, quota: e.quota ?? 0 };
  }
}

/**
 * `put` and `sweepOrphans` hold one Web Lock across the page and its tabs, so a sweep in one tab never takes a
 * write in flight in another for a half-written entry. Without the Web Locks API (Node tests) it runs unlocked.
 */
function withCacheLock<T>(fn: () => Promise<T>): Promise<T> {
  const locks = (globalThis as { navigator?: { locks?: { request(name: string, cb: () => Promise<T>): Promise<T> } } }).navigator?.locks;
  return locks ? locks.request('cxr-model-cache-write', fn) : fn();
}

/** The absolute URL a key stands for: the app's own models are keyed origin-relative ('/models/...'). */
function hrefOf(url: string): string {
  try {
    return new URL(url, (globalThis as { location?: { href?: string } }).location?.href ?? 'http://localhost/').href;
  } catch {
    return url;
  }
}

/** The app's model store (page and workers): Cache Storage under local-folder-aware keys. */
export function browserModelStore(): ModelStore {
  return new LocalKeyModelStore(new CacheStorageModelStore());
}
